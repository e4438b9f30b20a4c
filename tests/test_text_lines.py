"""Reading a text file: one text per "\n"-separated line, whatever else the lines hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from h2q.text import read_lines

#: Characters that str.splitlines treats as line ends, but a "\n"-separated file does not.
OTHER_BREAKS = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"

line = st.text(
    alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
    min_size=1,
).filter(lambda t: t.strip() and not t.endswith("\r"))
tricky = st.lists(
    st.builds(lambda a, b, c: a + b + c, line, st.sampled_from(OTHER_BREAKS), line), max_size=3
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(line, min_size=1, max_size=12),
    extra=tricky,
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
def test_one_text_per_newline_separated_line(tmp_path_factory, lines, extra, crlf, final_newline):
    texts = lines + extra
    end = "\r\n" if crlf else "\n"
    content = end.join(texts) + (end if final_newline else "")
    path = tmp_path_factory.mktemp("lines") / "t.txt"
    path.write_bytes(content.encode("utf-8"))
    assert read_lines(path) == texts
    assert len(read_lines(path)) == content.count("\n") + (not final_newline)


def test_line_breaking_characters_stay_inside_their_text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("a\u2028b\nc\vd\x1ce\r\nf\rg\n".encode())
    assert read_lines(path) == ["a\u2028b", "c\vd\x1ce", "f\rg"]  # `wc -l` says 3


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"caf\xc3\xa9\nna\xefve\n", r"t\.txt, line 2: byte 0xef is not UTF-8 text; convert"),
        (b"a\n\nb\n", r"line 2: empty line"),
        (b"a\n \t\nb", r"line 2: empty line"),
        (b"", r"holds no text"),
    ],
)
def test_bad_files_name_the_line(tmp_path, raw, match):
    path = tmp_path / "t.txt"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        read_lines(path)
