"""Milvus writes that never lose the old codes, on a real Milvus Lite: bad inputs, killed
exports, incomplete collections, k beyond the collection, and the database as an input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="needs the milvus extra: pip install 'h2q[milvus]'")
pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install 'h2q[milvus]'")

from h2q import HammingIndex, HouseholderQuantizer  # noqa: E402
from h2q.integrations.milvus import MilvusHammingIndex, connect  # noqa: E402

from .conftest import tied_codes  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:UserWarning")
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def h2q(cli_runner):
    return cli_runner(("quantize", "export"))


def _release(db):
    """Stop this process's embedded Milvus Lite server of ``db`` (it holds the file's lock)."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(Path(db).resolve()))


def _reference(codes, queries, k):
    index = HammingIndex(8 * codes.shape[1], backend="numpy")
    index.add(codes)
    return index.search(queries, k)


def _one_line_error(status, err, command, match):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"h2q {command}: error:") and match in lines[0], err


@pytest.fixture
def served(tmp_path, h2q):
    """A database with collection ``items`` of 397 codes, exported by the CLI; queries and
    the expected (D, I) of a k=10 search."""
    codes, queries = tied_codes(397, 32, seed=1), tied_codes(12, 32, seed=2)
    paths = {n: tmp_path / n for n in ("codes.npy", "q.npy", "codes.db")}
    np.save(paths["codes.npy"], codes)
    np.save(paths["q.npy"], queries)
    status, _, err = h2q(
        "export", "milvus", paths["codes.db"], "--collection", "items", "--codes",
        paths["codes.npy"],
    )  # fmt: skip
    assert status == 0, err
    yield paths, _reference(codes, queries, 10)
    _release(paths["codes.db"])


def _search(h2q, paths, out, k=10, collection="items"):
    return h2q(
        "search", "--milvus", paths["codes.db"], "--collection", collection, "--queries",
        paths["q.npy"], "-k", k, "--out", out,
    )  # fmt: skip


def _assert_serves(h2q, paths, expected, out):
    status, _, err = _search(h2q, paths, out)
    assert status == 0, err
    with np.load(out) as result:
        np.testing.assert_array_equal(result["D"], expected[0])
        np.testing.assert_array_equal(result["I"], expected[1])


def test_search_out_onto_the_database_is_refused(h2q, served, tmp_path):
    paths, expected = served
    before = paths["codes.db"].read_bytes()
    status, _, err = h2q(
        "search", "--milvus", paths["codes.db"], "--collection", "items", "--queries",
        paths["q.npy"], "-k", 5, "--out", paths["codes.db"], "--force",
    )  # fmt: skip
    _one_line_error(status, err, "search", "is the input file")
    assert paths["codes.db"].read_bytes() == before
    _assert_serves(h2q, paths, expected, tmp_path / "r.npz")


def _bad_ids(tmp_path, kind):
    ids = np.arange(500, dtype=np.int64) + 1000
    if kind == "duplicate":
        ids[7] = ids[3]
    else:
        ids[7] = -1
    np.save(tmp_path / "ids.npy", ids)
    return ["--ids", tmp_path / "ids.npy"]


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("duplicate", "ids contain duplicates (id 1003 appears 2 times)"),
        ("negative", "ids must be in [0, 2**63)"),
        ("padding", "non-zero padding bits"),
        ("nan", "NaN"),
    ],
)
def test_a_failed_export_keeps_the_old_collection(h2q, served, tmp_path, kind, match):
    paths, expected = served
    new = tied_codes(500, 32, seed=9)
    new[:, -1] |= 0b11000000  # set for "padding" (read as 30-bit codes), harmless otherwise
    np.save(tmp_path / "new.npy", new)
    argv = ["--codes", tmp_path / "new.npy"]
    if kind in ("duplicate", "negative"):
        argv += _bad_ids(tmp_path, kind)
    elif kind == "padding":
        argv += ["--bits", 30]
    else:
        X = np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32)
        q = HouseholderQuantizer(32, max_iter=2, random_state=0).fit(X)
        q.save(tmp_path / "q.npz")
        X[5, 3] = np.nan
        np.save(tmp_path / "nan.npy", X)
        argv = ["--embeddings", tmp_path / "nan.npy", "--quantizer", tmp_path / "q.npz"]
    status, _, err = h2q(
        "export", "milvus", paths["codes.db"], "--collection", "items", *argv, "--force"
    )
    _one_line_error(status, err, "export", match)
    _assert_serves(h2q, paths, expected, tmp_path / "r.npz")
    client = connect(paths["codes.db"])
    names = client.list_collections()
    client.close()
    assert len([n for n in names if n.startswith("items")]) == 1, names


