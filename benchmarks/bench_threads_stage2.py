"""Stage-2 fits on 1 thread vs 2: where do extra threads pay off?

Fits ``HouseholderQuantizer()`` and ``ITQQuantizer()`` with ``n_threads=1`` and ``n_threads=2``
(interleaved, one warm-up, then repeats) on synthetic clustered embeddings of several sizes,
plus one 384 x 384 SVD, and reports medians and the 2-thread / 1-thread ratio. The rule behind
``n_threads=None`` (:func:`h2q.quantizers.base.auto_threads`) comes from this table.

    python benchmarks/bench_threads_stage2.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import environment, interleaved_timings  # noqa: E402

from h2q._io import atomic_write  # noqa: E402
from h2q._threads import thread_limit  # noqa: E402
from h2q.quantizers import HouseholderQuantizer, ITQQuantizer  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = [(5000, 16), (5000, 64), (20000, 64), (6000, 384)]


def clustered(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((10, k))
    return (centers[rng.integers(0, 10, n)] + 0.6 * rng.standard_normal((n, k))).astype(np.float32)


def svd(n_threads: int) -> None:
    A = torch.randn(384, 384, generator=torch.Generator().manual_seed(0))
    with thread_limit(n_threads):
        torch.linalg.svd(A)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = environment()
    rows = []
    for n, k in SIZES:
        X = clustered(n, k)
        Xv = clustered(1000, k, 1)
        methods = {}
        for t in (1, 2):
            methods[f"h2q-{t}"] = lambda t=t, X=X, Xv=Xv: HouseholderQuantizer(n_threads=t).fit(
                X, X_val=Xv
            )
            methods[f"itq-{t}"] = lambda t=t, X=X: ITQQuantizer(n_threads=t).fit(X)
        timing = interleaved_timings(methods, args.repeats)
        for m in ("h2q", "itq"):
            one, two = timing[f"{m}-1"]["median_s"], timing[f"{m}-2"]["median_s"]
            rows.append({"case": f"{m} fit {n}x{k}", "macs": n * k * k, "t1_s": one, "t2_s": two})
    timing = interleaved_timings({"svd-1": lambda: svd(1), "svd-2": lambda: svd(2)}, 5)
    rows.append(
        {
            "case": "svd 384x384",
            "macs": 384**3,
            "t1_s": timing["svd-1"]["median_s"],
            "t2_s": timing["svd-2"]["median_s"],
        }
    )
    env["load_average_end"] = list(os.getloadavg())
    lines = [
        "# Stage-2 fits: 1 thread vs 2",
        "",
        f"Medians of {args.repeats} interleaved runs after a warm-up (SVD: 5). The machine was "
        "shared with other jobs; see the load averages below.",
        "",
        "| case | n*d*k | 1 thread s | 2 threads s | 2 / 1 |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        r["ratio"] = r["t2_s"] / r["t1_s"]
        lines.append(
            f"| {r['case']} | {r['macs']:.2e} | {r['t1_s']:.3f} | {r['t2_s']:.3f} | "
            f"{r['ratio']:.2f} |"
        )
    lines += ["", f"Environment: `{json.dumps(env)}`", ""]
    text = "\n".join(lines)
    payload = json.dumps({"environment": env, "rows": rows}, indent=2).encode()
    atomic_write(HERE / "results" / "threads_stage2.json", lambda f: f.write(payload))
    atomic_write(HERE / "results" / "threads_stage2.md", lambda f: f.write(text.encode()))
    print(text)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
