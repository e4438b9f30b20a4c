"""Everything a finished grid writes besides its runs and cells: tables, statistics, plots and
``report.md``.

Layout of the files written by :func:`write_outputs` (all atomically)::

    <out_dir>/
        table.md, table.csv                 mAP@k x100, rows method x strategy, columns bits
        improvements.md, improvements.csv   gain of each strategy over lambda = 0, and of
                                            H²Q (L2) over +lambda, +HSWD and +ITQ, with 95%
                                            intervals
        gains.csv                           the same per (method, bits) cell
        verdict.md                          the verdict's sentences
        paper_comparison.md                 the paper's headline numbers beside ours
        quantization_loss.md, .csv          L2 quantization loss of the validation embeddings
        lambda_selection.md, .csv           the "+lambda" row's choice on validation mAP
        stage1.md, stage1.csv               every stage-1 run: best validation mAP, epochs
        cells.csv                           one line per (method, row, bits, seed)
        summary.json                        facts for the documentation: settings, sizes, machines,
                                            wall time of every call
        plots/map_vs_bits.png
        plots/gain_over_lambda0.png
        plots/training_curves.png       validation mAP of every stage-1 run by epoch
        plots/training_loss.png         its training loss by epoch
        plots/pr_<method>_<bits>bits.png    one per method, at one bit length
        plots/retrieval_<method>_<bits>bits.png
                                            top results of fixed queries (image data sets;
                                            text data sets get a table in report.md)
        report.md                           the table, the statistics, the plots, the verdict

Every number comes from the grid's cell and run files; nothing is typed in by hand.
"""

from __future__ import annotations

import inspect
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from .._version import __version__
from ..losses import PENALTY
from ..quantizers import ITQ
from .config import GridConfig
from .grid import GridResult
from .paper import paper_comparison_markdown
from .plots import plot_gains, plot_map_vs_bits, plot_pr_curves, plot_training_curves
from .records import CellRecord, write_json
from .retrieval import write_retrieval
from .rows import ALTERNATIVES, BASELINE, H2Q_L2, ROW_BY_KEY, row_label
from .stage1 import Stage1Summary, read_stage1_runs
from .stats import Improvement, SummaryTable, compare, summarize
from .tables import (
    cells_csv,
    gains_csv,
    improvements_csv,
    improvements_markdown,
    lambda_csv,
    lambda_markdown,
    map_header,
    quantization_loss_csv,
    quantization_loss_markdown,
    stage1_csv,
    stage1_markdown,
    table_csv,
    table_markdown,
)

__all__ = ["describe", "improvements_of", "stage_constants", "verdict", "write_outputs"]


def _write_text(path: Path, text: str) -> None:
    _io.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def improvements_of(records: Sequence[CellRecord], config: GridConfig) -> list[Improvement]:
    """Gain of every computed strategy over lambda = 0, then of H²Q (L2) over +lambda, +HSWD
    and +ITQ (where those rows were computed), each with its 95% intervals
    (:func:`h2q.experiments.stats.compare`)."""
    kw: dict[str, Any] = {"methods": config.methods, "bits": config.bits}
    out = [compare(records, row, BASELINE, **kw) for row in config.row_keys if row != BASELINE]
    if H2Q_L2 in config.row_keys:
        out += [
            compare(records, H2Q_L2, other, **kw)
            for other in ALTERNATIVES
            if other in config.row_keys
        ]
    return out


def _is_h2q(row: str) -> bool:
    return row in ROW_BY_KEY and ROW_BY_KEY[row].is_h2q


def _cells_text(cells: Sequence[tuple[str, int, float]]) -> str:
    return ", ".join(f"{m.upper()} {b} bits {g:+.2f}" for m, b, g in cells)


def _named(cells: Sequence[tuple[str, int, float]], limit: int = 4) -> str:
    """``" (DCH 16 bits +0.50, ...)"`` when there are few cells, else ``""``."""
    return f" ({_cells_text(cells)})" if 0 < len(cells) <= limit else ""