def test_force_replaces_only_when_complete_and_leaves_no_orphan(h2q, served, tmp_path):
    paths, _ = served
    new = tied_codes(600, 32, seed=5)
    np.save(tmp_path / "new.npy", new)
    status, out, err = h2q(
        "export", "milvus", paths["codes.db"], "--collection", "items", "--codes",
        tmp_path / "new.npy", "--force",
    )  # fmt: skip
    assert status == 0 and "exported 600 32-bit codes" in out, err
    _assert_serves(h2q, paths, _reference(new, np.load(paths["q.npy"]), 10), tmp_path / "r.npz")
    client = connect(paths["codes.db"])
    names = client.list_collections()
    client.close()
    assert sorted(n.split("__")[0] for n in names) == ["h2q_names", "items"], names


def test_k_beyond_the_collection_is_refused(h2q, served, tmp_path):
    paths, _ = served
    status, _, err = _search(h2q, paths, tmp_path / "r.npz", k=398)
    _one_line_error(status, err, "search", "k=398 exceeds the 397 items in the index; pass -k")
    assert not (tmp_path / "r.npz").exists()


def test_a_search_never_creates_a_database(h2q, served, tmp_path):
    paths, _ = served
    missing = tmp_path / "nothere.db"
    status, _, err = h2q(
        "search", "--milvus", missing, "--collection", "items", "--queries", paths["q.npy"],
        "-k", 5, "--out", tmp_path / "r.npz",
    )  # fmt: skip
    _one_line_error(status, err, "search", "no Milvus Lite database")
    assert not missing.exists()


def test_an_incomplete_collection_is_refused_with_the_fix(h2q, served, tmp_path):
    """What a write killed in the middle of an add leaves: the record says incomplete."""
    from h2q.integrations._milvus_names import NameRecord

    paths, _ = served
    with MilvusHammingIndex(paths["codes.db"], "items") as index:
        assert index.complete
        NameRecord(index._client).mark(index.physical_name, complete=False, ntotal=0)
        with pytest.raises(ValueError, match="is incomplete"):
            index.search(np.load(paths["q.npy"]), 3)
    for k in (10, 500):  # the state comes first, before the (meaningless) count
        status, _, err = _search(h2q, paths, tmp_path / "r.npz", k=k)
        _one_line_error(status, err, "search", "is incomplete")
        assert f"h2q export milvus {paths['codes.db']} --collection items" in err
        assert "--force" in err and not (tmp_path / "r.npz").exists()


def test_add_is_all_or_nothing(tmp_path):
    db = tmp_path / "add.db"
    codes = tied_codes(1000, 32, seed=3)
    index = MilvusHammingIndex.build(db, "c", codes[:500], batch_size=100)
    ids = np.arange(500, 1000)
    ids[-1] = 42  # collides in the last batch only
    with pytest.raises(ValueError, match=r"ids \[42\] .* already in collection"):
        index.add(codes[500:], ids=ids)
    assert index.ntotal == 500 and index.complete
    with pytest.raises(ValueError, match="JSON"):
        index.add(codes[500:502], ids=[600, 601], payload=[{"a": 1}, {"b": object()}])
    assert index.ntotal == 500
    index.add(codes[500:], ids=np.arange(500, 1000))
    D, I = index.search(codes[:7], 20)
    np.testing.assert_array_equal(D, _reference(codes, codes[:7], 20)[0])
    index.close()
    _release(db)


def test_from_quantizer_checks_before_creating_and_never_doubles(tmp_path, embeddings):
    db = tmp_path / "q.db"
    q = HouseholderQuantizer(32, max_iter=2, random_state=0).fit(embeddings)
    bad = embeddings.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MilvusHammingIndex.from_quantizer(db, "items_py", q, bad)
    assert not db.exists() or "items_py" not in " ".join(connect(db).list_collections())
    X = embeddings[:397]
    MilvusHammingIndex.from_quantizer(db, "items_py", q, X).close()
    with pytest.raises(ValueError, match="exists .* pass replace=True"):
        MilvusHammingIndex.from_quantizer(db, "items_py", q, X)
    with MilvusHammingIndex.from_quantizer(db, "items_py", q, X, replace=True) as index:
        assert index.ntotal == 397  # the README block run twice: never 794
        D, I = index.search_embeddings(X[:9], 5, q)
    D_ref, I_ref = _reference(q.encode(X), q.encode(X[:9]), 5)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, I_ref)
    _release(db)


