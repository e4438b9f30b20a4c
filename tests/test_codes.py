"""Tests for h2q.codes: binarise, pack, unpack, sign encoding and Hamming distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from h2q._popcount import popcount_table
from h2q.codes import (
    binarize,
    encode_sign,
    hamming_distances,
    pack_bits,
    unpack_bits,
)

WIDTHS = [8, 16, 24, 64, 72, 128]


def _embeddings(n: int, d: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Gaussian rows with exact +0.0 and -0.0 entries sprinkled in."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    X[rng.random((n, d)) < 0.05] = 0.0
    X[rng.random((n, d)) < 0.05] = -0.0
    return X


def _faiss_fvecs2bitvecs(X: np.ndarray) -> np.ndarray:
    faiss = pytest.importorskip("faiss")
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    out = np.zeros((n, (d + 7) // 8), dtype=np.uint8)
    faiss.fvecs2bitvecs(faiss.swig_ptr(X), faiss.swig_ptr(out), d, n)
    return out


def _popcount_reference(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Obvious O(n_a * n_b * n_bits) reference through unpacked bits."""
    a = np.unpackbits(A, axis=1)
    b = np.unpackbits(B, axis=1)
    return (a[:, None, :] != b[None, :, :]).sum(axis=2)


# ----------------------------------------------------------------------------------------------
# binarize


def test_binarize_hand_example_with_zeros():
    X = np.array([[1.5, -2.0, 0.0, -0.0, 1e-30, -1e-30]], dtype=np.float32)
    np.testing.assert_array_equal(binarize(X), [[True, False, True, True, True, False]])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_binarize_numpy_and_torch_agree(dtype):
    X = _embeddings(20, 13, dtype=dtype)
    expected = X >= 0
    got = binarize(X)
    assert got.dtype == np.bool_ and got.shape == X.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(binarize(torch.from_numpy(X)), expected)


def test_binarize_bfloat16_tensor():
    X = torch.tensor([[1.0, -1.0, 0.0, -0.0]], dtype=torch.bfloat16)
    np.testing.assert_array_equal(binarize(X), [[True, False, True, True]])


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.ones((3, 4), dtype=np.int64), TypeError, "floating-point embeddings are expected"),
        (np.ones(4, dtype=np.float32), ValueError, "must be 2-D"),
        (np.ones((0, 4), dtype=np.float32), ValueError, "at least 1 are needed"),
        (np.array([[1.0, np.nan]]), ValueError, "NaN or infinite"),
        (np.array([[1.0, np.inf]]), ValueError, "NaN or infinite"),
    ],
)
def test_binarize_rejects_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        binarize(X)


# ----------------------------------------------------------------------------------------------
# pack_bits / unpack_bits


def test_pack_bits_hand_example_lsb_first():
    bits = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(pack_bits(bits), [[1, 1], [130, 0]])


