"""Everything a finished grid writes besides its runs and cells: tables, statistics, plots and
``report.md``.

Layout of the files written by :func:`write_outputs` (all atomically)::

    <out_dir>/
        table.md, table.csv                 mAP@k x100, rows method x strategy, columns bits
        improvements.md, improvements.csv   gain of each strategy over lambda = 0, and of
                                            H²Q (L2) over +lambda, +HSWD and +ITQ
        quantization_loss.md, .csv          L2 quantization loss of the validation embeddings
        lambda_selection.md, .csv           the "+lambda" row's choice on validation mAP
        cells.csv                           one line per (method, row, bits, seed)
        plots/map_vs_bits.png
        plots/gain_over_lambda0.png
        plots/pr_<method>_<bits>bits.png    one per method, at one bit length
        report.md                           the table, the statistics, the plots, the verdict

Every number comes from the grid's cell files; nothing is typed in by hand.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import _io
from .._version import __version__
from .config import ROW_LABELS, GridConfig, h2q_row
from .grid import GridResult
from .plots import plot_gains, plot_map_vs_bits, plot_pr_curves
from .stats import Improvement, SummaryTable, improvement, summarize
from .tables import (
    cells_csv,
    improvements_csv,
    improvements_markdown,
    lambda_csv,
    lambda_markdown,
    map_header,
    quantization_loss_csv,
    quantization_loss_markdown,
    table_csv,
    table_markdown,
)

__all__ = ["improvements_of", "verdict", "write_outputs"]

_H2Q = h2q_row("l2")


def _write_text(path: Path, text: str) -> None:
    _io.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def improvements_of(table: SummaryTable, config: GridConfig) -> list[Improvement]:
    """Gain of every computed strategy over lambda = 0, then of H²Q (L2) over +lambda, +HSWD
    and +ITQ (where those rows were computed)."""
    kw = {"methods": config.methods, "bits": config.bits}
    out = [improvement(table, row, "lambda0", **kw) for row in config.row_keys if row != "lambda0"]
    if _H2Q in config.row_keys:
        out += [
            improvement(table, _H2Q, other, **kw)
            for other in ("penalty", "hswd", "itq")
            if other in config.row_keys
        ]
    return out


def _cells_text(cells: Sequence[tuple[str, int, float]]) -> str:
    return ", ".join(f"{m.upper()} {b} bits ({g:+.2f})" for m, b, g in cells)


def verdict(improvements: Sequence[Improvement]) -> list[str]:
    """Plain sentences: did H²Q (L2) beat lambda = 0 in every cell, and how does it compare
    with +lambda, +HSWD and ITQ (mean gains, wins, the cells it lost)."""
    by_key = {(imp.row, imp.baseline): imp for imp in improvements}
    lines = []
    main = by_key.get((_H2Q, "lambda0"))
    if main is None or main.n_cells == 0:
        return ["H²Q (L2) and λ = 0 were not both scored in any cell; no verdict."]
    if main.won_every_cell:
        lines.append(
            f"H²Q (L2) improved on λ = 0 in every cell ({main.wins} / {main.n_cells}): mean "
            f"{main.mean:+.2f} mAP points, min {main.min:+.2f}, max {main.max:+.2f}."
        )
    else:
        lines.append(
            f"H²Q (L2) did NOT improve on λ = 0 in every cell: it won {main.wins} / "
            f"{main.n_cells} (mean {main.mean:+.2f} mAP points, min {main.min:+.2f}, max "
            f"{main.max:+.2f}); no gain in {_cells_text(main.losses)}."
        )
    variants = [
        imp
        for imp in improvements
        if imp.baseline == "lambda0" and imp.row.startswith("h2q-") and imp.row != _H2Q
    ]
    if variants:
        parts = ", ".join(
            f"{ROW_LABELS.get(v.row, v.row)} {v.mean:+.2f} ({v.wins} / {v.n_cells})"
            for v in variants
        )
        lines.append(f"The other H²Q losses over λ = 0: {parts}.")
    for other in ("penalty", "hswd", "itq"):
        own = by_key.get((other, "lambda0"))
        head = by_key.get((_H2Q, other))
        if own is None or head is None or head.n_cells == 0:
            continue
        name = ROW_LABELS[other]
        lines.append(
            f"{name} over λ = 0: mean {own.mean:+.2f} (wins {own.wins} / {own.n_cells}, min "
            f"{own.min:+.2f}). H²Q (L2) vs {name}: mean {head.mean:+.2f}, higher in "
            f"{head.wins} / {head.n_cells} cells"
            + (f"; not higher in {_cells_text(head.losses)}." if head.losses else ".")
        )
    return lines


def write_outputs(result: GridResult) -> dict[str, Path]:
    """Write the tables, statistics, plots and ``report.md`` of a grid.

    Parameters
    ----------
    result : GridResult
        From :func:`h2q.experiments.grid.run_grid` (or rebuilt from a results folder).

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    config, out, records = result.config, Path(result.out_dir), result.records
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    table = summarize(records)
    k = records[0].k if records else config.k  # the cut-off used (lowered to the database)
    improvements = improvements_of(table, config)
    files: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        files[name] = out / name
        _write_text(out / name, content)

    text("table.md", table_markdown(table, config, k))
    text("table.csv", table_csv(table, config, k))
    text("improvements.md", improvements_markdown(improvements))
    text("improvements.csv", improvements_csv(improvements))
    text("quantization_loss.md", quantization_loss_markdown(table, config))
    text("quantization_loss.csv", quantization_loss_csv(table, config))
    text("lambda_selection.md", lambda_markdown(records, config))
    text("lambda_selection.csv", lambda_csv(records))
    text("cells.csv", cells_csv(records))

    metric = map_header(k, config.tie_break) + " x100"
    plots: dict[str, Path] = {}
    if records:
        plots["map_vs_bits"] = plots_dir / "map_vs_bits.png"
        plot_map_vs_bits(table, config, plots["map_vs_bits"], metric=metric)
        gains = [imp for imp in improvements if imp.baseline == "lambda0"]
        if gains:
            plots["gain_over_lambda0"] = plots_dir / "gain_over_lambda0.png"
            plot_gains(gains, config, plots["gain_over_lambda0"])
        for path in plot_pr_curves(records, config, plots_dir, config.figure_bits):
            plots[path.stem] = path
    files.update({f"plots/{p.name}": p for p in plots.values()})
    text("report.md", _report(result, table, improvements, k, plots))
    return files


