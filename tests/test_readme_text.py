"""The README's WordNet / MiniLM tables are generated from the kept benchmark JSON."""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = runpy.run_path(str(REPO / "scripts" / "readme_text.py"), run_name="readme_text")


def _result() -> dict:
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
        },
    }


def _files(tmp_path: Path, result: dict) -> tuple[Path, Path]:
    path_json, readme = tmp_path / "bench_text.json", tmp_path / "README.md"
    path_json.write_text(json.dumps(result))
    begin, end = SCRIPT["BEGIN"], SCRIPT["END"]
    readme.write_text(f"# T\n\n## Text\n\nHand.\n\n{begin}\nold\n{end}\n\nEnd\n")
    return path_json, readme


def test_render_reads_every_figure_from_the_json():
    text = SCRIPT["render"](_result())
    assert "| H2Q | 15.0 / 15.1 | 15.0 / 15.1 |" in text  # float ties: +1
    assert "| H2Q | 14.0 / 14.1 | 14.0 / 14.1 |" in text  # id ties
    assert "| 384 | 3.00 | 1.50 | 0.50 | 205 (190) |" in text  # medians and their ratio
    assert "2,000 queries against 93,882" in text and "load average 3.5 before" in text
    assert "ITQ, no PCA" not in text  # a method absent at every width gets no row


def test_check_and_update(tmp_path):
    path_json, readme = _files(tmp_path, _result())
    main = SCRIPT["main"]
    args = ["--json", str(path_json), "--readme", str(readme)]
    assert main([*args, "--check"]) == 1  # "old" is not what the JSON gives
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    text = readme.read_text()
    assert text.startswith("# T\n\n## Text\n\nHand.\n\n" + SCRIPT["BEGIN"])
    assert text.endswith(SCRIPT["END"] + "\n\nEnd\n")
    changed = copy.deepcopy(_result())
    changed["results"]["rows"][-1]["recall@10_tie_float"] = 99.9
    path_json.write_text(json.dumps(changed))
    assert main([*args, "--check"]) == 1  # a changed figure is caught
    readme.write_text(text.replace("Hand.", "Other."))
    path_json.write_text(json.dumps(_result()))
    assert main([*args, "--check"]) == 0  # text outside the markers is free


def test_missing_markers_are_an_error(tmp_path, capsys):
    path_json, readme = _files(tmp_path, _result())
    readme.write_text("no markers\n")
    assert SCRIPT["main"](["--json", str(path_json), "--readme", str(readme)]) == 2
    assert "markers exactly once" in capsys.readouterr().err
    with pytest.raises(ValueError, match="out of order"):
        SCRIPT["replace"](f"{SCRIPT['END']}\n{SCRIPT['BEGIN']}\n", "x")


def test_readme_matches_the_kept_benchmark_json():
    assert SCRIPT["main"](["--check"]) == 0
