"""AsymmetricIndex: the RaBitQ estimator against a float64 reference, kernels against numpy,
multi-bit grid codes, candidates, rescoring, persistence and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import h2q
from h2q import FileFormatError, HammingIndex, MultiIndexHammingIndex
from h2q.quantizers import ITQQuantizer, RandomRotationQuantizer, SignQuantizer
from h2q.search import (
    INDEX_KINDS,
    AsymmetricIndex,
    BaseIndex,
    _asym_kernels,
    exact_neighbors,
    load_index,
)

pytest.importorskip("numba")


def _data(n=600, d=32, n_q=12, seed=0, clusters=6):
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((clusters, d))
    X = centres[rng.integers(0, clusters, n + n_q)] + rng.standard_normal((n + n_q, d))
    X = X.astype(np.float32)
    return X[n_q:], X[:n_q]


def _codes_in_id_order(index: AsymmetricIndex) -> np.ndarray:
    """The integer codes ``u`` (n, n_bits) unpacked from the index's bit planes, id order."""
    planes = index._get_layout()[0]
    nb, _, n = planes.shape
    u = np.zeros((n, index.n_bits), dtype=np.int64)
    for p in range(nb):
        as_bytes = np.ascontiguousarray(planes[p].T).view(np.uint8)
        bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, : index.n_bits]
        u += bits.astype(np.int64) << (nb - 1 - p)
    return u


def _reference_keys(index: AsymmetricIndex, X: np.ndarray, Xq: np.ndarray) -> np.ndarray:
    """float64 keys (n_q, n) from the paper's definitions, with the index's quantized queries."""
    quantizer = index.quantizer
    m = np.zeros(X.shape[1]) if quantizer.mean_ is None else quantizer.mean_.astype(np.float64)
    M = quantizer.rotation_.astype(np.float64)
    if quantizer.components_ is not None:
        M = M @ quantizer.components_.astype(np.float64)
    Y, Yq = (X.astype(np.float64) - m) @ M.T, (Xq.astype(np.float64) - m) @ M.T
    C = index._centroids
    a = np.argmin(((Y[:, None, :] - C[None]) ** 2).sum(axis=2), axis=1)
    R = Y - C[a]
    u = _codes_in_id_order(index)
    h = ((1 << index.bits_per_dim) - 1) / 2
    o_bar = (u - h) / np.linalg.norm(u - h, axis=1, keepdims=True)
    o = R / np.linalg.norm(R, axis=1, keepdims=True)
    q_planes, q_par, _ = index._quantize(Xq)
    keys = np.empty((len(Xq), len(X)))
    for q in range(len(Xq)):
        delta, lo = q_par[q, 0], q_par[q, 1]
        qu = np.zeros(index.n_bits)
        for j in range(index.query_bits):
            as_bytes = q_planes[q, j][None].view(np.uint8)
            qu += np.unpackbits(as_bytes, bitorder="little")[: index.n_bits] * 2.0**j
        for c in range(len(C)):
            rows = np.flatnonzero(a == c)
            q_tilde = delta * qu + lo - C[c]  # the query is quantized once, then centred
            est = np.linalg.norm(R[rows], axis=1) * (o_bar[rows] @ q_tilde)
            est /= (o_bar[rows] * o[rows]).sum(axis=1)
            qc = Yq[q] - C[c]
            if index.metric == "ip":
                exact_terms = R[rows] @ C[c] + (X[rows] - m) @ m + C[c] @ Yq[q] + Xq[q] @ m
                keys[q, rows] = -(est + exact_terms)
            else:
                keys[q, rows] = (R[rows] ** 2).sum(axis=1) + qc @ qc - 2 * est
    return keys


