"""The grid's report (intervals, paper table, stage-1 runs, the facts of summary.json), the kept
copy of its small outputs (scripts/keep_results.py), and the results page made from it."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import keep_results
import numpy as np
import pytest
from docgen import kept as kept_mod
from docgen.grids import main_job_lines, wordnet_lines
from docgen.kept import keep_outputs
from docgen.registry import select
from docgen.sections import check, markers

from h2q.embeddings import save_embeddings
from h2q.experiments import runner as runner_mod
from h2q.experiments.config import get_config
from h2q.experiments.grid import load_records, run_grid
from h2q.experiments.records import CELL_FORMAT, read_json, write_json
from h2q.experiments.report import write_outputs
from h2q.experiments.rows import Row
from h2q.quantizers import ITQQuantizer
from h2q.training import EpochRecord, RunResult, TrainResult

REPO = Path(__file__).resolve().parents[2]
SIZES = {"train": 120, "val": 40, "query": 30, "database": 150}


def _fake_train(run, run_dir, config, data, env, keep_checkpoints=True):
    """What run_training writes, from seeded clusters: same split (labels) for every run of a
    seed, embeddings that differ by strategy."""
    split = np.random.default_rng(run.seed)
    labels = {fold: split.integers(0, 5, n) for fold, n in SIZES.items()}
    rng = np.random.default_rng(hash((run.tag, run.n_bits, run.seed)) % 2**32)
    centers = rng.normal(size=(5, run.n_bits))
    arrays = {}
    for fold, y in labels.items():
        arrays[fold] = (centers[y] + 0.8 * rng.normal(size=(len(y), run.n_bits))).astype(np.float32)
        arrays[f"y_{fold}"] = y
    run_dir.mkdir(parents=True, exist_ok=True)
    save_embeddings(run_dir / "embeddings.npz", **arrays)
    (run_dir / "config.json").write_text(json.dumps({"split_sizes": SIZES, "device": "cpu"}))
    val = [0.3, 0.4 + 0.1 * (run.lam or 0)]
    (run_dir / "history.csv").write_text(
        f"epoch,loss,val_map,time_s\n1,0.9,,0.1\n2,0.7,{val[1]},0.1\n"
    )
    summary = {
        "best_val_map": val[1],
        "val_metric": "mAP@all (test)",
        "best_epoch": 2,
        "epochs_run": 2,
        "stopped_early": False,
        "seconds": {"total": 0.2},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    history = [EpochRecord(1, 0.9, math.nan, 0.1), EpochRecord(2, 0.7, val[1], 0.1)]
    config = {"split_sizes": SIZES, "device": "cpu"}
    return RunResult(run_dir, TrainResult(history=history), config, summary)


@pytest.fixture(scope="module")
def grid_out(tmp_path_factory):
    """A small finished grid (fake stage 1, real stage 2), its outputs written."""
    out = tmp_path_factory.mktemp("grid") / "results"
    config = get_config(
        "quick",
        methods=("dpsh",),
        bits=(8, 16),
        k=20,
        lambda_grids={"dpsh": (0.1, 0.01)},
        rows=("penalty", "hswd", "itq", "h2q-l2"),
    )
    mp = pytest.MonkeyPatch()
    mp.setattr(runner_mod, "_train_stage1", _fake_train)
    try:
        result = run_grid(config, out, progress=False)
        write_outputs(result)
    finally:
        mp.undo()
    return out, result


def test_cells_keep_their_per_query_ap(grid_out):
    _, result = grid_out
    for record in result.records:
        assert len(record.result.ap_at_k) == record.n_queries == SIZES["query"]
        assert np.mean(record.result.ap_at_k) == pytest.approx(record.result.map_at_k)
        assert record.format == CELL_FORMAT == 2


def test_cells_of_the_old_format_are_recomputed(grid_out, tmp_path):
    out, result = grid_out
    folder = tmp_path / "copy"
    shutil.copytree(out / "cells", folder / "cells")
    path = next((folder / "cells").rglob("*.json"))
    data = read_json(path)
    data["format"] = 1
    del data["ap_at_k"]
    write_json(path, data)
    assert len(load_records(result.config, folder)) == len(result.records) - 1


def test_report_has_intervals_paper_table_and_stage1_runs(grid_out):
    out, _ = grid_out
    report = (out / "report.md").read_text()
    assert "95% paired bootstrap interval over 30 queries" in report
    assert "## The paper beside ours" in report and "Different data and backbone" in report
    assert "| paper, AlexNet | CIFAR-10 | 80.5 | 82.3 | +1.8 |" in report
    assert "## Stage-1 runs" in report
    assert "| DPSH | +λ (λ = 0.1) * | 8 | 0 | 41.00 | 2 | 2 | 0.2 |" in report  # chosen
    for name in ("training_curves.png", "training_loss.png", "gain_over_lambda0.png"):
        assert (out / "plots" / name).is_file() and f"(plots/{name})" in report
    summary = read_json(out / "summary.json")
    assert summary["cpus"] and summary["calls"][0]["machine"]["cpu"] == summary["cpus"][0]
    assert summary["wall_seconds"] == pytest.approx(summary["calls"][0]["seconds"])
    assert summary["constants"] == {"hswd_weight": 0.1, "itq_iterations": 50}
    verdict = (out / "verdict.md").read_text()
    assert verdict.startswith("- +H²Q (L2) vs λ = 0: ") and verdict in report.replace("\n\n", "\n")


def test_stage1_runs_are_those_the_cells_read(grid_out):
    from h2q.experiments.stage1 import read_stage1_runs

    out, result = grid_out
    runs = read_stage1_runs(result.config, result.records, out)
    assert [(r.run.n_bits, r.run.tag) for r in runs] == [
        (b, tag)
        for b in (8, 16)
        for tag in ("lambda0", "penalty-lam0.1", "penalty-lam0.01", "hswd")
    ]
    assert runs[1].epochs == (1, 2) and runs[1].loss == (0.9, 0.7)
    assert np.isnan(runs[1].val_map[0]) and runs[1].val_map[1] == pytest.approx(0.41)


def test_report_reads_strategy_settings_from_the_code(grid_out, monkeypatch):
    """The ITQ iterations in the report are those of the quantizer the grid builds."""
    _, result = grid_out
    real = Row.make_quantizer

    def patched(row, *args, **kwargs):
        return ITQQuantizer(max_iter=7) if row.key == "itq" else real(row, *args, **kwargs)

    monkeypatch.setattr(Row, "make_quantizer", patched)
    from h2q.experiments.report import stage_constants

    assert stage_constants(result.config)["itq_iterations"] == 7


def test_keep_outputs_copies_only_the_small_files(grid_out, tmp_path):
    out, _ = grid_out
    kept = tmp_path / "docs" / "results" / "default"
    files = keep_outputs(out, kept)
    names = {p.relative_to(kept).as_posix() for p in files}
    assert {"report.md", "summary.json", "table.md", "verdict.md", "grid.json"} <= names
    assert "plots/gain_over_lambda0.png" in names
    assert not (kept / "runs").exists() and not (kept / "cells").exists()
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) == sorted(
        names
    )
    # A second call replaces the copy: a stale file does not survive.
    (kept / "stale.md").write_text("x")
    keep_outputs(out, kept)
    assert not (kept / "stale.md").exists() and (kept / "table.md").is_file()


def test_keep_outputs_leaves_the_old_copy_when_it_fails(grid_out, tmp_path, monkeypatch):
    out, _ = grid_out
    kept = tmp_path / "kept"
    keep_outputs(out, kept)
    before = (kept / "table.md").read_bytes()
    calls = []
    real_copy = shutil.copyfile

    def failing_copy(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(kept_mod.shutil, "copyfile", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        keep_outputs(out, kept)
    assert (kept / "table.md").read_bytes() == before
    assert [p.name for p in kept.parent.iterdir() if p.name.startswith(".")] == []


def test_keep_outputs_refuses_bad_folders(grid_out, tmp_path):
    out, _ = grid_out
    with pytest.raises(ValueError, match="missing summary.json"):
        keep_outputs(tmp_path, tmp_path / "kept")
    with pytest.raises(ValueError, match="overlap"):
        keep_outputs(out, out / "kept")


def _number(table: str) -> str:
    return next(w for w in table.split() if w[:1].isdigit() and "." in w)


def test_results_page_is_made_from_the_kept_files(grid_out, tmp_path):
    out, _ = grid_out
    kept = tmp_path / "docs" / "results" / "default"
    keep_outputs(out, kept)
    text = "\n".join(main_job_lines(kept, tmp_path / "docs"))
    summary = read_json(kept / "summary.json")
    assert f"Computed on **{summary['cpus'][0]}" in text
    assert "(results/default/report.md)" in text
    assert (kept / "table.md").read_text().strip() in text
    assert (kept / "verdict.md").read_text().strip() in text
    assert (kept / "paper_comparison.md").read_text().strip() in text
    # a changed figure in the kept files changes the page
    table = (kept / "table.md").read_text()
    (kept / "table.md").write_text(table.replace(_number(table), "99.99", 1))
    assert "99.99" in "\n".join(main_job_lines(kept, tmp_path / "docs"))


def test_results_page_refuses_an_incomplete_folder(tmp_path):
    with pytest.raises(ValueError, match="does not hold a finished grid's outputs"):
        main_job_lines(tmp_path, tmp_path)


def _results_page(repo: Path) -> Path:
    """A repository holding a results page with the WordNet grid's markers."""
    begin, end = markers("wordnet-results", "docs/results/wordnet")
    page = repo / "docs" / "results.md"
    page.parent.mkdir(parents=True)
    page.write_text(f"# Results\n\nHand.\n\n{begin}\nold\n{end}\n\nEnd.\n")
    return page


