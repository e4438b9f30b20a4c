"""Tables of a grid as Markdown and CSV text.

- the main table: rows method x strategy, columns bits, mean ± std over seeds of mAP@k x100,
  with the mAP variant (cut-off, denominator, empty-query rule, tie-break) named above it;
- the improvement statistics of each strategy over lambda = 0 (mean, median, min, max,
  wins/cells);
- quantization losses, the lambda chosen for the "+lambda" row, and one line per cell.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from ..metrics import variant_name
from .config import ROW_LABELS, GridConfig, lambda_grid
from .records import CellRecord
from .stats import Improvement, SummaryTable

__all__ = [
    "TIE_RULE",
    "cells_csv",
    "improvements_csv",
    "improvements_markdown",
    "lambda_csv",
    "lambda_markdown",
    "map_header",
    "quantization_loss_csv",
    "quantization_loss_markdown",
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


def _label(row: str) -> str:
    return ROW_LABELS.get(row, row)


def _grid_rows(config: GridConfig) -> list[tuple[str, str]]:
    return [(method, row) for method in config.methods for row in config.row_keys]


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
    if len(config.seeds) > 1:
        spread = f"mean ± sample std over {len(config.seeds)} seeds ({seeds})"
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
            else:
                cells.append(_fmt(s.mean, digits))
        lines.append(f"| {method.upper()} | {_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_csv(table: SummaryTable, config: GridConfig, k: int) -> str:
    """The main table as CSV: one line per (method, strategy); columns ``<bits> mean`` and
    ``<bits> std`` per bit length (x100, full precision), the metric named in every line."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = ["method", "strategy", "row", "metric", "n_seeds"]
    for n_bits in config.bits:
        columns += [f"{n_bits} bits mean", f"{n_bits} bits std"]
    writer.writerow(columns)
    metric = map_header(k, config.tie_break) + " x100"
    for method, row in _grid_rows(config):
        values: list[object] = [method, _label(row), row, metric]
        n = max(
            (table[(method, row, b)].n for b in config.bits if (method, row, b) in table), default=0
        )
        values.append(n)
        for n_bits in config.bits:
            s = table.get((method, row, n_bits))
            values += ["", ""] if s is None else [_csv(s.mean), _csv(s.std)]
        writer.writerow(values)
    return buf.getvalue()


def _csv(value: float) -> str:
    return repr(value) if math.isfinite(value) else ""


_STAT_HEADER = ["strategy", "vs", "mean", "median", "min", "max", "wins / cells"]


def improvements_markdown(improvements: Sequence[Improvement], *, digits: int = 2) -> str:
    """The gain statistics as Markdown (mAP points x100; a win is a strictly higher mean)."""
    lines = [
        "| " + " | ".join(_STAT_HEADER) + " |",
        "|:---|:---|---:|---:|---:|---:|---:|",
    ]
    for imp in improvements:
        lines.append(
            f"| {_label(imp.row)} | {_label(imp.baseline)} | {_fmt(imp.mean, digits, True)} | "
            f"{_fmt(imp.median, digits, True)} | {_fmt(imp.min, digits, True)} | "
            f"{_fmt(imp.max, digits, True)} | {imp.wins} / {imp.n_cells} |"
        )
    return "\n".join(lines) + "\n"


def improvements_csv(improvements: Sequence[Improvement]) -> str:
    """The gain statistics as CSV (full precision)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["row", "baseline", "mean", "median", "min", "max", "wins", "cells"])
    for imp in improvements:
        writer.writerow(
            [
                imp.row,
                imp.baseline,
                _csv(imp.mean),
                _csv(imp.median),
                _csv(imp.min),
                _csv(imp.max),
                imp.wins,
                imp.n_cells,
            ]
        )
    return buf.getvalue()


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
        lines.append(f"| {method.upper()} | {_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def quantization_loss_csv(table: SummaryTable, config: GridConfig) -> str:
    """The quantization losses as CSV."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "row", *(f"{b} bits" for b in config.bits)])
    for method, row in _grid_rows(config):
        writer.writerow(
            [
                method,
                row,
                *(
                    _csv(table[(method, row, b)].quantization_loss)
                    if (method, row, b) in table
                    else ""
                    for b in config.bits
                ),
            ]
        )
    return buf.getvalue()


def _lam(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _penalty_records(records: Sequence[CellRecord]) -> list[CellRecord]:
    return [r for r in records if r.row == "penalty"]


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
    )
    return "\n".join(lines) + f"\n\nGrids: {grids}.\n"


def lambda_csv(records: Sequence[CellRecord]) -> str:
    """One line per (cell, lambda tried): validation mAP and whether it was chosen."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "n_bits", "seed", "lambda", "val_map", "chosen"])
    for r in _penalty_records(records):
        chosen = "none" if r.lam is None else f"{r.lam:g}"
        for lam, value in _by_lambda(r.lambda_selection):
            writer.writerow(
                [
                    r.method,
                    r.n_bits,
                    r.seed,
                    lam,
                    "" if value is None else repr(value),
                    lam == chosen,
                ]
            )
    return buf.getvalue()


def cells_csv(records: Sequence[CellRecord]) -> str:
    """Every cell of the grid, one line each (scores are fractions, not x100)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "method",
            "row",
            "n_bits",
            "seed",
            "map_at_k",
            "k",
            "map_all",
            "precision_at_k",
            "quantization_loss",
            "fit_time_s",
            "lambda",
            "stage1_run",
            "n_train",
            "n_queries",
            "n_database",
        ]
    )
    for r in records:
        writer.writerow(
            [
                r.method,
                r.row,
                r.n_bits,
                r.seed,
                _csv(r.map_at_k),
                r.k,
                _csv(r.map_all),
                _csv(r.precision_at_k),
                _csv(r.quantization_loss),
                _csv(r.fit_time_s),
                "" if r.lam is None else repr(r.lam),
                r.stage1_run,
                r.n_train,
                r.n_queries,
                r.n_database,
            ]
        )
    return buf.getvalue()
