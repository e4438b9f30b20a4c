"""``h2q train`` end to end on digits, resume, and usage errors (exit status 2 + a message)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import h2q.cli.main as cli_main


@pytest.fixture(autouse=True)
def only_train_command(monkeypatch):
    # Other sub-commands are built by other modules; this file tests only `train`.
    monkeypatch.setattr(cli_main, "_COMMAND_MODULES", ("train",))


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: with several threads on a shared 2-core machine, thread hand-offs cost
    # more than the arithmetic. Restored afterwards (--threads sets it in the CLI).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def h2q(*argv):
    return cli_main.main(list(argv))


def test_train_digits_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    status = h2q(
        "train", "--dataset", "digits", "--method", "dpsh", "--bits", "32", "--out", str(out),
        "--epochs", "3", "--no-progress", "--lr-head", "1e-3", "--threads", "1",
    )  # fmt: skip
    assert status == 0
    stdout = capsys.readouterr().out
    assert "best val mAP" in stdout and "embeddings.npz" in stdout
    for name in ("config.json", "split.npz", "embeddings.npz", "history.csv", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_val_map"] > 0.3  # chance is about 0.1
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == "mlp" and config["strategy"] == "lambda0"

    # resume with more epochs continues the same run
    status = h2q(
        "train", "--dataset", "digits", "--method", "dpsh", "--bits", "32", "--out", str(out),
        "--epochs", "4", "--no-progress", "--lr-head", "1e-3", "--resume",
    )  # fmt: skip
    assert status == 0
    with open(out / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def test_pml_method_and_penalty_strategy(tmp_path):
    pytest.importorskip("pytorch_metric_learning")
    status = h2q(
        "train", "--dataset", "digits", "--method", "pml:ContrastiveLoss", "--bits", "16",
        "--out", str(tmp_path / "pml"), "--epochs", "1", "--no-progress",
    )  # fmt: skip
    assert status == 0
    status = h2q(
        "train", "--dataset", "digits", "--method", "DPSH", "--bits", "16", "--strategy",
        "penalty", "--lam", "0.1", "--out", str(tmp_path / "pen"), "--epochs", "1",
        "--no-progress",
    )  # fmt: skip
    assert status == 0
    assert json.loads((tmp_path / "pen" / "config.json").read_text())["lam"] == 0.1


BASE = ["train", "--dataset", "digits", "--bits", "16", "--epochs", "1", "--no-progress"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--method", "dpsh", "--bits", "0"], "expected a positive integer"),
        (["--method", "dpsh", "--strategy", "tanh"], "invalid choice: 'tanh'"),
        (["--method", "dpsh", "--backbone", "resnet"], "invalid choice: 'resnet'"),
        (["--method", "dpsh", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["--method", "dpsh", "--precision", "fp16"], "invalid choice: 'fp16'"),
        (["--method", "dpsh", "--lam", "-1"], "expected a non-negative number"),
        (["--method", "dpsh", "--hidden", "512,x"], "comma-separated positive widths"),
        (["--method", "dpsh", "--loss-kwargs", "[1]"], "expected a JSON object"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        h2q(*BASE, "--out", str(tmp_path), *extra)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_required_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        h2q("train", "--dataset", "digits")
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "dpsh", "--lam", "0.1"], "--lam is the weight of the quantization penalty"),
        (["--method", "dpsh", "--strategy", "penalty"], "needs lam >= 0"),
        (["--method", "hashnet", "--strategy", "penalty", "--lam", "1"], "has no quantization"),
        (["--method", "dpsh", "--frozen"], "trained from scratch"),
        (["--method", "dpsh", "--dataset", "nope"], "unknown data set 'nope'"),
        (["--method", "pml:NoSuchLoss"], "no loss named 'NoSuchLoss'"),
        (["--method", "dpsh", "--backbone", "small-cnn", "--weights", "w.pth"], "from scratch"),
    ],
)
def test_bad_settings_exit_2_with_a_message(tmp_path, capsys, extra, message):
    if "pml:" in " ".join(extra):
        pytest.importorskip("pytorch_metric_learning")
    status = h2q(*BASE, "--out", str(tmp_path / "x"), *extra)
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("h2q train: error:") and message in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_2(tmp_path, capsys):
    assert h2q(*BASE, "--method", "dpsh", "--out", str(tmp_path), "--device", "cuda") == 2
    assert "CUDA is not available" in capsys.readouterr().err


def _train_parser():
    import argparse

    from h2q.cli import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    return parser


def test_cli_options_match_train_config():
    # Every TrainConfig setting has an option of h2q train and every option is a setting or a
    # documented run option: adding a field without its option (or the reverse) fails here.
    from h2q.cli import train as train_cli
    from h2q.training import TrainConfig

    args = _train_parser().parse_args(
        ["train", "--dataset", "digits", "--method", "dpsh", "--bits", "8", "--out", "x"]
    )
    dests = set(vars(args)) - {"func"}
    fields = set(TrainConfig.setting_names())
    assert fields == set(TrainConfig("digits").to_dict())
    as_options = {train_cli._OPTION_OF.get(name, name) for name in fields}
    assert dests == as_options | set(train_cli.RUN_OPTIONS)
    # the command line's defaults are the config's defaults
    assert train_cli.config_from_args(args) == TrainConfig("digits", "dpsh", 8)


def test_train_refuses_a_folder_holding_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--dataset", "digits", "--method", "dpsh", "--out", str(out),
            "--epochs", "1", "--no-progress", "--hidden", "16"]  # fmt: skip
    assert h2q(*base, "--bits", "16") == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    # a fresh run into the folder is refused, and nothing there changes
    assert h2q(*base, "--bits", "8") == 2
    err = capsys.readouterr().err
    assert "already holds files" in err and "--force" in err and "--resume" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # a changed split option with --resume is named
    assert h2q(*base, "--bits", "16", "--max-database", "100", "--resume") == 2
    assert "max_database: None -> 100" in capsys.readouterr().err
    # --force replaces the whole run
    assert h2q(*base, "--bits", "8", "--force") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["n_bits"] == 8
    emb = np.load(out / "embeddings.npz")
    assert emb["train"].shape[1] == 8
    assert not list(tmp_path.glob(".run.*"))  # no staging folder left behind


def test_resume_of_a_missing_folder_is_an_error(tmp_path, capsys):
    status = h2q(
        "train", "--dataset", "digits", "--method", "dpsh", "--bits", "8",
        "--out", str(tmp_path / "none"), "--resume", "--no-progress",
    )  # fmt: skip
    assert status == 2
    assert "cannot resume" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_too_many_bits_fail_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    status = h2q(
        "train", "--dataset", "digits", "--method", "dpsh", "--bits", "100000",
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert status == 2
    assert "n_bits=100000" in capsys.readouterr().err
    assert not out.exists()


def test_out_that_overlaps_an_input_is_refused(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not touched")
    data = tmp_path / "data"
    cases = (
        ["--out", str(weights), "--weights", str(weights)],
        ["--out", str(data / "run"), "--root", str(data)],
    )
    for extra in cases:
        status = h2q("train", "--dataset", "digits", "--method", "dpsh", "--bits", "8", *extra)
        assert status == 2
        assert "overlaps" in capsys.readouterr().err
    assert weights.read_bytes() == b"not touched"
    assert not (tmp_path / "data").exists()


def test_train_adsh_writes_embeddings_and_its_learned_codes(tmp_path, capsys):
    out = tmp_path / "adsh"
    status = h2q(
        "train", "--dataset", "digits", "--method", "ADSH", "--bits", "16", "--out", str(out),
        "--no-progress", "--threads", "1",
        "--loss-kwargs", '{"iterations": 3, "samples": 500, "decay_at": [2]}',
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "outer iteration 3" in printed and "codes.npy" in printed
    codes = np.load(out / "codes.npy")
    embeddings = np.load(out / "embeddings.npz")
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "adsh" and config["loss_kwargs"]["iterations"] == 3
    assert codes.shape == (len(embeddings["train"]), 16)
    assert set(np.unique(codes)) == {-1.0, 1.0}
    assert summary["files"]["codes"] == "codes.npy"
    assert not any(name.startswith("checkpoint") for name in summary["files"])
    assert summary["epochs_run"] == 3 and summary["best_val_map"] > 0.3


def test_unknown_method_lists_adsh(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        h2q(*BASE, "--method", "adhs", "--out", str(tmp_path))
    assert info.value.code == 2
    assert "adsh" in capsys.readouterr().err