def test_keep_results_script(grid_out, tmp_path):
    out, _ = grid_out
    repo = tmp_path / "repo"
    page = _results_page(repo)
    args = ["--job", "wordnet", "--repo", str(repo)]
    assert keep_results.main(["--from", str(out), "--commit", "abcdef1", *args]) == 0
    assert check(select(["wordnet-results"]), repo) == []
    text = page.read_text()
    assert "`abcdef1`" in text and text.startswith("# Results\n\nHand.\n\n")
    assert text.endswith("<!-- wordnet-results:end -->\n\nEnd.\n")
    assert read_json(repo / "docs/results/wordnet/provenance.json") == {"commit": "abcdef1"}
    assert keep_results.main(["--from", str(tmp_path / "nothing"), *args]) == 2
    with pytest.raises(SystemExit):
        keep_results.main(args)  # --from is required
    # As a command, the way the contributing page documents it.
    page.write_text(page.read_text().replace("Computed on", "Made on"))
    assert check(select(["wordnet-results"]), repo)
    script = REPO / "scripts" / "keep_results.py"
    proc = subprocess.run([sys.executable, str(script), "--from", str(out), *args],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert check(select(["wordnet-results"]), repo) == []


def test_wordnet_section_is_made_from_its_kept_files(grid_out, tmp_path):
    out, _ = grid_out
    kept = tmp_path / "docs" / "results" / "wordnet"
    names = {p.name for p in keep_outputs(out, kept, commit="08f875e")}
    assert "provenance.json" in names and read_json(kept / "provenance.json") == {
        "commit": "08f875e"
    }
    section = "\n".join(wordnet_lines(kept, tmp_path / "docs"))
    assert "Computed with h2q commit `08f875e`." in section
    assert (kept / "verdict.md").read_text().strip() in section
    assert (kept / "table.md").read_text().strip() in section
    assert "(results/wordnet/report.md)" in section
    # the phase times are the sums of the kept per-run and per-cell times
    runs = list(csv.DictReader(io.StringIO((kept / "stage1.csv").read_text())))
    stage1 = sum(float(r["seconds"]) for r in runs)
    assert len(runs) == 8 and stage1 > 0
    assert f"The 8 stage-1 runs took {round(stage1)} s summed over runs" in section
    assert "the stage-2 fits of the 10 cells" in section
    # the fake runs all have their best epoch last (2 of 2), without stopping early
    assert "8 of the 8 stage-1 runs had their best validation mAP at their last epoch" in section
    stage1_text = (kept / "stage1.csv").read_text()
    lines = stage1_text.splitlines()
    lines[1] = lines[1].replace(",False,", ",True,")  # one run stopped early
    (kept / "stage1.csv").write_text("\n".join(lines) + "\n")
    assert "7 of the 8 stage-1 runs" in "\n".join(wordnet_lines(kept, tmp_path))


def test_wordnet_section_without_a_recorded_commit_says_so(grid_out, tmp_path):
    out, _ = grid_out
    keep_outputs(out, tmp_path / "kept")
    text = "\n".join(wordnet_lines(tmp_path / "kept", tmp_path))
    assert "The commit it was computed with was not recorded." in text
    with pytest.raises(ValueError, match="commit must be a git commit id"):
        keep_outputs(out, tmp_path / "kept2", commit="main; rm")
    assert not (tmp_path / "kept2").exists()


def test_machine_info_names_the_cpu_and_the_dispatch():
    import torch

    from h2q.experiments.machine import cpu_model, machine_info

    info = machine_info()
    assert info["cpu"] == cpu_model() and info["cpu"]
    assert info["torch"] == torch.__version__
    assert info["torch_cpu_capability"] == str(torch.backends.cpu.get_cpu_capability())
    json.dumps(info)  # JSON-ready


def test_report_with_several_seeds_uses_t_intervals(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_mod, "_train_stage1", _fake_train)
    config = get_config("quick", bits=(8,), seeds=(0, 1, 2), k=20, rows=("itq", "h2q-l2"))
    result = run_grid(config, tmp_path / "r", progress=False)
    write_outputs(result)
    report = (tmp_path / "r" / "report.md").read_text()
    assert "mean ± sample std over 3 seeds (0, 1, 2)" in report
    assert "95% paired t interval over 3 seeds" in report
    assert read_json(tmp_path / "r" / "summary.json")["seeds"] == [0, 1, 2]


def test_a_redone_stage2_names_both_commits(grid_out, tmp_path):
    out, _ = grid_out
    kept = tmp_path / "kept"
    keep_outputs(out, kept, commit="08f875e", stage2_commit="0d0c487")
    assert read_json(kept / "provenance.json") == {
        "commit": "08f875e",
        "stage2_commit": "0d0c487",
    }
    text = "\n".join(wordnet_lines(kept, tmp_path))
    assert "Stage 1 computed with h2q commit `08f875e`, the stage-2 cells redone with " in text
    assert "`0d0c487` (`--redo-stage2`)." in text
    with pytest.raises(ValueError, match="stage2_commit needs commit"):
        keep_outputs(out, tmp_path / "kept2", stage2_commit="0d0c487")
    with pytest.raises(ValueError, match="commit must be a git commit id"):
        keep_outputs(out, tmp_path / "kept3", commit="08f875e", stage2_commit="HEAD")