def _all_keys(index: AsymmetricIndex, Xq: np.ndarray) -> np.ndarray:
    """The compiled kernel's keys of every item (id order) for each query."""
    layout = index._get_layout()
    q_planes, q_par, off = index._quantize(Xq)
    pos = np.tile(np.arange(index.ntotal), (len(Xq), 1))
    h = ((1 << index.bits_per_dim) - 1) / 2
    return _asym_kernels.keys_at(layout, q_planes, q_par, off, h, pos)


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize(("bits", "n_centroids"), [(1, 1), (2, 1), (4, 3), (1, 4)])
def test_estimator_matches_float64_reference(metric, bits, n_centroids):
    X, Xq = _data()
    quantizer = RandomRotationQuantizer().fit(X)
    index = AsymmetricIndex(
        quantizer, metric, query_bits=8, bits_per_dim=bits, n_centroids=n_centroids
    )
    index.add(X)
    ref = _reference_keys(index, X, Xq)
    tol = 2e-3 * np.abs(ref).max()  # the factors are stored as half floats
    np.testing.assert_allclose(_all_keys(index, Xq), ref, rtol=0, atol=tol)
    # the scan returns the reference's best k (scores are the negated keys for "ip")
    scores, ids = index.search(Xq, 10)
    ref_ids = np.argsort(ref, axis=1, kind="stable")[:, :10]
    best = np.take_along_axis(ref, ref_ids, axis=1)
    np.testing.assert_allclose(scores, -best if metric == "ip" else best, rtol=0, atol=tol)
    assert (np.sort(ids, axis=1) == np.sort(ref_ids, axis=1)).mean() > 0.9  # near-ties


def test_estimator_is_unbiased_and_informative():
    """Averaged over random rotations the estimate equals the true inner product."""
    X, Xq = _data(n=200, d=64, n_q=4, clusters=1)
    true = Xq.astype(np.float64) @ X.T.astype(np.float64)
    est = np.zeros_like(true)
    n_rot = 40
    for seed in range(n_rot):
        quantizer = RandomRotationQuantizer(random_state=seed).fit(X)
        index = AsymmetricIndex(quantizer, "ip", query_bits=8)
        index.add(X)
        est -= _all_keys(index, Xq) / n_rot
    slope = np.polyfit(true.ravel(), est.ravel(), 1)[0]
    assert abs(slope - 1) < 0.05
    assert np.abs(est - true).mean() < 0.15 * np.abs(true).mean()


@pytest.mark.parametrize("width", [8, 37, 64, 100, 128, 200, 384, 1024])
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_kernel_dots_match_numpy(width, bits):
    rng = np.random.default_rng(width + bits)
    from h2q.search import _rabitq

    n, qb = 300, 4
    u = rng.integers(0, 1 << bits, (n, width)).astype(np.uint8)
    qu = rng.integers(0, 1 << qb, (3, width))
    planes = _rabitq.pack_planes(u, bits)
    q_planes = _rabitq.pack_planes(qu.astype(np.uint8), qb)[::-1]  # plane j of weight 2**j
    dots = np.empty(n, dtype=np.int64)
    sums = np.empty(n, dtype=np.int64)
    _asym_kernels.tile_code_sums(planes, 0, n, sums)
    np.testing.assert_array_equal(sums, u.sum(axis=1))
    for q in range(3):
        qp = np.ascontiguousarray(q_planes[:, :, q])
        _asym_kernels.tile_dots(planes, qp, 0, n, dots)
        np.testing.assert_array_equal(dots, u.astype(np.int64) @ qu[q])


