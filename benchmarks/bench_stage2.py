"""Stage-2 solvers side by side: the default H²Q solver vs the paper's loop vs ITQ.

Narrow codes: on real Fashion-MNIST stage-1 embeddings at 16, 32 and 64 bits (DPSH,
lambda = 0, an MLP on pixels trained by ``h2q.training.run_training``; cached under
benchmarks/out/), this script fits in one run, interleaved and repeated, with centring off
(the paper's protocol and the library's default) and on:

- ``HouseholderQuantizer()`` (default solver ``"gd"``, stall rule),
- ``HouseholderQuantizer(solver="paper")`` (SGD, lr 0.1, batch 128, 300 epochs, best
  validation epoch: the reference loop),
- ``ITQQuantizer()`` (50 iterations, correct Procrustes step),

on the 5,000 training embeddings with the 1,000 validation embeddings, and reports medians
and spreads of the fit time, the validation quantization loss (L2), and mAP@1000 of the
query fold against the database (Hamming ranking, ties broken by the continuous distance).

Wide codes: on unlabelled general-purpose embeddings (``--wide``: a .npy matrix or an .npz
with a "train" key; by default benchmarks/out/wordnet-minilm.npz, the MiniLM 384-d WordNet
gloss embeddings that ``h2q embed --dataset wordnet`` writes, whose 10,000-row train fold is
used), 6,000 training and 1,000 validation rows of a seeded shuffle, PCA
to 128, 256 and 384 bits, the same three fits plus ``gd-long`` (the stall rule with six
drops and twice the patience: does running longer help?), without mAP (no labels).

Targets: the default solver's validation loss <= the paper
loop's and ITQ's; its time <= ITQ's at 16-64 bits and <= 2x ITQ's at 128-512 bits.

    python benchmarks/bench_stage2.py --wide wordnet-minilm.npz   # all, 5 repeats (paper: 3)
    python benchmarks/bench_stage2.py --quick    # 16 bits and 128 bits, paper loop 30 epochs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import h2q
from h2q.embeddings import EmbeddingFolds, load_embeddings
from h2q.evaluation.metrics import mean_average_precision, variant_name
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer, SignQuantizer, _solvers
from h2q.search import rank_database
from h2q.training import LoopSettings, TrainConfig, run_training

HERE = Path(__file__).resolve().parent
MAP_K = 1000
DEFAULT_WIDE = HERE / "out" / "wordnet-minilm.npz"


def stage1_embeddings(n_bits: int, out: Path) -> EmbeddingFolds:
    folder = out / f"fmnist-dpsh-{n_bits}"
    if not (folder / "embeddings.npz").exists():
        config = TrainConfig(
            "fashion-mnist",
            "dpsh",
            n_bits,
            strategy="lambda0",
            backbone="mlp",
            max_database=20_000,
            loop=LoopSettings(epochs=30, lr_head=1e-3, seed=0),
        )
        run_training(config, folder, progress=False, overwrite=True)
    return load_embeddings(folder / "embeddings.npz")


def evaluate(q, emb: EmbeddingFolds) -> float:
    _, I = rank_database(
        q.encode(emb.query),
        q.encode(emb.database),
        MAP_K,
        query_features=q.transform(emb.query),
        db_features=q.transform(emb.database),
    )
    return 100 * mean_average_precision(I, emb.y_query, emb.y_database, k=MAP_K)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


@contextlib.contextmanager
def longer_stall_rule():
    """gd-long: twice the patience and six drops instead of two (runs several times longer)."""
    names = ("GD_PATIENCE", "GD_WIDE_PATIENCE", "GD_MAX_DECAYS")
    old = [getattr(_solvers, name) for name in names]
    for name, value in zip(names, (2 * old[0], 2 * old[1], 6), strict=True):
        setattr(_solvers, name, value)
    try:
        yield
    finally:
        for name, value in zip(names, old, strict=True):
            setattr(_solvers, name, value)


def fit_side_by_side(makers: dict, X, Xv, repeats: dict[str, int]) -> tuple[dict, dict]:
    """Interleaved fits after a warm-up; returns the fit times and the last fitted of each."""
    HouseholderQuantizer(max_iter=5).fit(X, X_val=Xv)  # warm-up (allocator, BLAS)
    ITQQuantizer(max_iter=5).fit(X)
    times: dict[str, list[float]] = {m: [] for m in makers}
    fitted = {}
    for rep in range(max(repeats.values())):
        for name, make in makers.items():
            if rep >= repeats[name]:
                continue
            q = make()
            context = longer_stall_rule() if name.endswith("gd-long") else contextlib.nullcontext()
            with context:
                t0 = time.perf_counter()
                q.fit(X, X_val=Xv)
                times[name].append(time.perf_counter() - t0)
            fitted[name] = q
    return times, fitted


def targets(row: dict, prefix: str, narrow: bool) -> dict:
    gd, paper, itq = (row[f"{prefix}{m}"] for m in ("h2q-gd", "h2q-paper", "itq"))
    t_gd, t_itq = gd["time_s"]["median"], itq["time_s"]["median"]
    budget = t_itq if narrow else 2 * t_itq
    out = {
        "gd_over_itq_time": t_gd / t_itq,
        "gd_over_paper_time": t_gd / paper["time_s"]["median"],
        "time_ok": t_gd <= budget,
        "val_loss_le_paper": gd["val_loss_l2"] <= paper["val_loss_l2"],
        "val_loss_le_itq": gd["val_loss_l2"] <= itq["val_loss_l2"],
    }
    if "map" in gd:
        out["map_ge_paper_minus_0.1"] = gd["map"] >= paper["map"] - 0.1
    return out


def run_narrow(bits: list[int], repeats: int, paper_repeats: int, paper_epochs) -> dict:
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    results = {}
    for k in bits:
        emb = stage1_embeddings(k, out)
        X, Xv = emb.train, emb.val
        makers, reps = {}, {}
        for c in (False, True):
            p = "centered-" if c else ""
            makers[p + "h2q-gd"] = lambda c=c: HouseholderQuantizer(center=c)
            makers[p + "h2q-paper"] = lambda c=c: HouseholderQuantizer(
                solver="paper", max_iter=paper_epochs, center=c
            )
            makers[p + "itq"] = lambda c=c: ITQQuantizer(center=c)
            reps.update({p + "h2q-gd": repeats, p + "h2q-paper": paper_repeats, p + "itq": repeats})
        times, fitted = fit_side_by_side(makers, X, Xv, reps)
        fitted["sign"] = SignQuantizer(center=False).fit(X)
        fitted["centered-sign"] = SignQuantizer(center=True).fit(X)
        row = {}
        for name, q in fitted.items():
            row[name] = {
                "val_loss_l2": q.quantization_loss(Xv),
                "map": evaluate(q, emb),
                "time_s": summary(times[name]) if name in times else None,
            }
            if name.endswith("h2q-gd"):
                row[name].update(n_iter=q.n_iter_, best_iteration=q.best_iteration_)
        row["targets"] = targets(row, "centered-", True)
        row["targets_uncentered"] = targets(row, "", True)
        results[str(k)] = row
    return results


def load_wide(path: Path) -> tuple[np.ndarray, np.ndarray]:
    X = np.load(path)
    if not isinstance(X, np.ndarray):
        X = X["train"]
    X = X.astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(X))
    return X[perm[:6000]], X[perm[6000:7000]]


def run_wide(path: Path, bits: list[int], paper_epochs) -> dict:
    X, Xv = load_wide(path)
    results = {}
    for k in bits:
        makers = {
            "h2q-gd": lambda k=k: HouseholderQuantizer(k, projection="pca"),
            "h2q-gd-long": lambda k=k: HouseholderQuantizer(k, projection="pca"),
            "h2q-paper": lambda k=k: HouseholderQuantizer(
                k, projection="pca", solver="paper", max_iter=paper_epochs
            ),
            "itq": lambda k=k: ITQQuantizer(k, projection="pca"),
        }
        reps = {"h2q-gd": 3, "itq": 3, "h2q-gd-long": 1, "h2q-paper": 1}
        times, fitted = fit_side_by_side(makers, X, Xv, reps)
        fitted["centered-sign"] = SignQuantizer(k, projection="pca").fit(X)
        row = {}
        for name, q in fitted.items():
            row[name] = {
                "val_loss_l2": q.quantization_loss(Xv),
                "time_s": summary(times[name]) if name in times else None,
            }
            if name.startswith("h2q-gd"):
                row[name].update(n_iter=q.n_iter_, best_iteration=q.best_iteration_)
        row["targets"] = targets(row, "", False)
        results[str(k)] = row
    return results


def environment() -> dict:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h2q": h2q.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_start": list(os.getloadavg()),
    }


def _time(t: dict | None) -> str:
    return "-" if t is None else f"{t['median']:.3f} [{t['min']:.3f}-{t['max']:.3f}]"


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# Stage-2 solvers: default (gd) vs paper loop vs ITQ",
        "",
        "## Narrow codes: Fashion-MNIST DPSH lambda=0 embeddings, 5,000 train / 1,000 val",
        "",
        f"{meta['variant']} on the query fold; times are medians of {meta['repeats']} fits "
        f"(paper loop: {meta['paper_repeats']}), [min-max]; `centered-` = `center=True`, the "
        "others `center=False` (the default and the paper's protocol). The machine was shared "
        "with other jobs (load averages below).",
        "",
        "| bits | method | fit time s | val L2 loss | mAP@1000 x100 | gd iterations (best) |",
        "|---|---|---|---|---|---|",
    ]
    names = ["sign", "itq", "h2q-paper", "h2q-gd"]
    for k, row in results["narrow"].items():
        for name in names + ["centered-" + n for n in names]:
            r = row[name]
            its = f"{r['n_iter']} ({r['best_iteration']})" if "n_iter" in r else ""
            lines.append(
                f"| {k} | {name} | {_time(r['time_s'])} | {r['val_loss_l2']:.5f} | "
                f"{r['map']:.2f} | {its} |"
            )
    lines += _target_table(results["narrow"], ["targets", "targets_uncentered"])
    if results.get("wide"):
        lines += [
            "",
            f"## Wide codes: {meta['wide_source']}, 6,000 train / 1,000 val, PCA to k bits",
            "",
            "Times: medians of 3 fits (gd-long and the paper loop: 1).",
            "",
            "| bits | method | fit time s | val L2 loss | gd iterations (best) |",
            "|---|---|---|---|---|",
        ]
        for k, row in results["wide"].items():
            for name in ("centered-sign", "itq", "h2q-paper", "h2q-gd", "h2q-gd-long"):
                r = row[name]
                its = f"{r['n_iter']} ({r['best_iteration']})" if "n_iter" in r else ""
                lines.append(
                    f"| {k} | {name} | {_time(r['time_s'])} | {r['val_loss_l2']:.5f} | {its} |"
                )
        lines += _target_table(results["wide"], ["targets"])
    lines += ["", f"Environment: `{json.dumps(meta['environment'])}`", ""]
    return "\n".join(lines)


def _target_table(rows: dict, keys: list[str]) -> list[str]:
    lines = [
        "",
        "| bits | centring | gd / ITQ time | gd / paper time | time ok | val loss <= paper "
        "| val loss <= ITQ |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, row in rows.items():
        for key in keys:
            t = row[key]
            label = "off" if key.endswith("uncentered") else "on"
            lines.append(
                f"| {k} | {label} | {t['gd_over_itq_time']:.2f} | {t['gd_over_paper_time']:.4f} "
                f"| {t['time_ok']} | {t['val_loss_le_paper']} | {t['val_loss_le_itq']} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bits", type=int, nargs="+", default=None)
    parser.add_argument("--wide-bits", type=int, nargs="*", default=None)
    parser.add_argument("--wide", type=Path, default=DEFAULT_WIDE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--paper-repeats", type=int, default=3)
    args = parser.parse_args()
    bits = args.bits or ([16] if args.quick else [16, 32, 64])
    wide_bits = (
        args.wide_bits if args.wide_bits is not None else ([128] if args.quick else [128, 256, 384])
    )
    repeats = 2 if args.quick else args.repeats
    paper_repeats = 1 if args.quick else args.paper_repeats
    paper_epochs = 30 if args.quick else None
    meta = {
        "variant": variant_name(MAP_K),
        "repeats": repeats,
        "paper_repeats": paper_repeats,
        "wide_source": str(args.wide.name),
        "environment": environment(),
    }
    torch.set_num_threads(2)
    results = {"narrow": run_narrow(bits, repeats, paper_repeats, paper_epochs)}
    if wide_bits and args.wide.exists():
        results["wide"] = run_wide(args.wide, wide_bits, paper_epochs)
    meta["environment"]["load_average_end"] = list(os.getloadavg())
    name = "stage2_quick" if args.quick else "stage2"
    from h2q._io import atomic_write

    payload = json.dumps({"meta": meta, "results": results}, indent=2).encode()
    atomic_write(HERE / "results" / f"{name}.json", lambda f: f.write(payload))
    text = markdown(results, meta)
    atomic_write(HERE / "results" / f"{name}.md", lambda f: f.write(text.encode()))
    print(text)


if __name__ == "__main__":
    main()
