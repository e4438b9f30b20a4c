"""encode_dataframe and batch_search against quantizer.encode and HammingIndex, on a real
Spark in local[2] mode (one session for the module)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'h2q[spark]'")
pa = pytest.importorskip("pyarrow", reason="needs the spark extra: pip install 'h2q[spark]'")
import pyarrow.parquet as pq  # noqa: E402

from h2q import HammingIndex, HouseholderQuantizer, SignQuantizer  # noqa: E402
from h2q.integrations import spark as hs  # noqa: E402

from .conftest import tied_codes  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = hs.spark_session("local[2]", driver_memory="1g")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _embedding_table(X: np.ndarray, ids: np.ndarray) -> pa.Table:
    flat = pa.array(X.ravel())
    lists = pa.ListArray.from_arrays(
        pa.array(np.arange(0, X.size + 1, X.shape[1]), pa.int32()), flat
    )
    return pa.table({"id": ids, "embedding": lists})


def _codes_of(table: pa.Table, column: str = "code") -> np.ndarray:
    return np.stack([np.frombuffer(b, np.uint8) for b in table.column(column).to_pylist()])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_dataframe_is_byte_identical(spark, embeddings, dtype):
    X = embeddings.astype(dtype)
    X[7, :] = 0.0  # exact zeros: bit 1, as in quantizer.encode
    q = HouseholderQuantizer(16, projection="pca", max_iter=3, random_state=0).fit(embeddings)
    ids = np.arange(len(X))[::-1].copy()
    df = spark.createDataFrame(_embedding_table(X, ids).to_pandas()).repartition(3)
    out = hs.encode_dataframe(df, q).toArrow()
    assert out.schema.field("code").type == pa.binary()
    order = np.argsort(out.column("id").to_numpy())
    expected = q.encode(X)[::-1]  # row i has id n-1-i
    np.testing.assert_array_equal(_codes_of(out)[order], expected)
    # rows keep their order within the DataFrame
    same = hs.encode_dataframe(spark.createDataFrame(_embedding_table(X, ids).to_pandas()), q)
    np.testing.assert_array_equal(_codes_of(same.toArrow()), q.encode(X))


def test_encode_parquet_reads_a_relative_path_from_our_folder(
    spark, embeddings, tmp_path, monkeypatch
):
    """The JVM keeps the folder it started in; a relative input is ours, not the JVM's."""
    q = HouseholderQuantizer(32, max_iter=3, random_state=0).fit(embeddings)
    pq.write_table(_embedding_table(embeddings[:50], np.arange(50)), tmp_path / "in.parquet")
    spark.range(1).count()  # the JVM is up before we move
    monkeypatch.chdir(tmp_path)
    assert hs.encode_parquet("in.parquet", "out.parquet", q, spark=spark) == 50
    table = pq.read_table(tmp_path / "out.parquet").sort_by("id")
    np.testing.assert_array_equal(_codes_of(table), q.encode(embeddings[:50]))


def test_encode_parquet(spark, embeddings, tmp_path):
    q = SignQuantizer().fit(embeddings)
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(
        _embedding_table(embeddings, np.arange(len(embeddings))), src, row_group_size=400
    )
    assert hs.encode_parquet(src, dst, q, spark=spark) == len(embeddings)
    table = pq.read_table(dst)
    assert table.column_names == ["id", "code"]
    order = np.argsort(table.column("id").to_numpy())
    np.testing.assert_array_equal(_codes_of(table)[order], q.encode(embeddings))
    with pytest.raises(ValueError, match="exists; pass force=True"):
        hs.encode_parquet(src, dst, q, spark=spark)
    with pytest.raises(ValueError, match="is or holds the input"):
        hs.encode_parquet(src, src, q, spark=spark, force=True)
    with pytest.raises(ValueError, match="is or holds the input"):  # never delete the input
        hs.encode_parquet(src, tmp_path, q, spark=spark, force=True)
    (tmp_path / "notes").mkdir()
    with pytest.raises(ValueError, match="not a Parquet output"):  # --force replaces outputs only
        hs.encode_parquet(src, tmp_path / "notes", q, spark=spark, force=True)
    assert src.exists() and (tmp_path / "notes").is_dir()
    before = sorted(p.name for p in dst.iterdir())
    wide = SignQuantizer().fit(np.ones((2, 8), np.float32))
    with pytest.raises(
        ValueError, match="embeddings of 32 values, but the quantizer was fitted on 8"
    ):
        hs.encode_parquet(src, dst, wide, spark=spark, force=True)
    assert sorted(p.name for p in dst.iterdir()) == before  # a failed job leaves the output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    (tmp_path / "notes").rmdir()
    assert hs.encode_parquet(src, dst, q, spark=spark, force=True, drop_input=False) == 1500
    assert pq.read_table(dst).column_names == ["id", "embedding", "code"]