@pytest.mark.parametrize("width", [8, 37, 64, 130, 384])
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_topk_kernel_matches_numpy_sort(width, bits):
    X, Xq = _data(n=3000, d=width, n_q=70, seed=width)
    index = AsymmetricIndex(SignQuantizer(center=True).fit(X), "l2", bits_per_dim=bits)
    index.add(X)
    keys = _all_keys(index, Xq)
    scores, ids = index.search(Xq, 25)
    np.testing.assert_allclose(scores, np.sort(keys, axis=1)[:, :25], rtol=1e-5, atol=1e-4)
    assert (np.sort(ids, axis=1) == np.sort(np.argsort(keys, axis=1)[:, :25], axis=1)).mean() > 0.98


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_grid_codes_are_best_in_angle(bits):
    rng = np.random.default_rng(bits)
    a = np.abs(rng.standard_normal((40, 24)))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    lev = _asym_kernels.grid_levels(a, bits)
    K = (1 << (bits - 1)) - 1
    assert lev.min() >= 0 and lev.max() <= K

    def cos(levels):
        return ((levels + 0.5) * a).sum(axis=1) / np.linalg.norm(levels + 0.5, axis=1)

    best = cos(lev)
    for t in np.linspace(0, 60, 6001):  # a dense sweep of the rescaling factor
        assert (best >= cos(np.minimum(np.floor(t * a), K)) - 1e-12).all()
    assert (best > cos(np.zeros_like(lev)) + 1e-6).mean() > 0.9  # better than the sign code


def test_first_plane_is_the_sign_code():
    X, _ = _data()
    quantizer = RandomRotationQuantizer().fit(X)
    index = AsymmetricIndex(quantizer, bits_per_dim=4, n_centroids=1)
    index.add(X)
    Y = (X.astype(np.float64) - quantizer.mean_) @ quantizer.rotation_.T.astype(np.float64)
    signs = (Y - Y.mean(axis=0)) >= 0
    u = _codes_in_id_order(index)
    assert ((u >> 3) == signs).mean() > 0.999


@pytest.mark.parametrize("n_centroids", [1, 5])
def test_candidates_from_mih_equal_flat(n_centroids):
    X, Xq = _data(n=2000, d=48)
    index = AsymmetricIndex(ITQQuantizer(center=True).fit(X), n_centroids=n_centroids)
    index.add(X)
    flat = index.search(Xq, 10, candidates=100, candidate_index="flat")
    mih = index.search(Xq, 10, candidates=100, candidate_index="mih")
    np.testing.assert_array_equal(flat[1], mih[1])
    np.testing.assert_array_equal(flat[0], mih[0])
    full = index.search(Xq, 10)
    everything = index.search(Xq, 10, candidates=len(X))
    np.testing.assert_allclose(everything[0], full[0], rtol=1e-6)


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("n_centroids", [1, 4])
def test_rescore_is_exact_on_the_whole_index(metric, n_centroids):
    X, Xq = _data()
    index = AsymmetricIndex(
        RandomRotationQuantizer().fit(X), metric, keep_vectors=True, n_centroids=n_centroids
    )
    index.add(X[:250])
    index.add(X[250:])  # ids continue across calls
    S, I = index.search(Xq, 10, rescore=len(X))
    S_true, I_true = exact_neighbors(Xq, X, 10, metric=metric)
    np.testing.assert_array_equal(I, I_true)
    np.testing.assert_allclose(S, S_true, rtol=1e-5)
    # and estimates alone find many of them (a random order finds 10 / 600)
    _, I_est = index.search(Xq, 10)
    assert h2q.recall_at_k(I_est, 10, true_neighbors=I_true) > 0.25


def test_k_above_ntotal_is_padded():
    X, Xq = _data(n=20)
    for metric, pad in (("ip", -np.inf), ("l2", np.inf)):
        index = AsymmetricIndex(SignQuantizer().fit(X), metric)
        index.add(X)
        S, I = index.search(Xq, 25)
        assert (I[:, 20:] == -1).all() and (S[:, 20:] == pad).all()
        assert (np.sort(I[:, :20], axis=1) == np.arange(20)).all()


def test_save_load_round_trip(tmp_path):
    X, Xq = _data()
    for keep in (True, tmp_path / "vectors.npy"):
        index = AsymmetricIndex(
            HouseholderQuantizer_fit(X), "l2", 8, 2, keep_vectors=keep, n_centroids=3
        )
        index.add(X)
        path = tmp_path / "index.npz"
        index.save(path)
        loaded = load_index(path)
        assert isinstance(loaded, AsymmetricIndex) and loaded.ntotal == len(X)
        for kwargs in ({}, {"rescore": 30}):
            a, b = index.search(Xq, 10, **kwargs), loaded.search(Xq, 10, **kwargs)
            np.testing.assert_array_equal(a[1], b[1])
            np.testing.assert_array_equal(a[0], b[0])
    assert isinstance(loaded._vectors, np.memmap)


