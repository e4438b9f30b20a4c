"""``h2q spark-encode`` and ``h2q spark-search``: Parquet in, Spark jobs, results out.

Both run on ``local[2]`` unless ``--master`` names a cluster (``spark://host:7077``, ``yarn``,
``k8s://...``); nothing else changes. Spark's own failures (a task's error, a JVM that cannot
start) become ``ValueError`` with one line, so the command exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io
from ..quantizers import load_quantizer
from ._args import add_threads_option, positive_int
from ._errors import user_input

_THREADS_WHY = "the driver's own work; Spark's executors set theirs"


def register(subparsers: Any) -> None:
    """Add ``spark-encode`` and ``spark-search`` to the ``h2q`` parser."""
    p = subparsers.add_parser(
        "spark-encode",
        help="encode a Parquet table of embeddings with Spark",
        description="Read embeddings (a column of array<float> or array<double>) from a "
        "Parquet dataset, add their packed codes (a binary column, bytes identical to "
        "`h2q encode`) with Spark, and write a Parquet dataset. A local OUT is written to a "
        "temporary folder and renamed into place when complete.",
    )
    p.add_argument("input", metavar="IN.parquet", help="Parquet file or folder of embeddings")
    p.add_argument("output", metavar="OUT.parquet", help="output Parquet folder (must be new)")
    p.add_argument("--quantizer", required=True, metavar="QUANTIZER.npz")
    p.add_argument("--input-col", default="embedding", help="embeddings column (embedding)")
    p.add_argument("--output-col", default="code", help="codes column (code)")
    p.add_argument(
        "--keep-embeddings", action="store_true", help="keep the embeddings column in OUT"
    )
    p.add_argument("--force", action="store_true", help="replace an existing OUT")
    _add_session_options(p)
    add_threads_option(p, None, _THREADS_WHY)
    p.set_defaults(func=_run_encode)

    s = subparsers.add_parser(
        "spark-search",
        help="exact Hamming top-k of query codes over a Parquet table of codes, with Spark",
        description="Exact top-k per partition of DB.parquet (columns id and code), merged "
        "on the executors; the same D and I as `h2q search` (ties: smaller id first), saved "
        "to a .npz file.",
    )
    s.add_argument("database", metavar="DB.parquet", help="Parquet with ids and codes")
    s.add_argument("--queries", required=True, metavar="Q_CODES.npy")
    s.add_argument("-k", "--k", type=positive_int, required=True, help="neighbours per query")
    s.add_argument("--out", required=True, metavar="RESULT.npz")
    s.add_argument("--id-col", default="id", help="ids column (id)")
    s.add_argument("--code-col", default="code", help="codes column (code)")
    s.add_argument("--force", action="store_true", help="replace an existing --out")
    _add_session_options(s)
    add_threads_option(s, None, _THREADS_WHY)
    s.set_defaults(func=_run_search)


def _add_session_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--master", help="Spark master URL (default: local[2])")
    p.add_argument("--driver-memory", default="2g", help="driver JVM heap (default: 2g)")


def _spark_module() -> Any:
    try:
        from ..integrations import spark
    except ImportError as exc:
        raise ImportError(str(exc).splitlines()[0]) from None
    return spark


@contextlib.contextmanager
def _jvm_output(verbose: bool) -> Iterator[None]:
    """Start the JVM with its stderr on /dev/null unless ``-v``: the JVM's own notices (Java's
    incubator-module warning) and a failed task's traces never reach the terminal; h2q
    reports the error in one line. This process's stderr is restored at once."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _session(args: argparse.Namespace) -> Iterator[Any]:
    """A quiet Spark session for one command, stopped at the end (the JVM's log and traces
    only with ``-v``)."""
    spark_mod = _spark_module()
    verbose = bool(getattr(args, "verbose", False))
    try:
        with _jvm_output(verbose):
            session = spark_mod.spark_session(
                args.master,
                driver_memory=args.driver_memory,
                log_level="WARN" if verbose else "OFF",
            )
    except Exception as exc:  # a JVM that cannot start: Java missing, a bad master URL
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"Spark could not start ({first}). Is Java 17+ installed? Run with -v to see the "
            "JVM's output."
        ) from None
    try:
        with user_input():  # the library's TypeErrors here are about the input columns
            yield session
    finally:
        session.stop()


def _check_new_output(path: Path, force: bool, inputs: list[str]) -> None:
    for source in inputs:
        if Path(source).resolve().is_relative_to(path.resolve()):
            raise ValueError(f"output {path} is or holds the input {source}; pass another path.")
    if path.exists() and not force:
        raise ValueError(f"output {path} exists; pass --force to replace it.")


def _run_encode(args: argparse.Namespace) -> int:
    quantizer = load_quantizer(args.quantizer)
    out = Path(args.output)
    if not Path(args.input).exists():
        raise FileNotFoundError(f"no such Parquet input: {args.input}")
    _check_new_output(out, args.force, [args.input, args.quantizer])
    spark_mod = _spark_module()
    with _session(args) as session:
        n_rows = spark_mod.encode_parquet(
            args.input,
            out,
            quantizer,
            args.input_col,
            args.output_col,
            spark=session,
            drop_input=not args.keep_embeddings,
            force=args.force,
        )
    print(f"encoded {n_rows} embeddings into {quantizer.n_bits_}-bit codes -> {out}")
    return 0


def _run_search(args: argparse.Namespace) -> int:
    from ._common import check_k_fits, load_codes
    from ._paths import check_outputs

    inputs = [args.database, args.queries]
    out = check_outputs(inputs, {"--out": args.out}, force=args.force)["--out"]
    if not Path(args.database).exists():
        raise FileNotFoundError(f"no such Parquet database: {args.database}")
    queries, _ = load_codes(args.queries, "--queries")
    spark_mod = _spark_module()
    with _session(args) as session:
        db = session.read.parquet(str(Path(args.database).resolve()))  # the JVM's cwd may differ
        check_k_fits(args.k, spark_mod.check_ids(db, args.id_col))
        D, I = spark_mod.batch_search(
            db, queries, args.k, id_col=args.id_col, code_col=args.code_col, check=False
        )
    _io.atomic_write(out, lambda f: np.savez(f, D=D, I=I))
    print(f"searched {len(queries)} queries in {args.database}, k={args.k} -> {out}")
    return 0
