"""`h2q export milvus`, `h2q search --milvus`, `h2q spark-encode` and `h2q spark-search`
end to end, on the real engines."""

from __future__ import annotations

import numpy as np
import pytest

from h2q import HouseholderQuantizer

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:UserWarning")


@pytest.fixture
def h2q(cli_runner):
    return cli_runner()


@pytest.fixture
def files(tmp_path, embeddings):
    q = HouseholderQuantizer(32, max_iter=3, random_state=0).fit(embeddings)
    other = HouseholderQuantizer(32, max_iter=3, random_state=1).fit(embeddings)
    paths = {name: tmp_path / name for name in ("q.npz", "other.npz", "emb.npy", "codes.npy")}
    q.save(paths["q.npz"])
    other.save(paths["other.npz"])
    np.save(paths["emb.npy"], embeddings)
    np.save(paths["codes.npy"], q.encode(embeddings))
    return q, paths


def _assert_one_line_error(status, err, command):
    assert status == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("h2q ")]
    assert len(lines) == 1 and lines[0].startswith(f"h2q {command}: error:"), err


def test_export_and_search_milvus(h2q, files, tmp_path):
    pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'h2q[milvus]'")
    q, p = files
    db = tmp_path / "codes.db"
    status, out, _ = h2q(
        "export",
        "milvus",
        db,
        "--collection",
        "c",
        "--embeddings",
        p["emb.npy"],
        "--quantizer",
        p["q.npz"],
    )
    assert status == 0 and "exported 1500 32-bit codes" in out
    status, _, err = h2q("export", "milvus", db, "--collection", "c", "--codes", p["codes.npy"])
    _assert_one_line_error(status, err, "export")
    assert "pass --force" in err
    status, _, _ = h2q(
        "search",
        "--database",
        p["codes.npy"],
        "--queries",
        p["codes.npy"],
        "-k",
        7,
        "--out",
        tmp_path / "plain.npz",
    )
    assert status == 0
    status, _, _ = h2q(
        "search",
        "--milvus",
        db,
        "--collection",
        "c",
        "--queries",
        p["emb.npy"],
        "--quantizer",
        p["q.npz"],
        "-k",
        7,
        "--out",
        tmp_path / "milvus.npz",
    )
    assert status == 0
    plain, milvus = np.load(tmp_path / "plain.npz"), np.load(tmp_path / "milvus.npz")
    np.testing.assert_array_equal(milvus["D"], plain["D"])
    np.testing.assert_array_equal(milvus["I"], plain["I"])
    status, _, err = h2q(
        "search",
        "--milvus",
        db,
        "--collection",
        "c",
        "--queries",
        p["emb.npy"],
        "--quantizer",
        p["other.npz"],
        "-k",
        7,
        "--out",
        tmp_path / "bad.npz",
    )
    _assert_one_line_error(status, err, "search")
    assert "is not the one the codes" in err and not (tmp_path / "bad.npz").exists()
    # --force replaces the collection; codes without a quantizer record none
    status, _, _ = h2q(
        "export",
        "milvus",
        db,
        "--collection",
        "c",
        "--codes",
        p["codes.npy"],
        "--ids",
        _ids(tmp_path, 1500),
        "--force",
    )
    assert status == 0
    status, _, _ = h2q(
        "search",
        "--milvus",
        db,
        "--collection",
        "c",
        "--queries",
        p["codes.npy"],
        "-k",
        3,
        "--out",
        tmp_path / "ids.npz",
    )
    np.testing.assert_array_equal(np.load(tmp_path / "ids.npz")["I"], plain["I"][:, :3] + 100)
    status, _, err = h2q(
        "search",
        "--milvus",
        db,
        "--collection",
        "nope",
        "--queries",
        p["codes.npy"],
        "-k",
        3,
        "--out",
        tmp_path / "x.npz",
    )
    _assert_one_line_error(status, err, "search")
    status, _, err = h2q(
        "search", "--queries", p["codes.npy"], "-k", 3, "--out", tmp_path / "x.npz"
    )
    _assert_one_line_error(status, err, "search")