def _report(
    result: GridResult,
    table: SummaryTable,
    improvements: Sequence[Improvement],
    k: int,
    plots: dict[str, Path],
) -> str:
    config, records, info = result.config, result.records, result.info
    n_cells_planned = (
        len(config.methods) * len(config.bits) * len(config.seeds) * len(config.row_keys)
    )
    sizes = info.get("split_sizes") or {}
    first = records[0] if records else None
    lines = [
        f"# H²Q reproduction: {config.dataset} ({config.name} grid)",
        "",
        "## Verdict",
        "",
        *[f"- {line}" for line in verdict(improvements)],
        "",
        "## Setup",
        "",
        f"- Data: {config.dataset}; folds train {sizes.get('train', '?')}, validation "
        f"{sizes.get('val', '?')}, query {sizes.get('query', '?')}, database "
        f"{sizes.get('database', '?')}"
        + (f" (capped at {config.max_database})" if config.max_database else "")
        + ".",
        f"- Stage 1: backbone {info.get('backbone', config.backbone)}"
        + (
            f" frozen at {config.image_size or 'default'} px (features cached) with an MLP head "
            f"{list(config.hidden)}"
            if config.frozen
            else ""
        )
        + f"; Adam, head lr {config.lr_head:g}, up to {config.epochs} epochs, early stopping on "
        f"validation mAP (patience {config.patience}, checked every {config.eval_every} "
        f"epoch(s)); device {info.get('device', '?')}.",
        f"- Methods: {', '.join(m.upper() for m in config.methods)}; bits "
        f"{', '.join(map(str, config.bits))}; seeds {', '.join(map(str, config.seeds))}.",
        "- Strategies: λ = 0 (codes = sign); +λ (the method's penalty on tanh outputs, λ chosen "
        "on validation mAP, see below); +HSWD (weight 0.1); +ITQ (correct Procrustes step, 50 "
        f"iterations) and +H²Q (solver {config.h2q_solver!r}; losses L2, L1, min-entry, "
        "bit-var) on the λ = 0 embeddings, rescaled to norm sqrt(bits).",
        f"- Metric: {map_header(k, config.tie_break)}: AP@k divides by the relevant items in "
        "the top k, a query with none scores 0 and counts; relevant = sharing at least one "
        "label; ranking by Hamming distance, ties by the squared Euclidean distance of the "
        "L2-normalised continuous features (rotated for ITQ and H²Q), then by database id."
        + (f" {first.n_queries} queries, {first.n_database} database items." if first else ""),
        f"- Cells: {len(records)} of {n_cells_planned} scored.",
        "",
        "## mAP",
        "",
        table_markdown(table, config, k),
    ]
    if "map_vs_bits" in plots:
        lines += ["![mAP against bits](plots/map_vs_bits.png)", ""]
    lines += [
        "## Gains",
        "",
        "In mAP points (x100), per (method, bits) cell, each cell the mean over seeds; a win is a "
        "strictly higher mean.",
        "",
        improvements_markdown(improvements),
    ]
    if "gain_over_lambda0" in plots:
        lines += ["![gain over λ = 0](plots/gain_over_lambda0.png)", ""]
    pr = [p for name, p in plots.items() if name.startswith("pr_")]
    if pr:
        lines += [
            f"## Precision-recall at {config.figure_bits} bits",
            "",
            "One point per Hamming radius 0..bits (mean over seeds).",
            "",
        ]
        lines += [f"![precision-recall]({(Path('plots') / p.name).as_posix()})" for p in pr]
        lines.append("")
    lines += [
        "## Quantization loss",
        "",
        "Mean of (z' - sign z')² over the validation embeddings rescaled to norm sqrt(bits), "
        "after the row's rotation (none for the sign rows); mean over seeds.",
        "",
        quantization_loss_markdown(table, config),
    ]
    if "penalty" in config.row_keys:
        lines += ["## λ selection (+λ row)", "", lambda_markdown(records, config)]
    if result.failures:
        lines += ["## Failures", ""]
        lines += [f"- {f['what']}: {f['reason']}" for f in result.failures]
        lines.append("")
    fit_times = [r.fit_time_s for r in records if r.row.startswith("h2q-")]
    itq_times = [r.fit_time_s for r in records if r.row == "itq"]
    lines += [
        "## Time",
        "",
        f"- This call: {result.seconds:.0f} s wall ({len(result.trained)} stage-1 runs trained, "
        f"{len(result.computed)} cells computed; the rest were cached).",
        *[
            f"- Call {i} ({call.get('started', '?')}): {call.get('seconds', 0):.0f} s wall, "
            f"{call.get('trained', 0)} stage-1 runs trained, {call.get('computed', 0)} cells "
            f"computed, {call.get('jobs', '?')} worker(s) x {call.get('threads', '?')} torch "
            f"thread(s) on {call.get('cpu_count', '?')} CPUs."
            for i, call in enumerate(info.get("calls", []), start=1)
        ],
        f"- Stage-1 runs on disk: {info.get('stage1_runs', 0)}, "
        f"{info.get('stage1_seconds', 0.0):.0f} s in total, of which "
        f"{info.get('feature_seconds', 0.0):.0f} s feature extraction.",
    ]
    if fit_times:
        lines.append(
            f"- Stage 2 fit, median: H²Q {np.median(fit_times):.2f} s"
            + (f", ITQ {np.median(itq_times):.2f} s" if itq_times else "")
            + "."
        )
    lines += [
        f"- h2q {__version__}, Python {platform.python_version()}, {platform.machine()}.",
        "",
        "## Caveats",
        "",
        "- Not the paper's benchmarks or backbones (see the setup); compare the direction and "
        "size of the gains, not the absolute numbers.",
        *(
            ["- With one seed the table has no spread; small gains may be within seed noise."]
            if len(config.seeds) == 1
            else []
        ),
        "",
        "Files: table.md/.csv, improvements.md/.csv, quantization_loss.md/.csv, "
        "lambda_selection.md/.csv, cells.csv, plots/, runs/ (stage-1 runs), cells/ (one file "
        "per cell).",
        "",
    ]
    return "\n".join(line for line in lines if line is not None)
