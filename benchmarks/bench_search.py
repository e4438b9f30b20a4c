"""Benchmark: exact Hamming top-k, h2q.HammingIndex vs faiss.IndexBinaryFlat used directly.

Part 1 (the target). 1,000,000 random 64-bit codes, 1,000 random queries, exact top-100
(``--quick``: 100,000 codes, 200 queries). Methods, interleaved in the same run on the same
queries: the anchor ``faiss.IndexBinaryFlat.search``; ``HammingIndex(backend="faiss")``;
``HammingIndex(backend="numpy")``. Reports median and spread, throughput (queries/s), the
throughput ratio to the anchor (target >= 0.9 for the faiss backend) and whether the
distances and ids are identical.

Part 2 (the paper's protocol size, for the metrics code). 53,000 database items, 1,000
queries (``--quick``: 200), top 5,000, codes = signs of Gaussian features of n_bits
dimensions, n_bits in {16, 64}: ``rank_database`` without and with the exact feature
re-ranking of ties, and faiss top-5,000 as a reference point.

Seeded; one warm-up call per method, then ``--repeats`` interleaved rounds. Results go to
``benchmarks/results/bench_search.{json,md}``. The helpers (environment, timing, output) come
from ``bench_encode.py`` in this folder.

Usage::

    python benchmarks/bench_search.py [--quick] [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
from bench_encode import environment, environment_markdown, interleaved_timings, write_results


def part_one(n: int, n_queries: int, k: int, seed: int, repeats: int) -> dict[str, Any]:
    import faiss

    from h2q.search import HammingIndex

    rng = np.random.default_rng(seed)
    db = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    queries = rng.integers(0, 256, (n_queries, 8), dtype=np.uint8)
    anchor = faiss.IndexBinaryFlat(64)
    anchor.add(db)
    ours_faiss = HammingIndex(64, backend="faiss")
    ours_faiss.add(db)
    ours_numpy = HammingIndex(64, backend="numpy")
    ours_numpy.add(db)
    methods = {
        "faiss.IndexBinaryFlat": lambda: anchor.search(queries, k),
        "HammingIndex(faiss)": lambda: ours_faiss.search(queries, k),
        "HammingIndex(numpy)": lambda: ours_numpy.search(queries, k),
    }
    results = {name: fn() for name, fn in methods.items()}
    reference = results["faiss.IndexBinaryFlat"]
    timings = interleaved_timings(methods, repeats)
    base = timings["faiss.IndexBinaryFlat"]["median_s"]
    rows = {}
    for name, t in timings.items():
        D, I = results[name]
        rows[name] = {
            **t,
            "queries_per_s": n_queries / t["median_s"],
            "throughput_ratio_vs_faiss": base / t["median_s"],
            "identical_D": bool(np.array_equal(D, reference[0])),
            "identical_I": bool(np.array_equal(I, reference[1])),
        }
    return {
        "config": {"n_db": n, "n_bits": 64, "n_queries": n_queries, "k": k},
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "methods": rows,
        "target_faiss_backend_ratio_ge_0.9": rows["HammingIndex(faiss)"][
            "throughput_ratio_vs_faiss"
        ]
        >= 0.9,
    }


def part_two(n_db: int, n_queries: int, k: int, seed: int, repeats: int) -> list[dict[str, Any]]:
    import faiss

    from h2q.codes import encode_sign
    from h2q.search import rank_database

    out = []
    for n_bits in (16, 64):
        rng = np.random.default_rng(seed + n_bits)
        db_features = rng.standard_normal((n_db, n_bits), dtype=np.float32)
        query_features = rng.standard_normal((n_queries, n_bits), dtype=np.float32)
        db = encode_sign(db_features)
        queries = encode_sign(query_features)
        index = faiss.IndexBinaryFlat(n_bits)
        index.add(db)
        methods = {
            "faiss top-k (no re-rank)": lambda index=index, queries=queries: index.search(
                queries, k
            ),
            "rank_database (no re-rank)": lambda db=db, queries=queries: rank_database(
                queries, db, k
            ),
            "rank_database (re-rank ties)": (
                lambda db=db, queries=queries, qf=query_features, dbf=db_features: rank_database(
                    queries, db, k, query_features=qf, db_features=dbf
                )
            ),
        }
        results = {name: fn() for name, fn in methods.items()}
        timings = interleaved_timings(methods, repeats)
        reference = results["faiss top-k (no re-rank)"]
        rows = {}
        for name, t in timings.items():
            D, I = results[name]
            rows[name] = {
                **t,
                "queries_per_s": n_queries / t["median_s"],
                "identical_D_to_faiss": bool(np.array_equal(D, reference[0])),
                "identical_I_to_faiss": bool(np.array_equal(I, reference[1])),
            }
        kth = reference[0][:, -1]
        tie_sizes = [
            int(np.count_nonzero(np.bitwise_count(q[None] ^ db).sum(axis=1) == t))
            for q, t in zip(queries[:50], kth[:50], strict=True)
        ]
        out.append(
            {
                "config": {"n_db": n_db, "n_bits": n_bits, "n_queries": n_queries, "k": k},
                "median_items_at_kth_distance": float(np.median(tie_sizes)),
                "methods": rows,
            }
        )
    return out


def markdown(record: dict[str, Any]) -> str:
    one = record["part_one"]
    cfg = one["config"]
    lines = [
        f"# bench_search: exact top-{cfg['k']} over {cfg['n_db']:,} codes of {cfg['n_bits']} "
        f"bits, {cfg['n_queries']:,} queries\n",
        f"Interleaved, 1 warm-up + {record['repeats']} repeats, seed {record['seed']}; faiss "
        f"OpenMP threads: {one['faiss_omp_threads']}.\n",
        "| method | median s | min - max s | IQR s | queries/s | throughput vs faiss | "
        "D identical | I identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in one["methods"].items():
        lines.append(
            f"| {name} | {row['median_s']:.3f} | {row['min_s']:.3f} - {row['max_s']:.3f} | "
            f"{row['iqr_s']:.3f} | {row['queries_per_s']:,.0f} | "
            f"{row['throughput_ratio_vs_faiss']:.3f} | {row['identical_D']} | "
            f"{row['identical_I']} |"
        )
    ratio = one["methods"]["HammingIndex(faiss)"]["throughput_ratio_vs_faiss"]
    lines.append(
        f"\n- HammingIndex(faiss) throughput / faiss: **{ratio:.3f}** (target >= 0.9: "
        f"{one['target_faiss_backend_ratio_ge_0.9']})\n"
    )
    lines.append("## Protocol-sized ranking (rank_database, for the metrics code)\n")
    lines.append("| n_bits | method | median s | min - max s | queries/s | D = faiss | I = faiss |")
    lines.append("|---|---|---|---|---|---|---|")
    for case in record["part_two"]:
        for name, row in case["methods"].items():
            lines.append(
                f"| {case['config']['n_bits']} | {name} | {row['median_s']:.3f} | "
                f"{row['min_s']:.3f} - {row['max_s']:.3f} | {row['queries_per_s']:,.0f} | "
                f"{row['identical_D_to_faiss']} | {row['identical_I_to_faiss']} |"
            )
    c = record["part_two"][0]["config"]
    lines.append(
        f"\n{c['n_db']:,} database items, {c['n_queries']:,} queries, top {c['k']:,}; codes "
        "are signs of Gaussian features. Re-ranking changes the order inside tie groups, so "
        "its I differs from faiss by design (its D must not). Median number of items at the "
        "k-th distance (first 50 queries): "
        + ", ".join(
            f"{case['config']['n_bits']} bits: {case['median_items_at_kth_distance']:.0f}"
            for case in record["part_two"]
        )
        + ".\n"
    )
    return "\n".join(lines) + "\n" + environment_markdown(record["environment"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    env = environment()
    n, n_queries = (100_000, 200) if args.quick else (1_000_000, 1_000)
    record: dict[str, Any] = {
        "benchmark": "bench_search",
        "quick": args.quick,
        "seed": args.seed,
        "repeats": args.repeats,
        "part_one": part_one(n, n_queries, 100, args.seed, args.repeats),
        "part_two": part_two(53_000, 200 if args.quick else 1_000, 5_000, args.seed, args.repeats),
        "environment": env,
    }
    record["environment"]["load_average_end"] = list(os.getloadavg())
    table = markdown(record)
    json_path, md_path = write_results(
        "bench_search" + ("_quick" if args.quick else ""), record, table
    )
    print(table)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
