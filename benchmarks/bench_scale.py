"""Benchmark: search at scale, h2q's flat scan and multi-index hashing vs faiss, side by side.

Data (seeded): *clustered* codes (10,000 random centres; each item is a centre with every bit
flipped with probability 0.08; queries drawn the same way) and *uniform* random codes (the
worst case for multi-index hashing). Sizes: 10^6 and 10^7 codes of 64 bits, 10^6 of 256 bits
(``--quick``: 10^5 and 10^6 of 64 bits, 10^5 of 256). k = 10 and 100.

Methods, all with 2 threads: h2q ``HammingIndex`` (compiled scan; numpy scan at 10^6 x 64 too)
and ``MultiIndexHammingIndex``; faiss ``IndexBinaryFlat`` and ``IndexBinaryMultiHash`` (nflip 1
and 2; 4 tables of 16 bits at 64 bits, 16 at 256). faiss runs in its own process (its OpenMP
threads never compete with numba's), on the same codes and queries, right before h2q's timings
of the same case. Range search at r = 2: h2q's MIH and flat range search vs faiss's flat
``range_search``. Exactness: every h2q result is compared with the flat scan (identical D and
I); faiss's approximate results report the share of returned items within the exact k-th
distance and the share of queries whose distances are all exact.

Each timing is the median of ``--repeats`` runs after a warm-up. The machine's load average is
recorded before and after each case. Results (rewritten after every case):
``benchmarks/results/bench_scale{_quick}{_ONLY}.{json,md}``. The committed results were run one
case at a time, ``nice -n -10 python benchmarks/bench_scale.py --only CASE --repeats 2
--queries 300 --queries-big 200``, on the shared machine (load averages in the files); the
documentation's tables are generated from them by ``scripts/generate_docs.py``.

Usage::

    python benchmarks/bench_scale.py [--quick] [--repeats 3] [--seed 0] [--only CASE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import environment, environment_markdown, summarize, write_results

THREADS = 2
N_CENTRES = 10_000
FLIP_P = 0.08


def make_codes(kind: str, n: int, n_bits: int, rng: np.random.Generator, centres: np.ndarray):
    """``n`` packed codes: centres with bits flipped (``clustered``) or uniform random bits."""
    n_bytes = n_bits // 8
    if kind == "uniform":
        return rng.integers(0, 256, (n, n_bytes), dtype=np.uint8)
    out = np.empty((n, n_bytes), dtype=np.uint8)
    for s in range(0, n, 500_000):
        e = min(n, s + 500_000)
        flips = rng.random((e - s, n_bits), dtype=np.float32) < FLIP_P
        picks = centres[rng.integers(0, len(centres), e - s)]
        out[s:e] = picks ^ np.packbits(flips, axis=1, bitorder="little")
    return out


def timed(fn, repeats: int, warm_up=None) -> tuple[dict[str, Any], Any]:
    """Median timing of ``fn`` after one warm-up call (``warm_up``, e.g. on a few queries)."""
    result = (warm_up or fn)()  # warm-up (and compilation, for numba)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return summarize(times), result


# ----------------------------------------------------------------------------------------------
# faiss, in its own process


def faiss_worker(folder: str, n_bits: int, ks: list[int], repeats: int) -> None:
    import faiss

    faiss.omp_set_num_threads(THREADS)
    db = np.load(Path(folder) / "db.npy")
    q = np.load(Path(folder) / "q.npy")
    out: dict[str, Any] = {"omp_threads": faiss.omp_get_max_threads()}
    flat = faiss.IndexBinaryFlat(n_bits)
    flat.add(db)
    n_tables = n_bits // 16
    start = time.perf_counter()
    multi = faiss.IndexBinaryMultiHash(n_bits, n_tables, 16)
    multi.add(db)
    out["multihash_build_s"] = time.perf_counter() - start
    arrays = {}
    for k in ks:
        out[f"flat_k{k}"], (D, I) = timed(
            lambda k=k: flat.search(q, k), repeats, lambda k=k: flat.search(q[:10], k)
        )
        arrays[f"flat_D_k{k}"], arrays[f"flat_I_k{k}"] = D, I
        for nflip in (1, 2):
            multi.nflip = nflip
            out[f"multihash{nflip}_k{k}"], (D, I) = timed(lambda k=k: multi.search(q, k), repeats)
            arrays[f"multihash{nflip}_D_k{k}"] = D
    out["flat_range_r2"], (lims, D, I) = timed(
        lambda: flat.range_search(q, 3), repeats, lambda: flat.range_search(q[:10], 3)
    )
    arrays.update(range_lims=lims, range_I=I)  # faiss's binary radius is exclusive: d < 3
    np.savez(Path(folder) / "faiss.npz", **arrays)
    (Path(folder) / "faiss.json").write_text(json.dumps(out))


def run_faiss(folder: str, n_bits: int, ks: list[int], repeats: int) -> tuple[dict, dict]:
    cmd = [sys.executable, __file__, "--faiss-worker", folder, str(n_bits), str(repeats)]
    cmd += [str(k) for k in ks]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    subprocess.run(cmd, check=True, env=env)
    with np.load(Path(folder) / "faiss.npz") as f:
        arrays = {name: f[name] for name in f.files}
    return json.loads((Path(folder) / "faiss.json").read_text()), arrays


# ----------------------------------------------------------------------------------------------
# One case: a data set, every method


def run_case(kind: str, n: int, n_bits: int, n_queries: int, repeats: int, seed: int) -> dict:
    from h2q.search import HammingIndex, MultiIndexHammingIndex

    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (N_CENTRES, n_bits // 8), dtype=np.uint8)
    db = make_codes(kind, n, n_bits, rng, centres)
    q = make_codes(kind, n_queries, n_bits, rng, centres)
    ks = [10, 100]
    case: dict[str, Any] = {
        "config": {"kind": kind, "n_db": n, "n_bits": n_bits, "n_queries": n_queries, "ks": ks},
        "load_average_start": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "db.npy", db)
        np.save(Path(folder) / "q.npy", q)
        faiss_t, faiss_a = run_faiss(folder, n_bits, ks, repeats)
    case["faiss"] = faiss_t
    flat = HammingIndex(n_bits, backend="numba")
    flat.add(db)
    start = time.perf_counter()
    mih = MultiIndexHammingIndex(n_bits)
    mih.add(db)
    mih._get_tables()  # build now, to time it (it is otherwise built at the first search)
    case["mih_build_s"] = time.perf_counter() - start
    case["mih_substrings"] = mih.substrings
    case["mih_memory_bytes"] = mih.memory_bytes()
    case["flat_index_bytes"] = n * (n_bits // 8 + 8)  # codes + int64 ids, as the issue counts
    for k in ks:
        case[f"k{k}"] = knn_rows(
            flat, mih, q, k, repeats, faiss_t, faiss_a, n_bits == 64 and n == 10**6
        )
    case["range_r2"] = range_rows(flat, mih, q, repeats, faiss_t, faiss_a)
    case["load_average_end"] = list(os.getloadavg())
    return case


def knn_rows(flat, mih, q, k, repeats, faiss_t, faiss_a, with_numpy) -> dict[str, Any]:
    from h2q.search import HammingIndex

    n_q = len(q)
    rows: dict[str, Any] = {}
    rows["h2q flat (numba)"], (D, I) = timed(lambda: flat.search(q, k), repeats)
    if with_numpy:
        numpy_index = HammingIndex(flat.n_bits, backend="numpy")
        numpy_index.add(flat._codes())
        rows["h2q flat (numpy)"], res = timed(lambda: numpy_index.search(q, k), repeats)
        rows["h2q flat (numpy)"]["exact"] = bool(np.array_equal(res[1], I))
    rows["h2q MIH"], (mD, mI) = timed(lambda: mih.search(q, k), repeats)
    rows["h2q MIH"]["exact"] = bool(np.array_equal(mD, D) and np.array_equal(mI, I))
    rows["h2q MIH"]["exact_queries"] = int(((mD == D) & (mI == I)).all(axis=1).sum())
    rows["h2q flat (numba)"]["exact"] = True
    rows["faiss IndexBinaryFlat"] = dict(faiss_t[f"flat_k{k}"])
    rows["faiss IndexBinaryFlat"]["exact"] = bool(
        np.array_equal(faiss_a[f"flat_D_k{k}"], D) and np.array_equal(faiss_a[f"flat_I_k{k}"], I)
    )
    kth = D[:, -1:]
    for nflip in (1, 2):
        name = f"faiss IndexBinaryMultiHash nflip={nflip}"
        fD = faiss_a[f"multihash{nflip}_D_k{k}"]
        rows[name] = dict(faiss_t[f"multihash{nflip}_k{k}"])
        rows[name]["share_within_exact_kth"] = float((fD <= kth).mean())
        rows[name]["share_queries_exact_distances"] = float((fD == D).all(axis=1).mean())
        rows[name]["exact"] = bool(np.array_equal(fD, D))
    base = rows["faiss IndexBinaryFlat"]["median_s"]
    for row in rows.values():
        row["queries_per_s"] = n_q / row["median_s"]
        row["speedup_vs_faiss_flat"] = base / row["median_s"]
    rows["median_kth_distance"] = float(np.median(D[:, -1]))
    return rows


def range_rows(flat, mih, q, repeats, faiss_t, faiss_a) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    rows["h2q flat range"], ref = timed(lambda: flat.range_search(q, 2), repeats)
    rows["h2q MIH range"], got = timed(lambda: mih.range_search(q, 2), repeats)
    rows["h2q MIH range"]["exact"] = all(
        np.array_equal(a, b) for a, b in zip(got, ref, strict=True)
    )
    rows["h2q flat range"]["exact"] = True  # the reference
    rows["faiss IndexBinaryFlat range_search"] = dict(faiss_t["flat_range_r2"])
    lims, I = faiss_a["range_lims"], faiss_a["range_I"]
    same = np.array_equal(lims, ref.lims) and all(
        np.array_equal(np.sort(I[lims[r] : lims[r + 1]]), np.sort(ref.I[lims[r] : lims[r + 1]]))
        for r in range(len(q))
    )
    rows["faiss IndexBinaryFlat range_search"]["exact"] = bool(same)
    base = rows["faiss IndexBinaryFlat range_search"]["median_s"]
    for row in rows.values():
        row["queries_per_s"] = len(q) / row["median_s"]
        row["speedup_vs_faiss_flat"] = base / row["median_s"]
    rows["mean_results_per_query"] = float(len(ref.I) / len(q))
    return rows


# ----------------------------------------------------------------------------------------------
# Report


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# bench_scale: flat scan and multi-index hashing vs faiss (2 threads, medians)\n",
        f"{record['repeats']} repeats after a warm-up, seed {record['seed']}. faiss ran in its "
        "own process right before h2q on the same data. Speed-up = faiss IndexBinaryFlat "
        "time / method time. 'exact' = identical D and I to the flat scan (faiss approximate "
        "indexes: share of returned items within the exact k-th distance).\n",
    ]
    for case in record["cases"]:
        c = case["config"]
        lines.append(
            f"## {c['kind']} codes, {c['n_db']:,} x {c['n_bits']} bits, "
            f"{c['n_queries']:,} queries\n"
        )
        lines.append(
            f"MIH: m = {case['mih_substrings']}, build {case['mih_build_s']:.2f} s (faiss "
            f"MultiHash {case['faiss']['multihash_build_s']:.2f} s), memory "
            f"{case['mih_memory_bytes'] / 2**20:.0f} MiB = "
            f"{case['mih_memory_bytes'] / case['flat_index_bytes']:.2f}x the flat index "
            f"(codes + ids). Load average {case['load_average_start'][0]:.1f} -> "
            f"{case['load_average_end'][0]:.1f}.\n"
        )
        lines.append("| k | method | median s | queries/s | speed-up vs faiss flat | exact |")
        lines.append("|---|---|---|---|---|---|")
        for k in c["ks"]:
            rows = case[f"k{k}"]
            for name, row in rows.items():
                if not isinstance(row, dict):
                    continue
                exact = row.get("exact")
                if "share_within_exact_kth" in row:
                    exact = f"{row['share_within_exact_kth']:.2%} within k-th"
                lines.append(
                    f"| {k} | {name} | {row['median_s']:.3f} | {row['queries_per_s']:,.0f} | "
                    f"{row['speedup_vs_faiss_flat']:.2f}x | {exact} |"
                )
        for name, row in case["range_r2"].items():
            if isinstance(row, dict):
                lines.append(
                    f"| r<=2 | {name} | {row['median_s']:.3f} | {row['queries_per_s']:,.0f} | "
                    f"{row['speedup_vs_faiss_flat']:.2f}x | {row['exact']} |"
                )
        lines.append(
            f"\nMedian k-th distance (k=100): {case['k100']['median_kth_distance']:.0f}; mean "
            f"results within radius 2: {case['range_r2']['mean_results_per_query']:.1f}.\n"
        )
    return "\n".join(lines) + "\n" + environment_markdown(record["environment"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queries", type=int, default=1000, help="queries per case")
    parser.add_argument(
        "--queries-big", type=int, default=1000, help="queries of the 10x larger cases"
    )
    parser.add_argument("--only", help="run only cases whose name contains this text")
    args = parser.parse_args()
    import numba

    numba.set_num_threads(THREADS)
    env = environment()
    env["versions"]["numba"] = numba.__version__
    big = 10**5 if args.quick else 10**6
    cases = [
        ("clustered", big, 64),
        ("uniform", big, 64),
        ("clustered", 10 * big, 64),
        ("uniform", 10 * big, 64),
        ("clustered", big, 256),
        ("uniform", big, 256),
    ]
    suffix = ("_quick" if args.quick else "") + (f"_{args.only}" if args.only else "")
    record: dict[str, Any] = {
        "benchmark": "bench_scale",
        "quick": args.quick,
        "seed": args.seed,
        "repeats": args.repeats,
        "cases": [],
    }
    for kind, n, n_bits in cases:
        name = f"{kind}-{n}-{n_bits}"
        if args.only and args.only not in name:
            continue
        print(f"bench_scale: {name}", file=sys.stderr, flush=True)
        n_queries = args.queries_big if n == 10 * big else args.queries
        record["cases"].append(run_case(kind, n, n_bits, n_queries, args.repeats, args.seed))
        # Written after every case, so that a long run interrupted late keeps what it measured.
        env["load_average_end"] = list(os.getloadavg())
        record["environment"] = env
        paths = write_results(f"bench_scale{suffix}", record, markdown(record))
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--faiss-worker":
        folder, n_bits, repeats, *ks = sys.argv[2:]
        faiss_worker(folder, int(n_bits), [int(k) for k in ks], int(repeats))
    else:
        main()
