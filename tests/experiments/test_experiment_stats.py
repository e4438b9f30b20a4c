"""Means over seeds and gain statistics, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from h2q.experiments.records import CellRecord
from h2q.experiments.stats import improvement, summarize


def _record(method: str, row: str, n_bits: int, seed: int, value: float, loss: float = 0.1):
    return CellRecord.from_dict(
        dict(
            method=method,
            row=row,
            n_bits=n_bits,
            seed=seed,
            map_at_k=value,
            map_variant="mAP@10 (...)",
            k=10,
            map_all=value,
            precision_at_k=value,
            quantization_loss=loss,
            fit_time_s=0.0,
            stage1_run="x",
        )
    )


# Hand-made table (mAP x100, mean over seeds):
#   cell        lambda0   h2q-l2   gain
#   a, 16       50.0      52.0     +2.0
#   a, 32       60.0      59.0     -1.0
#   b, 16       40.0      45.0     +5.0
#   b, 32       70.0      70.5     +0.5   (seeds 70.0 / 71.0)
#   b, 64       80.0      --       (no H²Q cell: not counted)
TABLE = [
    ("a", 16, 0.50, [0.52]),
    ("a", 32, 0.60, [0.59]),
    ("b", 16, 0.40, [0.45]),
    ("b", 32, 0.70, [0.70, 0.71]),
    ("b", 64, 0.80, None),
]


@pytest.fixture
def records():
    out = []
    for method, n_bits, base, h2q in TABLE:
        out.append(_record(method, "lambda0", n_bits, 0, base))
        if h2q is not None:
            for seed, value in enumerate(h2q):
                out.append(_record(method, "h2q-l2", n_bits, seed, value, loss=0.05 * (seed + 1)))
        if len(h2q or []) == 2:
            out.append(_record(method, "lambda0", n_bits, 1, base))
    return out


def test_summarize_mean_std_and_count(records):
    table = summarize(records)
    s = table[("b", "h2q-l2", 32)]
    assert s.n == 2
    assert s.mean == pytest.approx(70.5)
    assert s.std == pytest.approx(math.sqrt(0.5))  # sample std of 70, 71
    assert s.quantization_loss == pytest.approx(0.075)
    single = table[("a", "h2q-l2", 16)]
    assert single.n == 1 and math.isnan(single.std) and single.mean == pytest.approx(52.0)


def test_summarize_skips_nan_scores():
    table = summarize([_record("a", "itq", 8, 0, math.nan), _record("a", "itq", 8, 1, 0.3)])
    assert table[("a", "itq", 8)].n == 1
    assert table[("a", "itq", 8)].mean == pytest.approx(30.0)


def test_improvement_statistics(records):
    imp = improvement(summarize(records), "h2q-l2", "lambda0")
    assert imp.cells == (("a", 16), ("a", 32), ("b", 16), ("b", 32))
    assert imp.gains == pytest.approx((2.0, -1.0, 5.0, 0.5))
    assert imp.n_cells == 4
    assert imp.mean == pytest.approx(1.625)
    assert imp.median == pytest.approx(1.25)
    assert imp.min == pytest.approx(-1.0)
    assert imp.max == pytest.approx(5.0)
    assert imp.wins == 3
    assert not imp.won_every_cell
    assert [(m, b) for m, b, _ in imp.losses] == [("a", 32)]


def test_improvement_order_and_ties():
    recs = [
        _record("m", "lambda0", 8, 0, 0.5),
        _record("m", "itq", 8, 0, 0.5),
        _record("m", "lambda0", 16, 0, 0.5),
        _record("m", "itq", 16, 0, 0.6),
    ]
    imp = improvement(summarize(recs), "itq", methods=["m"], bits=[16, 8])
    assert imp.cells == (("m", 16), ("m", 8))
    assert imp.wins == 1  # a tie is not a win
    assert imp.losses[0][:2] == ("m", 8)


def test_improvement_without_cells_is_nan():
    imp = improvement(summarize([_record("m", "lambda0", 8, 0, 0.5)]), "h2q-l2")
    assert imp.n_cells == 0 and math.isnan(imp.mean) and not imp.won_every_cell
