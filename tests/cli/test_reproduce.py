"""`h2q reproduce`: the whole pipeline on digits, resuming, and argument errors."""

from __future__ import annotations

import csv
import io
import re

import pytest
import torch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def h2q(cli_runner):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    return cli_runner(("reproduce",), catch_exit=True)


# Two bit lengths and two workers: the (method, bits) groups run in parallel processes.
TINY = ("reproduce", "--quick", "--bits", "4", "8", "--epochs", "2", "--jobs", "2", "--no-progress")


@pytest.mark.slow
def test_reproduce_end_to_end_on_digits(h2q, tmp_path):
    out = tmp_path / "results"
    status, stdout, err = h2q(*TINY, "--out", out)
    assert status == 0, err
    for name in (
        "table.md",
        "table.csv",
        "improvements.md",
        "improvements.csv",
        "quantization_loss.md",
        "quantization_loss.csv",
        "lambda_selection.md",
        "lambda_selection.csv",
        "cells.csv",
        "report.md",
        "grid.json",
        "gains.csv",
        "verdict.md",
        "paper_comparison.md",
        "stage1.md",
        "stage1.csv",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == [
        "gain_over_lambda0.png",
        "map_vs_bits.png",
        "pr_dpsh_8bits.png",
        "retrieval_dpsh_8bits.png",
        "training_curves.png",
        "training_loss.png",
    ]
    for name in plots:
        assert (out / "plots" / name).read_bytes()[:8] == PNG_SIGNATURE

    table = (out / "table.md").read_text()
    assert "mAP@100 (top-k relevant denominator; empty queries score 0; ties broken by " in table
    assert "| method | strategy | 4 bits | 8 bits |" in table
    rows = list(csv.DictReader(io.StringIO((out / "table.csv").read_text())))
    assert [r["row"] for r in rows] == [
        "lambda0",
        "penalty",
        "hswd",
        "itq",
        "h2q-l2",
        "h2q-l1",
        "h2q-min_entry",
        "h2q-bit_var",
    ]
    assert all(0.0 <= float(r[f"{b} bits mean"]) <= 100.0 for r in rows for b in (4, 8))
    stats = list(csv.DictReader(io.StringIO((out / "improvements.csv").read_text())))
    assert ("h2q-l2", "lambda0") in {(s["row"], s["baseline"]) for s in stats}

    report = (out / "report.md").read_text()
    for name in plots:
        assert f"(plots/{name})" in report
    assert table.strip() in report
    assert re.search(r"H²Q \(L2\) vs λ = 0: (higher|lower|no detectable difference)", report)
    assert "95% paired bootstrap interval over" in report
    for other in ("+λ", "+HSWD", "+ITQ"):
        assert f"H²Q (L2) vs {other}" in report
    assert "H²Q (L2)" in stdout and "Report:" in stdout
    assert len(list((out / "cells").rglob("*.json"))) == 16
    assert len(list((out / "runs").rglob("embeddings.npz"))) == 8

    # A second call finds every cell done and only rewrites the outputs.
    status, stdout, err = h2q(*TINY, "--out", out)
    assert status == 0, err
    assert "0 cells computed, 0 stage-1 runs trained" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bits", "0"), "bits must be positive integers, got 0"),
        (("--bits", "x"), "expected integers"),
        (("--epochs", "-3"), "expected a positive integer"),
        (("--full", "--quick"), "not allowed with argument"),
        (("--device", "tpu"), "invalid choice"),
        (("--methods", "nosuch"), "unknown loss 'nosuch'"),
        (("--bits", "8", "8"), "bits has repeated values"),
        (("--seeds", "-1"), "seeds must be non-negative"),
        (("--backbone", "resnet"), "unknown --backbone 'resnet'"),
        (("--dataset", "nosuch"), "unknown data set 'nosuch'"),
        (("--precision", "fp16"), "invalid choice: 'fp16'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(h2q, tmp_path, args, message):
    out = tmp_path / "out"
    status, _, err = h2q("reproduce", "--quick", "--no-progress", "--out", out, *args)
    assert status == 2
    assert message in err
    assert not out.exists()  # rejected before anything is written


def test_precision_reaches_the_runs_and_the_report(h2q, tmp_path):
    out = tmp_path / "bf16"
    args = ("--methods", "dpsh", "--bits", "8", "--epochs", "1", "--jobs", "1")
    status, _, err = h2q(
        "reproduce", "--quick", "--no-progress", *args, "--precision", "bfloat16", "--out", out
    )
    assert status == 0, err
    configs = list((out / "runs").rglob("config.json"))
    assert configs and all('"precision": "bfloat16"' in p.read_text() for p in configs)
    report = (out / "report.md").read_text()
    assert "backbone mlp (its matrix products in bfloat16, float32 accumulation)" in report
    assert '"precision": "bfloat16"' in (out / "grid.json").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_2(h2q, tmp_path):
    status, _, err = h2q("reproduce", "--quick", "--device", "cuda", "--out", tmp_path / "o")
    assert status == 2
    assert "CUDA is not available" in err


def test_other_settings_in_the_out_folder_exit_2(h2q, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "grid.json").write_text('{"identity": {"stage1": {"dataset": "mnist"}}}')
    status, _, err = h2q("reproduce", "--quick", "--no-progress", "--out", out)
    assert status == 2
    assert "other settings" in err and "dataset: 'mnist' -> 'digits'" in err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reproduce_quick_on_cuda(h2q, tmp_path):
    out = tmp_path / "gpu"
    status, _, err = h2q(*TINY, "--device", "cuda", "--out", out)
    assert status == 0, err
    runs = list((out / "runs").rglob("config.json"))
    assert runs and all('"device": "cuda' in p.read_text() for p in runs)
    assert (out / "report.md").is_file()


def test_help_states_the_default_preset_as_configured(capsys):
    """`h2q reproduce --help` names the default preset's seeds as the code has them."""
    from h2q.cli.main import build_parser
    from h2q.experiments.config import get_config

    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    seeds = get_config("default").seeds
    words = {1: "one seed", 2: "two seeds", 3: "three seeds", 4: "four seeds"}
    assert f"{words[len(seeds)]} ({', '.join(map(str, seeds))})" in text
    assert "Without --full or --quick it runs the main job" in text