@pytest.mark.parametrize("n_bits", [1, 7, 8, 9, 24, 64, 72, 127, 128])
def test_pack_unpack_round_trip(n_bits):
    rng = np.random.default_rng(n_bits)
    bits = rng.random((11, n_bits)) < 0.5
    codes = pack_bits(bits)
    assert codes.dtype == np.uint8 and codes.shape == (11, (n_bits + 7) // 8)
    np.testing.assert_array_equal(codes, np.packbits(bits, axis=1, bitorder="little"))
    if n_bits % 8:
        assert not np.any(codes[:, -1] >> (n_bits % 8)), "padding bits must be zero"
    back = unpack_bits(codes, n_bits)
    assert back.dtype == np.bool_
    np.testing.assert_array_equal(back, bits)


@pytest.mark.parametrize(
    "bits",
    [
        np.array([[0, 1, 1]], dtype=np.int64),
        np.array([[0, 1, 1]], dtype=np.uint8),
        torch.tensor([[False, True, True]]),
    ],
)
def test_pack_bits_accepts_integer_and_torch(bits):
    np.testing.assert_array_equal(pack_bits(bits), [[6]])


@pytest.mark.parametrize(
    ("bits", "error", "match"),
    [
        (np.array([[0.0, 1.0]]), TypeError, "bool or integer 0/1 bits are expected"),
        (np.array([[0, 2]]), ValueError, "values other than 0 and 1"),
        (np.array([[0, -1]]), ValueError, "values other than 0 and 1"),
        (np.array([True, False]), ValueError, "must be 2-D"),
        (np.zeros((0, 8), dtype=bool), ValueError, "is empty"),
        (np.zeros((2, 0), dtype=bool), ValueError, "is empty"),
    ],
)
def test_pack_bits_rejects_bad_input(bits, error, match):
    with pytest.raises(error, match=match):
        pack_bits(bits)


@pytest.mark.parametrize(
    ("codes", "n_bits", "error", "match"),
    [
        (np.zeros((2, 2), dtype=np.uint8), 24, ValueError, "but 24 bits take 3 bytes"),
        (np.zeros((2, 2), dtype=np.uint8), 8, ValueError, "Pass n_bits between 9 and 16"),
        (np.zeros((2, 2), dtype=np.int32), 16, TypeError, "dtype uint8 are expected"),
        (np.zeros(2, dtype=np.uint8), 16, ValueError, "must be 2-D"),
        (np.zeros((0, 2), dtype=np.uint8), 16, ValueError, "at least 1 are needed"),
        (np.zeros((2, 2), dtype=np.uint8), 0, ValueError, "n_bits must be an integer >= 1"),
        (np.zeros((2, 2), dtype=np.uint8), 16.0, ValueError, "n_bits must be an integer"),
    ],
)
def test_unpack_bits_rejects_bad_input(codes, n_bits, error, match):
    with pytest.raises(error, match=match):
        unpack_bits(codes, n_bits)


# ----------------------------------------------------------------------------------------------
# encode_sign


def test_encode_sign_hand_example_with_zeros():
    X = np.array(
        [[0.0, -0.0, 1.0, -1.0, 0.0, 0.0, 2.0, -2.0, 0.5], [-1, -1, -1, -1, -1, -1, -1, 3, -0.0]],
        dtype=np.float32,
    )
    # Bits LSB first: row 0 -> 1,1,1,0,1,1,1,0 | 1 -> 0b01110111 = 119, 1
    np.testing.assert_array_equal(encode_sign(X), [[119, 1], [128, 1]])


@pytest.mark.parametrize("n_bits", [*WIDTHS, 5, 13])
def test_encode_sign_matches_faiss_fvecs2bitvecs(n_bits):
    X = _embeddings(300, n_bits, seed=n_bits)
    np.testing.assert_array_equal(encode_sign(X, chunk_size=64), _faiss_fvecs2bitvecs(X))


@pytest.mark.parametrize("n_bits", WIDTHS)
def test_encode_sign_matches_faiss_real_to_binary_without_zeros(n_bits):
    # faiss.real_to_binary sets a bit only for x > 0; on inputs without exact zeros the two
    # binarisers agree (the module docstring documents the difference at zero).
    faiss = pytest.importorskip("faiss")
    X = np.random.default_rng(n_bits).standard_normal((50, n_bits)).astype(np.float32)
    X[X == 0] = 1.0
    expected = np.zeros((50, n_bits // 8), dtype=np.uint8)
    for i in range(50):
        faiss.real_to_binary(n_bits, faiss.swig_ptr(X[i]), faiss.swig_ptr(expected[i]))
    np.testing.assert_array_equal(encode_sign(X), expected)


def test_faiss_real_to_binary_differs_at_exact_zero():
    """Documents the faiss fact behind our choice of binariser (x >= 0 gives 1)."""
    faiss = pytest.importorskip("faiss")
    X = np.zeros((1, 8), dtype=np.float32)
    out = np.zeros((1, 1), dtype=np.uint8)
    faiss.real_to_binary(8, faiss.swig_ptr(X), faiss.swig_ptr(out))
    assert out[0, 0] == 0
    assert encode_sign(X)[0, 0] == 255
    np.testing.assert_array_equal(_faiss_fvecs2bitvecs(X), [[255]])


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 64, 10_000])
@pytest.mark.parametrize(("n_bits", "n_features"), [(64, 64), (24, 64), (72, 40), (13, 13)])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float32)])
def test_encode_sign_with_rotation_matches_numpy(chunk_size, n_bits, n_features, dtypes):
    rng = np.random.default_rng(n_bits + n_features)
    X = rng.standard_normal((200, n_features)).astype(dtypes[0])
    R = rng.standard_normal((n_bits, n_features)).astype(dtypes[1])
    got = encode_sign(X, rotation=R, chunk_size=chunk_size)
    expected = np.packbits(X @ R.T >= 0, axis=1, bitorder="little")
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, _faiss_fvecs2bitvecs((X @ R.T).astype(np.float32)))


def test_encode_sign_exact_zeros_after_rotation():
    X = np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 0.0]], dtype=np.float32)
    R = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    # X @ R.T = [[0, 0, 2], [2, -2, 0], [0, 0, 0]] (zeros may be -0.0: both give bit 1)
    np.testing.assert_array_equal(encode_sign(X, rotation=R), [[7], [5], [7]])


def test_encode_sign_accepts_torch_and_views():
    X = _embeddings(100, 48, seed=3)
    R = np.random.default_rng(4).standard_normal((32, 24)).astype(np.float32)
    expected = np.packbits(X >= 0, axis=1, bitorder="little")
    np.testing.assert_array_equal(encode_sign(torch.from_numpy(X)), expected)
    np.testing.assert_array_equal(encode_sign(np.asfortranarray(X)), expected)
    sub = X[::3, ::2]  # non-contiguous view
    np.testing.assert_array_equal(
        encode_sign(sub, rotation=torch.from_numpy(R)),
        np.packbits(sub @ R.T >= 0, axis=1, bitorder="little"),
    )
    half = X.astype(np.float16)
    np.testing.assert_array_equal(
        encode_sign(half), np.packbits(half >= 0, axis=1, bitorder="little")
    )


