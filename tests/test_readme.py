"""The README's quickstarts run as written (doc tests), and its extras claim holds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from h2q.cli import main as cli_main
from h2q.embeddings import save_embeddings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _block(title: str, language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", _section(title), re.S)
    assert match, f"no {language} block in README section {title!r}"
    return match.group(1)


def _data(rng, width):
    centers = rng.normal(size=(5, width))
    folds = {}
    for fold, n in (("train", 400), ("val", 100), ("query", 30), ("database", 300)):
        y = rng.integers(0, 5, n)
        folds[fold] = (centers[y] + 0.5 * rng.normal(size=(n, width))).astype(np.float32)
        folds[f"y_{fold}"] = y
    return folds


def test_library_quickstart_runs_as_written(tmp_path, monkeypatch):
    code = _block("Quickstart: the library", "python")
    # the README states the width its example needs; fill the `...` with such embeddings
    width = re.search(r"\(n_samples, (\d+)\) float arrays", code)
    assert width, "the library quickstart must say what shape of embeddings it expects"
    width = int(width.group(1))
    placeholder = "X_train, X_val, X_db, X_query = ...\n"
    assert placeholder in code
    folds = _data(np.random.default_rng(0), width)
    namespace = {
        "_folds": folds,
    }
    code = code.replace(
        placeholder,
        "X_train, X_val, X_db, X_query = (_folds[f] for f in "
        "('train', 'val', 'database', 'query'))\n",
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (Quickstart: the library)", "exec"), namespace)
    # what the comments say
    n_bits = int(re.search(r"HouseholderQuantizer\(n_bits=(\d+)\)", code).group(1))
    assert namespace["db_codes"].dtype == np.uint8
    assert namespace["db_codes"].shape == (len(folds["database"]), n_bits // 8)
    assert f"uint8 (n, {n_bits // 8})" in code
    assert namespace["D"].shape == namespace["I"].shape == (len(folds["query"]), 100)
    assert (tmp_path / f"h2q-{n_bits}.npz").is_file()
    assert namespace["q"].n_bits_ == n_bits


STAGE2 = ("fit", "encode", "search", "evaluate")


def test_cli_quickstart_stage2_runs_as_written(tmp_path, monkeypatch, capsys):
    """Every fit/encode/search/evaluate line of the CLI quickstart, on small embeddings."""
    lines = [line.split("#")[0].strip() for line in _block("Quickstart: the command line", "bash")
             .replace("\\\n", " ").splitlines()]  # fmt: skip
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("h2q ")]
    stage2 = [argv for argv in commands if argv[0] in STAGE2]
    assert [argv[0] for argv in stage2] == ["fit", "encode", "encode", "search", "evaluate",
                                            "evaluate"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    train_out = next(argv for argv in commands if argv[0] == "train")
    run_dir = Path(train_out[train_out.index("--out") + 1])
    run_dir.mkdir(parents=True)
    # the run folder's embeddings: 32 features, as `--bits 32` makes them
    bits = int(train_out[train_out.index("--bits") + 1])
    save_embeddings(run_dir / "embeddings.npz", **_data(np.random.default_rng(1), bits))
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 20)  # keep it fast
    outputs = {}
    for argv in stage2:
        status = cli_main.main([*argv, "--no-progress"] if argv[0] in ("fit", "evaluate")
                               else argv)  # fmt: skip
        out, err = capsys.readouterr()
        assert status == 0, (argv, err)
        # no warning: the chain keeps the tie-breaking (the test's database is smaller than
        # the README's -k, so evaluate's note on the cut-off it reports is expected)
        err = "".join(line for line in err.splitlines(True) if not line.startswith("note: -k"))
        assert err == "", (argv, err)
        outputs[argv[0]] = out
    with np.load("result.npz") as result:
        assert result["I"].shape == (30, 100)
    assert "ties re-ranked by features" in outputs["search"]
    assert Path("eval/table.md").is_file()


def test_all_extra_holds_what_the_readme_says():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    in_all = set(re.fullmatch(r"h2q\[(.*)\]", extras["all"][0]).group(1).split(","))
    assert len(extras["all"]) == 1
    # README (Layout): `h2q[all]` installs every extra but torchvision
    assert 'pip install "h2q[all]"` installs all of them but torchvision, which is\n`[vision]`' in (
        README
    )
    assert in_all == set(extras) - {"all", "test", "vision"}
    assert "torchvision" in str(extras["vision"]) and "minilm" in str(extras["text"]).lower()
    # the digits data set needs scikit-learn, which the named extra brings
    assert 'needs only\nscikit-learn (`pip install "h2q[data]"`)' in README
    assert any(dep.startswith("scikit-learn") for dep in extras["data"])
