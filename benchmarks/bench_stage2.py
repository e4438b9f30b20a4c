"""Stage-2 solvers side by side: the default H²Q solver vs the paper's loop vs ITQ.

For each code length, on real Fashion-MNIST stage-1 embeddings (DPSH, lambda = 0, an MLP on
pixels trained by ``h2q.training.run_training``; cached under benchmarks/out/), this script
fits in one run, interleaved and repeated:

- ``HouseholderQuantizer()`` (default solver ``"gd"``),
- ``HouseholderQuantizer(solver="paper")`` (SGD, lr 0.1, batch 128, 300 epochs, best
  validation epoch: the reference loop),
- ``ITQQuantizer()`` (50 iterations, correct Procrustes step),

on the 5,000 training embeddings with the 1,000 validation embeddings, and reports medians
and spreads of the fit time, the validation quantization loss (L2), and mAP@1000 of the
query fold against the database (Hamming ranking, ties broken by the continuous distance).
The target (issue "Stage 2"): the default solver's validation loss <= the paper loop's, its
mAP no lower than 0.1 point below, and its time <= max(ITQ time, paper time / 70).

    python benchmarks/bench_stage2.py            # 16, 32, 64 bits, 5 repeats (paper: 3)
    python benchmarks/bench_stage2.py --quick    # 16 bits, 2 repeats, paper loop 30 epochs
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import h2q
from h2q.embeddings import load_embeddings
from h2q.metrics import mean_average_precision, variant_name
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer
from h2q.search import rank_database
from h2q.training import run_training

HERE = Path(__file__).resolve().parent
MAP_K = 1000


def stage1_embeddings(n_bits: int, out: Path) -> dict[str, np.ndarray]:
    folder = out / f"fmnist-dpsh-{n_bits}"
    if not (folder / "embeddings.npz").exists():
        run_training(
            "fashion-mnist",
            "dpsh",
            n_bits,
            strategy="lambda0",
            backbone="mlp",
            out_dir=folder,
            epochs=30,
            lr_head=1e-3,
            seed=0,
            max_database=20_000,
            progress=False,
        )
    return load_embeddings(folder / "embeddings.npz")


def evaluate(q, emb: dict[str, np.ndarray]) -> float:
    _, I = rank_database(
        q.encode(emb["query"]),
        q.encode(emb["database"]),
        MAP_K,
        query_features=q.transform(emb["query"]),
        db_features=q.transform(emb["database"]),
    )
    return 100 * mean_average_precision(I, emb["y_query"], emb["y_database"], k=MAP_K)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def run(bits: list[int], repeats: int, paper_repeats: int, paper_epochs: int | None) -> dict:
    torch.set_num_threads(2)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    results = {}
    for k in bits:
        emb = stage1_embeddings(k, out)
        X, Xv = emb["train"], emb["val"]
        makers = {
            "h2q-gd": lambda: HouseholderQuantizer(),
            "h2q-paper": lambda: HouseholderQuantizer(solver="paper", max_iter=paper_epochs),
            "itq": lambda: ITQQuantizer(),
        }
        times: dict[str, list[float]] = {m: [] for m in makers}
        fitted = {}
        HouseholderQuantizer(max_iter=5).fit(X, Xv)  # warm-up (allocator, BLAS threads)
        ITQQuantizer(max_iter=5).fit(X, Xv)
        for rep in range(repeats):
            for name, make in makers.items():
                if name == "h2q-paper" and rep >= paper_repeats:
                    continue
                q = make()
                t0 = time.perf_counter()
                q.fit(X, Xv)
                times[name].append(time.perf_counter() - t0)
                fitted[name] = q
        fitted["sign"] = SignQuantizer().fit(X)
        row = {}
        for name, q in fitted.items():
            row[name] = {
                "val_loss_l2": q.quantization_loss(Xv),
                "map": evaluate(q, emb),
                "time_s": summary(times[name]) if name in times else None,
            }
        t_gd = row["h2q-gd"]["time_s"]["median"]
        t_paper = row["h2q-paper"]["time_s"]["median"]
        t_itq = row["itq"]["time_s"]["median"]
        row["targets"] = {
            "time_budget_s": max(t_itq, t_paper / 70),
            "gd_over_paper_time": t_gd / t_paper,
            "gd_over_itq_time": t_gd / t_itq,
            "time_ok": t_gd <= max(t_itq, t_paper / 70),
            "val_loss_ok": row["h2q-gd"]["val_loss_l2"] <= row["h2q-paper"]["val_loss_l2"],
            "map_ok": row["h2q-gd"]["map"] >= row["h2q-paper"]["map"] - 0.1,
        }
        results[str(k)] = row
    return results


def environment() -> dict:
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h2q": h2q.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        import os

        env["cpus"] = os.cpu_count()
    except Exception:  # pragma: no cover
        pass
    return env


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# Stage-2 solvers: default (gd) vs paper loop vs ITQ",
        "",
        f"Fashion-MNIST DPSH lambda=0 embeddings, 5,000 train / 1,000 val; "
        f"{meta['variant']} on the query fold; times are medians of {meta['repeats']} fits "
        f"(paper loop: {meta['paper_repeats']}), [min-max].",
        "",
        "| bits | method | fit time s | val L2 loss | mAP@1000 x100 |",
        "|---|---|---|---|---|",
    ]
    for k, row in results.items():
        for name in ("sign", "itq", "h2q-paper", "h2q-gd"):
            r = row[name]
            t = r["time_s"]
            ts = "-" if t is None else f"{t['median']:.3f} [{t['min']:.3f}-{t['max']:.3f}]"
            lines.append(f"| {k} | {name} | {ts} | {r['val_loss_l2']:.5f} | {r['map']:.2f} |")
    lines += [
        "",
        "| bits | gd / paper time | gd / ITQ time | time ok | val loss ok | mAP ok |",
        "|---|---|---|---|---|---|",
    ]
    for k, row in results.items():
        t = row["targets"]
        lines.append(
            f"| {k} | {t['gd_over_paper_time']:.4f} (1/{1 / t['gd_over_paper_time']:.0f}) | "
            f"{t['gd_over_itq_time']:.2f} | {t['time_ok']} | {t['val_loss_ok']} | {t['map_ok']} |"
        )
    lines += ["", f"Environment: `{json.dumps(meta['environment'])}`", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bits", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--paper-repeats", type=int, default=3)
    args = parser.parse_args()
    bits = args.bits or ([16] if args.quick else [16, 32, 64])
    repeats = 2 if args.quick else args.repeats
    paper_repeats = 1 if args.quick else args.paper_repeats
    results = run(bits, repeats, paper_repeats, 30 if args.quick else None)
    meta = {
        "variant": variant_name(MAP_K),
        "repeats": repeats,
        "paper_repeats": paper_repeats,
        "environment": environment(),
    }
    name = "stage2_quick" if args.quick else "stage2"
    from h2q._io import atomic_write

    payload = json.dumps({"meta": meta, "results": results}, indent=2).encode()
    atomic_write(HERE / "results" / f"{name}.json", lambda f: f.write(payload))
    text = markdown(results, meta)
    atomic_write(HERE / "results" / f"{name}.md", lambda f: f.write(text.encode()))
    print(text)


if __name__ == "__main__":
    main()
