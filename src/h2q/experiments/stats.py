"""Statistics of a grid: means over seeds, and the gains of one strategy over another.

The paper summarises each quantization strategy by its gain over lambda = 0 across the cells
of its tables (a cell = method x data set x bit length, each the mean of 4 seeds): the mean,
median, minimum and maximum gain in mAP points, and in how many cells it won. Here a cell is
(method, bits) of one grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .records import CellRecord

__all__ = ["Improvement", "Summary", "SummaryTable", "improvement", "summarize"]


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
        values = np.array([100.0 * getattr(r, metric) for r in group], dtype=np.float64)
        values = values[np.isfinite(values)]
        losses = np.array([r.quantization_loss for r in group], dtype=np.float64)
        losses = losses[np.isfinite(losses)]
        table[key] = Summary(
            mean=float(values.mean()) if len(values) else math.nan,
            std=float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            n=len(values),
            quantization_loss=float(losses.mean()) if len(losses) else math.nan,
        )
    return table


@dataclass(frozen=True)
class Improvement:
    """Gains of ``row`` over ``baseline`` across the cells where both were scored."""

    row: str
    baseline: str
    cells: tuple[tuple[str, int], ...]
    """The (method, n_bits) cells compared, in order."""
    gains: tuple[float, ...]
    """``mean(row) - mean(baseline)`` in mAP points (x100) for each cell."""

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


def improvement(
    table: SummaryTable,
    row: str,
    baseline: str = "lambda0",
    *,
    methods: Sequence[str] | None = None,
    bits: Sequence[int] | None = None,
) -> Improvement:
    """Gains of ``row`` over ``baseline``, one per (method, bits) cell where both exist.

    Parameters
    ----------
    table : SummaryTable
        From :func:`summarize`.
    row, baseline : str
        Row keys (e.g. ``"h2q-l2"`` and ``"lambda0"``).
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