def _overflow_input():
    # Each product overflows float32 to +inf / -inf, and inf + (-inf) = NaN in any order.
    return np.array([[3e38, -3e38]], dtype=np.float32), np.array([[2.0, 2.0]], np.float32)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": np.ones((3, 4), dtype=np.int32)}, TypeError, "floating-point embeddings"),
        ({"X": np.ones(4, dtype=np.float32)}, ValueError, "must be 2-D"),
        ({"X": np.ones((0, 4), dtype=np.float32)}, ValueError, "at least 1 are needed"),
        ({"X": np.array([[1.0, 2.0], [np.nan, 1.0]])}, ValueError, r"NaN.*first bad row: 1"),
        ({"X": np.array([[np.inf, 2.0]])}, ValueError, "NaN or infinite"),
        (
            {"X": np.ones((2, 4)), "rotation": np.ones((3, 5))},
            ValueError,
            r"rotation must have shape \(n_bits, 4\)",
        ),
        ({"X": np.ones((2, 4)), "rotation": np.ones(4)}, ValueError, "rotation must have"),
        ({"X": np.ones((2, 4)), "rotation": np.eye(4, dtype=int)}, TypeError, "rotation has"),
        (
            {"X": np.ones((2, 2)), "rotation": np.array([[1.0, np.nan]])},
            ValueError,
            "rotation contains NaN",
        ),
        ({"X": np.ones((2, 4)), "chunk_size": 0}, ValueError, "chunk_size must be None"),
        ({"X": np.ones((2, 4)), "chunk_size": 2.5}, ValueError, "chunk_size must be None"),
        (
            {"X": _overflow_input()[0], "rotation": _overflow_input()[1]},
            ValueError,
            "overflowed to NaN",
        ),
    ],
)
def test_encode_sign_rejects_bad_input(kwargs, error, match):
    X = kwargs.pop("X")
    with pytest.raises(error, match=match):
        encode_sign(X, **kwargs)


def test_encode_sign_large_finite_values_are_fine():
    X = np.array([[3e38, 3e38, -1.0]], dtype=np.float32)  # the chunk sum overflows to inf
    np.testing.assert_array_equal(encode_sign(X), [[3]])


# ----------------------------------------------------------------------------------------------
# hamming_distances


@pytest.mark.parametrize("n_bits", [*WIDTHS, 12, 200, 512])
@pytest.mark.parametrize("chunk_size", [None, 1, 5])
def test_hamming_distances_match_reference(n_bits, chunk_size):
    rng = np.random.default_rng(n_bits)
    A = pack_bits(rng.random((17, n_bits)) < 0.5)
    B = pack_bits(rng.random((23, n_bits)) < 0.5)
    D = hamming_distances(A, B, chunk_size=chunk_size)
    assert D.dtype == np.int32 and D.shape == (17, 23)
    np.testing.assert_array_equal(D, _popcount_reference(A, B))
    np.testing.assert_array_equal(hamming_distances(A, A).diagonal(), 0)


def test_hamming_distances_extremes():
    A = np.array([[0, 0], [255, 255], [1, 128]], dtype=np.uint8)
    np.testing.assert_array_equal(hamming_distances(A, A), [[0, 16, 2], [16, 0, 14], [2, 14, 0]])


def test_popcount_lookup_table_fallback_matches():
    words = np.random.default_rng(0).integers(0, 2**63, (4, 9), dtype=np.uint64)
    words[0, 0] = np.iinfo(np.uint64).max
    out = np.empty(words.shape, dtype=np.uint8)
    popcount_table(words, out)
    expected = [[bin(int(w)).count("1") for w in row] for row in words]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("A", "B", "error", "match"),
    [
        (np.zeros((2, 3), np.uint8), np.zeros((2, 4), np.uint8), ValueError, "same bit length"),
        (np.zeros((2, 3), np.int8), np.zeros((2, 3), np.uint8), TypeError, "A has dtype int8"),
        (np.zeros((2, 3), np.uint8), np.zeros(3, np.uint8), ValueError, "B must be 2-D"),
        (np.zeros((0, 3), np.uint8), np.zeros((2, 3), np.uint8), ValueError, "A has 0 rows"),
        (np.zeros((2, 0), np.uint8), np.zeros((2, 0), np.uint8), ValueError, "0 bytes per code"),
        (np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8), TypeError, "h2q.pack_bits"),
    ],
)
def test_hamming_distances_reject_bad_input(A, B, error, match):
    with pytest.raises(error, match=match):
        hamming_distances(A, B)


@pytest.mark.parametrize("module", ["h2q.codes", "h2q.search"])
def test_modules_load_without_faiss(module, monkeypatch):
    """faiss is an optional extra: loading the modules must not import it."""
    import importlib.util
    import sys

    monkeypatch.setitem(sys.modules, "faiss", None)  # any "import faiss" now fails
    spec = importlib.util.find_spec(module)
    fresh = importlib.util.module_from_spec(spec)  # a private copy, not put in sys.modules
    spec.loader.exec_module(fresh)
    assert hasattr(fresh, "__all__")
