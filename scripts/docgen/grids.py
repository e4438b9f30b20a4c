"""The results pages of the grids, made from their kept outputs alone.

The main job (``h2q reproduce``) is kept in ``docs/results/default`` and the WordNet grid
(``h2q reproduce --dataset wordnet``) in ``docs/results/wordnet``; :data:`JOBS` names both.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from h2q.experiments.records import read_json

from .kept import PROVENANCE_FILE, check_results

#: The kept folder of each grid, relative to the repository root.
JOBS: dict[str, str] = {"default": "docs/results/default", "wordnet": "docs/results/wordnet"}


def duration(seconds: float) -> str:
    """``"13 min 35 s"`` (or ``"42 s"`` under a minute)."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def machines(summary: dict[str, Any]) -> str:
    """The machines of the calls that trained or computed something (a call that found every
    cell done only rewrote the outputs)."""
    calls = summary.get("calls", [])
    working = [c for c in calls if c.get("trained") or c.get("computed")] or calls
    names: list[str] = []
    for call in working:
        m = call.get("machine") or {}
        flags = ", ".join(m.get("vector_flags") or [])
        load = m.get("load_average")
        text = (
            f"{m.get('cpu', 'an unrecorded CPU')} ({m.get('cpu_count', '?')} CPUs; "
            + (f"vector instructions {flags}; " if flags else "")
            + f"torch {m.get('torch', '?')}"
            + (f"; 15-minute load average {load[-1]:g} at the end" if load else "")
            + ")"
            if m
            else "an unrecorded machine"
        )
        if text not in names:
            names.append(text)
    return " and ".join(names) if names else "an unrecorded machine"


def facts(summary: dict[str, Any]) -> str:
    """One paragraph: what the grid ran, where, and how long it took."""
    calls = summary.get("calls", [])
    n_calls = len(calls)
    sizes = summary.get("split_sizes") or {}
    seeds = summary.get("seeds", [])
    return (
        f"Grid `{summary.get('grid')}`: {summary.get('setup')}; methods "
        f"{', '.join(m.upper() for m in summary.get('methods', []))}; "
        f"{'/'.join(map(str, summary.get('bits', [])))} bits; seed"
        f"{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}; folds train "
        f"{sizes.get('train', '?')}, validation {sizes.get('val', '?')}, query "
        f"{summary.get('n_queries')}, database {summary.get('n_database')}; "
        f"{summary.get('cells')} of {summary.get('cells_planned')} cells scored. "
        f"Computed on **{machines(summary)}** in **{duration(summary.get('wall_seconds', 0))}"
        f"** of grid wall time ({n_calls} call{'s' if n_calls != 1 else ''} of `h2q "
        "reproduce`, set-up not included)."
    )


def _read(kept: Path, name: str) -> str:
    return (kept / name).read_text(encoding="utf-8").strip()


def kept_outputs(kept_dir: Path, page_dir: Path) -> tuple[Path, dict[str, Any], str]:
    """The kept folder (checked), its summary, and its path relative to the page's folder."""
    kept = Path(kept_dir)
    check_results(kept)
    summary = read_json(kept / "summary.json")
    link = Path(os.path.relpath(kept.resolve(), Path(page_dir).resolve())).as_posix()
    return kept, summary, link


def main_job_lines(kept_dir: Path, page_dir: Path) -> list[str]:
    """The main job's results (table, gains, plot, verdict, the paper beside ours)."""
    kept, summary, link = kept_outputs(kept_dir, page_dir)
    lines = [
        facts(summary),
        "",
        f"Every figure below is read from the kept outputs in [`{link}/`]({link}/summary.json) "
        f"(full report: [`{link}/report.md`]({link}/report.md)).",
        "",
        _read(kept, "table.md"),
        "",
        _read(kept, "improvements.md"),
        "",
    ]
    if (kept / "plots" / "gain_over_lambda0.png").is_file():
        lines += [f"![gain of each strategy over λ = 0]({link}/plots/gain_over_lambda0.png)", ""]
    lines += [
        "**Verdict** (generated; a difference is named only when its 95% interval excludes zero):",
        "",
        _read(kept, "verdict.md"),
        "",
        "**The paper beside ours.**",
        "",
        _read(kept, "paper_comparison.md"),
    ]
    return lines


def _csv_sum(path: Path, column: str) -> tuple[int, float]:
    """Rows of a kept CSV file and the sum of one of its columns (blank cells count 0)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return len(rows), sum(float(r.get(column) or 0.0) for r in rows)


def _times(kept: Path) -> str:
    """Where the grid's time went, from ``stage1.csv`` and ``cells.csv``."""
    parts = []
    if (kept / "stage1.csv").is_file():
        n, seconds = _csv_sum(kept / "stage1.csv", "seconds")
        parts.append(f"{n} stage-1 runs took {duration(seconds)} summed over runs")
    if (kept / "cells.csv").is_file():
        n, seconds = _csv_sum(kept / "cells.csv", "fit_time_s")
        parts.append(f"the stage-2 fits of the {n} cells {duration(seconds)}")
    return ("The " + " and ".join(parts) + ".") if parts else ""


def _still_improving(kept: Path) -> str:
    """How many stage-1 runs had their best validation mAP at their last epoch without
    stopping early (so they stopped at the epoch cap while still improving)."""
    path = kept / "stage1.csv"
    if not path.is_file():
        return ""
    with open(path, encoding="utf-8", newline="") as handle:
        runs = list(csv.DictReader(handle))
    capped = [
        r
        for r in runs
        if r.get("stopped_early") == "False" and r.get("best_epoch") == r.get("epochs_run")
    ]
    if not runs:
        return ""
    return (
        f"{len(capped)} of the {len(runs)} stage-1 runs had their best validation mAP at their "
        "last epoch, the preset's cap (still improving when stopped)."
    )


def _provenance(kept: Path) -> str:
    path = kept / PROVENANCE_FILE
    if not path.is_file():
        return "The commit it was computed with was not recorded."
    record = read_json(path)
    if "stage2_commit" not in record:
        return f"Computed with h2q commit `{record['commit']}`."
    return (
        f"Stage 1 computed with h2q commit `{record['commit']}`, the stage-2 cells redone "
        f"with `{record['stage2_commit']}` (`--redo-stage2`)."
    )


def wordnet_lines(kept_dir: Path, page_dir: Path) -> list[str]:
    """The WordNet grid's results (table, gains, verdict), with its times and commits."""
    kept, summary, link = kept_outputs(kept_dir, page_dir)
    paragraph = " ".join(
        t for t in (facts(summary), _times(kept), _still_improving(kept), _provenance(kept)) if t
    )
    return [
        paragraph,
        "",
        f"Every figure below is read from the kept outputs in [`{link}/`]({link}/summary.json) "
        f"(full report, with the top results of four queries under λ = 0, H²Q and +λ: "
        f"[`{link}/report.md`]({link}/report.md)).",
        "",
        _read(kept, "table.md"),
        "",
        _read(kept, "improvements.md"),
        "",
        "**Verdict on text** (generated; a difference is named only when its 95% interval "
        "excludes zero):",
        "",
        _read(kept, "verdict.md"),
    ]
