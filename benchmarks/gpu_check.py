"""The prepared GPU check: every CUDA path of h2q, and a timed reduced ``--full``.

Meant for a machine with one GPU, in under 10 minutes (``--budget-s``, default 540: the
reduced ``--full`` is skipped when too little time is left). Each check records ok / failed
(with the error), its seconds and what it measured, in a JSON file (``--out``):

1. ``environment``: torch, CUDA, the device's name and memory.
2. ``training``: a 2-epoch stage-1 run (``h2q.training.run_training``, digits, MLP) on the
   device; the run must report that device, and its validation mAP is compared with the
   same run on the CPU (equal up to float rounding: recorded, not asserted).
3. ``features``: EfficientNet-Lite0 (packaged ImageNet weights) features of random images on
   the device against the CPU's (max abs difference, asserted < 1e-3), and the device's
   throughput in images/s at 224 px.
4. ``stage2``: H²Q and ITQ fitted on device tensors against the CPU fit (rotation close),
   and ``encode`` of device tensors equal to the CPU's codes (sign of the same rotation).
5. ``search``: the exact Hamming search runs on the CPU (numpy/numba/faiss-cpu back ends);
   recorded: whether faiss has GPU support here (``faiss.get_num_gpus``).
6. ``reduced_full``: ``h2q reproduce --full`` reduced to one method, one bit length, one
   seed and ``--epochs`` epochs, timed, with the per-epoch seconds of its stage-1 runs and
   the extrapolation to the whole ``--full`` grid (see ``docs/gpu.md``).

``--device cpu`` runs the same checks on the CPU (the comparisons are then trivial), and
``--tiny`` shrinks every check to seconds (digits instead of Fashion-MNIST in the reduced
``--full``): the test suite runs ``--device cpu --tiny`` so that the script stays runnable.
It was written without access to a GPU: it has not been run on one yet.

Usage::

    python benchmarks/gpu_check.py --out gpu_check.json              # on the GPU machine
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/g.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: The ``--full`` grid: stage-1 runs per (method, bits, seed) and the grid's size (see
#: h2q.experiments.config: 8 losses x (lambda = 0, 3 lambdas, +HSWD) with HashNet's single
#: "+lambda" run, plus ADSH's one run; 4 bit lengths; 4 seeds).
FULL_RUNS_PER_BITS_SEED = 7 * 5 + 3 + 1
FULL_BITS_SEEDS = 4 * 4


def _check(name: str, results: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> None:
    start = time.perf_counter()
    try:
        found = fn()
        results[name] = {"ok": True, **found}
    except Exception as exc:  # a failed check is recorded, and the others still run
        results[name] = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=5),
        }
    results[name]["seconds"] = round(time.perf_counter() - start, 3)
    print(f"gpu_check: {name}: {'ok' if results[name]['ok'] else 'FAILED'}", file=sys.stderr)


def check_environment(device: torch.device) -> dict[str, Any]:
    import h2q

    out: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "h2q": h2q.__version__,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1))
    return out


def check_training(device: torch.device, tiny: bool) -> dict[str, Any]:
    from h2q.training import LoopSettings, TrainConfig, run_training

    loop = LoopSettings(epochs=1 if tiny else 2)
    config = TrainConfig("digits", "dpsh", 16, hidden=(64,), loop=loop)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_training(config, Path(tmp) / "dev", device=device, progress=False)
        ref = run_training(config, Path(tmp) / "cpu", device="cpu", progress=False)
    if not run.summary["device"].startswith(device.type):
        raise AssertionError(f"the run reports device {run.summary['device']}, not {device}")
    return {
        "val_map_device": run.summary["best_val_map"],
        "val_map_cpu": ref.summary["best_val_map"],
        "seconds_per_epoch_device": run.summary["seconds"]["per_epoch_median"],
        "seconds_per_epoch_cpu": ref.summary["seconds"]["per_epoch_median"],
    }


def check_features(device: torch.device, tiny: bool) -> dict[str, Any]:
    from h2q.features import extract_features
    from h2q.models import build_backbone

    size = 64 if tiny else 224
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8 if tiny else 256, 28, 28), dtype=np.uint8)
    backbone = build_backbone("efficientnet-lite0", image_size=size, in_channels=1)
    on_device = extract_features(backbone, images[:8], device=device)
    on_cpu = extract_features(backbone, images[:8], device="cpu")
    diff = float(np.abs(on_device - on_cpu).max())
    if diff >= 1e-3:
        raise AssertionError(f"device features differ from the CPU's by {diff:.2e}")
    extract_features(backbone, images[:64], device=device, batch_size=64)  # warm-up
    _sync(device)
    start = time.perf_counter()
    extract_features(backbone, images, device=device, batch_size=64 if tiny else 256)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"image_size": size, "max_abs_diff_vs_cpu": diff, "images_per_s": len(images) / seconds}


def check_stage2(device: torch.device, tiny: bool) -> dict[str, Any]:
    from h2q.quantizers import make_quantizer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((500 if tiny else 5000, 32)).astype(np.float32)
    Xt = torch.from_numpy(X).to(device)
    out: dict[str, Any] = {}
    for name, params in (("h2q", {"max_iter": 20}), ("itq", {"max_iter": 10})):
        dev = make_quantizer(name, random_state=0, **params).fit(Xt)
        cpu = make_quantizer(name, random_state=0, **params).fit(X)
        gap = float(np.abs(np.asarray(dev.rotation_) - np.asarray(cpu.rotation_)).max())
        same_codes = bool(np.array_equal(dev.encode(Xt), dev.encode(X)))
        if not same_codes:
            raise AssertionError(f"{name}: encode of device tensors differs from the CPU's")
        out[name] = {"max_rotation_gap_vs_cpu": gap, "encode_same_codes": same_codes}
    return out


def check_search() -> dict[str, Any]:
    try:
        import faiss
    except ImportError:
        return {"backends": "numpy/numba on the CPU", "faiss_gpus": None}
    gpus = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    return {"backends": "numpy/numba/faiss on the CPU", "faiss_gpus": gpus}


def check_reduced_full(device: torch.device, tiny: bool, epochs: int) -> dict[str, Any]:
    """A reduced ``--full`` (one method, bits, seed), timed, and the full grid extrapolated."""
    from h2q.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "full"
        if tiny:
            args = ["--quick", "--bits", "8", "--epochs", str(epochs)]
        else:
            args = ["--full", "--methods", "dpsh", "--bits", "32", "--seeds", "0"]
            args += ["--epochs", str(epochs)]
        start = time.perf_counter()
        code = main(
            ["reproduce", *args, "--device", device.type, "--no-progress", "--out", str(out)]
        )
        seconds = time.perf_counter() - start
        if code != 0:
            raise AssertionError(f"h2q reproduce exited with {code}")
        summaries = [json.loads(p.read_text()) for p in (out / "runs").rglob("summary.json")]
    per_epoch = [s["seconds"]["train"] / max(1, s["epochs_run"]) for s in summaries]
    epoch_s = float(np.median(per_epoch)) if per_epoch else math.nan
    runs = FULL_RUNS_PER_BITS_SEED * FULL_BITS_SEEDS
    return {
        "arguments": args,
        "seconds": seconds,
        "stage1_runs": len(summaries),
        "stage1_seconds_per_epoch_median": epoch_s,
        "full_stage1_runs": runs,
        "full_stage1_hours_if_100_epochs": runs * 100 * epoch_s / 3600,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="seconds-sized checks (tests)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the reduced --full")
    parser.add_argument("--budget-s", type=float, default=540.0)
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here; pass --device cpu", file=sys.stderr)
        return 3
    start = time.perf_counter()
    results: dict[str, Any] = {"tiny": args.tiny, "load_average": list(os.getloadavg())}
    _check("environment", results, lambda: check_environment(device))
    _check("training", results, lambda: check_training(device, args.tiny))
    _check("features", results, lambda: check_features(device, args.tiny))
    _check("stage2", results, lambda: check_stage2(device, args.tiny))
    _check("search", results, check_search)
    if time.perf_counter() - start < args.budget_s / 2:
        _check("reduced_full", results, lambda: check_reduced_full(device, args.tiny, args.epochs))
    else:
        results["reduced_full"] = {"ok": False, "error": "skipped: half the budget is spent"}
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["all_ok"] = all(v.get("ok", True) for v in results.values() if isinstance(v, dict))
    text = json.dumps(results, indent=2, default=str) + "\n"
    Path(args.out).write_text(text)
    print(f"gpu_check: {'all ok' if results['all_ok'] else 'FAILURES'}; wrote {args.out}")
    return 0 if results["all_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
