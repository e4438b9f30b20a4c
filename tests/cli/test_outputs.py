"""The CLI's output policy: never write over an input, refuse existing outputs without --force."""

from __future__ import annotations

import os

import numpy as np
import pytest

from h2q.cli import main as cli_main
from h2q.cli._errors import UsageError
from h2q.cli._paths import check_outputs, check_run_folder
from h2q.embeddings import save_embeddings
from h2q.quantizers import ITQQuantizer

WIDTH = 8


@pytest.fixture
def h2q(cli_runner):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    return cli_runner(("quantize",))


@pytest.fixture
def work(tmp_path):
    rng = np.random.default_rng(0)
    folds = {}
    for fold, n in (("train", 120), ("query", 10), ("database", 60)):
        folds[fold] = rng.normal(size=(n, WIDTH)).astype(np.float32)
        folds[f"y_{fold}"] = rng.integers(0, 3, n)
    save_embeddings(tmp_path / "emb.npz", **folds)
    np.save(tmp_path / "x.npy", folds["train"])
    ITQQuantizer(max_iter=3).fit(folds["train"]).save(tmp_path / "q.npz")
    np.save(tmp_path / "db.npy", np.zeros((6, 1), dtype=np.uint8))
    return tmp_path


def _link(kind, source, link):
    if kind == "symlink":
        os.symlink(source, link)
    else:
        os.link(source, link)
    return link


def _commands(d, target):
    """Each command with its output set to ``target``."""
    return {
        "fit": ["fit", d / "emb.npz", "--out", target, "--no-progress"],
        "encode": ["encode", d / "q.npz", d / "x.npy", "--out", target],
        "search": [
            "search",
            "--database",
            d / "db.npy",
            "--queries",
            d / "db.npy",
            "-k",
            2,
            "--out",
            target,
        ],
    }


@pytest.mark.parametrize("command", ["fit", "encode", "search"])
@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("force", [False, True])
def test_output_is_never_an_input(h2q, work, command, how, force):
    inputs = {"fit": work / "emb.npz", "encode": work / "x.npy", "search": work / "db.npy"}
    source = inputs[command]
    before = source.read_bytes()
    target = source if how == "same" else _link(how, source, work / f"link{source.suffix}")
    argv = _commands(work, target)[command] + (["--force"] if force else [])
    status, _, err = h2q(*argv)
    assert status == 2, err
    assert err.count("\n") == 1 and "is the input file" in err
    assert ("through a link" in err) == (how != "same")
    assert source.read_bytes() == before


@pytest.mark.parametrize("command", ["fit", "encode", "search"])
def test_existing_output_needs_force(h2q, work, command):
    target = work / ("out.npz" if command != "encode" else "out.npy")
    target.write_bytes(b"previous")
    status, _, err = h2q(*_commands(work, target)[command])
    assert status == 2 and "already exists" in err and "--force" in err
    assert target.read_bytes() == b"previous"
    status, _, err = h2q(*_commands(work, target)[command], "--force")
    assert status == 0, err
    assert target.read_bytes() != b"previous"


def test_encode_features_out_cannot_be_an_input(h2q, work):
    status, _, err = h2q(
        "encode",
        work / "q.npz",
        work / "x.npy",
        "--out",
        work / "c.npz",
        "--features-out",
        work / "q.npz",
        "--force",
    )
    assert status == 2 and "--features-out" in err and "is the input file" in err
    assert not (work / "c.npz").exists()


def test_every_command_documents_force():
    parser = cli_main.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("fit", "encode", "search", "evaluate"):
        assert "--force" in sub.choices[name].format_help(), name


def test_evaluate_out_folder_policy(h2q, work, monkeypatch):
    monkeypatch.setattr("h2q.quantizers._solvers.GD_MAX_ITERATIONS", 5)
    out = work / "eval"
    out.mkdir()
    (out / "precision_recall.png").write_bytes(b"old plot")
    (out / "table.md").write_text("old table")
    argv = ["evaluate", work / "emb.npz", "-k", 10, "--out", out, "--no-progress", "--no-plot"]
    status, _, err = h2q(*argv)
    assert status == 2 and "already exists" in err and "--force" in err
    assert (out / "table.md").read_text() == "old table"
    status, _, err = h2q(*argv, "--force")
    assert status == 0, err
    # the stale plot of the earlier run is gone, the new tables are there
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "table.csv", "table.md"]
    assert (out / "table.md").read_text() != "old table"


def test_evaluate_never_writes_over_its_input(h2q, work):
    out = work / "eval"
    out.mkdir()
    os.link(work / "emb.npz", out / "results.json")
    before = (work / "emb.npz").read_bytes()
    status, _, err = h2q(
        "evaluate", work / "emb.npz", "--out", out, "--force", "--no-plot", "--no-progress"
    )
    assert status == 2 and "is the input file" in err
    assert (work / "emb.npz").read_bytes() == before


def test_check_outputs_names_the_same_file_twice(tmp_path):
    with pytest.raises(UsageError, match="name the same file"):
        check_outputs([], {"--out": tmp_path / "a", "--other": tmp_path / "." / "a"}, force=True)


def test_check_run_folder(tmp_path):
    assert check_run_folder(tmp_path / "new", force=False) == tmp_path / "new"
    with pytest.raises(UsageError, match="nothing to resume"):
        check_run_folder(tmp_path / "new", force=False, resume=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_run_folder(tmp_path / "no" / "run", force=True)
    run = tmp_path / "run"
    run.mkdir()
    assert check_run_folder(run, force=False) == run  # empty is fine
    (run / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="--resume to continue"):
        check_run_folder(run, force=False)
    assert check_run_folder(run, force=True) == run
    assert check_run_folder(run, force=False, resume=True) == run
    with pytest.raises(UsageError, match="is a file"):
        check_run_folder(run / "config.json", force=True)
