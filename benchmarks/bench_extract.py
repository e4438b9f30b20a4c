"""Frozen-backbone feature extraction: channels-last batches against the default layout.

Extracts EfficientNet-Lite0 features at 64 px (the main job's backbone) of the first
``--images`` Fashion-MNIST training images with 1 torch thread, in the default (contiguous)
memory layout at several batch sizes and in the channels-last layout that
:func:`h2q.features.extract_features` uses, alternating the variants ``--repeats`` times.
Reports the median images per CPU second of each (``time.process_time``: the machine is
shared) and the largest absolute difference of its features from the contiguous batch-64
ones. Writes ``benchmarks/results/bench_extract.{json,md}``.

Usage::

    python benchmarks/bench_extract.py            # ~1 min of CPU
    python benchmarks/bench_extract.py --images 512 --repeats 1
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from typing import Any

import numpy as np
import torch
from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

from h2q.data import load_dataset
from h2q.models import build_backbone

VARIANTS = (("contiguous", 64), ("contiguous", 32), ("channels_last", 64), ("channels_last", 32))


def extract(model: torch.nn.Module, X: np.ndarray, batch: int, layout: str) -> np.ndarray:
    """Features of ``X`` in ``layout``, ``batch`` images at a time, as the library does."""
    out = []
    with torch.no_grad():
        for start in range(0, len(X), batch):
            x = model.preprocess(torch.as_tensor(X[start : start + batch]))
            if layout == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(model(x).float().numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1536)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X = np.asarray(load_dataset("fashion-mnist").X)[: args.images]
    base = build_backbone("efficientnet-lite0", image_size=64).eval()
    models = {"contiguous": base, "channels_last": copy.deepcopy(base)}
    models["channels_last"].to(memory_format=torch.channels_last)
    load_start = list(os.getloadavg())
    reference = extract(base, X, 64, "contiguous")
    rates: dict[str, list[float]] = {f"{lay} {b}": [] for lay, b in VARIANTS}
    diffs: dict[str, float] = {}
    for _ in range(args.repeats):
        for layout, batch in VARIANTS:
            start = time.process_time()
            features = extract(models[layout], X, batch, layout)
            rates[f"{layout} {batch}"].append(len(X) / (time.process_time() - start))
            diffs[f"{layout} {batch}"] = float(np.abs(features - reference).max())
    rows = [
        {
            "layout": layout,
            "batch": batch,
            "images_per_cpu_s": statistics.median(rates[f"{layout} {batch}"]),
            "max_abs_diff": diffs[f"{layout} {batch}"],
        }
        for layout, batch in VARIANTS
    ]
    record = {
        "images": len(X),
        "repeats": args.repeats,
        "rows": rows,
        "environment": cpu_environment(load_start),
    }
    table = markdown(record)
    write_results("bench_extract", record, table)
    print(table)
    return 0


def markdown(record: dict[str, Any]) -> str:
    env = record["environment"]
    base = record["rows"][0]["images_per_cpu_s"]
    lines = [
        "# EfficientNet-Lite0 features at 64 px: memory layout and batch size (1 thread)",
        "",
        hardware_line(env),
        f"- {record['images']} Fashion-MNIST images, median of {record['repeats']} alternating "
        "repeats; difference: largest absolute difference from the contiguous batch-64 features",
        "",
        "| layout | batch | images per CPU s | vs contiguous 64 | max abs difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['layout']} | {r['batch']} | {r['images_per_cpu_s']:.0f} | "
            f"{r['images_per_cpu_s'] / base:.2f} | {r['max_abs_diff']:.2g} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
