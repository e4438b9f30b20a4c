"""The grid runner's caching and resuming, with a fast stand-in for stage-1 training.

The stand-in writes what :func:`h2q.training.run_training` writes (embeddings of four folds,
``summary.json``, ``config.json``) from seeded clusters, so these tests exercise the runner's
bookkeeping and the real stage-2 evaluation in about a second per grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from h2q.embeddings import save_embeddings
from h2q.experiments import grid as grid_mod
from h2q.experiments import runner as runner_mod
from h2q.experiments.config import get_config
from h2q.experiments.records import Cell
from h2q.training import RunResult, TrainResult

SIZES = {"train": 120, "val": 40, "query": 30, "database": 150}


def _fake_train(calls, fail_on=None, interrupt_at=None):
    def train(run, run_dir, config, data, env, keep_checkpoints):
        calls.append(run.describe())
        if interrupt_at is not None and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        if fail_on is not None and fail_on(run):
            raise FloatingPointError("the training loss became nan at epoch 1")
        rng = np.random.default_rng(run.n_bits * 100 + run.seed)
        centers = rng.normal(size=(5, run.n_bits))
        arrays = {}
        for fold, n in SIZES.items():
            y = rng.integers(0, 5, n)
            arrays[fold] = (centers[y] + 0.7 * rng.normal(size=(n, run.n_bits))).astype(np.float32)
            arrays[f"y_{fold}"] = y
        run_dir.mkdir(parents=True, exist_ok=True)
        save_embeddings(run_dir / "embeddings.npz", **arrays)
        (run_dir / "config.json").write_text(json.dumps({"split_sizes": SIZES, "device": "cpu"}))
        score = 0.5 if run.lam is None else 0.4 + run.lam  # the largest lambda wins
        summary = {"best_val_map": score, "seconds": {"total": 0.1}}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return RunResult(run_dir, TrainResult(), {"split_sizes": SIZES, "device": "cpu"}, summary)

    return train


def _counting_eval(evaluated):
    real = runner_mod._evaluate_cell

    def evaluate(cell, embeddings, config):
        evaluated.append(cell.describe())
        return real(cell, embeddings, config)

    return evaluate


@pytest.fixture
def config():
    return get_config("quick", bits=(8,), seeds=(0,), k=20, lambda_grids={"dpsh": (0.1, 0.01)})


@pytest.fixture
def counted(monkeypatch):
    calls: list[str] = []
    evaluated: list[str] = []
    monkeypatch.setattr(runner_mod, "_train_stage1", _fake_train(calls))
    monkeypatch.setattr(runner_mod, "_evaluate_cell", _counting_eval(evaluated))
    return calls, evaluated


def test_a_grid_reads_back_nothing_it_wrote(tmp_path, config, counted, monkeypatch):
    from h2q.experiments import records as records_mod
    from h2q.experiments import report as report_mod
    from h2q.experiments import stage1 as stage1_mod

    reads: list[str] = []

    def counting(path):
        reads.append(Path(path).relative_to(tmp_path).as_posix())
        return records_mod.read_json(path)

    for module in (grid_mod, runner_mod, stage1_mod):
        monkeypatch.setattr(module, "read_json", counting)
    result = grid_mod.run_grid(config, tmp_path, progress=False)
    report_mod.write_outputs(result)
    assert reads == []  # every summary and cell this call wrote stays in memory
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")}
    assert {"runs/dpsh/lambda0/b8/s0/summary.json", "cells/dpsh/itq/b8-s0.json"} <= written
    # a later call reads what the earlier one wrote, each file once
    again = grid_mod.run_grid(config, tmp_path, progress=False)
    assert len(reads) == len(set(reads)) and "cells/dpsh/itq/b8-s0.json" in reads
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in result.records]


def test_grid_caches_runs_and_cells(tmp_path, config, counted):
    calls, evaluated = counted
    result = grid_mod.run_grid(config, tmp_path, progress=False)
    # lambda0, two penalty runs, hswd; every row of the table once
    assert sorted(calls) == sorted(
        [
            "dpsh lambda0 8b s0",
            "dpsh penalty λ=0.1 8b s0",
            "dpsh penalty λ=0.01 8b s0",
            "dpsh hswd 8b s0",
        ]
    )
    assert len(evaluated) == len(config.row_keys) == 8
    assert len(result.records) == 8 and len(result.computed) == 8
    penalty = next(r for r in result.records if r.row == "penalty")
    assert penalty.lam == pytest.approx(0.1)  # best validation mAP
    assert penalty.stage1_run == "dpsh/penalty-lam0.1/b8/s0"
    assert set(penalty.lambda_selection) == {"0.1", "0.01"}
    assert (tmp_path / "cells" / "dpsh" / "h2q-l2" / "b8-s0.quantizer.npz").is_file()

    calls.clear()
    evaluated.clear()
    again = grid_mod.run_grid(config, tmp_path, progress=False)
    assert calls == [] and evaluated == [] and again.computed == []
    assert len(again.records) == 8


def test_deleting_one_cell_recomputes_only_that_cell(tmp_path, config, counted):
    calls, evaluated = counted
    grid_mod.run_grid(config, tmp_path, progress=False)
    before = json.loads((tmp_path / "cells" / "dpsh" / "itq" / "b8-s0.json").read_text())
    calls.clear()
    evaluated.clear()
    (tmp_path / "cells" / Cell("dpsh", "itq", 8, 0).relpath).unlink()
    result = grid_mod.run_grid(config, tmp_path, progress=False)
    assert calls == []  # stage-1 embeddings are reused
    assert evaluated == ["dpsh itq 8b s0"]
    after = json.loads((tmp_path / "cells" / "dpsh" / "itq" / "b8-s0.json").read_text())
    assert after["map_at_k"] == pytest.approx(before["map_at_k"])
    assert len(result.records) == 8


def test_deleting_a_run_retrains_only_that_run(tmp_path, config, counted):
    calls, evaluated = counted
    grid_mod.run_grid(config, tmp_path, progress=False)
    calls.clear()
    evaluated.clear()
    (tmp_path / "runs" / "dpsh" / "hswd" / "b8" / "s0" / "summary.json").unlink()
    (tmp_path / "cells" / "dpsh" / "hswd" / "b8-s0.json").unlink()
    grid_mod.run_grid(config, tmp_path, progress=False)
    assert calls == ["dpsh hswd 8b s0"]
    assert evaluated == ["dpsh hswd 8b s0"]


def test_interrupted_grid_resumes_where_it_stopped(tmp_path, config, monkeypatch):
    calls: list[str] = []
    evaluated: list[str] = []
    monkeypatch.setattr(runner_mod, "_train_stage1", _fake_train(calls, interrupt_at=2))
    monkeypatch.setattr(runner_mod, "_evaluate_cell", _counting_eval(evaluated))
    with pytest.raises(KeyboardInterrupt):
        grid_mod.run_grid(config, tmp_path, progress=False)
    done_first = list(evaluated)
    assert len(done_first) == 6  # the six rows on the lambda = 0 embeddings
    assert len(list((tmp_path / "cells").rglob("*.json"))) == 6

    calls.clear()
    evaluated.clear()
    monkeypatch.setattr(runner_mod, "_train_stage1", _fake_train(calls))
    result = grid_mod.run_grid(config, tmp_path, progress=False)
    assert "dpsh lambda0 8b s0" not in calls
    assert sorted(evaluated) == ["dpsh hswd 8b s0", "dpsh penalty 8b s0"]
    assert len(result.records) == 8


def test_diverged_runs_are_recorded_and_skipped(tmp_path, config, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(
        runner_mod,
        "_train_stage1",
        _fake_train(calls, fail_on=lambda run: run.strategy == "penalty" and run.lam == 0.1),
    )
    result = grid_mod.run_grid(config, tmp_path, progress=False)
    penalty = next(r for r in result.records if r.row == "penalty")
    assert penalty.lam == pytest.approx(0.01)
    assert penalty.lambda_selection["0.1"] is None
    assert [f["what"] for f in result.failures] == ["stage-1 run dpsh penalty λ=0.1 8b s0"]
    calls.clear()
    grid_mod.run_grid(config, tmp_path, progress=False)
    assert calls == []  # the failure is remembered, not retried


def test_other_settings_in_the_same_folder_are_refused(tmp_path, config, counted):
    grid_mod.run_grid(config, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(k: 20 -> 30\).*another --out"):
        grid_mod.run_grid(config.replace(k=30), tmp_path, progress=False)
    # growing the grid is fine: only the new cells are computed
    calls, evaluated = counted
    calls.clear()
    evaluated.clear()
    grown = grid_mod.run_grid(config.replace(bits=(8, 4)), tmp_path, progress=False)
    assert all(c.endswith("4b s0") for c in calls) and len(evaluated) == 8
    assert len(grown.records) == 16


def test_unknown_method_fails_before_writing(tmp_path, config):
    with pytest.raises(ValueError, match="unknown loss 'nosuch'"):
        grid_mod.run_grid(config.replace(methods=("nosuch",)), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_redo_recomputes_the_stage2_cells_and_reuses_the_runs(tmp_path, config, counted):
    calls, evaluated = counted
    grid_mod.run_grid(config, tmp_path, progress=False)
    calls.clear()
    evaluated.clear()
    redo = ("itq", "h2q-l2", "h2q-l1", "h2q-min_entry", "h2q-bit_var")
    again = grid_mod.run_grid(config, tmp_path, progress=False, redo=redo)
    assert calls == []  # stage 1 reused
    assert sorted(evaluated) == sorted(f"dpsh {row} 8b s0" for row in redo)
    assert len(again.records) == 8


def test_redo_accepts_other_evaluation_settings_but_not_other_stage1(tmp_path, config, counted):
    calls, evaluated = counted
    grid_mod.run_grid(config, tmp_path, progress=False)
    paper = config.replace(h2q_solver="paper")
    with pytest.raises(ValueError, match=r"other settings \(h2q_solver: 'gd' -> 'paper'\)"):
        grid_mod.run_grid(paper, tmp_path, progress=False)
    calls.clear()
    evaluated.clear()
    result = grid_mod.run_grid(paper, tmp_path, progress=False, redo=("h2q-l2",))
    assert calls == []
    assert len(evaluated) == len(result.records) == 8  # every cell had other settings
    with pytest.raises(ValueError, match=r"other settings \(epochs: 4 -> 5\)"):
        grid_mod.run_grid(paper.replace(epochs=5), tmp_path, progress=False, redo=("itq",))


def test_redo_of_an_unknown_row_is_refused(tmp_path, config):
    with pytest.raises(ValueError, match=r"redo names unknown rows \['h2q'\]"):
        grid_mod.run_grid(config, tmp_path, progress=False, redo=("h2q",))


def test_an_interrupted_redo_is_finished_by_the_next_call(tmp_path, config, counted, monkeypatch):
    """A plain rerun after an interrupted redo must not keep cells of the old stage 2."""
    calls, evaluated = counted
    grid_mod.run_grid(config, tmp_path, progress=False)
    redo = ("itq", "h2q-l2", "h2q-l1", "h2q-min_entry", "h2q-bit_var")
    evaluated.clear()
    counting = runner_mod._evaluate_cell

    def interrupted(cell, embeddings, cfg):
        if len(evaluated) == 2:
            raise KeyboardInterrupt
        return counting(cell, embeddings, cfg)

    monkeypatch.setattr(runner_mod, "_evaluate_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grid_mod.run_grid(config, tmp_path, progress=False, redo=redo)
    first = list(evaluated)
    assert len(first) == 2
    pending = json.loads((tmp_path / "grid.json").read_text())[grid_mod.REDO_KEY]
    assert pending["rows"] == sorted(redo)
    monkeypatch.setattr(runner_mod, "_evaluate_cell", counting)
    evaluated.clear()
    grid_mod.run_grid(config, tmp_path, progress=False)  # no redo asked: it resumes the redo
    assert sorted(evaluated + first) == sorted(f"dpsh {row} 8b s0" for row in redo)
    assert grid_mod.REDO_KEY not in json.loads((tmp_path / "grid.json").read_text())
    evaluated.clear()
    grid_mod.run_grid(config, tmp_path, progress=False)
    assert evaluated == []
