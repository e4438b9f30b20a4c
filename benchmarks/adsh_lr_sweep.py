"""ADSH's learning rate (and number of outer iterations), chosen on the validation split.

On the default data of ``h2q reproduce`` (Fashion-MNIST, frozen EfficientNet-Lite0 features
at 64 px, a 512-unit MLP head; the default preset's split with ``max_database=10,000``), one
seeded ADSH run per learning rate (SGD on the loss divided by n * batch size, the authors'
schedule: lr / 10 at outer iterations 10, 20, 30, 40). After chosen outer iterations the
validation mAP is recorded: validation queries hashed by ``sign(F(x))`` against the learned
codes ``B`` of the training fold (ADSH's asymmetric protocol), mAP over the whole training
fold, Hamming ranking with ties by id. Nothing here reads the query or database folds.

Results go to ``benchmarks/results/adsh_lr_sweep.{json,md}`` (CPU, load average and library
versions recorded); the table is generated from the JSON.

Usage::

    H2Q_CACHE_DIR=... python benchmarks/adsh_lr_sweep.py [--bits 32] [--seed 0]
        [--lrs 0.001,0.01,0.1,1] [--iterations 50] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import environment, write_results  # noqa: E402

#: Outer iterations after which the validation mAP is recorded.
CHECKPOINTS = (5, 10, 15, 20, 30, 40, 50)


def default_data(bits: int, seed: int) -> dict[str, Any]:
    """The default preset's ADSH inputs: model, train and validation folds (cached features)."""
    from h2q.data import load_dataset, make_split
    from h2q.data.split import get_scheme
    from h2q.experiments.config import get_config
    from h2q.features import cached_features
    from h2q.models import HashingModel, MLPBackbone, build_backbone
    from h2q.training.data import ArrayData

    grid = get_config("default").train
    data = load_dataset(grid.dataset)
    split = make_split(
        data, get_scheme(grid.dataset), random_state=seed, max_database=grid.max_database
    )
    folds = {f: getattr(split, f) for f in ("train", "val", "query", "database")}
    all_idx = np.unique(np.concatenate(list(folds.values())))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # as h2q.training.run_training builds its model
        net = build_backbone(grid.backbone, image_size=grid.image_size, in_channels=1)
        cached = cached_features(net, np.asarray(data.X)[all_idx], data.y[all_idx])
        model = HashingModel(MLPBackbone(cached.features.shape[1], hidden=grid.hidden), bits)
    fold = {
        f: ArrayData(
            cached.features[np.searchsorted(all_idx, folds[f])],
            data.y[folds[f]],
            transform=model.preprocess,
        )
        for f in ("train", "val")
    }
    return {"model": model, "train": fold["train"], "val": fold["val"], "grid": grid}


def one_run(lr: float, bits: int, seed: int, iterations: int) -> dict[str, Any]:
    """Train ADSH at one learning rate; validation mAP at each of :data:`CHECKPOINTS`."""
    from h2q.codes import encode_sign
    from h2q.evaluation.metrics import mean_average_precision
    from h2q.search import rank_database
    from h2q.training.adsh import ADSHSettings, train_adsh
    from h2q.training.data import embed

    torch.set_num_threads(1)
    parts = default_data(bits, seed)
    model, train, val, grid = parts["model"], parts["train"], parts["val"], parts["grid"]
    settings = ADSHSettings(
        lr=lr,
        iterations=iterations,
        batch_size=grid.loop.batch_size,
        weight_decay=grid.loop.weight_decay,
        seed=seed,
    )
    scores: dict[int, float] = {}

    def record(iteration: int, codes: torch.Tensor) -> None:
        if iteration in CHECKPOINTS or iteration == iterations:
            v = embed(model, val, output_transform=torch.tanh)
            B = codes.cpu().numpy()
            _, ranking = rank_database(encode_sign(v), encode_sign(B), len(B))
            scores[iteration] = mean_average_precision(ranking, val.y, train.y, len(B))

    start = time.perf_counter()
    try:
        _, losses = train_adsh(model, train, settings, device=torch.device("cpu"), callback=record)
        failure = None
    except FloatingPointError as exc:
        losses, failure = [], str(exc)
    return {
        "lr": lr,
        "bits": bits,
        "seed": seed,
        "iterations": iterations,
        "val_map": {str(k): v for k, v in scores.items()},
        "final_loss": losses[-1] if losses else None,
        "failure": failure,
        "seconds": time.perf_counter() - start,
        "load_average_end": list(os.getloadavg()),
    }


def markdown(record: dict[str, Any]) -> str:
    from bench_encode import environment_markdown

    its = sorted({int(k) for r in record["runs"] for k in r["val_map"]})
    head = "| lr | " + " | ".join(f"it {i}" for i in its) + " | s |\n"
    head += "|---|" + "---|" * (len(its) + 1) + "\n"
    rows = []
    for r in record["runs"]:
        cells = [f"{r['val_map'][str(i)]:.4f}" if str(i) in r["val_map"] else "-" for i in its]
        rows.append(f"| {r['lr']:g} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
    best = record["best"]
    return (
        f"# ADSH learning-rate sweep ({record['config']['bits']} bits, seed "
        f"{record['config']['seed']}, default data)\n\n"
        "Validation mAP (val queries sign(F(x)) vs the learned codes B of the training fold, "
        "mAP@all) after each listed outer iteration; SGD, loss / (n * batch), lr / 10 at "
        "iterations 10, 20, 30, 40.\n\n" + head + "\n".join(rows) + "\n\n"
        f"- Best: lr {best['lr']:g} at {best['iterations']} outer iterations "
        f"(val mAP {best['val_map']:.4f})\n" + environment_markdown(record["environment"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lrs", default="0.001,0.01,0.1,1")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (processes)")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_run(args.child, args.bits, args.seed, args.iterations)))
        return
    env = environment()
    lrs = [float(v) for v in args.lrs.split(",")]
    common = ["--bits", str(args.bits), "--seed", str(args.seed)]
    common += ["--iterations", str(args.iterations)]
    runs: list[dict[str, Any]] = []
    pending = list(lrs)
    active: list[subprocess.Popen] = []
    while pending or active:
        while pending and len(active) < args.jobs:
            command = [sys.executable, __file__, "--child", str(pending.pop(0)), *common]
            active.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        proc = active.pop(0)
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a sweep run failed (exit {proc.returncode})")
        runs.append(json.loads(out.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["lr"])
    best = max(
        (
            {"lr": r["lr"], "iterations": int(k), "val_map": v}
            for r in runs
            for k, v in r["val_map"].items()
        ),
        key=lambda b: (b["val_map"], -b["iterations"]),
    )
    env["load_average_end"] = list(os.getloadavg())
    record = {
        "benchmark": "adsh_lr_sweep",
        "config": {"bits": args.bits, "seed": args.seed, "lrs": lrs, "data": "default preset"},
        "runs": runs,
        "best": best,
        "environment": env,
    }
    table = markdown(record)
    json_path, md_path = write_results("adsh_lr_sweep", record, table)
    print(table)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
