"""Tests for h2q.search: exact Hamming top-k, tie order, re-ranking, persistence, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import h2q.search._scan as scan_module
from h2q._io import save_state
from h2q.exceptions import FileFormatError
from h2q.search import (
    PAD_DISTANCE,
    HammingIndex,
    iter_rank_database,
    iter_rank_order,
    rank_database,
)
from h2q.search._jit import numba_available

WIDTHS = [8, 24, 64, 72, 128]
#: Widths of every specialisation of the compiled scan: 1, 2, 3 and 4 words in registers, and
#: wider codes summed four words at a time after 1-3 single words (5, 8 and 9 words).
KERNEL_WIDTHS = [12, 192, 256, 320, 512, 520]
BACKENDS = ["numpy", "faiss", "numba"]


def _backend(name: str) -> str:
    if name == "faiss":
        pytest.importorskip("faiss")
    if name == "numba" and not numba_available():
        pytest.skip("numba is not installed (the h2q[fast] extra)")
    return name


def _tied_codes(n: int, n_bits: int, seed: int, n_distinct: int = 40) -> np.ndarray:
    """Codes drawn from a small pool, so that Hamming ties are everywhere."""
    rng = np.random.default_rng(seed)
    n_bytes = (n_bits + 7) // 8
    pool = rng.integers(0, 256, (n_distinct, n_bytes), dtype=np.uint8)
    pool[: n_distinct // 4] ^= rng.integers(0, 2, (n_distinct // 4, n_bytes), dtype=np.uint8)
    if n_bits % 8:
        pool[:, -1] &= (1 << (n_bits % 8)) - 1
    return pool[rng.integers(0, n_distinct, n)]


def _reference(
    q: np.ndarray,
    db: np.ndarray,
    k: int,
    qf: np.ndarray | None = None,
    dbf: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Slow, obvious reference: full popcount table, then one lexsort per query."""
    dist = np.bitwise_count(q[:, None, :] ^ db[None, :, :]).sum(axis=2, dtype=np.int64)
    n = len(db)
    ids = np.arange(n)
    D = np.full((len(q), k), PAD_DISTANCE, dtype=np.int64)
    I = np.full((len(q), k), -1, dtype=np.int64)
    for r in range(len(q)):
        if qf is None:
            order = np.lexsort((ids, dist[r]))
        else:
            qn = qf[r] / np.linalg.norm(qf[r])
            xn = dbf / np.linalg.norm(dbf, axis=1, keepdims=True)
            fd = ((xn - qn) ** 2).sum(axis=1)
            order = np.lexsort((ids, fd, dist[r]))
        order = order[:k]
        I[r, : len(order)] = order
        D[r, : len(order)] = dist[r, order]
    return D, I


def _assert_same(result, expected):
    D, I = result
    assert D.dtype == np.int32 and I.dtype == np.int64
    np.testing.assert_array_equal(D, expected[0])
    np.testing.assert_array_equal(I, expected[1])


@pytest.fixture
def small_blocks(monkeypatch):
    """Small scan blocks and eager pruning, so that small tests exercise both paths."""
    monkeypatch.setattr(scan_module, "_SCAN_BLOCK_WORDS", 2048)
    monkeypatch.setattr(scan_module, "_PRUNE_SLACK", 0)