def describe(imp: Improvement) -> str:
    """One sentence on ``imp``: the mean gain with its interval, and the cells where a
    difference was detected (named when few); undetected ones are only counted."""
    name, other = row_label(imp.row), row_label(imp.baseline)
    head = f"{name} vs {other}"
    if imp.n_cells == 0:
        return f"{head}: not both scored in any cell."
    if not imp.has_intervals or not math.isfinite(imp.interval.low):
        return (
            f"{head}: mean {imp.mean:+.2f} mAP points (no interval could be computed); higher "
            f"mean in {imp.wins} of {imp.n_cells} cells."
        )
    ci = f"95% interval {imp.interval.low:+.2f} to {imp.interval.high:+.2f}"
    sign = imp.interval.sign
    if sign == 0:
        overall = f"no detectable difference on average (mean {imp.mean:+.2f}, {ci})"
    else:
        word = "higher" if sign > 0 else "lower"
        overall = f"{word} on average, mean {imp.mean:+.2f} mAP points ({ci})"
    if len(imp.higher) == imp.n_cells:
        cells = f"higher in every cell ({imp.n_cells} / {imp.n_cells})"
    elif len(imp.lower) == imp.n_cells:
        cells = f"lower in every cell ({imp.n_cells} / {imp.n_cells})"
    elif len(imp.undetected) == imp.n_cells:
        cells = f"no detectable difference in any cell (0 / {imp.n_cells} higher or lower)"
    else:
        cells = (
            f"higher in {len(imp.higher) or 'none'} of {imp.n_cells} cells{_named(imp.higher)}, "
            "lower in "
            f"{len(imp.lower) or 'none'}{_named(imp.lower)}, no detectable difference in "
            f"{len(imp.undetected) or 'none'}"
        )
    return f"{head}: {overall}; {cells}."


def verdict(improvements: Sequence[Improvement]) -> list[str]:
    """Plain sentences: how H²Q (L2) compares with lambda = 0, its other losses, and +lambda,
    +HSWD and ITQ. Only differences whose 95% interval excludes zero are called higher or
    lower; the rest are "no detectable difference"."""
    by_key = {(imp.row, imp.baseline): imp for imp in improvements}
    main = by_key.get((H2Q_L2, BASELINE))
    if main is None or main.n_cells == 0:
        return ["H²Q (L2) and λ = 0 were not both scored in any cell; no verdict."]
    lines = [describe(main)]
    lines += [
        describe(imp)
        for imp in improvements
        if imp.baseline == BASELINE and _is_h2q(imp.row) and imp.row != H2Q_L2
    ]
    for other in ALTERNATIVES:
        lines += [
            describe(by_key[key]) for key in ((other, BASELINE), (H2Q_L2, other)) if key in by_key
        ]
    spread = next((imp.spread for imp in improvements if imp.spread), "")
    if spread:
        lines.append(f"Intervals: {spread}.")
    return lines


def stage_constants(config: GridConfig) -> dict[str, Any]:
    """Settings of the strategies that the grid takes from the code, read from that code: the
    "+HSWD" weight and the number of ITQ iterations."""
    from ..losses import HashingObjective

    weight = getattr(config, "hswd_weight", None)
    if weight is None:
        weight = inspect.signature(HashingObjective).parameters["hswd_weight"].default
    return {
        "hswd_weight": weight,
        "itq_iterations": ROW_BY_KEY[ITQ].make_quantizer(0, solver=config.h2q_solver).max_iter,
    }


def _text_encoder(config: GridConfig) -> str | None:
    """The sentence encoder under stage 1 of a text data set's grid (None for images)."""
    from .config import TEXT_DATASETS

    if str(config.train.dataset).strip().lower().replace("_", "-") not in TEXT_DATASETS:
        return None
    from ..text import DEFAULT_MODEL

    return DEFAULT_MODEL


def _setup_text(config: GridConfig, info: dict[str, Any]) -> str:
    """Short description of our data, backbone and seeds (for the paper comparison)."""
    backbone = info.get("backbone") or config.train.backbone or "default backbone"
    frozen = (
        f"frozen {backbone} at {config.train.image_size} px" if config.train.frozen else backbone
    )
    encoder = _text_encoder(config)
    if encoder is not None:
        frozen = f"MLP head on frozen {encoder} embeddings"
    n = len(config.seeds)
    return f"{config.train.dataset}, {frozen}, {n} seed{'s' if n > 1 else ''}"


