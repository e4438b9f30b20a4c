"""``h2q train`` end to end on digits, resume, and usage errors (exit status 2 + a message)."""

from __future__ import annotations

import csv
import json

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
