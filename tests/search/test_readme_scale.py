"""The README's "Search at scale" tables are generated from the kept benchmark results."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "readme_scale.py"


@pytest.fixture(scope="module")
def gen():
    return runpy.run_path(str(SCRIPT), run_name="readme_scale")


def test_readme_matches_the_kept_results(gen):
    """On failure: rerun the benchmark, then `python scripts/readme_scale.py`."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert gen["replace"](readme, gen["render"]()) == readme
    assert gen["main"](["--check"]) == 0


def test_check_fails_and_rewrite_fixes_a_changed_result(gen, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for path in (REPO / "benchmarks" / "results").glob("bench_*.json"):
        shutil.copy(path, results)
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    args = ["--readme", str(readme), "--results", str(results)]
    assert gen["main"]([*args, "--check"]) == 0
    record = json.loads((results / "bench_flat.json").read_text())
    row = record["cases"][0]["methods"]["h2q flat (numba)"]
    row["queries_per_s"] = 123456.0
    (results / "bench_flat.json").write_text(json.dumps(record))
    assert gen["main"]([*args, "--check"]) == 1
    assert "123,456" in capsys.readouterr().out
    assert gen["main"](args) == 0
    text = readme.read_text(encoding="utf-8")
    assert "| h2q flat (numba) | 123,456 |" in text
    assert gen["main"]([*args, "--check"]) == 0
    # Only the text between the markers changed.
    outside = text.split(gen["BEGIN"])[0], text.split(gen["END"])[1]
    original = (REPO / "README.md").read_text(encoding="utf-8")
    assert outside == (original.split(gen["BEGIN"])[0], original.split(gen["END"])[1])


def test_missing_markers_are_a_clear_error(gen, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n", encoding="utf-8")
    assert gen["main"](["--readme", str(readme), "--check"]) == 2
    assert "markers exactly once" in capsys.readouterr().err


def test_a_results_file_without_a_field_is_a_clear_error(gen, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for path in (REPO / "benchmarks" / "results").glob("bench_*.json"):
        shutil.copy(path, results)
    record = json.loads((results / "bench_flat.json").read_text())
    del record["cases"][0]["methods"]["h2q flat (numba)"]["queries_per_s"]
    (results / "bench_flat.json").write_text(json.dumps(record))
    args = ["--readme", str(REPO / "README.md"), "--results", str(results), "--check"]
    assert gen["main"](args) == 2
    err = capsys.readouterr().err
    assert "lacks the field 'queries_per_s'" in err and len(err.strip().splitlines()) == 1
