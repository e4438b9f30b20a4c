"""How long `h2q reproduce --full` takes, estimated from CPU throughput measured here (12.6).

``--full`` (h2q.experiments.config): the 8 losses x (lambda = 0, three lambdas, +HSWD; HashNet
has one "+lambda" run) plus ADSH, 16/32/48/64 bits, 4 seeds = 624 stage-1 runs of at most 100
epochs (patience 20, validation every epoch), 1,040 cells scored with mAP@5000 against the
whole database (63,000 Fashion-MNIST items), and the features of all 70,000 images at 224 px
extracted once (every seed's folds cover the whole data set, so they share one cache entry).

Measured here, in CPU seconds of one thread (``time.process_time``; the machine is shared):

1. one stage-1 epoch (training and validation) of the ``--full`` settings for three kinds of
   run (DPSH lambda = 0, DCH +lambda, HyP² +HSWD) at 32 bits, on the cached 64-px features
   (the head's cost does not depend on the input size: EfficientNet-Lite0 gives 1,280
   features at any size; the folds are the default job's, whose training and validation
   folds are the same size as ``--full``'s);
2. scoring one cell at ``--full`` size (1,000 queries, 63,000 database items, k = 5,000, 32
   bits, the feature tie-break) on synthetic clustered embeddings, for sign codes and H²Q;
3. EfficientNet-Lite0 feature extraction at 224 px (images/s).

The estimate is an upper bound for one GPU machine with ``--jobs`` worker processes (one
thread each): it assumes no GPU speed-up at all (the heads are small, latency-bound networks,
and the ranking and stage 2 run on the CPU anyway), every run going the full 100 epochs, and
the extraction on one thread. ``benchmarks/gpu_check.py`` measures the real per-epoch time
on a GPU. Results: ``benchmarks/results/full_estimate.{json,md}``.

Usage::

    python benchmarks/full_estimate.py --epochs 3 --jobs 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

from h2q._threads import thread_limit
from h2q.experiments.config import get_config

FULL_RUNS = (7 * 5 + 3 + 1) * 4 * 4
FULL_CELLS = (8 * 8 + 1) * 4 * 4
FULL_IMAGES = 70_000
SAMPLE = (("dpsh", "lambda0", None), ("dch", "penalty", 0.1), ("hyp2", "hswd", None))


def stage1_epoch_cpu_s(epochs: int) -> list[dict[str, Any]]:
    """CPU seconds per epoch of ``--full``-settings runs on the cached 64-px features."""
    from h2q.training import run_training

    default = get_config("default").train
    full = get_config("full").train.replace(
        image_size=default.image_size, max_database=default.max_database, epochs=epochs
    )
    rows = []
    for method, strategy, lam in SAMPLE:
        config = full.replace(method=method, n_bits=32, strategy=strategy, lam=lam)
        with tempfile.TemporaryDirectory() as tmp:
            run_training(config, Path(tmp) / "warm", progress=False)  # imports, cache
            start = time.process_time()
            result = run_training(config, Path(tmp) / "run", progress=False)
            cpu = time.process_time() - start
        rows.append(
            {
                "run": f"{method} {strategy}" + (f" lam={lam:g}" if lam is not None else ""),
                "cpu_s": cpu,
                "epochs": result.train.epochs_run,
                "cpu_s_per_epoch": cpu / result.train.epochs_run,
            }
        )
        print(rows[-1], file=sys.stderr)
    return rows


def cell_cpu_s() -> dict[str, float]:
    """CPU seconds to fit and score one cell at ``--full`` size (sign and H²Q)."""
    from h2q.embeddings import EmbeddingFolds
    from h2q.evaluation import evaluate_quantizers
    from h2q.quantizers import make_quantizer

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 32)) * 1.5

    def fold(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        return (centres[y] + rng.standard_normal((n, 32))).astype(np.float32), y

    (X_train, _), (X_val, _) = fold(5000), fold(1000)
    (X_q, y_q), (X_db, y_db) = fold(1000), fold(63_000)
    folds = EmbeddingFolds(
        train=X_train, val=X_val, query=X_q, y_query=y_q, database=X_db, y_database=y_db
    )
    out = {}
    for name in ("sign", "h2q"):
        start = time.process_time()
        evaluate_quantizers({name: make_quantizer(name)}, folds, k=5000)
        out[name] = time.process_time() - start
        print(name, out[name], file=sys.stderr)
    return out


def extraction_images_per_s(n: int = 64) -> float:
    """EfficientNet-Lite0 at 224 px, CPU, one thread: images per CPU second."""
    from h2q.features import extract_features
    from h2q.models import build_backbone

    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    backbone = build_backbone("efficientnet-lite0", image_size=224, in_channels=1)
    extract_features(backbone, images[:8])
    start = time.process_time()
    extract_features(backbone, images)
    return n / (time.process_time() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=16, help="worker processes assumed")
    args = parser.parse_args(argv)
    load_start = list(os.getloadavg())
    with thread_limit(1):
        runs = stage1_epoch_cpu_s(args.epochs)
        cells = cell_cpu_s()
        img_s = extraction_images_per_s()
    epoch_s = statistics.mean(r["cpu_s_per_epoch"] for r in runs)
    cell_s = (cells["sign"] * 3 + cells["h2q"] * 5) / 8  # 3 sign rows, ITQ + 4 H²Q rows
    parts = {
        "stage 1 (624 runs x 100 epochs)": FULL_RUNS * 100 * epoch_s,
        "stage 2 and scoring (1,040 cells)": FULL_CELLS * cell_s,
        "features (70,000 images at 224 px, once)": FULL_IMAGES / img_s,
    }
    cpu_total = sum(parts.values())
    record = {
        "stage1_sample": runs,
        "cell_cpu_s": cells,
        "extraction_images_per_cpu_s": img_s,
        "parts_cpu_s": parts,
        "cpu_s_total": cpu_total,
        "jobs": args.jobs,
        "upper_bound_hours_one_machine": (
            (parts["stage 1 (624 runs x 100 epochs)"] + parts["stage 2 and scoring (1,040 cells)"])
            / args.jobs
            + parts["features (70,000 images at 224 px, once)"]
        )
        / 3600,
        "environment": cpu_environment(load_start, torch_threads=None),
    }
    table = markdown(record)
    write_results("full_estimate", record, table)
    print(table)
    return 0


def markdown(record: dict[str, Any]) -> str:
    env = record["environment"]
    lines = [
        "# `h2q reproduce --full`: CPU time measured per piece, and the estimate",
        "",
        hardware_line(env),
        f"- versions: {env['versions']}",
        "",
        "| stage-1 run (--full settings, 32 bits) | epochs | CPU s per epoch |",
        "|---|---:|---:|",
    ]
    for r in record["stage1_sample"]:
        lines.append(f"| {r['run']} | {r['epochs']} | {r['cpu_s_per_epoch']:.2f} |")
    cells = record["cell_cpu_s"]
    lines += [
        "",
        f"- one cell at --full size (1,000 x 63,000, k = 5,000): sign {cells['sign']:.1f} CPU s, "
        f"H²Q {cells['h2q']:.1f} CPU s",
        f"- EfficientNet-Lite0 at 224 px: {record['extraction_images_per_cpu_s']:.1f} images "
        "per CPU second",
        "",
        "| part | CPU hours |",
        "|---|---:|",
    ]
    for part, seconds in record["parts_cpu_s"].items():
        lines.append(f"| {part} | {seconds / 3600:.1f} |")
    lines += [
        f"| total | {record['cpu_s_total'] / 3600:.1f} |",
        "",
        f"Upper bound on one machine with {record['jobs']} workers (no GPU speed-up assumed, "
        "every run 100 epochs, extraction on one thread): "
        f"**{record['upper_bound_hours_one_machine']:.1f} hours**.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