def test_search_milvus_reads_a_fold_of_an_embeddings_npz(h2q, files, tmp_path, embeddings):
    """`h2q search --milvus --queries EMB.npz --fold query --quantizer q.npz` (README, Scaling
    out) encodes that fold, as a .npy of the same rows does; --fold needs --quantizer."""
    pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'h2q[milvus]'")
    from h2q.embeddings import save_embeddings

    _, p = files
    npz = tmp_path / "emb.npz"
    save_embeddings(npz, train=embeddings[:1000], query=embeddings[1000:1050])
    np.save(tmp_path / "query.npy", embeddings[1000:1050])
    db = tmp_path / "codes.db"
    common = ("--milvus", db, "--collection", "c", "-k", 5)
    status, _, _ = h2q("export", "milvus", db, "--collection", "c", "--embeddings", npz,
                       "--fold", "train", "--quantizer", p["q.npz"])  # fmt: skip
    assert status == 0
    for queries, fold, out in ((npz, ["--fold", "query"], "a.npz"), (tmp_path / "query.npy", [],
                               "b.npz")):  # fmt: skip
        status, _, err = h2q("search", *common, "--queries", queries, *fold, "--quantizer",
                             p["q.npz"], "--out", tmp_path / out)  # fmt: skip
        assert status == 0, err
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["D"].shape == (50, 5)
    np.testing.assert_array_equal(a["D"], b["D"])
    np.testing.assert_array_equal(a["I"], b["I"])
    status, _, err = h2q("search", *common, "--queries", npz, "--quantizer", p["q.npz"],
                         "--out", tmp_path / "c.npz")  # fmt: skip
    _assert_one_line_error(status, err, "search")
    assert "choose one with --fold" in err
    status, _, err = h2q("search", *common, "--queries", p["codes.npy"], "--fold", "query",
                         "--out", tmp_path / "d.npz")  # fmt: skip
    _assert_one_line_error(status, err, "search")
    assert "give --quantizer" in err
    status, _, err = h2q("search", "--database", p["codes.npy"], "--queries", p["codes.npy"],
                         "--fold", "query", "-k", 3, "--out", tmp_path / "e.npz")  # fmt: skip
    _assert_one_line_error(status, err, "search")
    assert "only with --milvus" in err


def _ids(tmp_path, n):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(n) + 100)
    return path


@pytest.mark.slow
def test_spark_encode_and_search(h2q, files, tmp_path, embeddings):
    pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'h2q[spark]'")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    q, p = files
    src, dst = tmp_path / "emb.parquet", tmp_path / "codes.parquet"
    offsets = pa.array(np.arange(0, embeddings.size + 1, 32, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(embeddings.ravel()))
    pq.write_table(pa.table({"id": np.arange(1500), "embedding": lists}), src, row_group_size=500)
    status, out, _ = h2q("spark-encode", src, dst, "--quantizer", p["q.npz"])
    assert status == 0 and "encoded 1500 embeddings into 32-bit codes" in out
    table = pq.read_table(dst)
    codes = np.stack([np.frombuffer(b, np.uint8) for b in table.column("code").to_pylist()])
    order = np.argsort(table.column("id").to_numpy())
    np.testing.assert_array_equal(codes[order], np.load(p["codes.npy"]))
    status, _, err = h2q("spark-encode", src, dst, "--quantizer", p["q.npz"])
    _assert_one_line_error(status, err, "spark-encode")
    status, _, err = h2q("spark-encode", src, src, "--quantizer", p["q.npz"], "--force")
    _assert_one_line_error(status, err, "spark-encode")

    queries = tmp_path / "queries.npy"
    np.save(queries, np.load(p["codes.npy"])[:40])
    status, _, _ = h2q(
        "spark-search", dst, "--queries", queries, "-k", 9, "--out", tmp_path / "spark.npz"
    )
    assert status == 0
    status, _, _ = h2q(
        "search",
        "--database",
        p["codes.npy"],
        "--queries",
        queries,
        "-k",
        9,
        "--out",
        tmp_path / "plain.npz",
    )
    spark, plain = np.load(tmp_path / "spark.npz"), np.load(tmp_path / "plain.npz")
    np.testing.assert_array_equal(spark["D"], plain["D"])
    np.testing.assert_array_equal(spark["I"], plain["I"])
    status, _, err = h2q(
        "spark-search", dst, "--queries", queries, "-k", 9, "--out", tmp_path / "spark.npz"
    )
    _assert_one_line_error(status, err, "spark-search")
