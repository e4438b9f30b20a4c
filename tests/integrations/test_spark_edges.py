"""Spark at the edges, on a real Spark in local[2] mode: ids that cannot be told apart from
padding, k beyond the table, wrong column types, killed writes, and quiet commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'h2q[spark]'")
pa = pytest.importorskip("pyarrow", reason="needs the spark extra: pip install 'h2q[spark]'")
import pyarrow.parquet as pq  # noqa: E402

from h2q import HouseholderQuantizer  # noqa: E402
from h2q.integrations import spark as hs  # noqa: E402

from .conftest import tied_codes  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def spark():
    session = hs.spark_session("local[2]", driver_memory="1g")
    yield session
    session.stop()


def _codes_table(codes, ids):
    return pa.table({"id": ids, "code": [row.tobytes() for row in codes]})


def _bad_ids(kind, n):
    ids = np.arange(n, dtype=np.int64)
    if kind == "repeated":
        ids[5] = ids[2]
    elif kind == "negative":
        ids[5] = -1
    return ids


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("repeated", r"holds 1 repeated ids \(60 rows, 59 distinct\)"),
        ("negative", r"negative ids \(the smallest is -1\); ids must be >= 0"),
    ],
)
def test_check_ids_refuses_what_padding_or_merging_would_hide(spark, kind, match):
    codes = tied_codes(60, 16, seed=0)
    df = spark.createDataFrame(_codes_table(codes, _bad_ids(kind, 60)).to_pandas())
    with pytest.raises(ValueError, match=match):
        hs.check_ids(df, "id")
    with pytest.raises(ValueError, match=match):
        hs.batch_search(df, codes[:3], 5)
    good = spark.createDataFrame(_codes_table(codes, np.arange(60) * 3).to_pandas())
    assert hs.check_ids(good, "id") == 60


def test_check_ids_refuses_nulls_and_strings(spark):
    table = pa.table({"id": pa.array([1, None, 3], pa.int64()), "code": [b"a", b"b", b"c"]})
    with pytest.raises(ValueError, match="1 null ids"):
        hs.check_ids(spark.createDataFrame(table.to_pandas().astype({"id": "Int64"})), "id")
    strings = pa.table({"id": ["1", "2"], "code": [b"a", b"b"]})
    with pytest.raises(TypeError, match=r"has type string, but integer ids .* cast the column"):
        hs.check_ids(spark.createDataFrame(strings.to_pandas()), "id")


@pytest.fixture
def parquet_files(tmp_path):
    codes = tied_codes(80, 32, seed=1)
    paths = {}
    for kind in ("good", "repeated", "negative"):
        paths[kind] = tmp_path / f"{kind}.parquet"
        pq.write_table(_codes_table(codes, _bad_ids(kind, 80)), paths[kind])
    paths["strings"] = tmp_path / "strings.parquet"
    pq.write_table(pa.table({"id": [str(i) for i in range(80)], "code": [c.tobytes() for c in
                   codes]}), paths["strings"])  # fmt: skip
    paths["ints"] = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"embedding": [[1, 2, 3, 4]] * 10}), paths["ints"])
    paths["q.npy"] = tmp_path / "q.npy"
    np.save(paths["q.npy"], codes[:4])
    rng = np.random.default_rng(0)
    HouseholderQuantizer(4, max_iter=2).fit(rng.standard_normal((50, 4))).save(tmp_path / "q.npz")
    paths["q.npz"] = tmp_path / "q.npz"
    return paths


@pytest.mark.parametrize(
    ("kind", "k", "match"),
    [
        ("good", 81, "k=81 exceeds the 80 items in the index; pass -k <= 80."),
        ("repeated", 5, "holds 1 repeated ids"),
        ("negative", 5, "negative ids"),
        ("strings", 5, "has type string, but integer ids"),
    ],
)
def test_spark_search_refuses_in_one_line(cli_runner, spark, parquet_files, tmp_path, kind, k,
                                          match):  # fmt: skip
    h2q = cli_runner(("spark",))
    out = tmp_path / "r.npz"
    status, _, err = h2q("spark-search", parquet_files[kind], "--queries", parquet_files["q.npy"],
                         "-k", k, "--out", out)  # fmt: skip
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and match in lines[0], err
    assert lines[0].startswith("h2q spark-search: error:") and not out.exists()


def test_spark_encode_of_integer_embeddings_is_one_line(cli_runner, spark, parquet_files,
                                                        tmp_path):  # fmt: skip
    h2q = cli_runner(("spark",))
    status, _, err = h2q("spark-encode", parquet_files["ints"], tmp_path / "o.parquet",
                         "--quantizer", parquet_files["q.npz"])  # fmt: skip
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert "has type array<bigint>, but embeddings of type array<float>" in lines[0]


def test_a_killed_encode_leaves_nothing_for_long(embeddings, tmp_path):
    """What a killed `spark-encode --force` leaves beside OUT goes with the next run."""
    q = HouseholderQuantizer(32, max_iter=2, random_state=0).fit(embeddings)
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"embedding": list(embeddings[:50].astype(np.float64))}), src)
    dst = tmp_path / "out.parquet"
    stale = tmp_path / f".out.parquet.{'ab' * 16}.tmp"
    (stale / "part-0").mkdir(parents=True)
    other = tmp_path / f".other.parquet.{'ab' * 16}.tmp"  # another output's: kept
    other.mkdir()
    session = hs.spark_session("local[2]", driver_memory="1g")  # the CLI tests stop theirs
    assert hs.encode_parquet(src, dst, q, spark=session) == 50
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


_TWO_COMMANDS = """
import sys
from h2q.cli.main import main
good = main(["spark-search", sys.argv[1], "--queries", sys.argv[2], "-k", "5", "--out",
             sys.argv[3]])
bad = main(["spark-encode", sys.argv[4], sys.argv[5], "--quantizer", sys.argv[6]])
sys.exit(10 * good + bad)
"""


@pytest.mark.slow
def test_spark_commands_say_only_their_result_or_one_line(parquet_files, tmp_path):
    """A fresh JVM: no start-up warnings; a task failing on NaN is one line, no Java trace."""
    X = np.random.default_rng(0).standard_normal((40, 4))
    X[7, 1] = np.nan
    pq.write_table(pa.table({"embedding": list(X)}), tmp_path / "nan.parquet")
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [parquet_files["good"], parquet_files["q.npy"], tmp_path / "r.npz",
            tmp_path / "nan.parquet", tmp_path / "o.parquet", parquet_files["q.npz"]]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", _TWO_COMMANDS, *map(str, argv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 2, run.stderr  # search 0, encode 2
    assert run.stdout.startswith("searched 4 queries in"), run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("h2q spark-encode: error: "), run.stderr
    assert "NaN" in lines[0] and not (tmp_path / "o.parquet").exists()
