"""The generated sections of README.md and docs/ are made from kept files alone, and a test
fails when a page and its kept files disagree (scripts/docgen, scripts/generate_docs.py)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import generate_docs
import pytest
from docgen import text as text_mod
from docgen.registry import SECTIONS, select
from docgen.sections import REPO, check, replace_section, update


@pytest.fixture
def repo(tmp_path):
    """A copy of what the generated sections read and the pages they live in."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "benchmarks" / "results", root / "benchmarks" / "results")
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


def _outside(text: str, page: str) -> str:
    """The page without the text between its markers."""
    for section in [s for s in SECTIONS if s.page == page]:
        head, rest = text.split(section.begin)
        text = head + section.begin + rest.split(section.end)[1]
    return text


def test_every_generated_section_matches_its_kept_files():
    """On failure: `python scripts/generate_docs.py` (after rerunning what writes the file)."""
    lines = check(SECTIONS, REPO)
    assert lines == [], "\n".join(lines[:40])
    assert generate_docs.main(["--check"]) == 0


def test_a_changed_figure_is_caught_and_regenerated(repo, capsys):
    path = repo / "benchmarks" / "results" / "bench_flat.json"
    record = json.loads(path.read_text())
    record["cases"][0]["methods"]["h2q flat (numba)"]["queries_per_s"] = 123456.0
    path.write_text(json.dumps(record))
    args = ["--repo", str(repo)]
    assert generate_docs.main([*args, "--check"]) == 1
    assert "123,456" in capsys.readouterr().out
    before = {p: (repo / p).read_text() for p in ("README.md", "docs/benchmarks.md")}
    assert generate_docs.main(args) == 0
    assert generate_docs.main([*args, "--check"]) == 0
    after = {p: (repo / p).read_text() for p in before}
    assert "| 64 | 10 | h2q flat (numba) | 123,456 |" in after["docs/benchmarks.md"]
    assert "**123,456 queries/s**" in after["README.md"]  # the headline reads it too
    # only the text between the markers changed
    for page, old in before.items():
        assert _outside(old, page) == _outside(after[page], page)


def test_a_changed_page_is_caught(repo):
    page = repo / "docs" / "results.md"
    text = page.read_text()
    table = (repo / "docs/results/default/table.md").read_text()
    number = next(w for w in table.split() if w[:1].isdigit() and "." in w)
    page.write_text(text.replace(number, "11.11", 1))
    assert check(select(["results"]), repo)
    page.write_text(text.replace("# Results", "# Results, by hand"))  # outside the markers
    assert check(select(["results"]), repo) == []


def test_the_kept_grid_outputs_feed_the_results_page(repo):
    kept = repo / "docs" / "results" / "default"
    (kept / "verdict.md").write_text("- a new verdict line\n")
    assert any("a new verdict line" in line for line in check(select(["results"]), repo))
    assert update(select(["results"]), repo) == ["docs/results.md"]
    assert "- a new verdict line\n" in (repo / "docs" / "results.md").read_text()


def test_missing_or_misordered_markers_are_errors(repo, capsys):
    with pytest.raises(ValueError, match="exactly once"):
        replace_section("no markers\n", "x", "<!-- a -->", "<!-- b -->")
    with pytest.raises(ValueError, match="out of order"):
        replace_section("<!-- b -->\n<!-- a -->\n", "x", "<!-- a -->", "<!-- b -->")
    assert replace_section("1\n<!-- a -->\nold\n<!-- b -->\n2\n", "NEW\n", "<!-- a -->",
                           "<!-- b -->") == "1\nNEW\n2\n"  # fmt: skip
    (repo / "docs" / "benchmarks.md").write_text("# no markers\n")
    assert generate_docs.main(["--repo", str(repo), "--check"]) == 2
    assert "markers exactly once" in capsys.readouterr().err


def test_a_results_file_without_a_field_is_a_one_line_error(repo, capsys):
    path = repo / "benchmarks" / "results" / "bench_flat.json"
    record = json.loads(path.read_text())
    del record["cases"][0]["methods"]["h2q flat (numba)"]["queries_per_s"]
    path.write_text(json.dumps(record))
    assert generate_docs.main(["--repo", str(repo), "--check"]) == 2
    err = capsys.readouterr().err
    assert "missing field 'queries_per_s'" in err and len(err.strip().splitlines()) == 1


def test_unknown_section_is_refused(capsys):
    assert generate_docs.main(["--only", "nope", "--check"]) == 2
    assert "unknown section nope" in capsys.readouterr().err


def _text_result() -> dict:
    rows = []
    for b in (64, 384):
        for i, method in enumerate(("sign", "centred sign", "PCA + random rotation", "ITQ", "H2Q")):
            row = {"bits": b, "method": method, "fit_s": 1.0}
            for k in (10, 100):
                for tie in ("id", "float"):
                    row[f"recall@{k}_tie_{tie}"] = 10.0 + i + k / 1000 + (tie == "float")
            if method == "H2Q":
                row.update(n_iter=205, best_iteration=190)
            rows.append(row)
    times = {"ITQ": [2.0, 3.0, 4.0], "H2Q": [1.0, 1.5, 9.0]}
    return {
        "loadavg_before": [3.5, 3.0, 2.0],
        "loadavg_after": [4.0, 3.0, 2.0],
        "environment": {"threads": 1, "cpu_model": "Test CPU", "cpus": 2},
        "results": {
            "n_query": 2000,
            "n_database": 93882,
            "n_fit": 10000,
            "rows": rows,
            "fit_times": {"64": times, "384": times},
        },  # fmt: skip
    }


def test_text_tables_read_every_figure_from_the_json():
    text = "\n".join(text_mod.render_result(_text_result()))
    assert "| H2Q | 15.0 / 15.1 | 15.0 / 15.1 |" in text  # float ties: +1
    assert "| H2Q | 14.0 / 14.1 | 14.0 / 14.1 |" in text  # id ties
    assert "| 384 | 3.00 | 1.50 | 0.50 | 205 (190) |" in text  # medians and their ratio
    assert "On Test CPU (2 CPUs)" in text  # the machine, once, above the tables
    assert "2,000 queries against 93,882" in text and "load average 3.5 before" in text
    assert "ITQ, no PCA" not in text  # a method absent at every width gets no row
    changed = copy.deepcopy(_text_result())
    changed["results"]["rows"][-1]["recall@10_tie_float"] = 99.9
    assert "99.9" in "\n".join(text_mod.render_result(changed))


def test_every_table_names_its_machine():
    for section in SECTIONS:
        body = "\n".join(section.render(REPO, (REPO / section.page).parent))
        assert "AMD EPYC" in body or "Intel" in body, section.name


def test_the_script_runs_as_a_command(repo):
    script = REPO / "scripts" / "generate_docs.py"
    proc = subprocess.run([sys.executable, str(script), "--repo", str(repo), "--check"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    listing = subprocess.run([sys.executable, str(script), "--list"], capture_output=True,
                             text=True, timeout=120, check=True).stdout  # fmt: skip
    assert all(s.name in listing for s in SECTIONS)
