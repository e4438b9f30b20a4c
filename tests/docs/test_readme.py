"""The README's quickstarts run as written (doc tests), its two commands are those CI runs,
and its install claims hold."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from h2q.embeddings import save_embeddings

from ._pages import blocks, commands, read, run_h2q, section

ROOT = Path(__file__).resolve().parents[2]
README = read("README.md")


def _data(rng, width):
    centers = rng.normal(size=(5, width))
    folds = {}
    for fold, n in (("train", 400), ("val", 100), ("query", 30), ("database", 300)):
        y = rng.integers(0, 5, n)
        folds[fold] = (centers[y] + 0.5 * rng.normal(size=(n, width))).astype(np.float32)
        folds[f"y_{fold}"] = y
    return folds


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_library_quickstart_runs_as_written(tmp_path, monkeypatch):
    (code,) = [
        c for lang, c in blocks(section(README, "Quickstart: the library")) if lang == "python"
    ]
    # the README states the width its example needs, and the file it loads
    width = int(re.search(r"float arrays \(n, (\d+)\)", code).group(1))
    path = re.search(r'h2q\.load_embeddings\("([^"]+)"\)', code).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 20)  # keep it fast
    folds = _data(np.random.default_rng(0), width)
    save_embeddings(path, **folds)
    ns: dict = {}
    exec(compile(code, "README.md (Quickstart: the library)", "exec"), ns)
    # what the comments say: the fold names are the library's
    from h2q.embeddings import FOLDS

    assert re.search(r"# folds (.*)", code).group(1) == ", ".join(f'"{f}"' for f in FOLDS)
    n_bits = int(re.search(r"HouseholderQuantizer\(n_bits=(\d+)\)", code).group(1))
    assert ns["db_codes"].dtype == np.uint8
    assert ns["db_codes"].shape == (len(folds["database"]), n_bits // 8)
    assert f"uint8 (n, {n_bits // 8})" in code
    assert ns["D"].shape == ns["I"].shape == (len(folds["query"]), 100)
    assert (tmp_path / f"h2q-{n_bits}.npz").is_file()
    assert ns["q"].n_bits_ == n_bits


@pytest.mark.slow
def test_cli_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    """Every line of the CLI quickstart: `train` for one epoch, the stage-2 lines as written,
    and `reproduce --quick` parsed (it runs in tests/cli/test_reproduce.py)."""
    pytest.importorskip("sklearn", reason="the digits data set needs h2q[data]")
    (code,) = [c for lang, c in blocks(section(README, "Quickstart: the command line"))
               if lang == "bash"]  # fmt: skip
    argvs = commands(code)
    assert [a[0] for a in argvs] == ["train", "fit", "encode", "encode", "search", "evaluate",
                                     "reproduce"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 20)  # keep it fast
    outputs = {}
    for argv in argvs[:-1]:
        extra = ["--epochs", "1"] if argv[0] == "train" else []
        outputs[argv[0]] = run_h2q([*argv, *extra], capsys)
    with np.load("result.npz") as result:
        assert result["I"].shape[1] == 100
    assert "ties re-ranked by features" in outputs["search"]
    assert "mAP@100" in outputs["evaluate"]
    from h2q.cli.main import build_parser

    args = build_parser().parse_args(argvs[-1])
    assert args.quick and args.out == "results/quick"


def test_two_commands_are_those_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    bash = [c.strip() for lang, c in blocks(section(README, "Two commands")) if lang == "bash"]
    assert bash == [
        "bash scripts/setup.sh && .venv/bin/h2q reproduce --out results/default",
        "bash scripts/setup.sh --test && .venv/bin/python -m pytest -q",
    ]
    assert "bash scripts/setup.sh --test" in ci and ".venv/bin/python -m pytest -q" in ci


def test_install_claims_hold():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    in_all = set(re.fullmatch(r"h2q\[(.*)\]", extras["all"][0]).group(1).split(","))
    assert len(extras["all"]) == 1
    # README (Install): `h2q[all]` holds every extra but `vision`
    assert "`h2q[all]` holds every extra but `vision`" in README
    assert in_all == set(extras) - {"all", "test", "vision", "docs"}
    assert "torchvision" in str(extras["vision"]) and "minilm" in str(extras["text"]).lower()
    # the test extra brings the documentation tools, which the docs extra holds
    assert "docs" in re.fullmatch(r"h2q\[(.*)\]", extras["test"][0]).group(1).split(",")
    assert {"mkdocs", "mkdocs-material", "mkdocstrings[python]"} <= {
        re.split(r"[<>=]", dep)[0] for dep in extras["docs"]
    }
    # the Python version the README states
    version = re.search(r"Python (3\.\d+) or later", README).group(1)
    assert project["requires-python"] == f">={version}"
    # the extras the main job's set-up installs are those README states
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    stated = re.search(r"the extras `([a-z,]+)`", README).group(1)
    assert f'extras="{stated}"' in setup
