"""ADSH as a reference row: its own schedule, one row (its codes), in --full, not in default."""

from __future__ import annotations

import json

import numpy as np
import pytest

from h2q._threads import thread_limit
from h2q.experiments.config import FULL_METHODS, get_config
from h2q.experiments.grid import plan_cells, run_grid
from h2q.experiments.rows import rows_for
from h2q.training import TrainConfig


def test_adsh_is_a_reference_row_of_full_and_not_of_default():
    assert "adsh" in FULL_METHODS
    assert "adsh" not in get_config("default").methods
    full = get_config("full")
    assert rows_for(full, "adsh") == ("lambda0",)
    assert rows_for(full, "dpsh") == full.row_keys
    rows = {c.row for c in plan_cells(full) if c.method == "adsh"}
    assert rows == {"lambda0"}


def test_adsh_has_no_quantization_strategies():
    with pytest.raises(ValueError, match="no quantization"):
        TrainConfig(dataset="digits", method="adsh", n_bits=8, strategy="penalty", lam=0.1)


def test_unknown_adsh_setting_is_named(tmp_path):
    from h2q.training import run_training

    cfg = TrainConfig(dataset="digits", method="adsh", n_bits=8, loss_kwargs={"iters": 2})
    with pytest.raises(ValueError, match="unknown ADSH settings"):
        run_training(cfg, tmp_path / "r", progress=False)


def test_adsh_runs_in_the_quick_grid(tmp_path):
    config = get_config(
        "quick",
        methods=("dpsh", "adsh"),
        bits=(8,),
        method_options={"adsh": {"iterations": 3, "samples": 300, "decay_at": (2,)}},
    )
    with thread_limit(1):
        result = run_grid(config, tmp_path, progress=False)
    adsh = [r for r in result.records if r.method == "adsh"]
    assert [r.row for r in adsh] == ["lambda0"]
    assert 0.0 <= adsh[0].result.map_at_k <= 1.0
    run_dir = tmp_path / "runs" / "adsh" / "lambda0" / "b8" / "s0"
    codes = np.load(run_dir / "codes.npy")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(np.unique(codes)) <= {-1.0, 1.0}
    assert codes.shape[1] == 8
    assert summary["epochs_run"] == 3 and summary["best_val_map"] > 0
    # Its learned codes score better than chance on validation (10 balanced classes: ~0.1).
    assert summary["best_val_map"] > 0.15


def test_adsh_settings_are_checked():
    from h2q.training.adsh import ADSHSettings

    with pytest.raises(ValueError, match="lr must be positive"):
        ADSHSettings(lr=0.0)
    with pytest.raises(ValueError, match="samples"):
        ADSHSettings(samples=0)
    assert ADSHSettings.from_options({"iterations": 2}, seed=3) == ADSHSettings(
        iterations=2, seed=3
    )


def test_adsh_options_with_tuples_resume(tmp_path):
    # Settings given as tuples are stored as JSON lists: the grid must still match on resume.
    options = {"adsh": {"iterations": 2, "samples": 200, "decay_at": (1,)}}
    config = get_config("quick", methods=("adsh",), bits=(8,), method_options=options)
    with thread_limit(1):
        first = run_grid(config, tmp_path, progress=False)
        again = run_grid(config, tmp_path, progress=False)
    scores = [r.result.map_at_k for r in again.records]
    assert scores == [r.result.map_at_k for r in first.records]


def test_adsh_has_no_lambda_grid_in_the_report():
    from h2q.experiments.rows import lambda_grid
    from h2q.experiments.tables import lambda_markdown

    assert lambda_grid("adsh") == (None,)
    text = lambda_markdown([], get_config("full"))
    assert "DPSH: " in text and "ADSH" not in text
