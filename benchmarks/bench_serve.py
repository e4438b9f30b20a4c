"""Benchmark: ``h2q serve`` under concurrent load on loopback, beside the same searches in-process.

10^6 64-bit codes (the sign of Gaussian vectors, ``h2q fit --method sign`` then encode),
k = 10, 10,000 single-query requests (``{"code": hex, "k": 10}``) at concurrency 1, 8 and 32,
sent by an asyncio HTTP/1.1 keep-alive client (one connection per concurrent client) to a
``h2q serve --index flat`` child process on 127.0.0.1. Reported per run: q/s, p50 / p99
latency seen by the client, non-2xx and failed requests, the mean number of queries per
search call (the server runs waiting requests together), and every answer checked against
the in-process result. The anchor: the same 10,000 searches called in-process one at a time
(``HammingIndex.search`` of one query), at 1 and 2 threads, the better one taken.

The client and the server share the machine's cores (2 here): the client's CPU time is part
of the HTTP cost measured. Bounded: loopback only, fixed request counts, a timeout per
request. Results: ``benchmarks/results/bench_serve.{json,md}``.

Usage::

    python benchmarks/bench_serve.py [--requests 10000] [--n 1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import environment, environment_markdown, write_results

K = 10
N_BITS = 64
CONCURRENCY = (1, 8, 32)
REQUEST_TIMEOUT_S = 30


def make_files(workdir: Path, n: int, n_queries: int) -> tuple[Path, Path, np.ndarray]:
    """Quantizer and database codes on disk (as ``h2q fit`` / ``h2q encode`` write them)."""
    from h2q import SignQuantizer

    rng = np.random.default_rng(0)
    quantizer = SignQuantizer(N_BITS).fit(rng.standard_normal((10_000, N_BITS), dtype=np.float32))
    codes = np.concatenate(
        [
            quantizer.encode(rng.standard_normal((min(200_000, n - i), N_BITS), dtype=np.float32))
            for i in range(0, n, 200_000)
        ]
    )
    queries = quantizer.encode(rng.standard_normal((n_queries, N_BITS), dtype=np.float32))
    q_path, db_path = workdir / "q.npz", workdir / "db.npy"
    quantizer.save(q_path)
    np.save(db_path, codes)
    return q_path, db_path, queries


def in_process(db_path: Path, queries: np.ndarray, n_threads: int) -> dict[str, Any]:
    """The same searches one at a time in this process; per-query latency and q/s."""
    from h2q._threads import thread_limit
    from h2q.search import HammingIndex

    index = HammingIndex(N_BITS)
    index.add(np.load(db_path))
    with thread_limit(n_threads):
        index.search(queries[:1], K)  # compile / load the kernel
        lat = np.empty(len(queries))
        I = np.empty((len(queries), K), dtype=np.int64)
        start = time.perf_counter()
        for i in range(len(queries)):
            t0 = time.perf_counter()
            I[i] = index.search(queries[i : i + 1], K)[1][0]
            lat[i] = time.perf_counter() - t0
        wall = time.perf_counter() - start
    return {**_stats(lat, wall), "threads": n_threads, "backend": index.backend}, I


def _stats(lat: np.ndarray, wall: float) -> dict[str, Any]:
    return {
        "requests": int(len(lat)),
        "wall_s": wall,
        "queries_per_s": len(lat) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "max_ms": float(lat.max() * 1e3),
    }


async def _client(host, port, bodies, order, lat, status, answers) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in order:  # a shared iterator: each request is sent by one client
            body = bodies[i]
            head = (
                b"POST /api/search HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            t0 = time.perf_counter()
            writer.write(head + body)
            try:
                header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in header.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                answers[i] = await asyncio.wait_for(reader.readexactly(length), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, StopIteration):
                status[i] = -1
                return
            lat[i] = time.perf_counter() - t0
            status[i] = int(header[9:12])
    finally:
        writer.close()


async def _load(url: str, bodies: list[bytes], concurrency: int):
    host, port = url.removeprefix("http://").split(":")
    lat = np.full(len(bodies), np.nan)
    status = np.zeros(len(bodies), dtype=np.int64)
    answers: list[bytes | None] = [None] * len(bodies)
    order = iter(range(len(bodies)))
    start = time.perf_counter()
    await asyncio.gather(
        *[_client(host, int(port), bodies, order, lat, status, answers) for _ in range(concurrency)]
    )
    return lat, status, answers, time.perf_counter() - start


def _health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
        return json.loads(response.read())


def over_http(url: str, queries: np.ndarray, expected: np.ndarray, concurrency: int) -> dict:
    bodies = [json.dumps({"code": q.tobytes().hex(), "k": K}).encode() for q in queries]
    before = _health(url)
    lat, status, answers, wall = asyncio.run(_load(url, bodies, concurrency))
    after = _health(url)
    ok = status // 100 == 2
    wrong = sum(
        1
        for i in np.flatnonzero(ok)
        if json.loads(answers[i])["results"][0]["ids"] != expected[i].tolist()
    )
    calls = after["search_calls"] - before["search_calls"]
    rows = after["search_rows"] - before["search_rows"]
    done = lat[~np.isnan(lat)]
    return {
        **_stats(done, wall),
        "queries_per_s": int(ok.sum()) / wall,
        "concurrency": concurrency,
        "non_2xx": int((~ok & (status > 0)).sum()),
        "failed": int((status <= 0).sum()),
        "wrong_answers": int(wrong),
        "mean_queries_per_search_call": rows / calls if calls else None,
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from h2q.serve.launch import ServerProcess

    q_path, db_path, queries = make_files(workdir, args.n, args.requests)
    anchors = {}
    for n_threads in (1, 2):
        anchors[n_threads], expected = in_process(db_path, queries, n_threads)
    best = max(anchors.values(), key=lambda a: a["queries_per_s"])
    served = []
    for n_threads in args.server_threads:
        server_args = [
            "--quantizer",
            q_path,
            "--database",
            db_path,
            "--index",
            "flat",
            "--threads",
            str(n_threads),
        ]
        with ServerProcess(server_args, env={"PYTHONUNBUFFERED": "1"}) as server:
            for c in CONCURRENCY:
                row = over_http(server.url, queries, expected, c)
                row["server_threads"] = n_threads
                row["ratio_to_in_process_best"] = row["queries_per_s"] / best["queries_per_s"]
                row["load_average"] = list(os.getloadavg())
                served.append(row)
                print(json.dumps(row), flush=True)
    return {
        "config": {
            "n_db": args.n,
            "n_bits": N_BITS,
            "k": K,
            "requests": args.requests,
            "concurrency": list(CONCURRENCY),
            "index": "flat",
        },
        "in_process": [anchors[n] for n in (1, 2)],
        "served": served,
    }


def table(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = [
        f"# h2q serve under load: {cfg['n_db']:,} {cfg['n_bits']}-bit codes, k = {cfg['k']}, "
        f"{cfg['requests']:,} requests per row\n",
        environment_markdown(record["environment"]),
        "| mode | threads | concurrency | q/s | p50 ms | p99 ms | non-2xx | failed | wrong "
        "| queries per search call | q/s vs in-process best |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in record["in_process"]:
        lines.append(
            f"| in-process, one at a time | {a['threads']} | 1 | {a['queries_per_s']:.0f} | "
            f"{a['p50_ms']:.2f} | {a['p99_ms']:.2f} | - | - | - | 1 | - |"
        )
    for r in record["served"]:
        batch = r["mean_queries_per_search_call"]
        lines.append(
            f"| HTTP (h2q serve) | {r['server_threads']} | {r['concurrency']} | "
            f"{r['queries_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non_2xx']} | "
            f"{r['failed']} | {r['wrong_answers']} | {batch:.2f} | "
            f"{r['ratio_to_in_process_best']:.2f} |"
        )
    lines.append(
        "\nLatency is what the client saw (send to last byte). The client runs on the same "
        'cores as the server. "wrong" counts answers whose ids differ from the in-process '
        "search of the same query."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=10**6)
    parser.add_argument("--server-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", help="folder for the quantizer and codes (default: a temp)")
    parser.add_argument("--name", default="bench_serve", help="results file name")
    args = parser.parse_args()
    env = environment()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        record = run(args, Path(tmp))
    env["load_average_end"] = list(os.getloadavg())
    record["environment"] = env
    paths = write_results(args.name, record, table(record))
    print("wrote", *paths)


if __name__ == "__main__":
    main()