def HouseholderQuantizer_fit(X):  # noqa: N802 - reads as the class it fits
    return h2q.HouseholderQuantizer(center=True, max_iter=3).fit(X)


def test_corrupted_and_foreign_files_give_clear_errors(tmp_path):
    X, _ = _data()
    index = AsymmetricIndex(SignQuantizer().fit(X))
    index.add(X)
    path = tmp_path / "index.npz"
    index.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError):
        AsymmetricIndex.load(bad)
    other = tmp_path / "flat.npz"
    HammingIndex(8).save(other)
    with pytest.raises(FileFormatError, match="HammingIndex"):
        AsymmetricIndex.load(other)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda i, X, Q: i.search(Q[:, :5], 3), "features, but the quantizer takes"),
        (lambda i, X, Q: i.search(np.where(Q > 0, np.nan, Q), 3), "NaN"),
        (lambda i, X, Q: i.search(Q, 0), "k"),
        (lambda i, X, Q: i.search(Q, 3, rescore=10), "keep_vectors"),
        (lambda i, X, Q: i.search(Q, 5, candidates=3), "candidates=3 is smaller"),
        (lambda i, X, Q: i.add(X[:, :7]), "features, but the quantizer takes"),
    ],
)
def test_bad_input_gets_one_line_errors(call, match):
    X, Xq = _data()
    index = AsymmetricIndex(SignQuantizer().fit(X))
    index.add(X)
    with pytest.raises(ValueError, match=match) as info:
        call(index, X, Xq)
    assert "\n" not in str(info.value)


def test_bad_parameters():
    X, _ = _data()
    q = SignQuantizer().fit(X)
    for kwargs in (
        {"metric": "cos"},
        {"query_bits": 9},
        {"bits_per_dim": 0},
        {"n_centroids": 300},
        {"query_rounding": "up"},
    ):
        with pytest.raises(ValueError):
            AsymmetricIndex(q, **kwargs)
    with pytest.raises(ValueError, match="not fitted"):
        AsymmetricIndex(SignQuantizer())
    with pytest.raises(ValueError, match="empty"):
        AsymmetricIndex(q).search(X[:2], 1)


def test_indexes_share_the_base_and_the_registry():
    assert INDEX_KINDS["asymmetric"] is AsymmetricIndex
    for cls in (HammingIndex, MultiIndexHammingIndex, AsymmetricIndex):
        assert issubclass(cls, BaseIndex)
    X, _ = _data()
    index = AsymmetricIndex(SignQuantizer().fit(X), bits_per_dim=2, n_centroids=1)
    index.add(X)
    assert index.bytes_per_item() == 2 * 8 + 4  # two planes of one 64-bit word, two halves
    assert AsymmetricIndex(SignQuantizer().fit(X)).bytes_per_item() == 8 + 4 + 1
    assert index.memory_bytes() >= len(X) * index.bytes_per_item()
    assert "AsymmetricIndex(" in repr(index)


def test_random_rounding_is_seeded_and_pca_quantizers_work():
    X, Xq = _data(d=48)
    q = RandomRotationQuantizer(16, projection="pca").fit(X)
    a = AsymmetricIndex(q, query_rounding="random", seed=3, keep_vectors=True)
    a.add(X)
    np.testing.assert_array_equal(a.search(Xq, 5)[1], a.search(Xq, 5)[1])
    _, I = a.search(Xq, 10, rescore=100)
    _, T = exact_neighbors(Xq, X, 10)
    assert h2q.recall_at_k(I, 10, true_neighbors=T) > 0.6
