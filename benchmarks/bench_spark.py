"""Benchmark: Spark encode (local[2]) against single-process encoding of the same Parquet file.

Data: ``--rows`` (default 10^7; ``--quick``: 10^6) rows of 64 float32 standard-normal values
(seeded) in one Parquet file, columns ``id`` (int64) and ``embedding`` (list<float>), row
groups of 262,144 rows. Quantizer: ``HouseholderQuantizer(64)`` fitted on 20,000 other rows.

Methods, interleaved in the same run on the same file, each writing a Parquet output of
``id`` and ``code`` (binary, 8 bytes):

- ``single process`` (the anchor): ``pyarrow.parquet.read_table`` -> one (n, 64) float32 view
  -> ``quantizer.encode`` (what ``h2q encode`` runs, with the process's default threads) ->
  ``pyarrow.parquet.write_table``;
- ``spark local[2]``: :func:`h2q.integrations.spark.encode_parquet` (Spark reads the Parquet,
  ``mapInArrow`` tasks of one thread each run ``quantizer.encode``, Spark writes the output).

Session start-up (JVM launch) is timed once and reported apart. One warm-up call per method on
a 10^5-row file, then ``--repeats`` interleaved rounds on the big file. The Spark output is
checked byte for byte against the anchor's codes. Results go to
``benchmarks/results/bench_spark.{json,md}`` (10^7 rows) or ``bench_spark_<rows>.{json,md}``.

Usage::

    python benchmarks/bench_spark.py [--quick] [--rows N] [--repeats 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_encode import environment, environment_markdown, summarize, write_results

D = 64
ROW_GROUP = 1 << 18


def write_embeddings(path: Path, n: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.int64()), ("embedding", pa.list_(pa.float32()))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, ROW_GROUP):
            m = min(ROW_GROUP, n - start)
            X = rng.standard_normal((m, D), dtype=np.float32)
            offsets = pa.array(np.arange(0, m * D + 1, D, dtype=np.int32))
            lists = pa.ListArray.from_arrays(offsets, pa.array(X.ravel()))
            ids = pa.array(np.arange(start, start + m, dtype=np.int64))
            writer.write_table(pa.table({"id": ids, "embedding": lists}, schema=schema))


def single_process(src: Path, dst: Path, quantizer: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    column = table.column("embedding").combine_chunks()
    X = column.flatten().to_numpy().reshape(len(column), D)
    codes = quantizer.encode(X)
    offsets = np.arange(0, codes.size + 1, codes.shape[1], dtype=np.int32)
    binary = pa.Array.from_buffers(
        pa.binary(), len(codes), [None, pa.py_buffer(offsets), pa.py_buffer(codes)]
    )
    pq.write_table(pa.table({"id": table.column("id"), "code": binary}), dst)


def read_codes(path: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["id", "code"])
    order = np.argsort(table.column("id").to_numpy())
    codes = table.column("code").combine_chunks()
    data = np.frombuffer(codes.buffers()[2], dtype=np.uint8)[: len(codes) * 8]
    return data.reshape(len(codes), 8)[order]


def _java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        return out.stderr.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^6 rows")
    parser.add_argument("--rows", type=int, help="rows of the big file (default 10^7)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="folder for the data (default: a temporary one)")
    args = parser.parse_args()
    n = args.rows or (10**6 if args.quick else 10**7)

    from importlib.metadata import version

    from h2q import HouseholderQuantizer
    from h2q.integrations.spark import ARROW_BATCH_ROWS, encode_parquet, spark_session

    env = environment()
    rng = np.random.default_rng(args.seed + 1)
    quantizer = HouseholderQuantizer(D, max_iter=50, random_state=args.seed)
    quantizer.fit(rng.standard_normal((20_000, D), dtype=np.float32))

    folder = Path(args.workdir or tempfile.mkdtemp(prefix="h2q-bench-spark-"))
    big, small = folder / "embeddings.parquet", folder / "warmup.parquet"
    start = time.perf_counter()
    write_embeddings(big, n, args.seed)
    write_embeddings(small, 100_000, args.seed + 2)
    data_s = time.perf_counter() - start
    parquet_bytes = big.stat().st_size

    start = time.perf_counter()
    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    startup_s = time.perf_counter() - start
    out_single, out_spark = folder / "codes_single.parquet", folder / "codes_spark.parquet"

    def run_single(src: Path) -> None:
        single_process(src, out_single, quantizer)

    def run_spark(src: Path) -> None:
        shutil.rmtree(out_spark, ignore_errors=True)
        encode_parquet(src, out_spark, quantizer, spark=session)

    methods = {"single process": run_single, "spark local[2]": run_spark}
    for fn in methods.values():
        fn(small)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn(big)
            times[name].append(time.perf_counter() - start)
    identical = bool(np.array_equal(read_codes(out_single), read_codes(out_spark)))
    session.stop()
    if args.workdir is None:
        shutil.rmtree(folder, ignore_errors=True)

    rows = {
        name: {**summarize(t), "rows_per_s": n / summarize(t)["median_s"]}
        for name, t in times.items()
    }
    ratio = rows["single process"]["median_s"] / rows["spark local[2]"]["median_s"]
    env["load_average_end"] = list(os.getloadavg())
    record = {
        "config": {
            "rows": n,
            "n_features": D,
            "n_bits": D,
            "row_group": ROW_GROUP,
            "arrow_batch_rows": ARROW_BATCH_ROWS,
            "master": "local[2]",
            "threads_per_task": 1,
            "repeats": args.repeats,
            "seed": args.seed,
        },
        "parquet_bytes": parquet_bytes,
        "data_generation_s": data_s,
        "spark_startup_s": startup_s,
        "methods": rows,
        "throughput_ratio_spark_vs_single": ratio,
        "target_ratio_ge_0.5": ratio >= 0.5,
        "spark_codes_identical_to_single_process": identical,
        "engine_versions": {
            "pyspark": version("pyspark"),
            "pyarrow": version("pyarrow"),
            "pandas": version("pandas"),
            "java": _java_version(),
        },
        "environment": env,
    }
    name = "bench_spark" if n == 10**7 else f"bench_spark_{n}"
    json_path, md_path = write_results(name, record, markdown(record))
    print(markdown(record))
    print(f"-> {json_path}, {md_path}")


def markdown(record: dict[str, Any]) -> str:
    c = record["config"]
    lines = [
        f"# bench_spark: encode {c['rows']:,} x {c['n_features']} float32 rows from Parquet\n",
        f"1 warm-up (10^5 rows) + {c['repeats']} interleaved repeats, seed {c['seed']}; Spark "
        f"{c['master']}, {c['threads_per_task']} thread per task, Arrow batches of "
        f"{c['arrow_batch_rows']:,} rows; input {record['parquet_bytes']:,} bytes.\n",
        "| method | median s | min - max s | rows/s |",
        "|---|---|---|---|",
    ]
    for name, r in record["methods"].items():
        lines.append(
            f"| {name} | {r['median_s']:.2f} | {r['min_s']:.2f} - {r['max_s']:.2f} | "
            f"{r['rows_per_s']:,.0f} |"
        )
    lines += [
        "",
        f"- Spark / single-process throughput: **{record['throughput_ratio_spark_vs_single']:.3f}**"
        f" (target >= 0.5: {record['target_ratio_ge_0.5']})",
        f"- Spark codes byte-identical to the single-process codes: "
        f"{record['spark_codes_identical_to_single_process']}",
        f"- Spark session start-up (not in the timings): {record['spark_startup_s']:.1f} s",
        f"- Engines: {', '.join(f'{k} {v}' for k, v in record['engine_versions'].items())}",
        environment_markdown(record["environment"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
