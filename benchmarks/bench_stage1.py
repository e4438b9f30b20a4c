"""Stage-1 benchmark: every loss on a Fashion-MNIST subset, time per epoch and mAP.

For each backbone setting and each method, one seeded ``h2q.training.run_training`` run
(lambda0 strategy, the H²Q stage 1) on a per-class subset of Fashion-MNIST; recorded:

- time per epoch: median over the epochs after the first (the first is a warm-up), with the
  min and max; an epoch includes its validation pass;
- the best validation mAP (val queries vs train database, mAP@all, top-k relevant
  denominator, Hamming ranking with ties broken by the continuous outputs) and its epoch;
- the query mAP@1000 against the database fold (same ranking rule), from the written
  ``embeddings.npz``;
- the ratio of each method's time per epoch to DPSH's (the anchor) in the same run.

Backbone settings: ``small-cnn`` (trained from scratch on 28x28 pixels) and
``efficientnet-lite0-frozen`` (ImageNet EfficientNet-Lite0 at 64 px, frozen; features
extracted once into the feature cache, then a 512-unit MLP head + hash layer trained).

Results go to ``benchmarks/results/bench_stage1[_quick].json`` and ``.md`` with the hardware,
the load average and the library versions.

Usage::

    python benchmarks/bench_stage1.py            # full: ~15-30 min on 2 busy CPU cores
    python benchmarks/bench_stage1.py --quick    # a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import h2q
from h2q.codes import encode_sign
from h2q.data import PerClassScheme
from h2q.embeddings import load_embeddings
from h2q.evaluation.metrics import mean_average_precision, variant_name
from h2q.search import rank_database
from h2q.training import LoopSettings, TrainConfig, run_training

METHODS = (
    "dpsh",
    "dhn",
    "dch",
    "wglhh",
    "hashnet",
    "cel",
    "hyp2",
    "dsh",
    "pml:ContrastiveLoss",
)
SETTINGS = {
    "small-cnn": {"backbone": "small-cnn", "frozen": False},
    "efficientnet-lite0-frozen": {"backbone": "efficientnet-lite0", "frozen": True},
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    out = {
        "python": platform.python_version(),
        "h2q": h2q.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for name in ("efficientnet_lite_pytorch", "pytorch_metric_learning", "faiss"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except ImportError:
            out[name] = "missing"
    return out


def cpu_environment(load_start: list[float], torch_threads: int | None = 1) -> dict[str, Any]:
    """The machine record of a CPU benchmark: CPU, its count, torch threads (when given), the
    load average at ``load_start`` and now, and the versions."""
    env: dict[str, Any] = {"cpu": cpu_model(), "cpu_count": os.cpu_count()}
    if torch_threads is not None:
        env["torch_threads"] = torch_threads
    env["load_average_start"] = load_start
    env["load_average_end"] = list(os.getloadavg())
    env["versions"] = versions()
    return env


def hardware_line(env: dict[str, Any]) -> str:
    """The Markdown line that names the machine and its load of :func:`cpu_environment`."""
    return (
        f"- hardware: {env['cpu']}, {env['cpu_count']} CPUs, load average before/after "
        f"{env['load_average_start']} / {env['load_average_end']} (shared machine)"
    )


def query_map(path: Path, k: int) -> float:
    emb = load_embeddings(path)
    q, db = emb.query, emb.database
    k = min(k, len(db))
    _, ranking = rank_database(encode_sign(q), encode_sign(db), k, query_features=q, db_features=db)
    return mean_average_precision(ranking, emb.y_query, emb.y_database, k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subset, few epochs")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--lr-head", type=float, default=1e-3)
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="feature cache (default: a fresh temporary folder, so that the first frozen run "
        "pays for the extraction and the table shows it)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.quick:
        per_class, eval_per_class, max_db, k = 100, 20, 500, 500
        epochs = {"small-cnn": 3, "efficientnet-lite0-frozen": 10}
    else:
        per_class, eval_per_class, max_db, k = 200, 50, 2000, 1000
        epochs = {"small-cnn": 8, "efficientnet-lite0-frozen": 30}
    scheme = PerClassScheme(per_class, eval_per_class, eval_per_class)
    load_before = os.getloadavg()
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="h2q-bench-stage1-") as work:
        for setting in args.settings:
            for method in args.methods:
                out_dir = Path(work) / f"{setting}-{method.replace(':', '_')}"
                t0 = time.perf_counter()
                config = TrainConfig(
                    "fashion-mnist",
                    method,
                    args.bits,
                    **SETTINGS[setting],
                    scheme=scheme,
                    max_database=max_db,
                    loop=LoopSettings(
                        epochs=epochs[setting],
                        patience=epochs[setting],
                        lr_head=args.lr_head,
                        seed=args.seed,
                    ),
                )
                result = run_training(
                    config,
                    out_dir,
                    cache_dir=args.cache_dir or Path(work) / "feature-cache",
                    progress=False,
                    device="cpu",
                )
                wall = time.perf_counter() - t0
                times = [r.time_s for r in result.train.history]
                steady = times[1:] or times
                row = {
                    "setting": setting,
                    "method": method,
                    "epochs": len(times),
                    "time_per_epoch_s": statistics.median(steady),
                    "time_per_epoch_min_s": min(steady),
                    "time_per_epoch_max_s": max(steady),
                    "first_epoch_s": times[0],
                    "best_epoch": result.train.best_epoch,
                    "best_val_map": result.train.best_val_map,
                    "query_map": query_map(out_dir / "embeddings.npz", k),
                    "setup_and_features_s": result.summary["seconds"]["setup_and_features"],
                    "feature_cache_hit": result.summary["feature_cache_hit"],
                    "wall_s": wall,
                }
                rows.append(row)
                print(
                    f"{setting:26s} {method:22s} {row['time_per_epoch_s']:7.2f} s/epoch  "
                    f"val mAP {row['best_val_map']:.4f}  query mAP {row['query_map']:.4f}",
                    flush=True,
                )
    for setting in args.settings:
        anchor = next((r for r in rows if r["setting"] == setting and r["method"] == "dpsh"), None)
        for r in rows:
            if r["setting"] == setting and anchor is not None:
                r["time_ratio_vs_dpsh"] = r["time_per_epoch_s"] / anchor["time_per_epoch_s"]

    report = {
        "benchmark": "bench_stage1",
        "quick": args.quick,
        "dataset": "fashion-mnist",
        "split": {
            "scheme": f"PerClassScheme({per_class}, {eval_per_class}, {eval_per_class})",
            "max_database": max_db,
            "sizes": {
                "train": 10 * per_class,
                "val": 10 * eval_per_class,
                "query": 10 * eval_per_class,
                "database": max_db,
            },
        },  # fmt: skip
        "n_bits": args.bits,
        "strategy": "lambda0",
        "epochs": {s: epochs[s] for s in args.settings},
        "lr_head": args.lr_head,
        "lr_backbone": 1e-5,
        "weight_decay": 5e-4,
        "batch_size": 128,
        "seed": args.seed,
        "val_metric": variant_name(None) + ", val queries vs train database",
        "query_metric": variant_name(k) + ", query vs database fold",
        "chance_map": 0.1,
        "hardware": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "platform": platform.platform(),
        },
        "versions": versions(),
        "total_s": time.perf_counter() - t_all,
        "results": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "bench_stage1_quick" if args.quick else "bench_stage1"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    print(f"wrote {out / stem}.json and .md", file=sys.stderr)
    return 0


def markdown(report: dict) -> str:
    hw, split = report["hardware"], report["split"]
    lines = [
        f"# Stage-1 benchmark{' (quick)' if report['quick'] else ''}",
        "",
        f"Fashion-MNIST subset ({split['scheme']}, database capped at {split['max_database']}: "
        f"train {split['sizes']['train']}, val {split['sizes']['val']}, query "
        f"{split['sizes']['query']}), {report['n_bits']} bits, strategy lambda0, "
        f"lr_head {report['lr_head']}, batch 128, seed {report['seed']}. Chance mAP about 0.1.",
        "",
        f"- validation mAP: {report['val_metric']}",
        f"- query mAP: {report['query_metric']}",
        "- time per epoch: median of epochs 2..N (min-max), training plus validation",
        f"- hardware: {hw['cpu']}, {hw['cpu_count']} CPUs, torch threads {hw['torch_threads']}, "
        f"load average before/after {tuple(round(x, 1) for x in hw['load_average_before'])} / "
        f"{tuple(round(x, 1) for x in hw['load_average_after'])} (shared machine)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        "| setting | method | epochs | s/epoch (min-max) | ratio vs DPSH | best val mAP (epoch) "
        "| query mAP | setup + features s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        cache = (
            ""
            if r["feature_cache_hit"] is None
            else (" (cache hit)" if r["feature_cache_hit"] else " (extracted)")
        )
        lines.append(
            f"| {r['setting']} | {r['method']} | {r['epochs']} | "
            f"{r['time_per_epoch_s']:.2f} ({r['time_per_epoch_min_s']:.2f}-"
            f"{r['time_per_epoch_max_s']:.2f}) | {r.get('time_ratio_vs_dpsh', float('nan')):.2f} | "
            f"{r['best_val_map']:.4f} ({r['best_epoch']}) | {r['query_map']:.4f} | "
            f"{r['setup_and_features_s']:.1f}{cache} |"
        )
    lines += ["", f"Total wall time {report['total_s']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
