"""Intervals of the grid's gains (t over seeds, paired bootstrap over queries) and the verdict
that names only the differences they detect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from h2q.experiments.records import CellRecord
from h2q.experiments.report import describe, verdict
from h2q.experiments.stats import (
    Improvement,
    Interval,
    bootstrap_interval,
    compare,
    summarize,
    t_interval,
)


def _record(row, n_bits, seed, ap, method="dpsh"):
    ap = np.asarray(ap, dtype=np.float64)
    return CellRecord.from_dict(
        dict(
            method=method,
            row=row,
            n_bits=n_bits,
            seed=seed,
            map_at_k=float(ap.mean()),
            map_variant="",
            k=10,
            map_all=float(ap.mean()),
            precision_at_k=0.0,
            quantization_loss=0.1,
            fit_time_s=0.0,
            stage1_run="x",
            ap_at_k=ap.tolist(),
        )
    )


@pytest.mark.parametrize("samples", [[1.0, 2.0], [0.5, -0.1, 0.9], [2.0, 2.5, 1.0, 3.0, 0.2]])
def test_t_interval_matches_scipy(samples):
    ci = t_interval(samples)
    low, high = sps.t.interval(0.95, len(samples) - 1, loc=np.mean(samples), scale=sps.sem(samples))
    assert (ci.low, ci.high) == pytest.approx((low, high), rel=1e-12)


def test_t_interval_needs_two_samples():
    ci = t_interval([1.0])
    assert math.isnan(ci.low) and math.isnan(ci.high) and ci.sign == 0


def test_interval_sign():
    assert Interval(0.1, 2.0).sign == 1 and Interval(0.1, 2.0).excludes_zero
    assert Interval(-2.0, -0.1).sign == -1
    assert Interval(-0.1, 2.0).sign == 0 and not Interval(-0.1, 2.0).excludes_zero


def test_bootstrap_interval_matches_scipy_for_one_cell():
    rng = np.random.default_rng(1)
    a = rng.uniform(size=300)
    b = np.clip(a - 0.03 + 0.1 * rng.normal(size=300), 0, 1)
    (ci,), overall = bootstrap_interval([(a, b)], n_boot=4000, random_state=0)
    ref = sps.bootstrap(
        (100 * a, 100 * b),
        lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=4000,
        random_state=0,
    ).confidence_interval
    se = 100 * (a - b).std(ddof=1) / math.sqrt(len(a))
    # Two Monte Carlo estimates of the same percentiles: equal within a fraction of the SE.
    assert ci.low == pytest.approx(ref.low, abs=0.15 * se)
    assert ci.high == pytest.approx(ref.high, abs=0.15 * se)
    assert (overall.low, overall.high) == (ci.low, ci.high)
    assert ci.low < 100 * (a - b).mean() < ci.high


def test_bootstrap_mean_over_cells_against_a_slow_loop():
    """Cells of one seed share their queries: one set of resampled indices for all cells."""
    rng = np.random.default_rng(2)
    cells = [(rng.uniform(size=50), rng.uniform(size=50)) for _ in range(3)]
    cells.append((rng.uniform(size=20), rng.uniform(size=20)))  # another query fold
    n_boot = 300
    cell_ci, overall = bootstrap_interval(cells, n_boot=n_boot, random_state=5)

    ref_rng = np.random.default_rng(5)
    idx50 = ref_rng.integers(0, 50, size=(n_boot, 50))
    idx20 = ref_rng.integers(0, 20, size=(n_boot, 20))
    per_boot = []
    per_cell: list[list[float]] = [[] for _ in cells]
    for r in range(n_boot):
        gains = []
        for c, (a, b) in enumerate(cells):
            idx = idx50[r] if len(a) == 50 else idx20[r]
            gain = 100 * (sum(a[i] for i in idx) / len(idx) - sum(b[i] for i in idx) / len(idx))
            per_cell[c].append(gain)
            gains.append(gain)
        per_boot.append(sum(gains) / len(gains))
    assert (overall.low, overall.high) == pytest.approx(
        tuple(np.percentile(per_boot, [2.5, 97.5])), abs=1e-9
    )
    for ci, values in zip(cell_ci, per_cell, strict=True):
        assert (ci.low, ci.high) == pytest.approx(
            tuple(np.percentile(values, [2.5, 97.5])), abs=1e-9
        )


def test_bootstrap_rejects_unpaired_cells():
    with pytest.raises(ValueError, match="equal length"):
        bootstrap_interval([(np.ones(3), np.ones(4))])


def test_compare_with_several_seeds_uses_t_over_seeds():
    recs = []
    base = {16: [0.50, 0.52, 0.51], 32: [0.60, 0.61, 0.59]}
    gain = {16: [0.02, 0.025, 0.015], 32: [-0.01, 0.02, 0.00]}
    for n_bits in (16, 32):
        for seed in range(3):
            b = base[n_bits][seed]
            recs.append(_record("lambda0", n_bits, seed, [b, b]))
            recs.append(_record("itq", n_bits, seed, [b + gain[n_bits][seed]] * 2))
    imp = compare(recs, "itq", methods=["dpsh"], bits=[16, 32])
    assert imp.gains == pytest.approx((2.0, 1 / 3))
    for ci, n_bits in zip(imp.cell_intervals, (16, 32), strict=True):
        ref = t_interval([100 * g for g in gain[n_bits]])
        assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high))
    per_seed = [100 * (gain[16][s] + gain[32][s]) / 2 for s in range(3)]
    ref = t_interval(per_seed)
    assert (imp.interval.low, imp.interval.high) == pytest.approx((ref.low, ref.high))
    assert imp.spread == "95% paired t interval over 3 seeds"
    assert [c[:2] for c in imp.higher] == [("dpsh", 16)]
    assert [c[:2] for c in imp.undetected] == [("dpsh", 32)]


def test_compare_with_one_seed_bootstraps_the_queries():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=200)
    recs = [
        _record("lambda0", 16, 0, a),
        _record("h2q-l2", 16, 0, np.clip(a + 0.2, 0, 1)),  # clearly higher
        _record("lambda0", 32, 0, a),
        _record("h2q-l2", 32, 0, a[rng.permutation(200)]),  # same values, shuffled: noise
    ]
    imp = compare(recs, "h2q-l2", methods=["dpsh"], bits=[16, 32])
    assert "bootstrap" in imp.spread and "200 queries" in imp.spread
    assert [c[:2] for c in imp.higher] == [("dpsh", 16)]
    assert [c[:2] for c in imp.undetected] == [("dpsh", 32)]
    assert imp.cell_intervals[1].low < 0 < imp.cell_intervals[1].high


def test_compare_without_per_query_ap_has_no_intervals():
    recs = [_record("lambda0", 16, 0, [0.5]), _record("itq", 16, 0, [0.6])]
    for r in recs:
        r.result.ap_at_k = []
    imp = compare(recs, "itq", methods=["dpsh"], bits=[16])
    assert imp.gains == pytest.approx((10.0,)) and not imp.has_intervals
    assert "no interval could be computed" in describe(imp)


def test_summarize_query_standard_error():
    ap = np.array([0.2, 0.4, 0.9, 0.5])
    s = summarize([_record("itq", 8, 0, ap)])[("dpsh", "itq", 8)]
    assert s.query_se == pytest.approx(100 * ap.std(ddof=1) / 2)
    two = summarize([_record("itq", 8, 0, ap), _record("itq", 8, 1, ap)])[("dpsh", "itq", 8)]
    assert math.isnan(two.query_se)  # several seeds: the std over seeds is the spread


def _imp(row, baseline, gains, intervals, overall):
    cells = tuple(("dch", b) for b in (16, 32, 64)[: len(gains)])
    return Improvement(
        row=row,
        baseline=baseline,
        cells=cells,
        gains=tuple(gains),
        cell_intervals=tuple(Interval(*ci) for ci in intervals),
        interval=Interval(*overall),
        spread="95% test",
    )


def test_verdict_names_only_detected_differences():
    main = _imp(
        "h2q-l2", "lambda0", [1.0, 0.3, 2.0], [(0.5, 1.5), (-0.1, 0.7), (1.0, 3.0)], (0.6, 1.6)
    )
    itq = _imp(
        "h2q-l2", "itq", [0.4, -0.2, -0.8], [(-0.1, 0.9), (-0.6, 0.2), (-1.2, -0.3)], (-0.5, 0.3)
    )
    lines = verdict([main, itq])
    assert lines[0] == (
        "+H²Q (L2) vs λ = 0: higher on average, mean +1.10 mAP points (95% interval +0.60 to "
        "+1.60); higher in 2 of 3 cells (DCH 16 bits +1.00, DCH 64 bits +2.00), lower in none, "
        "no detectable difference in 1."
    )
    line = next(x for x in lines if "vs +ITQ" in x)
    assert line.startswith("+H²Q (L2) vs +ITQ: no detectable difference on average (mean -0.20")
    assert "lower in 1 (DCH 64 bits -0.80)" in line
    assert "DCH 16 bits" not in line and "DCH 32 bits" not in line  # undetected: not named
    assert lines[-1] == "Intervals: 95% test."


def test_verdict_every_cell():
    imp = _imp("itq", "lambda0", [-1.0, -2.0], [(-1.5, -0.5), (-3.0, -1.0)], (-2.0, -1.0))
    assert describe(imp).endswith(
        "lower on average, mean -1.50 mAP points (95% interval -2.00 "
        "to -1.00); lower in every cell (2 / 2)."
    )


def test_one_seed_table_shows_the_standard_error_over_queries():
    from h2q.experiments.config import get_config
    from h2q.experiments.tables import table_markdown

    config = get_config("default", methods=("dpsh",), bits=(16,), seeds=(0,), rows=())
    ap = np.array([0.2, 0.4, 0.9, 0.5])
    text = table_markdown(summarize([_record("lambda0", 16, 0, ap)]), config, 10)
    assert "one seed (0), ± the standard error over queries" in text
    assert f"| DPSH | λ = 0 | 50.00 ± {100 * ap.std(ddof=1) / 2:.2f} |" in text


def test_verdict_no_difference_anywhere():
    imp = _imp("h2q-l2", "itq", [0.1, -0.1], [(-0.5, 0.6), (-0.4, 0.3)], (-0.3, 0.4))
    assert describe(imp) == (
        "+H²Q (L2) vs +ITQ: no detectable difference on average (mean +0.00, 95% interval "
        "-0.30 to +0.40); no detectable difference in any cell (0 / 2 higher or lower)."
    )
