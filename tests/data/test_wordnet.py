"""WordNet noun glosses from a tiny data.noun with license lines, in latin-1."""

from __future__ import annotations

import numpy as np
import pytest

from h2q.data import DatasetNotFoundError, load_dataset, load_wordnet_nouns
from h2q.exceptions import FileFormatError

LICENSE = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  By obtaining, using  \n"
)
LINES = (
    "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived to exist\n"
    '00015388 05 n 01 animal 0 002 @ 00004475 n 0000 | a living organism; "a caf\xe9 cat"\n'
    "15113229 28 n 02 time 0 clip 0 000 | the continuum of experience  \n"
)


def write_noun_file(folder, text):
    path = folder / "data.noun"
    path.write_bytes(text.encode("latin-1"))
    return path


def test_glosses_and_supersenses(tmp_path):
    write_noun_file(tmp_path, LICENSE + LINES)
    ds = load_wordnet_nouns(tmp_path)
    assert ds.kind == "text" and len(ds) == 3
    assert ds.X[0] == "that which is perceived to exist"
    assert ds.X[1] == 'a living organism; "a caf\xe9 cat"'  # latin-1 decoded
    assert ds.X[2] == "the continuum of experience"
    np.testing.assert_array_equal(ds.y, [0, 2, 25])
    assert ds.n_classes == 26
    assert [ds.class_names[c] for c in ds.y] == ["noun.Tops", "noun.animal", "noun.time"]
    np.testing.assert_array_equal(ds.meta["offsets"], [1740, 15388, 15113229])
    assert ds.meta["lemmas"] == ["entity", "animal", "time"]


def test_root_may_be_the_file(tmp_path):
    path = write_noun_file(tmp_path, LINES)
    assert len(load_dataset("wordnet", path)) == 3


def test_missing_file_names_install_command(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match="apt-get install -y --no-install-recommends wordnet-base"
    ):
        load_wordnet_nouns(tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("00001740 03 n 01 entity 0 003 no gloss bar\n", "line 1: not a WordNet data line"),
        ("x0001740 03 n 01 entity 0 000 | gloss\n", "must be numbers"),
        ("00001740 02 v 01 run 0 000 | move fast\n", "lexicographer file 2 is not a noun file"),
        (LICENSE, "holds no data lines"),
    ],
)
def test_malformed_files(tmp_path, text, match):
    write_noun_file(tmp_path, text)
    with pytest.raises(FileFormatError, match=match):
        load_wordnet_nouns(tmp_path)
