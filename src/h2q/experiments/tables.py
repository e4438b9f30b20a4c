"""Tables of a grid as Markdown and CSV text.

- the main table: rows method x strategy, columns bits, mean ± std over seeds of mAP@k x100
  (one seed: ± the standard error over queries), with the mAP variant (cut-off, denominator,
  empty-query rule, tie-break) named above it;
- the improvement statistics of each strategy over lambda = 0 (mean with its 95% interval,
  median, min, max, and the cells where the gain is detected);
- quantization losses, the lambda chosen for the "+lambda" row, one line per cell, and the
  stage-1 runs (best validation mAP, epochs, time).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence

from ..evaluation.metrics import variant_name
from ..losses import PENALTY
from .config import REFERENCE_METHODS, GridConfig
from .records import CellRecord
from .rows import lambda_grid, row_label, rows_for
from .stage1 import Stage1Summary
from .stats import Improvement, Interval, SummaryTable

__all__ = [
    "TIE_RULE",
    "cells_csv",
    "gains_csv",
    "improvements_csv",
    "improvements_markdown",
    "lambda_csv",
    "lambda_markdown",
    "map_header",
    "quantization_loss_csv",
    "quantization_loss_markdown",
    "stage1_csv",
    "stage1_markdown",
    "table_csv",
    "table_markdown",
]

#: How Hamming ties are broken in every ranking of the grid.
TIE_RULE = "ties broken by continuous distance"


def map_header(k: int, tie_break: bool = True) -> str:
    """Name of the mAP variant, e.g. ``"mAP@1000 (top-k relevant denominator; empty queries
    score 0; ties broken by continuous distance)"``."""
    tie = TIE_RULE if tie_break else "ties broken by database id"
    return variant_name(k)[:-1] + f"; {tie})"


