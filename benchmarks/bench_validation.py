"""The stage-1 validation score: whole-ranking mAP, chunked with compiled terms, against the
path that sorts packed keys and holds the whole ranking.

The main job validates each stage-1 run seven times: 1,000 validation queries ranked against
the 5,000 training items by Hamming distance of sign codes, ties by the feature distance of
the L2-normalised outputs, then mAP over the whole ranking. This benchmark scores outputs
shaped like the main job's (``--queries`` x ``--items``, ``--bits`` tanh outputs of ten
class clusters, 1 thread) both ways, alternating them ``--repeats`` times, and reports the
median CPU milliseconds (``time.process_time``: the machine is shared) and their ratio:

- **anchor**: ``rank_database`` with each row sorted as h2q did before its radix order (keys
  packed from (distance, feature distance, id) by a compiled kernel, then numpy's sort), the
  whole ranking and its distances as arrays, then ``_trusted_map`` on it (with the same
  compiled AP terms: the difference is the sort and holding the ranking);
- **chunked**: ``iter_rank_order`` (the compiled radix order, a chunk of queries at a time)
  scored by ``_whole_ranking_map`` (compiled AP terms, summed by numpy), as
  :func:`h2q.training.validation_map` does.

Both must give the same mAP, bit for bit (checked). Writes
``benchmarks/results/bench_validation.{json,md}``.

Usage::

    python benchmarks/bench_validation.py            # ~10 s of CPU
    python benchmarks/bench_validation.py --repeats 3 --bits 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numba
import numpy as np
from bench_encode import write_results
from bench_stage1 import cpu_environment, hardware_line

from h2q._threads import thread_limit
from h2q.codes import encode_sign
from h2q.evaluation.metrics import _trusted_map, _whole_ranking_map
from h2q.search import _scan, iter_rank_order, rank_database


def outputs(n: int, bits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """tanh outputs of ten Gaussian class clusters, and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    centres = np.random.default_rng(99).standard_normal((10, bits))
    X = np.tanh(centres[y] + 0.8 * rng.standard_normal((n, bits)))
    return X.astype(np.float32), y


@numba.njit(cache=True)
def _pack_keys(dist: np.ndarray, fd_bits: np.ndarray, id_bits: int, out: np.ndarray) -> None:
    shift = 31 + id_bits
    for r in range(dist.shape[0]):
        for i in range(dist.shape[1]):
            out[r, i] = (np.int64(dist[r, i]) << shift) | (np.int64(fd_bits[r, i]) << id_bits) | i


def _compiled_order_keys(dist: np.ndarray, fd: np.ndarray, id_bits: int) -> np.ndarray:
    key = np.empty(dist.shape, dtype=np.int64)
    _pack_keys(dist, fd.view(np.uint32), id_bits, key)
    return key


def anchor(q: np.ndarray, db: np.ndarray, yq: np.ndarray, ydb: np.ndarray) -> float:
    """The whole ranking by numpy's sort of compiled packed keys, then its mAP."""
    saved = _scan.numba_available, _scan._order_keys
    _scan.numba_available = lambda: False  # the row sort only: numpy's, on packed keys
    _scan._order_keys = _compiled_order_keys
    try:
        _, ranking = rank_database(
            encode_sign(q), encode_sign(db), len(db), query_features=q, db_features=db
        )
    finally:
        _scan.numba_available, _scan._order_keys = saved
    return _trusted_map(ranking, yq, ydb, len(db))


def chunked(q: np.ndarray, db: np.ndarray, yq: np.ndarray, ydb: np.ndarray) -> float:
    """The validation's path: the compiled order a chunk at a time, compiled AP terms."""
    blocks = iter_rank_order(encode_sign(q), encode_sign(db), query_features=q, db_features=db)
    return _whole_ranking_map(blocks, yq, ydb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    q, yq = outputs(args.queries, args.bits, seed=1)
    db, ydb = outputs(args.items, args.bits, seed=2)
    load_start = list(os.getloadavg())
    variants = {"anchor": anchor, "chunked": chunked}
    times: dict[str, list[float]] = {name: [] for name in variants}
    scores: dict[str, float] = {}
    with thread_limit(1):
        for fn in variants.values():
            fn(q, db, yq, ydb)  # warm-up: numba compiles or loads its cache
        for _ in range(args.repeats):
            for name, fn in variants.items():
                start = time.process_time()
                scores[name] = fn(q, db, yq, ydb)
                times[name].append(1e3 * (time.process_time() - start))
    record: dict[str, Any] = {
        "queries": args.queries,
        "items": args.items,
        "bits": args.bits,
        "repeats": args.repeats,
        "cpu_ms": {name: statistics.median(t) for name, t in times.items()},
        "cpu_ms_all": times,
        "map": scores,
        "same_map": scores["anchor"] == scores["chunked"],
        "environment": cpu_environment(load_start),
    }
    table = markdown(record)
    write_results("bench_validation", record, table)
    print(table)
    return 0 if record["same_map"] else 1


def markdown(record: dict[str, Any]) -> str:
    ms = record["cpu_ms"]
    lines = [
        "# Stage-1 validation score: chunked compiled path vs packed-key sort (1 thread)",
        "",
        hardware_line(record["environment"]),
        f"- {record['queries']} queries x {record['items']} items, {record['bits']} bits, "
        f"median of {record['repeats']} alternating repeats",
        f"- same mAP, bit for bit: {record['same_map']} ({record['map']['chunked']!r})",
        "",
        "| path | CPU ms | anchor / path |",
        "|---|---:|---:|",
    ]
    for name in ("anchor", "chunked"):
        lines.append(f"| {name} | {ms[name]:.1f} | {ms['anchor'] / ms[name]:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
