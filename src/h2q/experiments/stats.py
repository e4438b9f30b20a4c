"""Statistics of a grid: means over seeds, the gains of one strategy over another, and how
sure each gain is.

The paper summarises each quantization strategy by its gain over lambda = 0 across the cells
of its tables (a cell = method x data set x bit length, each the mean of 4 seeds): the mean,
median, minimum and maximum gain in mAP points, and in how many cells it won. Here a cell is
(method, bits) of one grid.

Every gain comes with a 95% interval (:func:`compare`):

- with several seeds, a paired t interval over seeds: the gain of each seed (both strategies
  scored on that seed's split) is one sample; the interval of the mean over cells uses, per
  seed, the mean gain over the cells;
- with one seed, a paired percentile bootstrap over queries: the per-query AP@k of both
  strategies is resampled with the same query indices (the strategies of one seed share the
  query fold). This measures query sampling only, not the spread between stage-1 trainings.

A difference is *detected* when its interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .records import CellRecord
from .rows import BASELINE

__all__ = [
    "CONFIDENCE",
    "N_BOOTSTRAP",
    "Improvement",
    "Interval",
    "Summary",
    "SummaryTable",
    "bootstrap_interval",
    "compare",
    "improvement",
    "summarize",
    "t_interval",
]

#: Level of every interval of the grid's statistics.
CONFIDENCE = 0.95
#: Resamples of the bootstrap over queries (one-seed grids).
N_BOOTSTRAP = 2000


@dataclass(frozen=True)
class Summary:
    """One (method, row, bits) entry averaged over seeds (x100, as in the paper's tables)."""

    mean: float
    std: float
    """Sample standard deviation (ddof = 1) over seeds; NaN with a single seed."""
    n: int
    """Number of seeds."""
    quantization_loss: float
    """Mean over seeds of the L2 quantization loss (not scaled)."""
    query_se: float = math.nan
    """With one seed: the standard error of the mAP over queries (std of the per-query AP@k /
    sqrt(n_queries), x100); NaN when the cell kept no per-query AP or has several seeds."""


#: ``{(method, row, n_bits): Summary}``
SummaryTable = dict[tuple[str, str, int], Summary]


def summarize(records: Iterable[CellRecord], metric: str = "map_at_k") -> SummaryTable:
    """Average the cells of a grid over seeds.

    Parameters
    ----------
    records : iterable of CellRecord
    metric : str, default "map_at_k"
        A score attribute of :class:`CellRecord` (fractions; the summary is x100).

    Returns
    -------
    dict
        ``(method, row, n_bits) -> Summary``; NaN scores (a cell that could not be scored)
        are left out of the mean.
    """
    groups: dict[tuple[str, str, int], list[CellRecord]] = {}
    for record in records:
        groups.setdefault((record.method, record.row, record.n_bits), []).append(record)
    table: SummaryTable = {}
    for key, group in groups.items():
        values = np.array([100.0 * getattr(r.result, metric) for r in group], dtype=np.float64)
        values = values[np.isfinite(values)]
        losses = np.array([r.result.quantization_loss for r in group], dtype=np.float64)
        losses = losses[np.isfinite(losses)]
        table[key] = Summary(
            mean=float(values.mean()) if len(values) else math.nan,
            std=float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            n=len(values),
            quantization_loss=float(losses.mean()) if len(losses) else math.nan,
            query_se=_query_se(group) if metric == "map_at_k" and len(values) == 1 else math.nan,
        )
    return table


def _scored(record: CellRecord) -> bool:
    return math.isfinite(record.result.map_at_k)


def _gain(record: CellRecord, baseline: CellRecord) -> float:
    return record.result.map_at_k - baseline.result.map_at_k


def _query_se(group: Sequence[CellRecord]) -> float:
    ap = [np.asarray(r.result.ap_at_k, dtype=np.float64) for r in group if _scored(r)]
    if len(ap) != 1 or len(ap[0]) < 2:
        return math.nan
    return float(100.0 * ap[0].std(ddof=1) / math.sqrt(len(ap[0])))


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a gain, in mAP points (x100); NaN ends when none exists."""

    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """The difference is detected: the whole interval lies on one side of zero."""
        return self.low > 0 or self.high < 0

    @property
    def sign(self) -> int:
        """+1 when the interval lies above zero, -1 below, 0 when it holds zero (or is NaN)."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


_NO_INTERVAL = Interval(math.nan, math.nan)


def t_interval(samples: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student t interval of the mean of ``samples`` (paired differences, one per seed).

    Parameters
    ----------
    samples : sequence of float, length n
    confidence : float, default 0.95

    Returns
    -------
    Interval
        ``mean -+ t_{(1 + confidence) / 2, n - 1} * std(ddof=1) / sqrt(n)``; NaN ends when
        n < 2.
    """
    values = np.asarray(samples, dtype=np.float64)
    if len(values) < 2:
        return _NO_INTERVAL
    try:
        from scipy.stats import t
    except ImportError as exc:  # pragma: no cover - scipy is in the "stats" extra
        raise ImportError(
            "the intervals over seeds need scipy, which is not installed. Install the extra: "
            "pip install 'h2q[stats]'."
        ) from exc
    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1))
    half *= float(values.std(ddof=1)) / math.sqrt(len(values))
    mean = float(values.mean())
    return Interval(mean - half, mean + half)


def _bootstrap_means(
    diffs: np.ndarray, indices: dict[int, np.ndarray], rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """Means of ``diffs`` over ``n_boot`` resamples of its entries (indices shared by size)."""
    n = len(diffs)
    if n not in indices:
        indices[n] = rng.integers(0, n, size=(n_boot, n))
    return diffs[indices[n]].mean(axis=1)


def _percentiles(values: np.ndarray, confidence: float) -> Interval:
    low, high = np.percentile(values, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Interval(float(low), float(high))


def bootstrap_interval(
    per_query: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOTSTRAP,
    random_state: int = 0,
) -> tuple[list[Interval], Interval]:
    """Paired percentile bootstrap over queries of the gain ``mean(a) - mean(b)`` (x100).

    Parameters
    ----------
    per_query : sequence of (a, b) pairs
        One pair per cell: the per-query AP@k of the two strategies on the same queries, in
        the same order (arrays of shape ``(n_queries,)``, fractions).
    confidence : float, default 0.95
    n_boot : int, default 2000
        Resamples.
    random_state : int, default 0

    Returns
    -------
    cell_intervals : list of Interval
        One per pair.
    mean_interval : Interval
        Of the mean gain over the cells. Cells with as many queries are resampled with the same
        query indices (the cells of one seed share their query fold), others independently.
    """
    rng = np.random.default_rng(random_state)
    indices: dict[int, np.ndarray] = {}
    boots = []
    for a, b in per_query:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
            raise ValueError(
                f"per-query AP arrays of one cell must be 1-d of equal length, got {a.shape} "
                f"and {b.shape}."
            )
        boots.append(_bootstrap_means(100.0 * (a - b), indices, rng, n_boot))
    cells = [_percentiles(boot, confidence) for boot in boots]
    overall = _percentiles(np.mean(boots, axis=0), confidence) if boots else _NO_INTERVAL
    return cells, overall


@dataclass(frozen=True)
class Improvement:
    """Gains of ``row`` over ``baseline`` across the cells where both were scored."""

    row: str
    baseline: str
    cells: tuple[tuple[str, int], ...]
    """The (method, n_bits) cells compared, in order."""
    gains: tuple[float, ...]
    """``mean(row) - mean(baseline)`` in mAP points (x100) for each cell."""
    cell_intervals: tuple[Interval, ...] = ()
    """95% interval of each cell's gain (empty when none was computed)."""
    interval: Interval = _NO_INTERVAL
    """95% interval of the mean gain over the cells."""
    spread: str = ""
    """How the intervals were computed (e.g. ``"paired t interval over 3 seeds"``)."""

    @property
    def n_cells(self) -> int:
        return len(self.gains)

    @property
    def mean(self) -> float:
        return float(np.mean(self.gains)) if self.gains else math.nan

    @property
    def median(self) -> float:
        return float(np.median(self.gains)) if self.gains else math.nan

    @property
    def min(self) -> float:
        return float(np.min(self.gains)) if self.gains else math.nan

    @property
    def max(self) -> float:
        return float(np.max(self.gains)) if self.gains else math.nan

    @property
    def wins(self) -> int:
        """Cells where ``row`` scored strictly higher than ``baseline``."""
        return int(sum(g > 0 for g in self.gains))

    @property
    def losses(self) -> tuple[tuple[str, int, float], ...]:
        """``(method, n_bits, gain)`` of the cells where ``row`` did not win (gain <= 0)."""
        return tuple((m, b, g) for (m, b), g in zip(self.cells, self.gains, strict=True) if g <= 0)

    @property
    def won_every_cell(self) -> bool:
        return self.n_cells > 0 and self.wins == self.n_cells

    @property
    def has_intervals(self) -> bool:
        return len(self.cell_intervals) == self.n_cells > 0

    def _by_sign(self, sign: int) -> tuple[tuple[str, int, float], ...]:
        if not self.has_intervals:
            return ()
        return tuple(
            (m, b, g)
            for (m, b), g, ci in zip(self.cells, self.gains, self.cell_intervals, strict=True)
            if ci.sign == sign
        )

    @property
    def higher(self) -> tuple[tuple[str, int, float], ...]:
        """``(method, n_bits, gain)`` of the cells whose interval lies above zero."""
        return self._by_sign(1)

    @property
    def lower(self) -> tuple[tuple[str, int, float], ...]:
        """Cells whose interval lies below zero."""
        return self._by_sign(-1)

    @property
    def undetected(self) -> tuple[tuple[str, int, float], ...]:
        """Cells whose interval holds zero: no detectable difference."""
        return self._by_sign(0)


def improvement(
    table: SummaryTable,
    row: str,
    baseline: str = BASELINE,
    *,
    methods: Sequence[str] | None = None,
    bits: Sequence[int] | None = None,
) -> Improvement:
    """Gains of ``row`` over ``baseline``, one per (method, bits) cell where both exist (no
    intervals; :func:`compare` adds them).

    Parameters
    ----------
    table : SummaryTable
        From :func:`summarize`.
    row, baseline : str
        Row keys (:data:`h2q.experiments.rows.ROW_BY_KEY`), e.g. ``H2Q_L2`` and ``BASELINE``.
    methods, bits : sequence, optional
        Cell order (default: sorted keys of ``table``).

    Returns
    -------
    Improvement
    """
    if methods is None:
        methods = sorted({m for m, _, _ in table})
    if bits is None:
        bits = sorted({b for _, _, b in table})
    cells, gains = [], []
    for method in methods:
        for n_bits in bits:
            a = table.get((method, row, n_bits))
            b = table.get((method, baseline, n_bits))
            if a is None or b is None or not (math.isfinite(a.mean) and math.isfinite(b.mean)):
                continue
            cells.append((method, n_bits))
            gains.append(a.mean - b.mean)
    return Improvement(row=row, baseline=baseline, cells=tuple(cells), gains=tuple(gains))


def _paired(
    records: Iterable[CellRecord],
    row: str,
    baseline: str,
    methods: Sequence[str],
    bits: Sequence[int],
) -> list[tuple[tuple[str, int], dict[int, tuple[CellRecord, CellRecord]]]]:
    """Per (method, bits) cell, the seeds where both rows were scored: seed -> (row, baseline)."""
    by_key: dict[tuple[str, str, int, int], CellRecord] = {
        (r.method, r.row, r.n_bits, r.seed): r for r in records if _scored(r)
    }
    seeds = sorted({seed for (_, _, _, seed) in by_key})
    out = []
    for method in methods:
        for n_bits in bits:
            pairs = {
                s: (by_key[(method, row, n_bits, s)], by_key[(method, baseline, n_bits, s)])
                for s in seeds
                if (method, row, n_bits, s) in by_key and (method, baseline, n_bits, s) in by_key
            }
            if pairs:
                out.append(((method, n_bits), pairs))
    return out


def compare(
    records: Sequence[CellRecord],
    row: str,
    baseline: str = BASELINE,
    *,
    methods: Sequence[str],
    bits: Sequence[int],
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOTSTRAP,
    random_state: int = 0,
) -> Improvement:
    """Gains of ``row`` over ``baseline`` per (method, bits) cell, with intervals.

    Each cell's gain is the mean over the seeds where both rows were scored of
    ``100 * (mAP(row) - mAP(baseline))``. Intervals: a paired t interval over seeds when every
    cell has at least two seeds; a paired bootstrap over queries when every cell has one seed
    and kept its per-query AP; none otherwise (see the module docstring).

    Parameters
    ----------
    records : sequence of CellRecord
    row, baseline : str
    methods, bits : sequence
        Cell order.
    confidence : float, default 0.95
    n_boot : int, default 2000
    random_state : int, default 0
        Seed of the bootstrap's resampling.

    Returns
    -------
    Improvement
    """
    paired = _paired(records, row, baseline, methods, bits)
    cells = tuple(cell for cell, _ in paired)
    diffs = [{s: 100.0 * _gain(a, b) for s, (a, b) in p.items()} for _, p in paired]
    gains = tuple(float(np.mean(list(d.values()))) for d in diffs)
    base = Improvement(row=row, baseline=baseline, cells=cells, gains=gains)
    n_seeds = [len(d) for d in diffs]
    if not paired:
        return base
    level = f"{100 * confidence:g}%"
    if min(n_seeds) >= 2:
        common = sorted(set.intersection(*(set(d) for d in diffs)))
        overall = t_interval([np.mean([d[s] for d in diffs]) for s in common], confidence)
        n = min(n_seeds) if min(n_seeds) == max(n_seeds) else f"{min(n_seeds)}-{max(n_seeds)}"
        cell_ci = [t_interval(list(d.values()), confidence) for d in diffs]
        return _with(base, cell_ci, overall, f"{level} paired t interval over {n} seeds")
    pairs = [next(iter(p.values())) for _, p in paired]
    if max(n_seeds) > 1 or not all(a.result.ap_at_k and b.result.ap_at_k for a, b in pairs):
        return base
    cell_ci, overall = bootstrap_interval(
        [(a.result.ap_at_k, b.result.ap_at_k) for a, b in pairs],
        confidence=confidence,
        n_boot=n_boot,
        random_state=random_state,
    )
    n_q = sorted({len(a.result.ap_at_k) for a, _ in pairs})
    queries = "-".join(map(str, n_q[:: max(1, len(n_q) - 1)]))
    return _with(
        base,
        cell_ci,
        overall,
        f"{level} paired bootstrap interval over {queries} queries ({n_boot} resamples; one "
        "seed: query sampling only)",
    )


def _with(
    base: Improvement, cells: Sequence[Interval], overall: Interval, spread: str
) -> Improvement:
    return Improvement(
        row=base.row,
        baseline=base.baseline,
        cells=base.cells,
        gains=base.gains,
        cell_intervals=tuple(cells),
        interval=overall,
        spread=spread,
    )
