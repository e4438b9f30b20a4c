"""Whether a results folder of ``h2q reproduce`` has the kept main job's numbers, bit for bit.

Reads every stage-1 run (``runs/**/summary.json``: best validation mAP) and every cell
(``cells/**/*.json``: mAP@k, mAP over the whole ranking, precision@k) of ``--out`` and looks
each up in the kept results (``docs/results/default/stage1.csv`` and ``cells.csv``, default),
comparing the floats exactly (the CSVs hold Python's shortest round-trip repr). A part of the
default grid (e.g. ``--methods hyp2 --bits 64 --seeds 0``) is enough: only what the folder
holds is compared. Writes ``benchmarks/results/compare_kept_results.{json,md}``.

Usage::

    python benchmarks/compare_kept_results.py --out results/part
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path
from typing import Any

from bench_encode import write_results

HERE = Path(__file__).resolve().parent
KEPT = HERE.parent / "docs" / "results" / "default"
CELL_FIELDS = ("map_at_k", "map_all", "precision_at_k")


def kept_values(kept: Path) -> dict[str, float]:
    """``{key: value}`` of the kept stage-1 runs and cells (keys as :func:`found_values`)."""
    values: dict[str, float] = {}
    with (kept / "stage1.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            values[f"run {row['run']} best_val_map"] = float(row["best_val_map"])
    with (kept / "cells.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            cell = f"{row['method']}/{row['row']}/b{row['n_bits']}-s{row['seed']}"
            for name in CELL_FIELDS:
                values[f"cell {cell} {name}"] = float(row[name])
    return values


def found_values(out: Path) -> dict[str, float]:
    """The same quantities read from a results folder's run and cell files."""
    values: dict[str, float] = {}
    for path in sorted((out / "runs").rglob("summary.json")):
        run = path.parent.relative_to(out / "runs").as_posix()
        values[f"run {run} best_val_map"] = float(json.loads(path.read_text())["best_val_map"])
    for path in sorted((out / "cells").rglob("*.json")):
        record = json.loads(path.read_text())
        cell = path.relative_to(out / "cells").with_suffix("").as_posix()
        for name in CELL_FIELDS:
            values[f"cell {cell} {name}"] = float(record[name])
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="results folder to check")
    parser.add_argument("--kept", type=Path, default=KEPT, help="kept results folder")
    args = parser.parse_args(argv)
    kept, found = kept_values(args.kept), found_values(args.out)
    missing = sorted(k for k in found if k not in kept)
    differ = sorted(k for k in found if k in kept and found[k] != kept[k])
    record: dict[str, Any] = {
        "out": str(args.out),
        "kept": str(args.kept),
        "compared": len(found) - len(missing),
        "equal": len(found) - len(missing) - len(differ),
        "differ": {k: {"found": found[k], "kept": kept[k]} for k in differ},
        "not_in_kept": missing,
        "load_average": list(os.getloadavg()),
    }
    table = markdown(record)
    write_results("compare_kept_results", record, table)
    print(table)
    return 0 if not differ and not missing else 1


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# A results folder against the kept main job, bit for bit",
        "",
        f"- folder: `{record['out']}`; kept: `{record['kept']}`",
        f"- numbers compared: {record['compared']}; equal: {record['equal']}; "
        f"differ: {len(record['differ'])}; not in the kept results: "
        f"{len(record['not_in_kept'])}",
    ]
    for key, pair in record["differ"].items():
        lines.append(f"- differs: {key}: {pair['found']!r} (kept {pair['kept']!r})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
