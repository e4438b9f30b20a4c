"""Grid presets, their validation and the lambda grids."""

from __future__ import annotations

import pytest

from h2q.experiments.config import FULL_METHODS, PRESETS, GridConfig, get_config
from h2q.experiments.grid import plan_cells
from h2q.experiments.rows import ROWS, lambda_grid


def test_presets():
    default = PRESETS["default"]
    assert default.train.dataset == "fashion-mnist" and default.bits == (16, 32, 64)
    assert default.seeds == (0, 1, 2) and default.train.frozen
    assert default.train.backbone == "efficientnet-lite0"
    assert default.train.max_database == 10_000 and default.k == 1000
    full = PRESETS["full"]
    assert full.methods == FULL_METHODS and full.bits == (16, 32, 48, 64)
    assert full.seeds == (0, 1, 2, 3) and full.train.max_database is None and full.k == 5000
    assert PRESETS["quick"].train.dataset == "digits"


def test_get_config_overrides_and_ignores_none():
    config = get_config("default", bits=(16,), seeds=None)
    assert config.bits == (16,) and config.seeds == PRESETS["default"].seeds
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_config("huge")
    with pytest.raises(ValueError, match=r"unknown settings \['bitz'\]"):
        get_config("default", bitz=(8,))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": ()}, "methods is empty"),
        ({"bits": ()}, "bits is empty"),
        ({"bits": (16, 16)}, "bits has repeated values"),
        ({"bits": (0,)}, "bits must be positive integers"),
        ({"seeds": (-1,)}, "seeds must be non-negative"),
        ({"methods": ("dpsh", "DPSH")}, "methods has repeated names"),
        ({"rows": ("h2q",)}, "unknown rows"),
        ({"k": 0}, "k must be a positive integer"),
        ({"max_database": 0}, "max_database must be a positive integer or None"),
        ({"pr_bits": 48}, "pr_bits=48 is not one of bits"),
        ({"h2q_solver": "adam"}, "h2q_solver must be"),
    ],
)
def test_bad_settings_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        GridConfig().replace(**changes)


def test_rows_always_include_lambda0_in_table_order():
    config = get_config("default", rows=("h2q-l2", "itq"))
    assert config.row_keys == ("lambda0", "itq", "h2q-l2")
    assert get_config("default").row_keys == ROWS


def test_lambda_grids():
    assert lambda_grid("dpsh") == (1.0, 0.1, 0.01)
    assert lambda_grid("DCH") == (1e-5, 1e-3, 0.1)
    assert lambda_grid("dhn") == (1e-5, 1e-3, 0.1)
    assert lambda_grid("hashnet") == (None,)  # no penalty: tanh continuation alone
    assert lambda_grid("dpsh", {"dpsh": (0.5,)}) == (0.5,)


def test_plan_cells_order():
    config = get_config("quick", bits=(8, 16), rows=("itq",))
    cells = plan_cells(config)
    assert [(c.n_bits, c.row) for c in cells] == [
        (8, "lambda0"),
        (8, "itq"),
        (16, "lambda0"),
        (16, "itq"),
    ]


def test_full_preset_runs_every_stage1_method():
    from h2q.losses import LOSSES

    # DSH was missing; ADSH (its own schedule) is the reference row of the paper's table.
    assert set(get_config("full").methods) == set(LOSSES) | {"adsh"}
    assert "dsh" in get_config("full").methods


def test_strategies_have_one_list():
    from h2q.experiments.rows import ROW_BY_KEY
    from h2q.losses import STRATEGIES

    assert ROWS[: len(STRATEGIES)] == STRATEGIES
    assert all(ROW_BY_KEY[s].stage1_strategy == s for s in STRATEGIES)
    assert {row.stage1_strategy for row in ROW_BY_KEY.values()} == set(STRATEGIES)


def test_too_many_bits_are_refused_before_the_grid_runs():
    with pytest.raises(ValueError, match="bits=100000 is more than the 4096 bits"):
        get_config("quick", bits=(8, 100000))
