"""Benchmark: Milvus Lite (BIN_FLAT) insert and exact search against h2q.HammingIndex.

10^6 random 64-bit codes (``--quick``: 10^5) are inserted into a fresh Milvus Lite collection
through :class:`h2q.integrations.milvus.MilvusHammingIndex` (ids 0..n-1, 10,000 rows per
request, each batch checked for existing ids) and into ``HammingIndex`` (faiss backend); 1,000
random queries search the top ``k`` (10 and 100) in both, interleaved. Reported: insert
throughput (codes/s, one timed build each after a warm-up build of 10,000 codes: a build of
10^6 is the operation being measured, and it is not repeated), search throughput (queries/s,
median of ``--repeats`` after a warm-up), the ratios to HammingIndex, and whether D and I are
identical on every query. A second, smaller check at 256 bits (10^5 codes) compares D and I
too. Milvus Lite runs as a separate local process, so its CPU use is not limited by this
process's thread settings.

Usage::

    python benchmarks/bench_milvus.py [--quick] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from typing import Any

import numpy as np
from bench_encode import environment, environment_markdown, interleaved_timings, write_results


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("pymilvus", "milvus-lite", "setuptools")}


def run_size(
    folder: str, n: int, n_bits: int, n_queries: int, ks: list[int], seed: int, repeats: int
) -> dict[str, Any]:
    from h2q.integrations.milvus import MilvusHammingIndex
    from h2q.search import HammingIndex

    rng = np.random.default_rng(seed)
    db = rng.integers(0, 256, (n, n_bits // 8), dtype=np.uint8)
    queries = rng.integers(0, 256, (n_queries, n_bits // 8), dtype=np.uint8)
    uri = os.path.join(folder, f"bench_{n_bits}.db")
    warm = MilvusHammingIndex(uri, "warmup", n_bits)
    warm.add(db[:10_000])
    warm.search(queries[:10], 10)
    warm.drop()

    start = time.perf_counter()
    milvus = MilvusHammingIndex(uri, "codes", n_bits)
    milvus.add(db)
    milvus_insert = time.perf_counter() - start
    start = time.perf_counter()
    ref = HammingIndex(n_bits, backend="faiss")
    ref.add(db)
    ref_insert = time.perf_counter() - start
    assert milvus.ntotal == n

    searches = []
    for k in ks:
        D_m, I_m = milvus.search(queries, k)
        D_r, I_r = ref.search(queries, k)
        timings = interleaved_timings(
            {
                "milvus": lambda k=k: milvus.search(queries, k),
                "hamming": lambda k=k: ref.search(queries, k),
            },
            repeats,
        )
        searches.append(
            {
                "k": k,
                "milvus": {
                    **timings["milvus"],
                    "queries_per_s": n_queries / timings["milvus"]["median_s"],
                },
                "hamming_index": {
                    **timings["hamming"],
                    "queries_per_s": n_queries / timings["hamming"]["median_s"],
                },
                "throughput_ratio_milvus_vs_hamming": timings["hamming"]["median_s"]
                / timings["milvus"]["median_s"],
                "identical_D_every_query": bool(np.array_equal(D_m, D_r)),
                "identical_I_every_query": bool(np.array_equal(I_m, I_r)),
                "rows_with_I_differing": int((I_m != I_r).any(axis=1).sum()),
            }
        )
    milvus.drop()
    milvus.close()
    return {
        "config": {"n_db": n, "n_bits": n_bits, "n_queries": n_queries, "ks": ks},
        "insert": {
            "milvus_s": milvus_insert,
            "milvus_codes_per_s": n / milvus_insert,
            "hamming_index_s": ref_insert,
            "hamming_index_codes_per_s": n / ref_insert,
        },
        "search": searches,
    }


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# bench_milvus: Milvus Lite (BIN_FLAT) vs HammingIndex (faiss), exact Hamming top-k\n",
        f"Seed {record['seed']}; search: 1 warm-up + {record['repeats']} interleaved repeats; "
        "insert: one timed build after a warm-up build of 10,000 codes.\n",
        "| codes | bits | insert Milvus codes/s | insert HammingIndex codes/s | k "
        "| search Milvus q/s | search HammingIndex q/s | Milvus / HammingIndex "
        "| D identical | I identical |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for part in record["parts"]:
        c, ins = part["config"], part["insert"]
        for s in part["search"]:
            lines.append(
                f"| {c['n_db']:,} | {c['n_bits']} | {ins['milvus_codes_per_s']:,.0f} | "
                f"{ins['hamming_index_codes_per_s']:,.0f} | {s['k']} | "
                f"{s['milvus']['queries_per_s']:,.1f} | "
                f"{s['hamming_index']['queries_per_s']:,.1f} | "
                f"{s['throughput_ratio_milvus_vs_hamming']:.3f} | {s['identical_D_every_query']} | "
                f"{s['identical_I_every_query']} |"
            )
    lines.append("")
    lines.append(f"- Milvus: {', '.join(f'{k} {v}' for k, v in record['engine_versions'].items())}")
    lines.append(environment_markdown(record["environment"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    env = environment()
    n = 100_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="h2q-bench-milvus-") as folder:
        parts = [
            run_size(folder, n, 64, 1000, [10, 100], args.seed, args.repeats),
            run_size(folder, 100_000, 256, 1000, [10], args.seed + 1, args.repeats),
        ]
    env["load_average_end"] = list(os.getloadavg())
    record = {
        "seed": args.seed,
        "repeats": args.repeats,
        "quick": args.quick,
        "engine_versions": _versions(),
        "environment": env,
        "parts": parts,
    }
    name = "bench_milvus_quick" if args.quick else "bench_milvus"
    json_path, md_path = write_results(name, record, markdown(record))
    print(markdown(record))
    print(f"-> {json_path}, {md_path}")


if __name__ == "__main__":
    main()
