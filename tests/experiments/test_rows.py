"""The registry of grid rows: keys, labels, the runs they read and the quantizers they build."""

from __future__ import annotations

import pytest

from h2q.experiments.config import get_config
from h2q.experiments.rows import (
    ALTERNATIVES,
    BASELINE,
    H2Q_L2,
    ROW_BY_KEY,
    ROWS,
    row_label,
    rows_for,
    rows_reading,
)
from h2q.losses import STRATEGIES
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer


def test_rows_in_table_order_with_their_labels():
    assert ROWS == tuple(ROW_BY_KEY)
    assert {key: row.label for key, row in ROW_BY_KEY.items()} == {
        "lambda0": "λ = 0",
        "penalty": "+λ",
        "hswd": "+HSWD",
        "itq": "+ITQ",
        "h2q-l2": "+H²Q (L2)",
        "h2q-l1": "+H²Q (L1)",
        "h2q-min_entry": "+H²Q (min-entry)",
        "h2q-bit_var": "+H²Q (bit-var)",
    }
    assert all(row.key == key and row.description for key, row in ROW_BY_KEY.items())
    assert row_label("h2q-l1") == "+H²Q (L1)" and row_label("not-a-row") == "not-a-row"


def test_each_row_reads_one_strategy_and_stage2_rows_read_lambda0():
    assert BASELINE == STRATEGIES[0] and H2Q_L2 == "h2q-l2"
    assert rows_reading("lambda0") == (
        "lambda0",
        "itq",
        "h2q-l2",
        "h2q-l1",
        "h2q-min_entry",
        "h2q-bit_var",
    )
    assert rows_reading("penalty") == ("penalty",) and rows_reading("hswd") == ("hswd",)
    stage2 = [key for key, row in ROW_BY_KEY.items() if row.is_stage2]
    assert stage2 == ["itq", "h2q-l2", "h2q-l1", "h2q-min_entry", "h2q-bit_var"]
    assert all(ROW_BY_KEY[key].stage1_strategy == "lambda0" for key in stage2)
    assert ALTERNATIVES == ("penalty", "hswd", "itq")


@pytest.mark.parametrize("key", ["lambda0", "penalty", "hswd"])
def test_sign_rows_build_a_sign_quantizer(key):
    q = ROW_BY_KEY[key].make_quantizer(5, solver="paper")
    assert type(q) is SignQuantizer and q.get_params() == SignQuantizer().get_params()


def test_itq_row_keeps_the_class_defaults():
    q = ROW_BY_KEY["itq"].make_quantizer(3, solver="paper")
    assert type(q) is ITQQuantizer
    assert q.get_params() == ITQQuantizer(random_state=3).get_params()
    assert q.max_iter == 50


@pytest.mark.parametrize("loss", ["l2", "l1", "min_entry", "bit_var"])
def test_h2q_rows_take_their_loss_the_seed_and_the_solver(loss):
    row = ROW_BY_KEY[f"h2q-{loss}"]
    q = row.make_quantizer(2, solver="paper", n_bits=8)
    expected = HouseholderQuantizer(8, loss=loss, solver="paper", random_state=2)
    assert type(q) is HouseholderQuantizer and q.get_params() == expected.get_params()
    assert row.make_quantizer().get_params() == HouseholderQuantizer(loss=loss).get_params()


def test_reference_methods_get_the_baseline_row_only():
    full = get_config("full")
    assert rows_for(full, "adsh") == (BASELINE,)
    assert rows_for(full, "dpsh") == full.row_keys == ROWS