def test_milvus_commands_are_quiet_and_keep_logs_out_of_tmp(tmp_path):
    """No pkg_resources warning, and no Milvus Lite log file in the temp folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    np.save(tmp_path / "codes.npy", tied_codes(50, 32, seed=0))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": SRC}
    for key in [k for k in env if k.startswith("GLOG_")]:
        del env[key]
    argv = ["export", "milvus", str(tmp_path / "codes.db"), "--collection", "c", "--codes",
            str(tmp_path / "codes.npy")]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "h2q.cli.main", *argv], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("milvus")]


# ----------------------------------------------------------------------------------------------
# kill -9 during `h2q export milvus --force`

_OPEN_SEARCH = """
import sys, time, numpy as np
from h2q.integrations.milvus import MilvusHammingIndex
for attempt in range(40):  # the killed run's server may still hold the file for a moment
    try:
        index = MilvusHammingIndex(sys.argv[1], "items")
        break
    except Exception:
        time.sleep(0.25)
D, I = index.search(np.load(sys.argv[2]), 10)
np.savez(sys.argv[3], D=D, I=I, n=index.ntotal,
         names=np.array(index._client.list_collections()))
"""


def _served_now(db, queries, out):
    env = {**os.environ, "PYTHONPATH": SRC}
    run = subprocess.run(
        [sys.executable, "-c", _OPEN_SEARCH, str(db), str(queries), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    with np.load(out) as result:
        return result["D"], result["I"], int(result["n"]), list(result["names"])


@pytest.mark.slow
def test_kill_9_during_a_forced_export_keeps_the_old_collection(tmp_path):
    """10 random moments of an export that replaces 3,000 codes by 8,000: every time the
    name answers exactly as one complete collection does (the old one until the switch),
    and the next write leaves no orphan."""
    rng = np.random.default_rng(21)
    old, new = tied_codes(3000, 64, seed=1), tied_codes(8000, 64, seed=2)
    queries = tied_codes(25, 64, seed=3)
    db = tmp_path / "kill.db"
    for name, array in (("old.npy", old), ("new.npy", new), ("q.npy", queries)):
        np.save(tmp_path / name, array)
    env = {**os.environ, "PYTHONPATH": SRC}
    cli = [sys.executable, "-m", "h2q.cli.main", "export", "milvus", str(db), "--collection",
           "items", "--batch-size", "500"]  # fmt: skip
    subprocess.run([*cli, "--codes", str(tmp_path / "old.npy")], env=env, check=True)
    expected_old, expected_new = _reference(old, queries, 10), _reference(new, queries, 10)
    start = time.perf_counter()
    subprocess.run([*cli, "--codes", str(tmp_path / "old.npy"), "--force"], env=env, check=True)
    full = time.perf_counter() - start  # one uninterrupted --force run
    outcomes = []
    for moment in rng.uniform(0.1, 1.0, 10) * full:
        proc = subprocess.Popen([*cli, "--codes", str(tmp_path / "new.npy"), "--force"], env=env)
        time.sleep(moment)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        D, I, n, _ = _served_now(db, tmp_path / "q.npy", tmp_path / "r.npz")
        if n == len(old):
            np.testing.assert_array_equal(D, expected_old[0])
            np.testing.assert_array_equal(I, expected_old[1])
            outcomes.append("old")
        else:  # the switch happened before the kill: the complete new collection
            assert n == len(new)
            np.testing.assert_array_equal(D, expected_new[0])
            np.testing.assert_array_equal(I, expected_new[1])
            outcomes.append("new")
            subprocess.run([*cli, "--codes", str(tmp_path / "old.npy"), "--force"], env=env,
                           check=True)  # fmt: skip
    print(f"kill -9 outcomes (served after each kill): {outcomes}")
    assert outcomes.count("old") >= 5, outcomes  # most moments fall before the switch
    subprocess.run([*cli, "--codes", str(tmp_path / "old.npy"), "--force"], env=env, check=True)
    _, _, n, names = _served_now(db, tmp_path / "q.npy", tmp_path / "r.npz")
    assert n == len(old) and sorted(x.split("__")[0] for x in names) == ["h2q_names", "items"]
