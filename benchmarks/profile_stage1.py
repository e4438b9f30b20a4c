"""Where a stage-1 run of the default main job spends its CPU time.

One seeded ``run_training`` run per kind of run in the default grid (``h2q reproduce``
defaults: Fashion-MNIST, frozen EfficientNet-Lite0 features from the cache, MLP head, 32 bits):
DPSH lambda = 0, DCH +lambda (0.1) and HyP² +HSWD, each repeated ``--repeats`` times after one
warm-up run (which also fills the feature cache and pays the one-time imports), on the data set
loaded once and passed to every run, as a grid worker does (so its later runs find the
frozen features in memory, :mod:`h2q.training.frozen`). The phases are
timed with ``time.process_time`` (CPU seconds of this process, 1 torch thread), not wall time,
since the machine is shared: data loading, model set-up and cached features, the training
epochs, the validation passes (embedding the validation and training folds, ranking, mAP), the
checkpoint writes and the final embedding. The median over repeats per phase is reported with
the estimate of the main job's stage-1 time per seed: CPU per run x 45 runs / 2 workers.

This is a profile, not a comparison: it has no anchor; the ratios are shares of a run.

Usage::

    python benchmarks/profile_stage1.py             # ~2 min of CPU
    python benchmarks/profile_stage1.py --repeats 1
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

import h2q.training.loop as loop_mod
import h2q.training.run as run_mod
from h2q._threads import thread_limit
from h2q.data import Dataset, load_dataset
from h2q.experiments.config import get_config
from h2q.training import TrainConfig, run_training

RUNS = (("dpsh", "lambda0", None), ("dch", "penalty", 0.1), ("hyp2", "hswd", None))
#: (module, attribute, phase) timed by wrapping.
PHASES = (
    (run_mod, "_load", "load data"),
    (run_mod, "_build", "model + cached features"),
    (loop_mod._Loop, "train_epoch", "training epochs"),
    (loop_mod, "validation_map", "validation"),
    (loop_mod._Loop, "save_last", "checkpoint last.pt"),
    (loop_mod, "save_checkpoint", "checkpoint best.pt"),
    (run_mod, "embed", "final embedding"),
)


def _timed(fn: Callable[..., Any], acc: collections.Counter, label: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += time.process_time() - start

    return wrapper


def profile_run(config: TrainConfig, data: Dataset, acc: collections.Counter) -> dict[str, Any]:
    originals = [(obj, name, getattr(obj, name)) for obj, name, _ in PHASES]
    for (obj, name, label), (_, _, fn) in zip(PHASES, originals, strict=True):
        setattr(obj, name, _timed(fn, acc, label))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.process_time()
            result = run_training(config, Path(tmp) / "run", data=data, progress=False)
            total = time.process_time() - start
    finally:
        for obj, name, fn in originals:
            setattr(obj, name, fn)
    return {
        "cpu_s": total,
        "phases_cpu_s": dict(acc),
        "epochs_run": result.train.epochs_run,
        "validations": sum(1 for r in result.train.history if r.val_map == r.val_map),
        "best_val_map": result.train.best_val_map,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    grid = get_config("default")
    template = grid.train
    load_start = list(os.getloadavg())
    rows = []
    data = load_dataset(template.dataset)
    with thread_limit(1):
        for method, strategy, lam in RUNS:
            config = template.replace(method=method, n_bits=32, strategy=strategy, lam=lam)
            reps = [
                profile_run(config, data, collections.Counter()) for _ in range(1 + args.repeats)
            ]
            timed = reps[1:]
            phases = sorted({p for r in timed for p in r["phases_cpu_s"]})
            rows.append(
                {
                    "run": f"{method} {strategy}" + (f" lam={lam:g}" if lam is not None else ""),
                    "cpu_s_median": statistics.median(r["cpu_s"] for r in timed),
                    "phases_cpu_s_median": {
                        p: statistics.median(r["phases_cpu_s"].get(p, 0.0) for r in timed)
                        for p in phases
                    },
                    "warmup_cpu_s": reps[0]["cpu_s"],
                    "epochs_run": timed[0]["epochs_run"],
                    "validations": timed[0]["validations"],
                    "best_val_map": timed[0]["best_val_map"],
                }
            )
            print(rows[-1], file=sys.stderr)
    per_run = statistics.mean(r["cpu_s_median"] for r in rows)
    n_runs = len(grid.methods) * len(grid.bits) * (2 + 3)  # lambda0, hswd, 3 lambdas
    record = {
        "grid": "default",
        "n_bits": 32,
        "repeats": args.repeats,
        "rows": rows,
        "stage1_runs_per_seed": n_runs,
        "estimate_stage1_wall_s_per_seed_2_workers": per_run * n_runs / 2,
        "environment": cpu_environment(load_start),
    }
    table = markdown(record)
    write_results("profile_stage1", record, table)
    print(table)
    return 0


def markdown(record: dict[str, Any]) -> str:
    env = record["environment"]
    lines = [
        "# Stage-1 profile of the default main job (CPU seconds, 1 thread)",
        "",
        hardware_line(env),
        f"- versions: {env['versions']}",
        f"- median of {record['repeats']} repeats after one warm-up; 32 bits",
        f"- estimate of stage 1 per seed: {record['stage1_runs_per_seed']} runs x mean CPU per "
        f"run / 2 workers = {record['estimate_stage1_wall_s_per_seed_2_workers']:.0f} s",
        "",
    ]
    phases = sorted({p for r in record["rows"] for p in r["phases_cpu_s_median"]})
    lines.append("| run | CPU s | " + " | ".join(phases) + " | epochs | validations | val mAP |")
    lines.append("|---" * (len(phases) + 5) + "|")
    for r in record["rows"]:
        cells = [f"{r['phases_cpu_s_median'].get(p, 0.0):.2f}" for p in phases]
        lines.append(
            f"| {r['run']} | {r['cpu_s_median']:.2f} | "
            + " | ".join(cells)
            + f" | {r['epochs_run']} | {r['validations']} | {r['best_val_map']:.4f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
