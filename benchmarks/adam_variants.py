"""The training loop's Adam: torch's fused step against its multi-tensor step, over seeds.

The loop used to take torch's multi-tensor (``foreach``) Adam step, bit for bit; it now takes
the fused one (:func:`h2q.training.loop.make_adam`), whose float32 roundings differ. This
multi-seed check trains the same stage-1 runs of the default main job (32 bits, frozen
EfficientNet-Lite0 features from the cache, 1 torch thread) with each step, seeds 0, 1 and 2,
alternating the two in one process, and reports per run the best validation mAP of each, their
difference, the spread of the multi-tensor runs over the seeds (sample standard deviation), and
the CPU seconds of each step's training loop (``time.process_time``: the machine is shared).

Usage::

    python benchmarks/adam_variants.py            # ~4 min of CPU
    python benchmarks/adam_variants.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

import h2q.training.loop as loop
from h2q._threads import thread_limit
from h2q.experiments.config import get_config
from h2q.training import TrainConfig, run_training

RUNS = (("dpsh", "lambda0", None), ("dch", "penalty", 0.1), ("hyp2", "hswd", None))


def multi_tensor(groups: list[dict[str, Any]], weight_decay: float) -> torch.optim.Adam:
    """The multi-tensor step the loop took before (torch's ``foreach`` Adam)."""
    return torch.optim.Adam(groups, weight_decay=weight_decay, foreach=True)


STEPS = {"fused": loop.make_adam, "multi-tensor": multi_tensor}


def one_run(config: TrainConfig, step: str) -> dict[str, float]:
    original = loop.make_adam
    loop.make_adam = STEPS[step]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.process_time()
            result = run_training(config, Path(tmp) / "run", progress=False)
            cpu = time.process_time() - start
    finally:
        loop.make_adam = original
    return {"val_map": result.train.best_val_map, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    template = get_config("default").train
    load_start = list(os.getloadavg())
    rows = []
    with thread_limit(1):
        warm = template.replace(method="dpsh", n_bits=32, strategy="lambda0", seed=0)
        one_run(warm, "fused")  # imports, compiled kernels, the feature cache
        for method, strategy, lam in RUNS:
            for seed in args.seeds:
                config = template.replace(
                    method=method, n_bits=32, strategy=strategy, lam=lam, seed=seed
                )
                row = {"method": method, "strategy": strategy, "lam": lam, "seed": seed}
                for step in STEPS:
                    row[step] = one_run(config, step)
                rows.append(row)
                print(row, flush=True)
    record = {
        "rows": rows,
        "environment": cpu_environment(load_start),
    }
    table = markdown(record)
    write_results("adam_variants", record, table)
    print(table)
    return 0


def markdown(record: dict[str, Any]) -> str:
    env, rows = record["environment"], record["rows"]
    lines = [
        "# The loop's Adam: fused step vs multi-tensor step (stage-1 runs, 32 bits)",
        "",
        hardware_line(env),
        f"- versions: {env['versions']}",
        "- val mAP: best validation mAP of the run; CPU: seconds of the whole run, 1 thread",
        "",
        "| run | seed | val mAP multi-tensor | val mAP fused | fused - multi | "
        "CPU s multi | CPU s fused | multi / fused |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        multi, fused = r["multi-tensor"], r["fused"]
        lines.append(
            f"| {_name(r)} | {r['seed']} | {multi['val_map']:.4f} | {fused['val_map']:.4f} | "
            f"{fused['val_map'] - multi['val_map']:+.4f} | {multi['cpu_s']:.2f} | "
            f"{fused['cpu_s']:.2f} | {multi['cpu_s'] / fused['cpu_s']:.2f} |"
        )
    lines += [
        "",
        "| run | mean abs(fused - multi) | seed spread (sd, multi-tensor) |",
        "|---|---:|---:|",
    ]
    for name in dict.fromkeys(_name(r) for r in rows):
        mine = [r for r in rows if _name(r) == name]
        diffs = [abs(r["fused"]["val_map"] - r["multi-tensor"]["val_map"]) for r in mine]
        sd = statistics.stdev(r["multi-tensor"]["val_map"] for r in mine) if len(mine) > 1 else 0
        lines.append(f"| {name} | {statistics.mean(diffs):.4f} | {sd:.4f} |")
    multi_cpu = sum(r["multi-tensor"]["cpu_s"] for r in rows)
    fused_cpu = sum(r["fused"]["cpu_s"] for r in rows)
    lines += ["", f"CPU of all runs, multi-tensor / fused: {multi_cpu / fused_cpu:.2f}"]
    return "\n".join(lines) + "\n"


def _name(row: dict[str, Any]) -> str:
    lam = f" lam={row['lam']:g}" if row["lam"] is not None else ""
    return f"{row['method']} {row['strategy']}{lam}"


if __name__ == "__main__":
    raise SystemExit(main())
