"""Where `h2q reproduce` spends its CPU time, per phase, this tree against an anchor tree.

Runs one (method, bits) group of the default main job (``--methods dpsh --bits 32``: 5
stage-1 runs, 8 cells) in one process (``--jobs 1 --threads 1``, so that every phase can be
timed by wrapping its function) once with the anchor's source tree on ``PYTHONPATH`` (e.g.
the main branch's ``src``) and once with this tree's, ``--repeats`` times each into fresh
folders, the order alternating (the second run of a pair is slower on a shared machine).
Phases are CPU seconds of the process (``time.process_time``), since the machine is shared:
stage-1 training epochs, stage-1 validations, the rest of each stage-1 run,
stage-2 fits, stage-2 scoring (ranking and metrics), and the outputs (tables, statistics,
plots, report). Reports the median per phase and the ratio anchor / this tree, with the load
average and versions, to ``benchmarks/results/profile_reproduce.{json,md}``. It also checks
that both trees wrote the same stage-1 validation mAP and cell scores (bit for bit).

Usage::

    python benchmarks/profile_reproduce.py --anchor /work/main/src            # ~5 min
    python benchmarks/profile_reproduce.py --anchor /work/main/src --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
GROUP = ["--methods", "dpsh", "--bits", "32", "--seeds", "0"]

#: The child: wraps the phases' functions with CPU timers, runs the CLI, prints a JSON line.
CHILD = r"""
import collections, json, sys, time
try:
    import h2q.evaluation.supervised as ev
except ImportError:  # an anchor from before the evaluation package
    import h2q.evaluation as ev
import h2q.experiments.report as rep
import h2q.experiments.runner as runner
import h2q.training as tr
import h2q.training.loop as loop
acc = collections.Counter()
def wrap(obj, name, label):
    fn = getattr(obj, name)
    def timed(*a, **k):
        t = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            acc[label] += time.process_time() - t
    setattr(obj, name, timed)
wrap(loop._Loop, "train_epoch", "stage 1: training epochs")
wrap(loop, "validation_map", "stage 1: validations")
wrap(tr, "run_training", "stage 1: whole runs")
wrap(ev, "_fit", "stage 2: fits")
wrap(runner, "_evaluate_cell", "stage 2: fits + scoring")
wrap(rep, "write_outputs", "outputs")
from h2q.cli.main import main
t = time.process_time()
code = main(["reproduce", *sys.argv[2:], "--out", sys.argv[1]])
acc["total"] = time.process_time() - t
acc["stage 1: rest of a run"] = (acc["stage 1: whole runs"] - acc["stage 1: training epochs"]
                                 - acc["stage 1: validations"])
acc["stage 2: scoring"] = acc["stage 2: fits + scoring"] - acc["stage 2: fits"]
print("PHASES " + json.dumps(dict(acc)))
sys.exit(code)
"""


def run_tree(src: str, out: Path) -> dict[str, Any]:
    """One reproduce call with ``src`` first on PYTHONPATH; its phases and its scores."""
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    args = [*GROUP, "--jobs", "1", "--threads", "1", "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PHASES ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"reproduce with {src} failed:\n{proc.stderr[-3000:]}")
    return {"phases": json.loads(lines[-1][len("PHASES ") :]), "scores": scores(out)}


def scores(out: Path) -> dict[str, float]:
    """Best validation mAP of each stage-1 run and mAP@k of each cell of a results folder."""
    found = {}
    for path in sorted((out / "runs").rglob("summary.json")):
        found[str(path.parent.relative_to(out))] = json.loads(path.read_text())["best_val_map"]
    for path in sorted((out / "cells").rglob("*.json")):
        found[str(path.relative_to(out))] = json.loads(path.read_text())["map_at_k"]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", required=True, help="the anchor's src folder")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    load_start = list(os.getloadavg())
    trees = {"anchor": args.anchor, "this tree": str(SRC)}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            # Note: the second run of a pair is slower on a shared machine (about 10% here,
            # with the same tree on both sides), so the order alternates: A B, B A, ...
            for name in list(trees)[:: 1 if i % 2 == 0 else -1]:
                runs[name].append(
                    run_tree(trees[name], Path(tmp) / f"{name}-{i}".replace(" ", "_"))
                )
                print(name, runs[name][-1]["phases"], file=sys.stderr)
    phases = sorted({p for rs in runs.values() for r in rs for p in r["phases"]})
    medians = {
        name: {p: statistics.median(r["phases"].get(p, 0.0) for r in rs) for p in phases}
        for name, rs in runs.items()
    }
    a, b = runs["anchor"][0]["scores"], runs["this tree"][0]["scores"]
    record = {
        "group": " ".join(GROUP),
        "repeats": args.repeats,
        "anchor": args.anchor,
        "commits": {name: _commit(src) for name, src in trees.items()},
        "median_cpu_s": medians,
        "ratio_anchor_over_this": {
            p: medians["anchor"][p] / medians["this tree"][p]
            for p in phases
            if medians["this tree"][p] > 0
        },
        "same_scores": a == b,
        "scores_differing": sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)),
        "scores": {"anchor": a, "this tree": b},
        "environment": cpu_environment(load_start),
    }
    table = markdown(record)
    write_results("profile_reproduce", record, table)
    print(table)
    return 0


def _commit(src: str) -> str | None:
    """The checked-out commit (short) of the git tree holding ``src``, with "+" when it has
    changes; None outside git."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", src, *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    sha = git("rev-parse", "--short", "HEAD")
    return (sha + ("+" if git("status", "--porcelain", "--", ".") else "")) or None


def markdown(record: dict[str, Any]) -> str:
    env, med = record["environment"], record["median_cpu_s"]
    commits = record.get("commits", {})
    lines = [
        "# CPU seconds per phase of one group of the main job: anchor vs this tree",
        "",
        f"- group: `h2q reproduce {record['group']} --jobs 1 --threads 1` (5 stage-1 runs, "
        "8 cells); a seed of the default job is 9 such (method, bits) blocks on 2 workers",
        f"- anchor: {record['anchor']} (commit {commits.get('anchor')}), this tree: commit "
        f"{commits.get('this tree')}; median of {record['repeats']} repeats, the order "
        "alternating (anchor first, then this tree first, ...)",
        hardware_line(env),
        f"- versions: {env['versions']}",
        f"- same stage-1 validation mAP and cell mAP@k, bit for bit: {record['same_scores']}"
        + (f" (differ: {record['scores_differing']})" if not record["same_scores"] else ""),
        "",
        "| phase | anchor CPU s | this tree CPU s | anchor / this tree |",
        "|---|---:|---:|---:|",
    ]
    for p in med["anchor"]:
        ratio = record["ratio_anchor_over_this"].get(p)
        lines.append(
            f"| {p} | {med['anchor'][p]:.2f} | {med['this tree'][p]:.2f} | "
            + (f"{ratio:.2f}" if ratio is not None else "n/a")
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
