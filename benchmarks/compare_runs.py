"""Two runs of the main job side by side: do their numbers differ by more than the seed spread?

For a change that cannot keep the main job's numbers bit for bit (another float rounding, a
faster kernel), the question is whether the two runs differ by more than the runs of one
version differ among seeds. Reads ``cells.csv`` and ``stage1.csv`` of two results folders (an
``h2q reproduce --out`` folder or a kept one such as ``docs/results/default``), and for every
(method, row, bits) of the table reports the mean mAP@k over the seeds of each run, their
difference, and the sample standard deviation over the seeds of the first run; the same for
the best validation mAP of every kind of stage-1 run. Writes
``benchmarks/results/<name>.{json,md}`` (``--name``, default ``compare_runs``).

Usage::

    python benchmarks/compare_runs.py --before benchmarks/results/main_job_b11500b \\
        --after results/default [--name compare_runs] [--title "..."]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench_encode import write_results

#: Heading of the Markdown table unless ``--title`` names another.
TITLE = "Two runs of the main job: differences against the seed spread"


def grouped(path: Path, key_fields: tuple[str, ...], value: str) -> dict[tuple, list[float]]:
    """Values of column ``value`` of a CSV, grouped by ``key_fields`` (one per seed)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            groups[tuple(row[f] for f in key_fields)].append(float(row[value]))
    return groups


def machine(folder: Path) -> dict[str, Any]:
    """The machine of a results folder's last ``h2q reproduce`` call (its ``summary.json``)."""
    try:
        calls = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["calls"]
        facts = calls[-1]["machine"]
    except (OSError, KeyError, IndexError, ValueError):
        return {"cpu": "an unrecorded CPU"}
    flags = facts.get("vector_flags") or []
    return {"cpu": facts.get("cpu"), "n_cpus": facts.get("cpu_count"), "vector_flags": flags}


def compare(before: dict[tuple, list[float]], after: dict[tuple, list[float]]) -> list[dict]:
    rows = []
    for key in before:
        if key not in after:
            continue
        b, a = before[key], after[key]
        sd = statistics.stdev(b) if len(b) > 1 else float("nan")
        diff = statistics.mean(a) - statistics.mean(b)
        rows.append(
            {
                "key": list(key),
                "before": statistics.mean(b),
                "after": statistics.mean(a),
                "diff": diff,
                "seed_sd_before": sd,
                "within_sd": abs(diff) <= sd,
                "within_2sd": abs(diff) <= 2 * sd,
                "seeds": [len(b), len(a)],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path)
    parser.add_argument("--after", required=True, type=Path)
    parser.add_argument("--name", default="compare_runs", help="stem of the result files")
    parser.add_argument("--title", default=TITLE, help="heading of the Markdown table")
    args = parser.parse_args(argv)
    cell_key = ("method", "row", "n_bits")
    run_key = ("method", "strategy", "lambda", "n_bits")
    machines = {"before": machine(args.before), "after": machine(args.after)}
    record: dict[str, Any] = {
        "title": args.title,
        "before": str(args.before),
        "after": str(args.after),
        "environment": machines["after"],
        "machines": machines,
        "cells": compare(
            grouped(args.before / "cells.csv", cell_key, "map_at_k"),
            grouped(args.after / "cells.csv", cell_key, "map_at_k"),
        ),
        "stage1": compare(
            grouped(args.before / "stage1.csv", run_key, "best_val_map"),
            grouped(args.after / "stage1.csv", run_key, "best_val_map"),
        ),
    }
    table = markdown(record)
    write_results(args.name, record, table)
    print(table)
    return 0


def _summary(rows: list[dict]) -> str:
    n = len(rows)
    within = sum(r["within_sd"] for r in rows)
    within2 = sum(r["within_2sd"] for r in rows)
    mean_abs = statistics.mean(abs(r["diff"]) for r in rows) * 100 if rows else float("nan")
    mean = statistics.mean(r["diff"] for r in rows) * 100 if rows else float("nan")
    return (
        f"{n} compared; |after - before| <= 1 seed sd in {within}, <= 2 sd in {within2}; "
        f"mean |after - before| {mean_abs:.2f} points, mean after - before {mean:+.2f}"
    )


def _machines(record: dict[str, Any]) -> list[str]:
    machines = record.get("machines")
    if not machines:
        return []
    b, a = machines["before"], machines["after"]
    return [
        f"- run on: before {b.get('cpu')} ({b.get('n_cpus', '?')} CPUs), after "
        f"{a.get('cpu')} ({a.get('n_cpus', '?')} CPUs)"
    ]


def markdown(record: dict[str, Any]) -> str:
    title = record.get("title", TITLE)
    lines = [
        f"# {title}",
        "",
        f"- before: `{record['before']}`; after: `{record['after']}`",
        *_machines(record),
        f"- table cells (mAP@k, mean over seeds): {_summary(record['cells'])}",
        f"- stage-1 runs (best validation mAP, mean over seeds): {_summary(record['stage1'])}",
        "",
        "| method | row | bits | before | after | after - before | seed sd (before) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in record["cells"]:
        method, row, bits = r["key"]
        lines.append(
            f"| {method} | {row} | {bits} | {100 * r['before']:.2f} | {100 * r['after']:.2f} | "
            f"{100 * r['diff']:+.2f} | {100 * r['seed_sd_before']:.2f} |"
        )
    lines += [
        "",
        "| stage-1 run | bits | before | after | after - before | seed sd (before) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in record["stage1"]:
        method, strategy, lam, bits = r["key"]
        name = f"{method} {strategy}" + (f" λ={lam}" if lam else "")
        lines.append(
            f"| {name} | {bits} | {100 * r['before']:.2f} | {100 * r['after']:.2f} | "
            f"{100 * r['diff']:+.2f} | {100 * r['seed_sd_before']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
