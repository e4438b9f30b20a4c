"""Encoding and exact batch search over Spark DataFrames.

- :func:`encode_dataframe` broadcasts a fitted quantizer and adds a column of packed codes
  (Spark ``binary``, ``ceil(n_bits / 8)`` bytes per row) computed by ``quantizer.encode`` on
  Arrow batches (``mapInArrow``): the bytes are exactly those of ``quantizer.encode``.
  :func:`encode_parquet` does the same from one Parquet dataset to another.
- :func:`batch_search` finds the exact top ``k`` of every query within each partition of a
  database DataFrame (``id``, ``code``), one Arrow batch at a time, and merges the partial
  results pairwise on the executors (``treeReduce``). The driver receives only the final
  ``(D, I)``; no task holds more than one batch of database codes plus ``n_queries * k``
  candidates. The result is :class:`h2q.HammingIndex`'s ``(D, I)``, ties included (smaller id
  first), because each partial result keeps the smallest ids among ties and the merge sorts by
  (distance, id).
- :func:`spark_session` starts ``local[2]`` by default (offline: no UI, loopback only); pass
  ``master="spark://host:7077"`` (or ``yarn``, ``k8s://...``) for a cluster. Workers need h2q
  installed (or shipped with ``--py-files``) in the Python that ``PYSPARK_PYTHON`` names.

Embeddings are a column of ``array<float>`` or ``array<double>``, all rows of the quantizer's
width, without nulls. Work inside a task runs with ``threads_per_task`` threads (default 1:
Spark already runs one task per core).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import extra_missing

try:
    import pyarrow as pa
    from pyspark.errors import PythonException
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise extra_missing(
        "h2q.integrations.spark", "pyspark and pyarrow", "spark", " (and Java 17 or later)"
    ) from exc

from .._threads import thread_limit
from ..codes import check_codes
from ..quantizers import BaseQuantizer
from ..search import PAD_DISTANCE, PAD_ID, HammingIndex
from ._fingerprint import quantizer_n_bits

__all__ = ["batch_search", "check_ids", "encode_dataframe", "encode_parquet", "spark_session"]

#: Master of :func:`spark_session` when none is given.
DEFAULT_MASTER = "local[2]"
#: Rows per Arrow batch handed to a Python task: 65,536 rows of 64 float32 are 16 MiB, few
#: enough calls to amortise the per-batch cost (Spark's default is 10,000).
ARROW_BATCH_ROWS = 1 << 16


#: Log4j 2 configuration of the JVMs :func:`spark_session` starts (level set per session).
LOG4J2_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
_LOG_LEVELS = ("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "h2q",
    driver_memory: str = "2g",
    log_level: str = "ERROR",
    config: dict[str, str] | None = None,
) -> SparkSession:
    """A Spark session for h2q's jobs (an already running session is returned as it is).

    Parameters
    ----------
    master : str, optional
        Spark master URL; default ``local[2]`` (two worker threads on this machine).
    app_name : str, default "h2q"
    driver_memory : str, default "2g"
        JVM heap of the driver (in local mode also the executor). Takes effect only when this
        call starts the JVM.
    log_level : str, default "ERROR"
        Level of the JVM's log (Log4j 2): ``"ERROR"`` keeps Spark's start-up warnings quiet,
        ``"OFF"`` also a failed task's Java trace, ``"WARN"`` is Spark's own default. The
        JVM reads :data:`LOG4J2_CONFIG` when this call starts it (unless ``config`` sets
        ``spark.driver.extraJavaOptions``); a running session gets the level only.
    config : dict, optional
        More Spark settings, applied last.

    Notes
    -----
    ``PYSPARK_PYTHON`` is set to this interpreter when unset, so that workers import the same
    h2q. Local masters bind to the loopback interface and start no web UI, so no network is
    needed.
    """
    master = master or DEFAULT_MASTER
    if not isinstance(log_level, str) or log_level.upper() not in _LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}.")
    log_level = log_level.upper()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()} -Dh2q.spark.logLevel={log_level}",
        )
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(log_level)
    return session


# ----------------------------------------------------------------------------------------------
# Encoding


def encode_dataframe(
    df: DataFrame,
    quantizer: BaseQuantizer,
    input_col: str = "embedding",
    output_col: str = "code",
    *,
    threads_per_task: int | None = 1,
) -> DataFrame:
    """``df`` with a column ``output_col`` of packed codes of ``input_col`` (lazy).

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        With ``input_col`` of type ``array<float>`` or ``array<double>`` (one embedding of
        ``quantizer.n_features_in_`` values per row, no nulls).
    quantizer : fitted h2q quantizer
        Broadcast to the executors once.
    input_col, output_col : str
        ``output_col`` (type ``binary``, ``ceil(n_bits / 8)`` bytes per row) must be new.
    threads_per_task : int or None, default 1
        Threads of each task's matrix product; None leaves the pools as they are.

    Returns
    -------
    pyspark.sql.DataFrame
        The rows of ``df`` in the same order, with ``output_col`` appended. Each code equals
        ``quantizer.encode`` of the row's embedding, byte for byte. Bad rows (a wrong width,
        nulls, NaN) fail the job when it runs, with a ``ValueError`` from the task.
    """
    quantizer_n_bits(quantizer)  # a clear error unless a fitted h2q quantizer
    field = _field(df, input_col)
    if not (
        isinstance(field.dataType, T.ArrayType)
        and isinstance(field.dataType.elementType, (T.FloatType, T.DoubleType))
    ):
        raise TypeError(
            f"column {input_col!r} has type {field.dataType.simpleString()}, but embeddings of "
            "type array<float> or array<double> are expected."
        )
    if output_col in df.columns:
        raise ValueError(
            f"column {output_col!r} already exists in the DataFrame; pick a new output_col."
        )
    broadcast = df.sparkSession.sparkContext.broadcast(quantizer)
    schema = T.StructType([*df.schema.fields, T.StructField(output_col, T.BinaryType(), False)])

    def encode_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        q = broadcast.value
        with thread_limit(threads_per_task):
            for batch in batches:
                X = _embedding_matrix(batch.column(input_col), q.n_features_in_, input_col)
                codes = _binary_array(q.encode(X)) if len(X) else pa.array([], pa.binary())
                yield pa.RecordBatch.from_arrays(
                    [*batch.columns, codes], names=[*batch.schema.names, output_col]
                )

    return df.mapInArrow(encode_batches, schema)


def encode_parquet(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    quantizer: BaseQuantizer,
    input_col: str = "embedding",
    output_col: str = "code",
    *,
    spark: SparkSession | None = None,
    drop_input: bool = True,
    force: bool = False,
    threads_per_task: int | None = 1,
) -> int:
    """Encode a Parquet dataset into another (``encode_dataframe`` then a Parquet write).

    A local ``output_path`` is written to a temporary folder beside it and renamed into place
    when complete; an existing one is replaced only with ``force=True``, and only after the new
    one is complete. The input is never written over. Other URIs (``s3a://``, ``hdfs://``) are
    written by Spark's own committer.

    Parameters
    ----------
    input_path, output_path : str or os.PathLike
    quantizer : fitted h2q quantizer
    input_col, output_col : str
    spark : SparkSession, optional
        Default :func:`spark_session` ().
    drop_input : bool, default True
        Leave the embeddings out of the output (keep every other column).
    force : bool, default False
        Replace an existing output.
    threads_per_task : int or None, default 1

    Returns
    -------
    int
        Number of rows written.

    Raises
    ------
    ValueError
        Output equal to the input, an existing output without ``force``, or bad rows (the
        task's message).
    """
    src, dst = str(input_path), str(output_path)
    local = "://" not in dst
    if local:
        if "://" not in src and Path(src).resolve().is_relative_to(Path(dst).resolve()):
            raise ValueError(f"output {dst} is or holds the input {src}; pass another output path.")
        if Path(dst).exists() and not force:
            raise ValueError(f"output {dst} exists; pass force=True (--force) to replace it.")
        if Path(dst).exists() and not _is_parquet_output(Path(dst)):
            raise ValueError(
                f"output {dst} exists but is not a Parquet output (no _SUCCESS or part-* files); "
                "force=True (--force) replaces only such a folder. Pass another output path."
            )
        if not Path(dst).resolve().parent.is_dir():
            raise FileNotFoundError(f"cannot write {dst}: its folder does not exist.")
    if "://" not in src and not Path(src).exists():
        raise FileNotFoundError(f"no such Parquet input: {src}")
    if "://" not in src:  # Spark resolves a relative path in the JVM's folder, not ours
        src = str(Path(src).resolve())
    spark = spark or spark_session()
    out = encode_dataframe(
        spark.read.parquet(src), quantizer, input_col, output_col, threads_per_task=threads_per_task
    )
    if drop_input:
        out = out.drop(input_col)
    try:
        if not local:
            out.write.mode("overwrite" if force else "errorifexists").parquet(dst)
            return spark.read.parquet(dst).count()
        _remove_stale_temporaries(Path(dst).resolve())
        tmp = Path(dst).resolve().parent / f".{Path(dst).name}.{uuid.uuid4().hex}.tmp"
        try:
            out.write.parquet(str(tmp))
            n_rows = spark.read.parquet(str(tmp)).count()
            _replace_folder(tmp, Path(dst))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return n_rows
    except PythonException as exc:
        raise ValueError(_task_error(exc)) from None


def _remove_stale_temporaries(dst: Path) -> None:
    """Delete what a killed earlier write to ``dst`` left beside it (``.<name>.<hex>.tmp``
    and ``.old`` folders): only one writer of an output runs at a time."""
    for stale in dst.parent.glob(f".{glob_escape(dst.name)}.*"):
        if stale.suffix in (".tmp", ".old") and len(stale.name) == len(dst.name) + 38:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _is_parquet_output(path: Path) -> bool:
    """Whether ``path`` looks like a Parquet output that ``encode_parquet`` may replace."""
    if path.is_file():
        return path.suffix == ".parquet"
    return (path / "_SUCCESS").exists() or any(path.glob("part-*"))


def _replace_folder(new: Path, dst: Path) -> None:
    """Rename ``new`` to ``dst``; an existing ``dst`` is moved aside first, deleted last."""
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.parent / f".{dst.name}.{uuid.uuid4().hex}.old"
        os.replace(dst, old)
    os.replace(new, dst)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()


# ----------------------------------------------------------------------------------------------
# Batch search


def batch_search(
    db_df: DataFrame,
    query_codes: Any,
    k: int,
    *,
    id_col: str = "id",
    code_col: str = "code",
    n_bits: int | None = None,
    threads_per_task: int | None = 1,
    check: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hamming top ``k`` of each query over a database DataFrame.

    Parameters
    ----------
    db_df : pyspark.sql.DataFrame
        ``id_col`` (distinct integer ids, ``int`` or ``bigint``) and ``code_col`` (``binary``,
        ``ceil(n_bits / 8)`` bytes per row).
    query_codes : numpy.ndarray of shape (n_queries, code_size), dtype uint8
        Broadcast to the executors.
    k : int
        Neighbours per query; rows are padded with id -1 and distance
        ``np.iinfo(np.int32).max`` beyond the database size (as ``HammingIndex``).
    id_col, code_col : str
    n_bits : int, optional
        Bits per code; default ``8 * code_size``.
    threads_per_task : int or None, default 1
    check : bool, default True
        Check the ids first (:func:`check_ids`, one more Spark job); pass False when the
        caller already did.

    Returns
    -------
    D : numpy.ndarray of shape (n_queries, k), int32
    I : numpy.ndarray of shape (n_queries, k), int64
        The same as ``HammingIndex.search`` over the codes with these ids: sorted by
        (distance, id).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    k = int(k)
    width = np.asarray(query_codes).shape[-1] if np.ndim(query_codes) == 2 else 0
    n_bits = 8 * width if n_bits is None else n_bits
    queries = check_codes(query_codes, "query_codes", n_bits=n_bits)
    if not isinstance(_field(db_df, id_col).dataType, (T.LongType, T.IntegerType)):
        raise TypeError(f"column {id_col!r} must hold integer ids (int or bigint).")
    if not isinstance(_field(db_df, code_col).dataType, T.BinaryType):
        raise TypeError(f"column {code_col!r} must hold packed codes of type binary.")
    if check:
        check_ids(db_df, id_col)
    broadcast = db_df.sparkSession.sparkContext.broadcast(queries)

    def partition_topk(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        q = broadcast.value
        best: tuple[np.ndarray, np.ndarray] | None = None
        with thread_limit(threads_per_task):
            for batch in batches:
                if batch.num_rows:
                    part = _batch_topk(batch, q, k, n_bits, id_col, code_col)
                    best = part if best is None else merge_topk(best, part, k)
        if best is not None:
            yield pa.RecordBatch.from_arrays(
                [pa.array([best[0].tobytes()]), pa.array([best[1].tobytes()])], names=["d", "i"]
            )

    shape = (len(queries), k)
    partials = db_df.select(id_col, code_col).mapInArrow(partition_topk, "d binary, i binary")

    def merge_rows(a: tuple[bytes, bytes], b: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
        D, I = merge_topk(_unpack(a, shape), _unpack(b, shape), k)
        return D.tobytes(), I.tobytes()

    try:
        rows = partials.rdd.map(lambda row: (bytes(row.d), bytes(row.i)))
        if rows.isEmpty():
            raise ValueError("the database DataFrame is empty; there is nothing to search.")
        return _unpack(rows.treeReduce(merge_rows, depth=2), shape)
    except PythonException as exc:
        raise ValueError(_task_error(exc)) from None


def check_ids(db_df: DataFrame, id_col: str = "id") -> int:
    """Check that ``id_col`` holds distinct non-negative integer ids; return the row count.

    One Spark job (count, distinct count, minimum and nulls of the column).

    Raises
    ------
    TypeError
        When the column is not ``int`` or ``bigint``.
    ValueError
        When the DataFrame is empty, or an id is null, negative (-1 marks padding in search
        results) or repeated.
    """
    from pyspark.sql import functions as F

    if not isinstance(_field(db_df, id_col).dataType, (T.LongType, T.IntegerType)):
        raise TypeError(
            f"column {id_col!r} has type {_field(db_df, id_col).dataType.simpleString()}, but "
            "integer ids (int or bigint) are expected; cast the column, e.g. "
            f"df.withColumn({id_col!r}, df[{id_col!r}].cast('bigint'))."
        )
    column = F.col(id_col)
    row = db_df.agg(
        F.count(F.lit(1)).alias("n"),
        F.count(column).alias("n_ids"),
        F.countDistinct(column).alias("distinct"),
        F.min(column).alias("low"),
    ).first()
    n, n_ids, distinct, low = row["n"], row["n_ids"], row["distinct"], row["low"]
    if n == 0:
        raise ValueError("the database DataFrame is empty; there is nothing to search.")
    if n_ids != n:
        raise ValueError(f"column {id_col!r} holds {n - n_ids} null ids; give every code an id.")
    if low < 0:
        raise ValueError(
            f"column {id_col!r} holds negative ids (the smallest is {low}); ids must be >= 0 "
            "(-1 marks padding in search results)."
        )
    if distinct != n:
        raise ValueError(
            f"column {id_col!r} holds {n - distinct} repeated ids ({n} rows, {distinct} "
            "distinct); give every code its own id."
        )
    return int(n)


def merge_topk(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two ``(D, I)`` results over disjoint id sets into the top ``k`` by (distance, id).

    Padding entries (distance ``np.iinfo(np.int32).max``) sort last.
    """
    D = np.concatenate([a[0], b[0]], axis=1)
    I = np.concatenate([a[1], b[1]], axis=1)
    order = np.lexsort((I, D), axis=1)[:, :k]
    return np.take_along_axis(D, order, axis=1), np.take_along_axis(I, order, axis=1)


def _batch_topk(
    batch: pa.RecordBatch, queries: np.ndarray, k: int, n_bits: int, id_col: str, code_col: str
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of ``queries`` within one Arrow batch, ties by smaller id, padded to k."""
    id_array = batch.column(id_col)
    if id_array.null_count:
        raise ValueError(f"column {id_col!r} holds nulls; give every code an id.")
    ids = id_array.to_numpy().astype(np.int64, copy=False)
    codes = _code_matrix(batch.column(code_col), queries.shape[1], code_col)
    # HammingIndex breaks ties by position; sorting by id first makes that the id order.
    order = np.argsort(ids, kind="stable")
    index = HammingIndex(n_bits)
    index.add(codes[order])
    D, pos = index.search(queries, min(k, len(ids)))
    D_out = np.full((len(queries), k), PAD_DISTANCE, dtype=np.int32)
    I_out = np.full((len(queries), k), PAD_ID, dtype=np.int64)
    D_out[:, : D.shape[1]] = D
    I_out[:, : D.shape[1]] = ids[order][pos]
    return D_out, I_out


def _unpack(pair: tuple[bytes, bytes], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    D = np.frombuffer(pair[0], dtype=np.int32).reshape(shape)
    I = np.frombuffer(pair[1], dtype=np.int64).reshape(shape)
    return D, I


# ----------------------------------------------------------------------------------------------
# Arrow conversion


def _embedding_matrix(column: pa.Array, n_features: int, name: str) -> np.ndarray:
    """A (n, n_features) float view of an Arrow list column, checked."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if column.null_count:
        raise ValueError(f"column {name!r} holds null embeddings; drop or fill those rows.")
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    if n and (lengths != n_features).any():
        bad = int(lengths[lengths != n_features][0])
        raise ValueError(
            f"column {name!r} holds embeddings of {bad} values, but the quantizer was fitted "
            f"on {n_features}. Pass embeddings from the same model."
        )
    values = column.flatten()
    if values.null_count:
        raise ValueError(f"column {name!r} holds null values inside embeddings.")
    return values.to_numpy(zero_copy_only=False).reshape(n, n_features)


def _code_matrix(column: pa.Array, code_size: int, name: str) -> np.ndarray:
    """A (n, code_size) uint8 view of an Arrow binary column, checked."""
    if column.null_count:
        raise ValueError(f"column {name!r} holds null codes; drop those rows.")
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
    offsets = offsets[column.offset : column.offset + len(column) + 1]
    if (np.diff(offsets) != code_size).any():
        raise ValueError(
            f"column {name!r} holds codes whose length is not {code_size} bytes (the queries' "
            "width); encode database and queries with the same quantizer."
        )
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8)
    return data[offsets[0] : offsets[-1]].reshape(len(column), code_size)


def _binary_array(codes: np.ndarray) -> pa.Array:
    """An Arrow binary array over the rows of a (n, code_size) uint8 matrix (no copy)."""
    n, width = codes.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(codes))]
    return pa.Array.from_buffers(pa.binary(), n, buffers)


def _field(df: DataFrame, name: str) -> T.StructField:
    for field in df.schema.fields:
        if field.name == name:
            return field
    raise ValueError(f"the DataFrame has no column {name!r}; its columns are {df.columns}.")


def _task_error(exc: PythonException) -> str:
    """The last ``SomeError: message`` line of a failed Python task."""
    lines = [line.strip() for line in str(exc).splitlines() if "Error: " in line]
    return lines[-1].split("Error: ", 1)[1] if lines else str(exc).strip().splitlines()[-1]
