"""Benchmark: the flat scan's back ends side by side in one process, interleaved.

10^6 uniform random codes of 64 and 256 bits, ``--queries`` random queries, k = 10 and 100,
2 threads: h2q ``HammingIndex`` with the compiled (numba) and the numpy scan against faiss
``IndexBinaryFlat``, each call interleaved with the others (``OMP_WAIT_POLICY=PASSIVE`` is set
so that faiss's idle OpenMP threads do not spin on the cores numba needs next). Complements
``bench_scale.py``, where faiss runs in its own process and the load may change between the
two. Results: ``benchmarks/results/bench_flat.{json,md}``.

Usage::

    python benchmarks/bench_flat.py [--queries 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss loads its OpenMP runtime

import numpy as np  # noqa: E402
from bench_encode import (  # noqa: E402
    environment,
    environment_markdown,
    interleaved_timings,
    write_results,
)


def run(n_bits: int, n: int, n_queries: int, k: int, repeats: int) -> dict:
    import faiss

    from h2q.search import HammingIndex

    rng = np.random.default_rng(n_bits + k)
    db = rng.integers(0, 256, (n, n_bits // 8), dtype=np.uint8)
    q = rng.integers(0, 256, (n_queries, n_bits // 8), dtype=np.uint8)
    ours = {b: HammingIndex(n_bits, backend=b) for b in ("numba", "numpy")}
    for index in ours.values():
        index.add(db)
    anchor = faiss.IndexBinaryFlat(n_bits)
    anchor.add(db)
    methods = {
        "faiss IndexBinaryFlat": lambda: anchor.search(q, k),
        "h2q flat (numba)": lambda: ours["numba"].search(q, k),
        "h2q flat (numpy)": lambda: ours["numpy"].search(q, k),
    }
    reference = anchor.search(q, k)
    rows = interleaved_timings(methods, repeats)
    base = rows["faiss IndexBinaryFlat"]["median_s"]
    for name, row in rows.items():
        D, I = methods[name]()
        row["queries_per_s"] = n_queries / row["median_s"]
        row["speedup_vs_faiss_flat"] = base / row["median_s"]
        row["identical_D_I"] = bool(
            np.array_equal(D, reference[0]) and np.array_equal(I, reference[1])
        )
    return {
        "config": {"n_db": n, "n_bits": n_bits, "n_queries": n_queries, "k": k},
        "methods": rows,
        "load_average_end": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import faiss
    import numba

    numba.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    env = environment()
    env["versions"]["numba"] = numba.__version__
    cases = [run(b, 10**6, args.queries, k, args.repeats) for b in (64, 256) for k in (10, 100)]
    env["load_average_end"] = list(os.getloadavg())
    lines = [
        "# bench_flat: flat scan back ends, interleaved in one process (2 threads)\n",
        "| bits | k | method | median s | queries/s | vs faiss | identical D, I |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        c = case["config"]
        for name, row in case["methods"].items():
            lines.append(
                f"| {c['n_bits']} | {c['k']} | {name} | {row['median_s']:.3f} | "
                f"{row['queries_per_s']:,.0f} | {row['speedup_vs_faiss_flat']:.2f}x | "
                f"{row['identical_D_I']} |"
            )
    record = {
        "benchmark": "bench_flat",
        "repeats": args.repeats,
        "cases": cases,
        "environment": env,
    }
    write_results("bench_flat", record, "\n".join(lines) + "\n\n" + environment_markdown(env))


if __name__ == "__main__":
    main()