def test_encode_dataframe_bad_input(spark, embeddings):
    q = SignQuantizer().fit(embeddings)
    df = spark.createDataFrame([(1, [1.0, 2.0])], "id long, embedding array<double>")
    with pytest.raises(TypeError, match="array<float> or array<double>"):
        hs.encode_dataframe(df, q, input_col="id")
    with pytest.raises(ValueError, match="no column 'vec'"):
        hs.encode_dataframe(df, q, input_col="vec")
    with pytest.raises(ValueError, match="already exists"):
        hs.encode_dataframe(df, q, output_col="id")
    with pytest.raises(TypeError, match="fitted h2q quantizer"):
        hs.encode_dataframe(df, object())


def _codes_frame(spark, codes, ids, n_partitions):
    table = pa.table({"id": ids, "code": [row.tobytes() for row in codes]})
    return spark.createDataFrame(table.to_pandas()).repartition(n_partitions)


@pytest.mark.parametrize("n_bits", [64, 24])
def test_batch_search_matches_hamming_index(spark, n_bits):
    codes = tied_codes(3000, n_bits, seed=n_bits)
    queries = tied_codes(50, n_bits, seed=n_bits + 1)
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(10**9, size=len(codes), replace=False))  # sparse ids, in order
    perm = rng.permutation(len(codes))  # stored in shuffled order, across partitions
    df = _codes_frame(spark, codes[perm], ids[perm], 4)
    ref = HammingIndex(n_bits, backend="numpy")
    ref.add(codes)
    for k in (1, 40, 3005):
        D, I = hs.batch_search(df, queries, k, n_bits=n_bits)
        D_ref, pos = ref.search(queries, k)
        np.testing.assert_array_equal(D, D_ref)
        np.testing.assert_array_equal(I, np.where(pos >= 0, ids[pos], -1))


def test_merge_topk_against_a_full_sort():
    rng = np.random.default_rng(1)
    D = rng.integers(0, 4, (20, 30)).astype(np.int32)
    I = rng.permutation(20 * 30).reshape(20, 30).astype(np.int64)
    parts = []
    for cols in (slice(0, 12), slice(12, 30)):
        order = np.lexsort((I[:, cols], D[:, cols]), axis=1)
        parts.append(
            (np.take_along_axis(D[:, cols], order, 1), np.take_along_axis(I[:, cols], order, 1))
        )
    Dm, Im = hs.merge_topk(parts[0], parts[1], 9)
    for r in range(20):
        best = sorted(zip(D[r], I[r], strict=True))[:9]
        assert list(zip(Dm[r], Im[r], strict=True)) == best


def test_batch_search_bad_input(spark):
    df = _codes_frame(spark, tied_codes(10, 16, 0), np.arange(10), 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        hs.batch_search(df, tied_codes(2, 16, 1), 0)
    with pytest.raises(ValueError, match="not 3 bytes"):
        hs.batch_search(df, np.zeros((2, 3), np.uint8), 5)
    with pytest.raises(TypeError, match="integer ids"):
        hs.batch_search(df.withColumn("id", df.id.cast("string")), tied_codes(2, 16, 1), 5)
    with pytest.raises(ValueError, match="empty"):
        hs.batch_search(df.limit(0), tied_codes(2, 16, 1), 5)


@pytest.mark.slow
def test_batch_search_on_a_million_codes(spark, tmp_path):
    n, n_bits = 10**6, 64
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (n, n_bits // 8), dtype=np.uint8)
    codes[:, 4:] = 0  # 32 random bits: many ties
    queries = codes[rng.choice(n, 100)] ^ rng.integers(0, 2, (100, 8), dtype=np.uint8)
    data = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), n, [None, pa.py_buffer(codes)])
    pq.write_table(
        pa.table({"id": np.arange(n), "code": data.cast(pa.binary())}),
        tmp_path / "db.parquet",
        row_group_size=200_000,
    )
    df = spark.read.parquet(str(tmp_path / "db.parquet"))
    D, I = hs.batch_search(df, queries, 20)
    ref = HammingIndex(n_bits)
    ref.add(codes)
    D_ref, I_ref = ref.search(queries, 20)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, I_ref)