def summary_facts(result: GridResult, k: int, improvements: Sequence[Improvement]) -> dict:
    """The facts ``summary.json`` records for the documentation: settings, fold sizes, the machines
    and wall time of every call of the grid, and how the intervals were computed."""
    config, records, info = result.config, result.records, result.info
    calls = list(info.get("calls", []))
    working = [c for c in calls if c.get("trained") or c.get("computed")] or calls
    machines = [c.get("machine") or {} for c in working]
    first = records[0] if records else None
    return {
        "grid": config.name,
        "dataset": config.train.dataset,
        "methods": list(config.methods),
        "bits": list(config.bits),
        "seeds": list(config.seeds),
        "rows": list(config.row_keys),
        "k": k,
        "metric": map_header(k, config.tie_break),
        "max_database": config.train.max_database,
        "split_sizes": info.get("split_sizes"),
        "n_queries": first.n_queries if first else None,
        "n_database": first.n_database if first else None,
        "setup": _setup_text(config, info),
        "constants": stage_constants(config),
        "cells": len(records),
        "cells_planned": len(config.methods)
        * len(config.bits)
        * len(config.seeds)
        * len(config.row_keys),
        "stage1_runs": info.get("stage1_runs", 0),
        "calls": calls,
        "wall_seconds": float(sum(float(c.get("seconds") or 0.0) for c in calls)),
        "cpus": sorted({m.get("cpu", "unknown") for m in machines}),
        "intervals": next((imp.spread for imp in improvements if imp.spread), ""),
        "h2q_version": __version__,
    }