def _fmt(value: float, digits: int = 2, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _grid_rows(config: GridConfig) -> list[tuple[str, str]]:
    return [(method, row) for method in config.methods for row in rows_for(config, method)]


def table_markdown(table: SummaryTable, config: GridConfig, k: int, *, digits: int = 2) -> str:
    """The main table as Markdown: a caption naming the metric, then the table.

    Parameters
    ----------
    table : SummaryTable
        From :func:`h2q.experiments.stats.summarize`.
    config : GridConfig
        Gives the row and column order.
    k : int
        The mAP cut-off actually used.
    digits : int, default 2

    Returns
    -------
    str
    """
    seeds = ", ".join(map(str, config.seeds))
    with_se = any(math.isfinite(s.query_se) for s in table.values())
    if len(config.seeds) > 1:
        spread = f"mean ± sample std over {len(config.seeds)} seeds ({seeds})"
    elif with_se:
        spread = f"one seed ({seeds}), ± the standard error over queries"
    else:
        spread = f"one seed ({seeds})"
    caption = (
        f"{map_header(k, config.tie_break)} x100; {spread}. n/a: not computed (see the failures)."
    )
    header = ["method", "strategy", *(f"{b} bits" for b in config.bits)]
    lines = [
        caption,
        "",
        "| " + " | ".join(header) + " |",
        "|:---|:---|" + "---:|" * len(config.bits),
    ]
    for method, row in _grid_rows(config):
        cells = []
        for n_bits in config.bits:
            s = table.get((method, row, n_bits))
            if s is None or not math.isfinite(s.mean):
                cells.append("n/a")
            elif s.n > 1 and math.isfinite(s.std):
                cells.append(f"{_fmt(s.mean, digits)} ± {_fmt(s.std, digits)}")
            elif math.isfinite(s.query_se):
                cells.append(f"{_fmt(s.mean, digits)} ± {_fmt(s.query_se, digits)}")
            else:
                cells.append(_fmt(s.mean, digits))
        lines.append(f"| {method.upper()} | {row_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_csv(table: SummaryTable, config: GridConfig, k: int) -> str:
    """The main table as CSV: one line per (method, strategy); columns ``<bits> mean``,
    ``<bits> std`` (over seeds) and ``<bits> query_se`` (one seed: standard error over
    queries) per bit length (x100, full precision), the metric named in every line."""
    columns = ["method", "strategy", "row", "metric", "n_seeds"]
    for n_bits in config.bits:
        columns += [f"{n_bits} bits mean", f"{n_bits} bits std", f"{n_bits} bits query_se"]
    metric = map_header(k, config.tie_break) + " x100"
    lines = []
    for method, row in _grid_rows(config):
        values: list[object] = [method, row_label(row), row, metric]
        n = max(
            (table[(method, row, b)].n for b in config.bits if (method, row, b) in table), default=0
        )
        values.append(n)
        for n_bits in config.bits:
            s = table.get((method, row, n_bits))
            values += ["", "", ""] if s is None else [_csv(s.mean), _csv(s.std), _csv(s.query_se)]
        lines.append(values)
    return _csv_text(columns, lines)


def _csv(value: float) -> str:
    return repr(value) if math.isfinite(value) else ""


def _value(value: object) -> object:
    """A CSV field: a float at full precision (empty when NaN), None empty, others as given."""
    if value is None:
        return ""
    return _csv(value) if isinstance(value, float) else value


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text: the header line, then one line per row (``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


_STAT_HEADER = [
    "strategy",
    "vs",
    "mean",
    "95% interval",
    "median",
    "min",
    "max",
    "cells higher / n.d. / lower",
]


def _interval(ci: Interval, digits: int = 2) -> str:
    if not (math.isfinite(ci.low) and math.isfinite(ci.high)):
        return "n/a"
    return f"[{_fmt(ci.low, digits, True)}, {_fmt(ci.high, digits, True)}]"


def _counts(imp: Improvement) -> str:
    if not imp.has_intervals:
        return f"{imp.wins} / – / {imp.n_cells - imp.wins} (no intervals)"
    return f"{len(imp.higher)} / {len(imp.undetected)} / {len(imp.lower)}"


def improvements_markdown(improvements: Sequence[Improvement], *, digits: int = 2) -> str:
    """The gain statistics as Markdown (mAP points x100).

    "cells higher / n.d. / lower": cells whose 95% interval lies above zero / holds zero (no
    detectable difference) / lies below zero; without intervals, cells with a strictly higher
    / not higher mean. The caption names how the intervals were computed.
    """
    spreads = sorted({imp.spread for imp in improvements if imp.spread})
    caption = (
        f"Gain in mAP points (x100) per (method, bits) cell; intervals: {'; '.join(spreads)}."
        if spreads
        else "Gain in mAP points (x100) per (method, bits) cell; no intervals."
    )
    lines = [
        caption,
        "",
        "| " + " | ".join(_STAT_HEADER) + " |",
        "|:---|:---|---:|:---:|---:|---:|---:|:---:|",
    ]
    for imp in improvements:
        lines.append(
            f"| {row_label(imp.row)} | {row_label(imp.baseline)} | "
            f"{_fmt(imp.mean, digits, True)} | {_interval(imp.interval, digits)} | "
            f"{_fmt(imp.median, digits, True)} | {_fmt(imp.min, digits, True)} | "
            f"{_fmt(imp.max, digits, True)} | {_counts(imp)} |"
        )
    return "\n".join(lines) + "\n"


#: Columns of improvements.csv.
_IMPROVEMENT_COLUMNS = (
    "row baseline mean ci_low ci_high median min max wins cells higher undetected lower interval"
).split()


def improvements_csv(improvements: Sequence[Improvement]) -> str:
    """The gain statistics as CSV (full precision), with the interval of the mean gain and the
    counts of cells whose interval lies above zero / holds zero / lies below zero."""
    rows = []
    for imp in improvements:
        counts = (len(imp.higher), len(imp.undetected), len(imp.lower))
        values = (imp.row, imp.baseline, imp.mean, imp.interval.low, imp.interval.high)
        values += (imp.median, imp.min, imp.max, imp.wins, imp.n_cells)
        values += counts if imp.has_intervals else (None, None, None)
        rows.append([_value(v) for v in (*values, imp.spread)])
    return _csv_text(_IMPROVEMENT_COLUMNS, rows)


def gains_csv(improvements: Sequence[Improvement]) -> str:
    """One line per (comparison, cell): the gain and its 95% interval (full precision)."""
    rows = []
    for imp in improvements:
        intervals = imp.cell_intervals if imp.has_intervals else [None] * imp.n_cells
        for (method, n_bits), gain, ci in zip(imp.cells, imp.gains, intervals, strict=True):
            low, high = ("", "") if ci is None else (_csv(ci.low), _csv(ci.high))
            rows.append([imp.row, imp.baseline, method, n_bits, _csv(gain), low, high])
    header = ["row", "baseline", "method", "n_bits", "gain", "ci_low", "ci_high"]
    return _csv_text(header, rows)


def quantization_loss_markdown(table: SummaryTable, config: GridConfig) -> str:
    """Mean L2 quantization loss ``mean((z' - sign z')^2)`` of the validation embeddings,
    after rescaling to norm sqrt(bits) and the row's rotation (mean over seeds)."""
    header = ["method", "strategy", *(f"{b} bits" for b in config.bits)]
    lines = ["| " + " | ".join(header) + " |", "|:---|:---|" + "---:|" * len(config.bits)]
    for method, row in _grid_rows(config):
        cells = [
            _fmt(table[(method, row, b)].quantization_loss, 4)
            if (method, row, b) in table
            else "n/a"
            for b in config.bits
        ]
        lines.append(f"| {method.upper()} | {row_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def quantization_loss_csv(table: SummaryTable, config: GridConfig) -> str:
    """The quantization losses as CSV."""
    rows = [
        [method, row]
        + [
            _csv(table[(method, row, b)].quantization_loss) if (method, row, b) in table else ""
            for b in config.bits
        ]
        for method, row in _grid_rows(config)
    ]
    return _csv_text(["method", "row", *(f"{b} bits" for b in config.bits)], rows)


def _lam(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _penalty_records(records: Sequence[CellRecord]) -> list[CellRecord]:
    return [r for r in records if r.row == PENALTY]


def _by_lambda(selection: dict[str, float | None]) -> list[tuple[str, float | None]]:
    """The tried lambdas in increasing order (``"none"`` first)."""
    return sorted(selection.items(), key=lambda kv: -1.0 if kv[0] == "none" else float(kv[0]))


def lambda_markdown(records: Sequence[CellRecord], config: GridConfig) -> str:
    """The lambda chosen for each "+lambda" cell, with the validation mAP of every value."""
    lines = [
        "| method | bits | seed | validation mAP x100 by lambda | chosen |",
        "|:---|---:|---:|:---|---:|",
    ]
    for r in _penalty_records(records):
        tried = ", ".join(
            f"{lam}: {'diverged' if v is None else _fmt(100 * v)}"
            for lam, v in _by_lambda(r.lambda_selection)
        )
        chosen = "none (no penalty; tanh only)" if r.lam is None else f"{r.lam:g}"
        lines.append(f"| {r.method.upper()} | {r.n_bits} | {r.seed} | {tried} | {chosen} |")
    grids = "; ".join(
        f"{m.upper()}: " + ", ".join(_lam(v) for v in lambda_grid(m, config.lambda_grids))
        for m in config.methods
        if m.lower() not in REFERENCE_METHODS  # no "+lambda" row
    )
    return "\n".join(lines) + f"\n\nGrids: {grids}.\n"


def lambda_csv(records: Sequence[CellRecord]) -> str:
    """One line per (cell, lambda tried): validation mAP and whether it was chosen."""
    rows = []
    for r in _penalty_records(records):
        chosen = "none" if r.lam is None else f"{r.lam:g}"
        for lam, value in _by_lambda(r.lambda_selection):
            val_map = "" if value is None else repr(value)
            rows.append([r.method, r.n_bits, r.seed, lam, val_map, lam == chosen])
    return _csv_text(["method", "n_bits", "seed", "lambda", "val_map", "chosen"], rows)


#: Columns of cells.csv: fields of :class:`CellRecord` (``lambda``: its ``lam``).
_CELL_COLUMNS = (
    "method row n_bits seed map_at_k k map_all precision_at_k quantization_loss fit_time_s "
    "lambda stage1_run n_train n_queries n_database"
).split()


def cells_csv(records: Sequence[CellRecord]) -> str:
    """Every cell of the grid, one line each (scores are fractions, not x100)."""
    rows = []
    for r in records:
        fields = {**r.to_dict(), "lambda": r.lam}  # the cell file's flat fields
        rows.append([_value(fields[name]) for name in _CELL_COLUMNS])
    return _csv_text(_CELL_COLUMNS, rows)


def _strategy(strategy: str, lam: float | None) -> str:
    """The label of a stage-1 run's row, with its lambda for the "+lambda" row."""
    label = row_label(strategy)  # the stage-1 rows are keyed by their strategy
    if strategy != PENALTY:
        return label
    return f"{label} (none)" if lam is None else f"{label} (λ = {lam:g})"


def stage1_markdown(runs: Sequence[Stage1Summary], chosen: set[str] | None = None) -> str:
    """The stage-1 runs: best validation mAP x100, best epoch, epochs run, wall time.

    Parameters
    ----------
    runs : sequence of Stage1Summary
    chosen : set of str, optional
        Run folders (relative to ``runs/``) that a "+lambda" cell used; marked with *.
    """
    metric = next((r.val_metric for r in runs if r.val_metric), "validation mAP")
    lines = [
        f'Validation metric: {metric}. *: the λ the "+λ" row chose.',
        "",
        "| method | strategy | bits | seed | best val mAP x100 | best epoch | epochs run "
        "| time (s) |",
        "|:---|:---|---:|---:|---:|---:|---:|---:|",
    ]
    chosen = chosen or set()
    for r in runs:
        mark = " *" if r.run.relpath.as_posix() in chosen and r.run.strategy == PENALTY else ""
        stopped = " (early stop)" if r.stopped_early else ""
        lines.append(
            f"| {r.run.method.upper()} | {_strategy(r.run.strategy, r.run.lam)}{mark} | "
            f"{r.run.n_bits} | {r.run.seed} | {_fmt(100 * r.best_val_map)} | "
            f"{'' if r.best_epoch is None else r.best_epoch} | "
            f"{'' if r.epochs_run is None else r.epochs_run}{stopped} | {_fmt(r.seconds, 1)} |"
        )
    return "\n".join(lines) + "\n"


#: Columns of stage1.csv.
_STAGE1_COLUMNS = (
    "method strategy lambda n_bits seed best_val_map best_epoch epochs_run stopped_early "
    "seconds run"
).split()


def stage1_csv(runs: Sequence[Stage1Summary]) -> str:
    """The stage-1 runs as CSV (validation mAP as a fraction, full precision)."""
    rows = []
    for r in runs:
        run = (r.run.method, r.run.strategy, r.run.lam, r.run.n_bits, r.run.seed)
        summary = (r.best_val_map, r.best_epoch, r.epochs_run, r.stopped_early, r.seconds)
        rows.append([_value(v) for v in (*run, *summary, r.run.relpath.as_posix())])
    return _csv_text(_STAGE1_COLUMNS, rows)
