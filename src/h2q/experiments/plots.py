"""PNG figures of a grid (matplotlib's Agg canvas, created per figure; no global state).

- :func:`plot_map_vs_bits`: mAP@k against bits, one panel per method, one line per strategy,
  error bars ± std over seeds (one seed: ± 1.96 standard errors over queries);
- :func:`plot_gains`: the gain of each strategy over lambda = 0, one point per (method, bits)
  cell with its 95% interval, and the mean gain as a bar with its 95% interval;
- :func:`plot_training_curves`: validation mAP of every stage-1 run against the epoch;
- :func:`plot_pr_curves`: precision-recall by Hamming radius for one bit length, one figure
  per method, the curves averaged over seeds (drawn by
  :func:`h2q.evaluation.plot_precision_recall`).

Every file is written atomically.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from ..evaluation.metrics import PrecisionRecallCurve
from .config import GridConfig
from .records import CellRecord
from .rows import BASELINE, H2Q_L2, row_label, rows_for
from .stage1 import Stage1Summary
from .stats import Improvement, Summary, SummaryTable

__all__ = ["plot_gains", "plot_map_vs_bits", "plot_pr_curves", "plot_training_curves"]


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "the reproduction plots need matplotlib, which is not installed. Install the extra: "
            "pip install 'h2q[plot]'."
        ) from exc
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> None:
    fig.tight_layout()
    _io.atomic_write(path, lambda handle: fig.savefig(handle, format="png"))


def plot_map_vs_bits(
    table: SummaryTable, config: GridConfig, path: str | os.PathLike, *, metric: str
) -> None:
    """mAP (x100) against bits, one panel per method and one line per strategy.

    Parameters
    ----------
    table : SummaryTable
    config : GridConfig
        Methods, bits and rows, in order.
    path : path-like
        PNG file (written atomically).
    metric : str
        Y-axis label (the mAP variant).
    """
    n = len(config.methods)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(4.6 * cols, 3.8 * rows + 0.6)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    for ax, method in zip(axes, config.methods, strict=True):
        for row in rows_for(config, method):
            points = [
                (b, table[(method, row, b)])
                for b in config.bits
                if (method, row, b) in table and math.isfinite(table[(method, row, b)].mean)
            ]
            if not points:
                continue
            x = [b for b, _ in points]
            y = [s.mean for _, s in points]
            err = [_error_bar(s) for _, s in points]
            style = "-" if row in (BASELINE, H2Q_L2) else "--"
            ax.errorbar(
                x, y, yerr=err, marker="o", markersize=3, capsize=2, ls=style, label=row_label(row)
            )
        ax.set_title(method.upper())
        ax.set_xlabel("bits")
        ax.set_xticks(list(config.bits))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mAP x100")
    axes[0].legend(fontsize=7, loc="best")
    bars = "± std over seeds" if len(config.seeds) > 1 else "± 1.96 standard errors over queries"
    title = f"{config.train.dataset}: {metric}; error bars {bars}"
    fig.suptitle("\n".join(textwrap.wrap(title, width=75 * cols)), fontsize=8)
    _save(fig, path)


def _error_bar(s: Summary) -> float:
    if math.isfinite(s.std):
        return s.std
    return 1.96 * s.query_se if math.isfinite(s.query_se) else 0.0


def plot_gains(
    improvements: Sequence[Improvement], config: GridConfig, path: str | os.PathLike
) -> None:
    """Gain over lambda = 0 (mAP points) of each strategy: a point per cell, a bar for the mean,
    each with its 95% interval when the improvements carry one.

    Parameters
    ----------
    improvements : sequence of Improvement
        One per strategy, all against the same baseline.
    config : GridConfig
        Gives the methods (point colours) and the data set name.
    path : path-like
        PNG file (written atomically).
    """
    fig = _figure(max(5.0, 1.1 * len(improvements) + 2.0), 4.2)
    ax = fig.add_subplot()
    colors = {m: f"C{i % 10}" for i, m in enumerate(config.methods)}
    rng = np.random.default_rng(0)  # horizontal jitter only, for legibility
    for i, imp in enumerate(improvements):
        if imp.n_cells:
            ax.bar(i, imp.mean, width=0.6, color="0.85", edgecolor="0.5")
            if math.isfinite(imp.interval.low) and math.isfinite(imp.interval.high):
                yerr = [[imp.mean - imp.interval.low], [imp.interval.high - imp.mean]]
                ax.errorbar(i, imp.mean, yerr=yerr, color="0.3", capsize=8, lw=1.5)
        intervals = imp.cell_intervals if imp.has_intervals else [None] * imp.n_cells
        for (method, _), gain, ci in zip(imp.cells, imp.gains, intervals, strict=True):
            x = i + rng.uniform(-0.22, 0.22)
            color = colors.get(method, "k")
            if ci is not None and math.isfinite(ci.low) and math.isfinite(ci.high):
                yerr = [[gain - ci.low], [ci.high - gain]]
                ax.errorbar(x, gain, yerr=yerr, fmt="o", ms=3, color=color, capsize=2, lw=0.8)
            else:
                ax.plot(x, gain, "o", ms=4, color=color)
    for method, color in colors.items():
        ax.plot([], [], "o", color=color, label=method.upper())
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(range(len(improvements)))
    ax.set_xticklabels([row_label(imp.row) for imp in improvements], rotation=30, ha="right")
    baseline = row_label(improvements[0].baseline if improvements else BASELINE)
    ax.set_ylabel(f"gain over {baseline} (mAP points)")
    spread = next((imp.spread for imp in improvements if imp.spread), "")
    title = f"{config.train.dataset}: gain per (method, bits) cell; bar = mean"
    if spread:
        title += "\n" + "\n".join(textwrap.wrap(f"whiskers: {spread}", width=110))
    ax.set_title(title, fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    _save(fig, path)


def _mean_points(values: list[list[float | None]]) -> list[float]:
    width = max((len(v) for v in values), default=0)
    arr = np.full((len(values), width), np.nan)
    for i, v in enumerate(values):
        arr[i, : len(v)] = [np.nan if x is None else x for x in v]
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(arr).sum(axis=0)
        sums = np.nansum(arr, axis=0)
    return [float(s / c) if c else math.nan for s, c in zip(sums, counts, strict=True)]


def plot_pr_curves(
    records: Sequence[CellRecord], config: GridConfig, out_dir: str | os.PathLike, n_bits: int
) -> list[Path]:
    """Precision-recall by Hamming radius at ``n_bits``, one PNG per method.

    Points are averaged over seeds radius by radius. Files are named
    ``pr_<method>_<bits>bits.png``.

    Returns
    -------
    list of Path
        The files written (a method without a cell at ``n_bits`` gets none).
    """
    from ..evaluation import plot_precision_recall

    written = []
    for method in config.methods:
        curves = {}
        for row in rows_for(config, method):
            group = [
                r.result for r in records if (r.method, r.row, r.n_bits) == (method, row, n_bits)
            ]
            if group:
                curves[f"{row_label(row)} ({n_bits} bits)"] = PrecisionRecallCurve(
                    np.asarray(group[0].pr_radius, dtype=np.int64),
                    np.asarray(_mean_points([r.pr_precision for r in group])),
                    np.asarray(_mean_points([r.pr_recall for r in group])),
                )
        if not curves:
            continue
        path = Path(out_dir) / f"pr_{_safe(method)}_{n_bits}bits.png"
        dataset = config.train.dataset
        title = f"{method.upper()}, {n_bits} bits ({dataset}): PR by Hamming radius"
        plot_precision_recall(curves, path, title=title)
        written.append(path)
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.lower())


def plot_training_curves(
    runs: Sequence[Stage1Summary],
    config: GridConfig,
    path: str | os.PathLike,
    *,
    quantity: str = "val_map",
) -> None:
    """Validation mAP (x100) or training loss of every stage-1 run against the epoch: one
    panel per (method, bits), one line per strategy (and lambda).

    Parameters
    ----------
    runs : sequence of Stage1Summary
        From :func:`h2q.experiments.stage1.read_stage1_runs`.
    config : GridConfig
        Methods and bits, in order.
    path : path-like
        PNG file (written atomically).
    quantity : {"val_map", "loss"}
        Validation mAP at the epochs where it was evaluated, or the mean training loss.
    """
    if quantity not in ("val_map", "loss"):
        raise ValueError(f"quantity must be 'val_map' or 'loss', got {quantity!r}.")
    scale = 100.0 if quantity == "val_map" else 1.0
    n_rows, n_cols = len(config.methods), len(config.bits)
    fig = _figure(3.4 * n_cols, 2.6 * n_rows + 0.5)
    for i, method in enumerate(config.methods):
        for j, n_bits in enumerate(config.bits):
            ax = fig.add_subplot(n_rows, n_cols, i * n_cols + j + 1)
            for r in runs:
                if (r.run.method, r.run.n_bits) != (method, n_bits):
                    continue
                pairs = zip(r.epochs, getattr(r, quantity), strict=True)
                points = [(e, scale * v) for e, v in pairs if math.isfinite(v)]
                if not points:
                    continue
                label = r.run.tag if len(config.seeds) == 1 else f"{r.run.tag} s{r.run.seed}"
                x, y = [e for e, _ in points], [v for _, v in points]
                ax.plot(x, y, marker="o", ms=2.5, lw=1, label=label)
            ax.set_title(f"{method.upper()}, {n_bits} bits", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
            if j == 0:
                ax.set_ylabel("val mAP x100" if scale == 100.0 else "training loss", fontsize=7)
            if i == n_rows - 1:
                ax.set_xlabel("epoch", fontsize=7)
            if j == 0 and ax.get_lines():  # one legend per method: its lambda grid differs
                ax.legend(fontsize=6, loc="lower right")
    metric = next((r.val_metric for r in runs if r.val_metric), "validation mAP")
    what = metric if quantity == "val_map" else "mean training loss per epoch"
    wrapped = "\n".join(textwrap.wrap(what, width=60 * n_cols))
    fig.suptitle(f"{config.train.dataset}: stage-1 training curves\n{wrapped}", fontsize=8)
    _save(fig, path)
