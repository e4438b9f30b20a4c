"""Tests for h2q.search.MultiIndexHammingIndex: exact k-NN and range search against references."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from h2q import HammingIndex, MultiIndexHammingIndex, pack_bits
from h2q.exceptions import FileFormatError
from h2q.search import mih as mih_module
from h2q.search._jit import numba_available

WIDTHS = [8, 24, 64, 72, 128, 256]


def _clustered_codes(n: int, n_bits: int, seed: int, n_centres: int = 12, p: float = 0.03):
    """Codes near a few centres, with exact duplicates: Hamming ties everywhere."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_centres, n_bits)) < 0.5
    bits = centres[rng.integers(0, n_centres, n)] ^ (rng.random((n, n_bits)) < p)
    bits[n // 2 : n // 2 + n // 8] = bits[0]  # a block of exact duplicates
    return pack_bits(bits)


def _distances(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Brute-force Hamming distances from unpacked bits (the obviously-correct reference)."""
    qb = np.unpackbits(q, axis=1).astype(np.int32)
    dbb = np.unpackbits(db, axis=1).astype(np.int32)
    return (qb[:, None, :] != dbb[None, :, :]).sum(axis=2)


def _reference_knn(q, db, alive, k):
    dist = _distances(q, db)
    ids = np.flatnonzero(alive)
    D = np.full((len(q), k), np.iinfo(np.int32).max, np.int32)
    I = np.full((len(q), k), -1, np.int64)
    for r in range(len(q)):
        order = np.lexsort((ids, dist[r, ids]))[:k]  # by distance, then id
        D[r, : len(order)] = dist[r, ids[order]]
        I[r, : len(order)] = ids[order]
    return D, I


def _reference_range(q, db, alive, radius):
    dist = _distances(q, db)
    lims, D, I = [0], [], []
    for r in range(len(q)):
        ids = np.flatnonzero(alive & (dist[r] <= radius))
        order = np.lexsort((ids, dist[r, ids]))
        D.append(dist[r, ids[order]])
        I.append(ids[order])
        lims.append(lims[-1] + len(ids))
    return np.array(lims), np.concatenate(D), np.concatenate(I)


def _built(n_bits, db, *, scan_fallback=False, m=None, removed=()):
    index = MultiIndexHammingIndex(n_bits, m, scan_fallback=scan_fallback)
    index.add(db[: len(db) // 3])
    index.search(db[:2], 3)  # tables built, then invalidated by the next add
    index.add(db[len(db) // 3 :])
    alive = np.ones(len(db), dtype=bool)
    if len(removed):
        assert index.remove_ids(removed) == len(np.unique(removed))
        alive[removed] = False
    return index, alive


@pytest.fixture(params=["parallel", "serial"])
def threading(request, monkeypatch):
    """Run the probe kernels in parallel regions, or all in the calling thread."""
    monkeypatch.setattr(mih_module, "SERIAL_WORK", 0 if request.param == "parallel" else 10**15)


@pytest.mark.parametrize("n_bits", WIDTHS)
@pytest.mark.parametrize("scan_fallback", [False, True])
def test_knn_matches_reference_with_ties_removals_and_adds(n_bits, scan_fallback, threading):
    db = _clustered_codes(900, n_bits, seed=n_bits)
    q = np.concatenate([_clustered_codes(12, n_bits, seed=n_bits + 1), db[[0, 5]]])
    removed = np.array([0, 3, 450, 451, 899, 7])
    index, alive = _built(n_bits, db, scan_fallback=scan_fallback, removed=removed)
    assert index.ntotal == 900 - len(removed)
    for k in (1, 5, 37, 120, 1000):
        D, I = index.search(q, k)
        ref_D, ref_I = _reference_knn(q, db, alive, k)
        np.testing.assert_array_equal(D, ref_D)
        np.testing.assert_array_equal(I, ref_I)
        assert D.dtype == np.int32 and I.dtype == np.int64


@pytest.mark.parametrize("n_bits", WIDTHS)
@pytest.mark.parametrize("m", [None, 1, 3])
def test_range_matches_reference(n_bits, m, threading):
    if m is not None and n_bits / m > 12:  # keep tables small (2**bits buckets each)
        m = None
    db = _clustered_codes(700, n_bits, seed=3 * n_bits)
    q = _clustered_codes(9, n_bits, seed=3 * n_bits + 1)
    index, alive = _built(n_bits, db, m=m, removed=np.array([1, 2, 350]))
    for radius in (0, 2, 5, n_bits):
        result = index.range_search(q, radius)
        for got, expected in zip(result, _reference_range(q, db, alive, radius), strict=True):
            np.testing.assert_array_equal(got, expected)


def test_k_th_boundary_ties_go_to_the_smallest_ids():
    # 50 duplicates of one code at distance 1 from the query: k=10 must return ids in order,
    # even though probing finds them through several substrings in no particular order.
    db = np.zeros((200, 8), np.uint8)
    db[:, 0] = 0xFF
    db[100:150] = 0
    db[100:150, 7] = 1
    q = np.zeros((1, 8), np.uint8)
    index = MultiIndexHammingIndex(64, 4, scan_fallback=False)
    index.add(db)
    D, I = index.search(q, 10)
    np.testing.assert_array_equal(I, [np.arange(100, 110)])
    np.testing.assert_array_equal(D, 1)


def test_same_as_flat_index_with_feature_reranking():
    rng = np.random.default_rng(0)
    db = _clustered_codes(600, 24, seed=5, n_centres=6, p=0.01)
    q = _clustered_codes(7, 24, seed=6, n_centres=6, p=0.01)
    dbf = rng.standard_normal((600, 5)).astype(np.float32)
    qf = rng.standard_normal((7, 5)).astype(np.float32)
    flat = HammingIndex(24, backend="numpy")
    flat.add(db, dbf)
    for scan_fallback in (False, True):
        index = MultiIndexHammingIndex(24, scan_fallback=scan_fallback)
        index.add(db[:200], dbf[:200])
        index.add(db[200:], dbf[200:])
        for k in (1, 30, 650):
            expected = flat.search(q, k, query_features=qf)
            got = index.search(q, k, query_features=qf)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])


def test_save_load_round_trip(tmp_path):
    db = _clustered_codes(300, 72, seed=1)
    q = _clustered_codes(5, 72, seed=2)
    index = MultiIndexHammingIndex(72, 5)
    index.add(db, np.random.default_rng(0).standard_normal((300, 3)))
    index.remove_ids([4, 9])
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = MultiIndexHammingIndex.load(path)
    assert (loaded.n_bits, loaded.m, loaded.ntotal, loaded.substrings) == (72, 5, 298, 5)
    for a, b in zip(loaded.search(q, 20), index.search(q, 20), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.remove_ids([4]) == 0  # removed ids stay removed


def test_load_rejects_other_and_corrupt_files(tmp_path):
    path = tmp_path / "flat.npz"
    flat = HammingIndex(8, backend="numpy")
    flat.add(np.zeros((3, 1), np.uint8))
    flat.save(path)
    with pytest.raises(FileFormatError):
        MultiIndexHammingIndex.load(path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(FileFormatError):
        MultiIndexHammingIndex.load(bad)


def test_substring_count_follows_the_paper():
    assert mih_module.auto_substrings(64, 10**7) == 3  # 64 / log2(1e7) = 2.75
    assert mih_module.auto_substrings(256, 10**6) == 13  # 256 / 19.9
    assert mih_module.auto_substrings(64, 10) == 19
    assert mih_module.auto_substrings(8, 1) == 8  # never more substrings than bits
    assert mih_module.auto_substrings(256, 10**9) == 11  # substrings of at most 24 bits
    np.testing.assert_array_equal(mih_module.substring_lengths(64, 3), [22, 21, 21])


def test_memory_estimate_matches_built_tables():
    db = _clustered_codes(5000, 64, seed=0)
    index = MultiIndexHammingIndex(64)
    index.add(db)
    index.search(db[:1], 1)
    tables = index._get_tables()
    held = sum(a.nbytes for a in tables) + index._words().nbytes + index._alive.nbytes
    assert index.memory_bytes() == held


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: MultiIndexHammingIndex(64, 2), ValueError, "m=2 substrings"),
        (lambda: MultiIndexHammingIndex(8, 9), ValueError, "m=9 substrings"),
        (
            lambda: MultiIndexHammingIndex(8).search(np.zeros((1, 1), np.uint8), 1),
            ValueError,
            "the index is empty",
        ),
        (lambda: _one().range_search(np.zeros((1, 1), np.uint8), -1), ValueError, "radius"),
        (lambda: _one().remove_ids([[1]]), ValueError, "1-D array"),
        (lambda: _one().search(np.zeros((1, 2), np.uint8), 1), ValueError, "bytes per code"),
        (
            lambda: _one().search(np.zeros((1, 1), np.uint8), 1, np.ones((1, 2))),
            ValueError,
            "holds no features",
        ),
    ],
)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _one() -> MultiIndexHammingIndex:
    index = MultiIndexHammingIndex(8)
    index.add(np.zeros((2, 1), np.uint8))
    return index


def test_scan_fallback_on_spread_out_codes_is_exact():
    # Uniform 64-bit codes and a large k: probing would touch everything, so the index scans.
    rng = np.random.default_rng(1)
    db = rng.integers(0, 256, (4000, 8), dtype=np.uint8)
    q = rng.integers(0, 256, (40, 8), dtype=np.uint8)
    index = MultiIndexHammingIndex(64)
    index.add(db)
    index.remove_ids(np.arange(0, 4000, 7))
    alive = np.ones(4000, bool)
    alive[::7] = False
    for got, expected in zip(index.search(q, 50), _reference_knn(q, db, alive, 50), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.skipif(not numba_available(), reason="the probe-or-scan decision needs numba")
def test_probe_or_scan_decides_block_by_block(monkeypatch):
    """Near queries are probed; once far ones make probing dearer than a scan, the rest of the
    batch is scanned. Both parts stay exact."""
    monkeypatch.setattr(mih_module, "_SAMPLE_QUERIES", 4)
    monkeypatch.setattr(mih_module, "_SAMPLE_EVERY", 4)
    monkeypatch.setattr(mih_module, "_PROBE_BLOCK", 8)
    monkeypatch.setattr(mih_module, "_SCAN_SHARE", 0.5)
    monkeypatch.setattr(mih_module, "_SAMPLE_BUDGET_SHARE", 1.0)
    monkeypatch.setattr(mih_module, "PROBE_COST_IN_SCAN_WORDS", 10)  # a scan: 300 steps
    db = _clustered_codes(3000, 64, seed=5, n_centres=300, p=0.01)
    far = np.random.default_rng(6).integers(0, 256, (52, 8), dtype=np.uint8)
    q = np.concatenate([db[:12], far])  # near queries probe ~10-400 steps, far ones > 1000
    index, alive = _built(64, db, scan_fallback=True, removed=np.array([0, 1, 2999]))
    probed = []
    real_probe = index._probe_knn
    monkeypatch.setattr(
        index, "_probe_knn", lambda qw, rows, *a: probed.append(rows) or real_probe(qw, rows, *a)
    )
    for got, expected in zip(index.search(q, 5), _reference_knn(q, db, alive, 5), strict=True):
        np.testing.assert_array_equal(got, expected)
    # Blocks of 4, 8, then 12 queries: the third holds far queries only and ends probing.
    assert [(r.start, r.stop) for r in probed] == [(0, 4), (4, 12), (12, 24)]


def test_pure_python_kernels_without_numba():
    """The probe kernels run uncompiled when numba is absent (or disabled) and stay exact."""
    code = textwrap.dedent(
        """
        import numpy as np
        from h2q import HammingIndex, MultiIndexHammingIndex
        from h2q.search._jit import numba_available
        assert not numba_available()
        rng = np.random.default_rng(0)
        db = rng.integers(0, 4, (300, 3), dtype=np.uint8)
        q = rng.integers(0, 4, (6, 3), dtype=np.uint8)
        flat = HammingIndex(24, backend="numpy"); flat.add(db)
        for fallback in (False, True):
            index = MultiIndexHammingIndex(24, scan_fallback=fallback); index.add(db)
            for a, b in zip(index.search(q, 40), flat.search(q, 40)):
                np.testing.assert_array_equal(a, b)
            for a, b in zip(index.range_search(q, 3), flat.range_search(q, 3)):
                np.testing.assert_array_equal(a, b)
        assert HammingIndex(8).backend in ("faiss", "numpy")  # never numba when disabled
        try:
            HammingIndex(8, backend="numba")
        except ImportError as exc:
            assert "h2q[fast]" in str(exc)
        else:
            raise SystemExit("backend='numba' without numba did not raise")
        print("ok")
        """
    )
    env = {**os.environ, "H2Q_DISABLE_NUMBA": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.skipif(not numba_available(), reason="needs numba (the h2q[fast] extra)")
def test_compiled_and_python_probes_agree():
    from h2q.search import _mih_kernels as mk

    db = _clustered_codes(400, 64, seed=9)
    q = _clustered_codes(6, 64, seed=10)
    index, alive = _built(64, db)
    tables = index._get_tables()
    words, qw = index._words(), np.ascontiguousarray(q.view(np.uint64))
    results = []
    for kernel in (mk.knn, mk.knn.py_func):
        D = np.full((6, 25), np.iinfo(np.int32).max, np.int32)
        I = np.full((6, 25), -1, np.int64)
        over = np.zeros(6, bool)
        work = np.zeros(6, np.int64)
        kernel(qw, words, alive, tables, 25, 64, np.iinfo(np.int64).max, 2, D, I, over, work)
        results.append((D, I))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][1], _reference_knn(q, db, alive, 25)[1])