# ----------------------------------------------------------------------------------------------
# Top-k against the reference


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_bits", [*WIDTHS, *KERNEL_WIDTHS])
@pytest.mark.parametrize(("n_db", "k"), [(3000, 1), (3000, 37), (3000, 400), (50, 80)])
def test_search_matches_reference(backend, n_bits, n_db, k, small_blocks):
    db = _tied_codes(n_db, n_bits, seed=n_bits)
    q = _tied_codes(13, n_bits, seed=n_bits + 1)
    index = HammingIndex(n_bits, backend=_backend(backend))
    index.add(db[: n_db // 3])
    index.add(db[n_db // 3 :])
    assert index.ntotal == n_db
    _assert_same(index.search(q, k), _reference(q, db, k))


@pytest.mark.parametrize("n_bits", [4, 8, 16])
def test_faiss_and_numpy_backends_identical_with_heavy_ties(n_bits, small_blocks):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(n_bits)
    db = _tied_codes(20_000, n_bits, seed=n_bits, n_distinct=12)
    q = _tied_codes(20, n_bits, seed=99, n_distinct=12)
    q[::2] = rng.integers(0, 2 ** min(n_bits, 8), (10, q.shape[1]), dtype=np.uint8)
    for k in (1, 100, 2500):
        results = []
        for backend in [b for b in BACKENDS if b != "numba" or numba_available()]:
            index = HammingIndex(n_bits, backend=backend)
            index.add(db)
            results.append(index.search(q, k))
        for other in results[1:]:
            _assert_same(results[0], other)
        # Tie order: within equal distances, ids increase (and faiss agrees).
        D, I = results[0]
        same = np.diff(D, axis=1) == 0
        assert np.all(np.diff(I, axis=1)[same] > 0)


def test_k_larger_than_ntotal_pads_like_faiss():
    db = _tied_codes(5, 16, seed=0)
    q = _tied_codes(3, 16, seed=1)
    for backend in ["numpy", *(["faiss"] if _has_faiss() else [])] + (
        ["numba"] if numba_available() else []
    ):
        index = HammingIndex(16, backend=backend)
        index.add(db)
        D, I = index.search(q, 8)
        assert np.all(I[:, 5:] == -1) and np.all(D[:, 5:] == np.iinfo(np.int32).max)
        _assert_same((D, I), _reference(q, db, 8))


def _has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def test_faiss_misordered_rows_are_recomputed():
    pytest.importorskip("faiss")
    db = _tied_codes(500, 16, seed=3, n_distinct=5)
    q = _tied_codes(4, 16, seed=4, n_distinct=5)
    index = HammingIndex(16, backend="faiss")
    index.add(db)
    real = index._faiss_index

    class Shuffled:
        def search(self, x, k):
            D, I = real.search(x, k)
            return D, I[:, ::-1].copy()  # ties now in decreasing id order

    index._faiss_index = Shuffled()
    _assert_same(index.search(q, 50), _reference(q, db, 50))


def test_backend_resolution(monkeypatch):
    assert HammingIndex(8, backend="numpy").backend == "numpy"
    if numba_available():  # faster than faiss at 64 and 256 bits (benchmarks/bench_flat.py)
        assert HammingIndex(256).backend == HammingIndex(64).backend == "numba"
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes "import faiss" fail
    # "auto" picks by measurement: the compiled scan at every width, else faiss, else numpy.
    assert HammingIndex(8).backend == ("numba" if numba_available() else "numpy")
    assert HammingIndex(256).backend == ("numba" if numba_available() else "numpy")
    with pytest.raises(ImportError, match=r"pip install 'h2q\[faiss\]'"):
        HammingIndex(8, backend="faiss")


def test_reset_and_repr():
    index = HammingIndex(8, backend="numpy")
    index.add(np.zeros((4, 1), np.uint8), np.ones((4, 3)))
    assert index.ntotal == 4 and index.has_features
    assert "ntotal=4" in repr(index)
    index.reset()
    assert index.ntotal == 0 and not index.has_features
    index.add(np.zeros((2, 1), np.uint8))
    D, I = index.search(np.zeros((1, 1), np.uint8), 2)
    np.testing.assert_array_equal(I, [[0, 1]])


# ----------------------------------------------------------------------------------------------
# Re-ranking by features


def _tied_features(n: int, d: int, seed: int) -> np.ndarray:
    """Gaussian features with exact duplicates, so feature distances tie too.

    Rows repeat, scaled by powers of two: exact in floating point, so the normalised rows
    (and their distances to any query) are bit-identical.
    """
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal((n // 3 + 1, d)).astype(np.float32)
    scale = rng.choice(np.array([0.5, 1.0, 2.0], dtype=np.float32), (n, 1))
    return pool[rng.integers(0, len(pool), n)] * scale


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_bits", [8, 24, 72])
@pytest.mark.parametrize("k", [1, 25, 900, 1300])
def test_rerank_matches_reference(backend, n_bits, k, small_blocks):
    n_db = 1200
    db = _tied_codes(n_db, n_bits, seed=n_bits, n_distinct=15)
    q = _tied_codes(9, n_bits, seed=n_bits + 7, n_distinct=15)
    dbf = _tied_features(n_db, 6, seed=1)
    qf = _tied_features(9, 6, seed=2)
    qf[0] = dbf[5]  # a query that equals a database feature exactly
    expected = _reference(q, db, k, qf, dbf)
    index = HammingIndex(n_bits, backend=_backend(backend))
    index.add(db[:500], dbf[:500])
    index.add(db[500:], torch.from_numpy(dbf[500:]))
    _assert_same(index.search(q, k, query_features=qf), expected)
    _assert_same(
        rank_database(q, db, k, query_features=qf, db_features=dbf),
        expected,
    )


@pytest.mark.parametrize("k", [3, 200, 650])
def test_rerank_float64_features(k, small_blocks):
    n_db = 600
    db = _tied_codes(n_db, 16, seed=11, n_distinct=10)
    q = _tied_codes(5, 16, seed=12, n_distinct=10)
    dbf = _tied_features(n_db, 5, seed=13).astype(np.float64)
    qf = _tied_features(5, 5, seed=14).astype(np.float64)
    expected = _reference(q, db, k, qf, dbf)
    index = HammingIndex(16, backend="numpy")
    index.add(db, dbf)
    _assert_same(index.search(q, k, query_features=qf), expected)


def test_rerank_competes_beyond_the_hamming_top_k():
    # Items 0..9 all sit at Hamming distance 0; only the features decide the top 3, and the
    # best ones have the largest ids, so a re-ranking of the plain top 3 would miss them.
    db = np.zeros((10, 1), dtype=np.uint8)
    dbf = np.stack([np.ones(10), np.linspace(5.0, 0.0, 10)], axis=1)
    qf = np.array([[1.0, 0.0]])
    index = HammingIndex(8)
    index.add(db, dbf)
    D, I = index.search(np.zeros((1, 1), np.uint8), 3, query_features=qf)
    np.testing.assert_array_equal(I, [[9, 8, 7]])
    np.testing.assert_array_equal(D, [[0, 0, 0]])
    plain_D, plain_I = index.search(np.zeros((1, 1), np.uint8), 3)
    np.testing.assert_array_equal(plain_I, [[0, 1, 2]])


@pytest.mark.parametrize("with_features", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_rank_database_full_ranking(with_features, chunk_size):
    n_db = 700
    db = _tied_codes(n_db, 16, seed=5, n_distinct=20)
    q = _tied_codes(6, 16, seed=6, n_distinct=20)
    features = {}
    qf = dbf = None
    if with_features:
        dbf = _tied_features(n_db, 4, seed=3).astype(np.float64)
        qf = _tied_features(6, 4, seed=4).astype(np.float64)
        features = {"query_features": qf, "db_features": dbf}
    expected = _reference(q, db, n_db, qf, dbf)
    _, I = rank_database(q, db, chunk_size=chunk_size, **features)
    np.testing.assert_array_equal(I, expected[1])
    D, I = rank_database(q, db, n_db + 3, **features)
    _assert_same((D, I), _reference(q, db, n_db + 3, qf, dbf))


def test_iter_rank_database_chunks_concatenate():
    db = _tied_codes(400, 24, seed=8)
    q = _tied_codes(11, 24, seed=9)
    parts = list(iter_rank_database(q, db, 30, chunk_size=4))
    assert [p[0] for p in parts] == [slice(0, 4), slice(4, 8), slice(8, 11)]
    D = np.concatenate([p[1] for p in parts])
    I = np.concatenate([p[2] for p in parts])
    _assert_same((D, I), _reference(q, db, 30))


@pytest.mark.parametrize("with_features", [False, True])
def test_iter_rank_order_gives_the_whole_ranking_ids(with_features):
    db = _tied_codes(400, 24, seed=8)
    q = _tied_codes(11, 24, seed=9)
    features = (
        {
            "query_features": _tied_features(11, 3, seed=9),
            "db_features": _tied_features(400, 3, seed=8),
        }
        if with_features
        else {}
    )
    parts = list(iter_rank_order(q, db, chunk_size=4, **features))
    assert [p[0] for p in parts] == [slice(0, 4), slice(4, 8), slice(8, 11)]
    _, I = rank_database(q, db, None, **features)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), I)


def test_features_in_index_but_not_in_query_rank_by_hamming_then_id():
    db = _tied_codes(300, 16, seed=1)
    q = _tied_codes(5, 16, seed=2)
    index = HammingIndex(16, backend="numpy")
    index.add(db, _tied_features(300, 3, seed=1))
    _assert_same(index.search(q, 40), _reference(q, db, 40))


# ----------------------------------------------------------------------------------------------
# Persistence


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_features", [False, True])
def test_save_load_round_trip(tmp_path, backend, with_features):
    backend = _backend(backend)
    db = _tied_codes(200, 12, seed=0)
    q = _tied_codes(7, 12, seed=1)
    dbf = _tied_features(200, 5, seed=0) if with_features else None
    qf = _tied_features(7, 5, seed=1) if with_features else None
    index = HammingIndex(12, backend=backend)
    index.add(db, dbf)
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = HammingIndex.load(path)
    assert (loaded.n_bits, loaded.backend, loaded.ntotal) == (12, backend, 200)
    assert loaded.has_features == with_features
    _assert_same(loaded.search(q, 20, qf), index.search(q, 20, qf))
    assert HammingIndex.load(path, backend="numpy").backend == "numpy"


def test_save_load_empty_index(tmp_path):
    path = tmp_path / "empty.npz"
    HammingIndex(8, backend="numpy").save(path)
    loaded = HammingIndex.load(path)
    assert loaded.ntotal == 0
    loaded.add(np.array([[3]], np.uint8))
    np.testing.assert_array_equal(loaded.search(np.array([[1]], np.uint8), 1)[0], [[1]])


@pytest.fixture
def saved_index(tmp_path):
    index = HammingIndex(24, backend="numpy")
    index.add(_tied_codes(40, 24, seed=0), _tied_features(40, 4, seed=0))
    path = tmp_path / "index.npz"
    index.save(path)
    return index, path


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.99])
def test_truncated_file_raises_file_format_error(saved_index, fraction):
    _, path = saved_index
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(FileFormatError, match="truncated or corrupted"):
        HammingIndex.load(path)


def test_corrupted_bytes_never_load_wrong_data(saved_index, tmp_path):
    index, path = saved_index
    raw = path.read_bytes()
    bad_path = tmp_path / "bad.npz"
    n_errors = 0
    for position in range(0, len(raw), 7):
        corrupted = bytearray(raw)
        corrupted[position] ^= 0xFF
        bad_path.write_bytes(bytes(corrupted))
        try:
            loaded = HammingIndex.load(bad_path)
        except FileFormatError:
            n_errors += 1
            continue
        # Bytes the format does not use (zip timestamps and the like) may change freely.
        np.testing.assert_array_equal(loaded._codes(), index._codes())
        np.testing.assert_array_equal(loaded._features(), index._features())
    assert n_errors > 0.8 * len(range(0, len(raw), 7))


def test_byte_corrupted_data_raises_file_format_error(saved_index):
    index, path = saved_index
    raw = bytearray(path.read_bytes())
    codes_bytes = index._codes().tobytes()
    position = bytes(raw).find(codes_bytes)
    assert position > 0
    raw[position + 3] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="corrupted"):
        HammingIndex.load(path)


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "other.npz"
    save_state(other, "ITQQuantizer", 1, {"rotation_": np.eye(2)}, {})
    with pytest.raises(FileFormatError, match="not a HammingIndex"):
        HammingIndex.load(other)
    newer = tmp_path / "newer.npz"
    save_state(newer, "HammingIndex", 99, {"codes": np.zeros((0, 1), np.uint8)}, {})
    with pytest.raises(FileFormatError, match="version 99"):
        HammingIndex.load(newer)
    inconsistent = tmp_path / "inconsistent.npz"
    meta = {"n_bits": 16, "backend": "numpy", "n_features": None, "ntotal": 3}
    save_state(inconsistent, "HammingIndex", 1, {"codes": np.zeros((3, 1), np.uint8)}, meta)
    with pytest.raises(FileFormatError, match="inconsistent"):
        HammingIndex.load(inconsistent)
    missing_meta = tmp_path / "missing.npz"
    save_state(missing_meta, "HammingIndex", 1, {"codes": np.zeros((3, 1), np.uint8)}, {})
    with pytest.raises(FileFormatError, match="not a valid HammingIndex"):
        HammingIndex.load(missing_meta)
    with pytest.raises(FileNotFoundError):
        HammingIndex.load(tmp_path / "absent.npz")


# ----------------------------------------------------------------------------------------------
# Errors


def _index_with_items(features: bool = False) -> HammingIndex:
    index = HammingIndex(12, backend="numpy")
    index.add(np.zeros((3, 2), np.uint8), np.ones((3, 4)) if features else None)
    return index


@pytest.mark.parametrize(
    ("n_bits", "backend", "error", "match"),
    [
        (0, "auto", ValueError, "n_bits must be an integer >= 1"),
        (True, "auto", ValueError, "n_bits must be an integer"),
        (8, "torch", ValueError, "backend must be 'auto', 'numba', 'numpy' or 'faiss'"),
    ],
)
def test_constructor_rejects_bad_arguments(n_bits, backend, error, match):
    with pytest.raises(error, match=match):
        HammingIndex(n_bits, backend=backend)


@pytest.mark.parametrize(
    ("codes", "features", "error", "match"),
    [
        (np.zeros((3, 3), np.uint8), None, ValueError, "codes of 12 bits take 2 bytes"),
        (np.zeros((3, 2), np.int64), None, TypeError, "dtype uint8 are expected"),
        (np.zeros(2, np.uint8), None, ValueError, "must be 2-D"),
        (np.zeros((0, 2), np.uint8), None, ValueError, "at least 1 are needed"),
        (np.full((3, 2), 255, np.uint8), None, ValueError, r"non-zero padding bits.*&= 15"),
        (np.zeros((3, 2), np.uint8), np.ones((2, 4)), ValueError, "2 rows, but there are 3"),
        (np.zeros((3, 2), np.uint8), np.full((3, 4), np.nan), ValueError, "NaN or infinite"),
        (np.zeros((3, 2), np.uint8), np.zeros((3, 4)), ValueError, "all-zero row"),
        (np.zeros((3, 2), np.uint8), np.ones((3, 4), int), TypeError, "floating-point"),
        (np.zeros((3, 2), np.uint8), np.ones(3), ValueError, "must be 2-D"),
    ],
)
def test_add_rejects_bad_input(codes, features, error, match):
    with pytest.raises(error, match=match):
        HammingIndex(12, backend="numpy").add(codes, features)


def test_add_rejects_mixing_with_and_without_features():
    with pytest.raises(ValueError, match="added without them"):
        _index_with_items(features=False).add(np.zeros((1, 2), np.uint8), np.ones((1, 4)))
    with pytest.raises(ValueError, match="but none were given now"):
        _index_with_items(features=True).add(np.zeros((1, 2), np.uint8))
    with pytest.raises(ValueError, match="database features have 4"):
        _index_with_items(features=True).add(np.zeros((1, 2), np.uint8), np.ones((1, 5)))


@pytest.mark.parametrize(
    ("query", "k", "query_features", "features", "error", "match"),
    [
        (np.zeros((1, 2), np.uint8), 0, None, False, ValueError, "k must be an integer >= 1"),
        (np.zeros((1, 2), np.uint8), 2.0, None, False, ValueError, "k must be an integer"),
        (np.zeros((1, 3), np.uint8), 1, None, False, ValueError, "take 2 bytes"),
        (np.zeros((1, 2), np.uint16), 1, None, False, TypeError, "dtype uint8"),
        (np.zeros(2, np.uint8), 1, None, False, ValueError, r"query_codes\[None, :\]"),
        (np.zeros((0, 2), np.uint8), 1, None, False, ValueError, "at least 1"),
        (np.zeros((1, 2), np.uint8), 1, np.ones((1, 4)), False, ValueError, "holds no feat"),
        (np.zeros((1, 2), np.uint8), 1, np.ones((2, 4)), True, ValueError, "2 rows, but"),
        (np.zeros((1, 2), np.uint8), 1, np.ones((1, 3)), True, ValueError, "have 4"),
        (np.zeros((1, 2), np.uint8), 1, [[np.nan] * 4], True, ValueError, "NaN"),
    ],
)
def test_search_rejects_bad_input(query, k, query_features, features, error, match):
    index = _index_with_items(features)
    with pytest.raises(error, match=match):
        index.search(query, k, query_features=query_features)


def test_search_on_empty_index_raises():
    with pytest.raises(ValueError, match="the index is empty"):
        HammingIndex(8, backend="numpy").search(np.zeros((1, 1), np.uint8), 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"db_codes": np.zeros((4, 3), np.uint8)}, ValueError, "same bit length"),
        ({"k": 0}, ValueError, "k must be an integer >= 1"),
        ({"query_features": np.ones((2, 3))}, ValueError, "without db_features"),
        ({"db_features": np.ones((4, 3))}, ValueError, "without query_features"),
        (
            {"query_features": np.ones((2, 3)), "db_features": np.ones((5, 3))},
            ValueError,
            "db_features has 5 rows",
        ),
        ({"chunk_size": 0}, ValueError, "chunk_size must be None"),
        ({"db_codes": np.zeros((0, 2), np.uint8)}, ValueError, "db_codes has 0 rows"),
    ],
)
def test_rank_database_rejects_bad_input(kwargs, error, match):
    arguments = {"query_codes": np.zeros((2, 2), np.uint8), "db_codes": np.zeros((4, 2), np.uint8)}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        rank_database(**arguments)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("n_bits", [*WIDTHS, *KERNEL_WIDTHS])
def test_range_search_matches_reference(backend, n_bits):
    db = _tied_codes(900, n_bits, seed=n_bits, n_distinct=30)
    q = np.concatenate([_tied_codes(7, n_bits, seed=n_bits + 1, n_distinct=30), db[:2]])
    index = HammingIndex(n_bits, backend=_backend(backend))
    index.add(db)
    full_D, full_I = _reference(q, db, len(db))
    for radius in (0, 3, n_bits // 2):
        lims, D, I = index.range_search(q, radius)
        for r in range(len(q)):
            keep = full_D[r] <= radius
            np.testing.assert_array_equal(D[lims[r] : lims[r + 1]], full_D[r][keep])
            np.testing.assert_array_equal(I[lims[r] : lims[r + 1]], full_I[r][keep])


def test_importing_h2q_compiles_nothing():
    """numba is imported (and kernels compiled) only when a compiled search first runs."""
    import subprocess

    code = "import sys, h2q, h2q.search; assert 'numba' not in sys.modules; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