def write_outputs(result: GridResult) -> dict[str, Path]:
    """Write the tables, statistics, plots, ``summary.json`` and ``report.md`` of a grid.

    Parameters
    ----------
    result : GridResult
        From :func:`h2q.experiments.grid.run_grid` (or rebuilt from a results folder). The
        retrieval figure shows items of the data set in ``result.environment.root``.

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
    improvements = improvements_of(records, config)
    runs = read_stage1_runs(config, records, out, known=result.stage1)
    chosen = {r.stage1_run for r in records if r.row == PENALTY}
    setup = _setup_text(config, result.info)
    files: dict[str, Path] = {}

    def text(name: str, content: str) -> None:
        files[name] = out / name
        _write_text(out / name, content)

    text("table.md", table_markdown(table, config, k))
    text("table.csv", table_csv(table, config, k))
    text("improvements.md", improvements_markdown(improvements))
    text("improvements.csv", improvements_csv(improvements))
    text("gains.csv", gains_csv(improvements))
    text("verdict.md", "".join(f"- {line}\n" for line in verdict(improvements)))
    text("paper_comparison.md", paper_comparison_markdown(improvements, table, config, setup))
    text("quantization_loss.md", quantization_loss_markdown(table, config))
    text("quantization_loss.csv", quantization_loss_csv(table, config))
    text("lambda_selection.md", lambda_markdown(records, config))
    text("lambda_selection.csv", lambda_csv(records))
    text("stage1.md", stage1_markdown(runs, chosen))
    text("stage1.csv", stage1_csv(runs))
    text("cells.csv", cells_csv(records))
    files["summary.json"] = out / "summary.json"
    write_json(out / "summary.json", summary_facts(result, k, improvements))

    plots = _write_plots(result, table, improvements, runs, k)
    files.update({f"plots/{p.name}": p for p in plots.values()})
    seen = write_retrieval(config, records, out, root=result.environment.root)
    files.update(seen.files)
    text("report.md", _report(result, table, improvements, runs, chosen, k, plots, seen.lines))
    return files


def _write_plots(
    result: GridResult,
    table: SummaryTable,
    improvements: Sequence[Improvement],
    runs: Sequence[Stage1Summary],
    k: int,
) -> dict[str, Path]:
    config, records = result.config, result.records
    plots_dir = Path(result.out_dir) / "plots"
    plots: dict[str, Path] = {}
    if not records:
        return plots
    plots["map_vs_bits"] = plots_dir / "map_vs_bits.png"
    metric = map_header(k, config.tie_break) + " x100"
    plot_map_vs_bits(table, config, plots["map_vs_bits"], metric=metric)
    gains = [imp for imp in improvements if imp.baseline == BASELINE]
    if gains:
        plots["gain_over_lambda0"] = plots_dir / "gain_over_lambda0.png"
        plot_gains(gains, config, plots["gain_over_lambda0"])
    if any(r.epochs for r in runs):
        plots["training_curves"] = plots_dir / "training_curves.png"
        plot_training_curves(runs, config, plots["training_curves"])
        plots["training_loss"] = plots_dir / "training_loss.png"
        plot_training_curves(runs, config, plots["training_loss"], quantity="loss")
    for path in plot_pr_curves(records, config, plots_dir, config.figure_bits):
        plots[path.stem] = path
    return plots


def _setup_lines(result: GridResult, k: int) -> list[str]:
    config, records, info = result.config, result.records, result.info
    train, loop = config.train, config.train.loop
    sizes = info.get("split_sizes") or {}
    first = records[0] if records else None
    const = stage_constants(config)
    encoder = _text_encoder(config)
    bf16 = " (its matrix products in bfloat16, float32 accumulation)"
    bf16 = bf16 if info.get("precision") == "bfloat16" and train.hidden else ""
    head = f"an MLP head {list(train.hidden)}{bf16}"
    network = f"backbone {info.get('backbone', train.backbone)}" + (
        f" frozen at {train.image_size or 'default'} px (features cached) with {head}"
        if train.frozen
        else bf16
    )
    if encoder is not None:
        network = (
            f"{head} on the frozen {encoder} sentence embeddings of the texts (computed once, "
            "cached)"
        )
    return [
        f"- Data: {train.dataset}; folds train {sizes.get('train', '?')}, validation "
        f"{sizes.get('val', '?')}, query {sizes.get('query', '?')}, database "
        f"{sizes.get('database', '?')}"
        + (f" (capped at {train.max_database})" if train.max_database else "")
        + ".",
        f"- Stage 1: {network}"
        + f"; Adam, head lr {loop.lr_head:g}, up to {loop.epochs} epochs, early stopping on "
        f"validation mAP (patience {loop.patience}, checked every {loop.eval_every} "
        f"epoch(s)); device {info.get('device', '?')}.",
        f"- Methods: {', '.join(m.upper() for m in config.methods)}; bits "
        f"{', '.join(map(str, config.bits))}; seeds {', '.join(map(str, config.seeds))}.",
        "- Strategies: λ = 0 (codes = sign); +λ (the method's penalty on tanh outputs, λ chosen "
        f"on validation mAP, see below); +HSWD (weight {const['hswd_weight']:g}); +ITQ (correct "
        f"Procrustes step, {const['itq_iterations']} iterations) and +H²Q (solver "
        f"{config.h2q_solver!r}; losses L2, L1, min-entry, bit-var) on the λ = 0 embeddings, "
        "rescaled to norm sqrt(bits).",
        f"- Metric: {map_header(k, config.tie_break)}: AP@k divides by the relevant items in "
        "the top k, a query with none scores 0 and counts; relevant = sharing at least one "
        "label; ranking by Hamming distance, ties by the squared Euclidean distance of the "
        "L2-normalised continuous features (rotated for ITQ and H²Q), then by database id."
        + (f" {first.n_queries} queries, {first.n_database} database items." if first else ""),
        f"- Cells: {len(records)} of "
        f"{len(config.methods) * len(config.bits) * len(config.seeds) * len(config.row_keys)} "
        "scored.",
    ]


def _spread_lines(config: GridConfig) -> list[str]:
    if len(config.seeds) > 1:
        return [
            "Cells of the mAP table: mean ± sample standard deviation over seeds. Gains: each "
            "seed's paired difference (both strategies on that seed's split) is one sample; "
            "95% t interval over seeds, for each cell and for the mean over cells (per seed, "
            "the mean gain over the cells)."
        ]
    return [
        "One seed: cells of the mAP table show ± the standard error over queries. Gains: 95% "
        "paired percentile bootstrap over queries (both strategies resampled with the same "
        "queries; the mean over cells resamples the shared query fold once for all cells). "
        "These intervals measure query sampling only, not the spread between stage-1 "
        "trainings (other seeds, or the same seed on another CPU), which can be larger; "
        "`--seeds 0 1 2` measures that."
    ]


def _time_lines(result: GridResult, records: Sequence[CellRecord]) -> list[str]:
    info = result.info
    fit_times = [r.result.fit_time_s for r in records if _is_h2q(r.row)]
    itq_times = [r.result.fit_time_s for r in records if r.row == ITQ]
    lines = [
        "## Time and machine",
        "",
        f"- This call: {result.seconds:.0f} s wall ({len(result.trained)} stage-1 runs trained, "
        f"{len(result.computed)} cells computed; the rest were cached).",
    ]
    for i, call in enumerate(info.get("calls", []), start=1):
        machine = call.get("machine") or {}
        cpu = ""
        if machine:
            flags = ", ".join(machine.get("vector_flags") or []) or "?"
            cpu = (
                f" on {machine.get('cpu', '?')} (vector instructions {flags}; torch "
                f"{machine.get('torch', '?')} dispatching to "
                f"{machine.get('torch_cpu_capability', '?')})"
            )
        lines.append(
            f"- Call {i} ({call.get('started', '?')}): {call.get('seconds', 0):.0f} s wall, "
            f"{call.get('trained', 0)} stage-1 runs trained, {call.get('computed', 0)} cells "
            f"computed, {call.get('jobs', '?')} worker(s) x {call.get('threads', '?')} torch "
            f"thread(s) on {call.get('cpu_count', '?')} CPUs{cpu}."
        )
    lines.append(
        f"- Stage-1 runs on disk: {info.get('stage1_runs', 0)}, "
        f"{info.get('stage1_seconds', 0.0):.0f} s in total, of which "
        f"{info.get('feature_seconds', 0.0):.0f} s feature extraction."
    )
    if fit_times:
        lines.append(
            f"- Stage 2 fit, median: H²Q {np.median(fit_times):.2f} s"
            + (f", ITQ {np.median(itq_times):.2f} s" if itq_times else "")
            + "."
        )
    lines += [
        f"- h2q {__version__}, Python {platform.python_version()}, {platform.machine()}.",
        "- Float reductions in torch and oneDNN depend on the CPU's vector instructions (AVX2, "
        "AVX-512): the same seeded run on another kind of CPU gives slightly different "
        "features, which training amplifies; compare tables made on the same kind of CPU.",
        "",
    ]
    return lines


def _report(
    result: GridResult,
    table: SummaryTable,
    improvements: Sequence[Improvement],
    runs: Sequence[Stage1Summary],
    chosen: set[str],
    k: int,
    plots: dict[str, Path],
    retrieval: Sequence[str] = (),
) -> str:
    config, records = result.config, result.records
    lines = [
        f"# H²Q reproduction: {config.train.dataset} ({config.name} grid)",
        "",
        "## Verdict",
        "",
        *[f"- {line}" for line in verdict(improvements)],
        "",
        "## Setup",
        "",
        *_setup_lines(result, k),
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
        *_spread_lines(config),
        "",
        improvements_markdown(improvements),
        "Per cell: gains.csv.",
        "",
    ]
    if "gain_over_lambda0" in plots:
        lines += ["![gain over λ = 0](plots/gain_over_lambda0.png)", ""]
    lines += [
        "## The paper beside ours",
        "",
        paper_comparison_markdown(improvements, table, config, _setup_text(config, result.info)),
    ]
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
    lines += retrieval
    lines += [
        "## Quantization loss",
        "",
        "Mean of (z' - sign z')² over the validation embeddings rescaled to norm sqrt(bits), "
        "after the row's rotation (none for the sign rows); mean over seeds.",
        "",
        quantization_loss_markdown(table, config),
    ]
    if PENALTY in config.row_keys:
        lines += ["## λ selection (+λ row)", "", lambda_markdown(records, config)]
    lines += ["## Stage-1 runs", "", stage1_markdown(runs, chosen)]
    if "training_curves" in plots:
        lines += ["![stage-1 validation mAP](plots/training_curves.png)", ""]
    if "training_loss" in plots:
        lines += ["![stage-1 training loss](plots/training_loss.png)", ""]
    if result.failures:
        lines += ["## Failures", ""]
        lines += [f"- {f['what']}: {f['reason']}" for f in result.failures]
        lines.append("")
    lines += _time_lines(result, records)
    lines += [
        "## Caveats",
        "",
        "- Not the paper's benchmarks or backbones (see the setup); compare the direction and "
        "size of the gains, not the absolute numbers.",
        *(
            [
                "- One seed: the intervals cover query sampling only; a difference called "
                "detected here may still be within the spread between stage-1 trainings."
            ]
            if len(config.seeds) == 1
            else []
        ),
        "",
        "Files: table.md/.csv, improvements.md/.csv, gains.csv, verdict.md, "
        "paper_comparison.md, quantization_loss.md/.csv, lambda_selection.md/.csv, "
        "stage1.md/.csv, cells.csv, summary.json, plots/, runs/ (stage-1 runs), cells/ (one "
        "file per cell).",
        "",
    ]
    return "\n".join(lines)
