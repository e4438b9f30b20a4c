"""Binary codes: binarise, pack, unpack, and Hamming distances.

Codes follow faiss's numpy conventions, so they can be handed to a faiss binary index as is:

- a code of ``n_bits`` bits is a row of ``ceil(n_bits / 8)`` ``uint8`` values;
- bit ``j`` of a code is bit ``j % 8`` of byte ``j // 8``, least significant bit first
  (``np.packbits(bits, axis=1, bitorder="little")``);
- the padding bits of the last byte (when ``n_bits`` is not a multiple of 8) are zero;
- bit ``j`` is 1 where coordinate ``j`` is ``>= 0`` and 0 where it is ``< 0``. An exact zero
  (``+0.0`` or ``-0.0``) gives 1.

The sign rule is that of faiss's ``fvecs2bitvecs`` (the binariser behind ``IndexLSH``), and
:func:`encode_sign` is byte-identical to it. Note that faiss has a second, different binariser,
``faiss.real_to_binary``, which sets a bit only where ``x > 0`` (so an exact zero gives 0) and
needs ``n_bits`` to be a multiple of 8; the two agree on every input without exact zeros.

Hamming distances use the popcount kernel of :mod:`h2q._popcount` (numpy's popcount, a byte
lookup table on older numpy), computed in blocks so that memory stays bounded.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._popcount import iter_distance_blocks, to_words
from ._validation import (
    _check_dtype_kind,
    _check_shape,
    _non_finite_message,
    is_tensor,
    read_as,
)

__all__ = ["binarize", "encode_sign", "hamming_distances", "pack_bits", "unpack_bits"]

#: Bytes of float work per chunk in :func:`encode_sign`. Each chunk is one BLAS call, and when
#: other processes compete for the cores every multi-threaded BLAS call pays a wake-up cost of
#: milliseconds; measured on 2 busy cores, 1-4 MiB chunks lost to one big unchunked product
#: while 16 MiB chunks (65,536 rows of 64 float32) matched or beat it. Idle, all sizes win.
_ENCODE_CHUNK_BYTES = 1 << 24
#: Multiplying 8 packed 0/1 bytes (one uint64, little-endian) by this constant gathers byte j
#: into bit 56 + j of the product; no two partial products overlap, so nothing carries.
_GATHER_BITS = np.uint64(0x0102040810204080)


# ----------------------------------------------------------------------------------------------
# Input conversion and validation


def _as_numpy(x: Any, name: str) -> np.ndarray:
    """Turn a tensor (any device) or array-like into a numpy array, without copying arrays."""
    if is_tensor(x):
        x = x.detach()
        if x.is_floating_point() and x.dtype.itemsize < 4:
            x = x.float()  # float16 and bfloat16 have no (or no exact) numpy counterpart
        return x.cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    return read_as(
        np.asarray,
        x,
        f"{name} could not be read as a 2-D array",
        "Pass a numpy array or a torch tensor.",
    )


def _as_float_matrix(X: Any, name: str) -> np.ndarray:
    """A 2-D float32/float64 numpy view of ``X``; finiteness is left to the caller."""
    X = _as_numpy(X, name)
    _check_dtype_kind(X.dtype.kind == "f", str(X.dtype), name)
    _check_shape(X.shape, name, 1)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)  # float16 and longdouble: compute in float32
    return X


def check_codes(
    codes: Any,
    name: str = "codes",
    *,
    n_bits: int | None = None,
    min_rows: int = 1,
) -> np.ndarray:
    """Validate packed codes: ``uint8`` of shape ``(n, ceil(n_bits / 8))``, C-contiguous.

    When ``n_bits`` is given, the width must be ``ceil(n_bits / 8)`` and the padding bits of
    the last byte must be zero (they would otherwise count in every Hamming distance).
    """
    codes = _as_numpy(codes, name)
    if codes.dtype != np.uint8:
        raise TypeError(
            f"{name} has dtype {codes.dtype}, but packed binary codes of dtype uint8 are "
            f"expected (shape (n, ceil(n_bits / 8))). Pack 0/1 bits with h2q.pack_bits, or "
            "encode float embeddings with h2q.encode_sign."
        )
    if codes.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (n, ceil(n_bits / 8)), got {codes.ndim}-D shape "
            f"{codes.shape}. For a single code use {name}[None, :]."
        )
    if codes.shape[0] < min_rows:
        raise ValueError(
            f"{name} has {codes.shape[0]} rows, but at least {min_rows} are needed. Pass a "
            "non-empty array of codes."
        )
    if codes.shape[1] == 0:
        raise ValueError(f"{name} has 0 bytes per code (shape {codes.shape}); pass real codes.")
    if n_bits is not None:
        n_bytes = (n_bits + 7) // 8
        if codes.shape[1] != n_bytes:
            raise ValueError(
                f"{name} has {codes.shape[1]} bytes per code ({8 * codes.shape[1]} bits), but "
                f"codes of {n_bits} bits take {n_bytes} bytes. Pass codes of the same bit "
                "length (for example from the same quantizer)."
            )
        rest = n_bits % 8
        if rest and codes.shape[0] and np.any(codes[:, -1] >> rest):
            raise ValueError(
                f"{name} has non-zero padding bits: with {n_bits} bits, bits {rest}..7 of the "
                "last byte must be 0 (pack_bits and encode_sign leave them 0). Clear them with "
                f"{name}[:, -1] &= {(1 << rest) - 1}, or check n_bits."
            )
    return np.ascontiguousarray(codes)


def check_n_bits(n_bits: Any, name: str = "n_bits") -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n_bits!r}.")
    return int(n_bits)


def check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be None or an integer >= 1, got {chunk_size!r}.")
    return int(chunk_size)


# ----------------------------------------------------------------------------------------------
# Binarise, pack, unpack


def binarize(X: Any) -> np.ndarray:
    """Bits of the signs of ``X``: 1 where ``x >= 0``, 0 where ``x < 0``.

    An exact zero (``+0.0`` or ``-0.0``) gives 1, as in faiss's ``fvecs2bitvecs``.

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor of shape (n_samples, n_bits), floating dtype
        Real-valued embeddings (a tensor may live on any device; it is copied to the CPU).
        Must be finite.

    Returns
    -------
    numpy.ndarray of shape (n_samples, n_bits), dtype bool

    Raises
    ------
    TypeError
        When ``X`` is not floating point.
    ValueError
        When ``X`` is not 2-D, is empty, or contains NaN or infinite values.
    """
    X = _as_float_matrix(X, "X")
    finite = np.isfinite(X)
    if not finite.all():
        raise ValueError(_non_finite_message("X", int(X.size - finite.sum())))
    return X >= 0


def pack_bits(bits: Any) -> np.ndarray:
    """Pack rows of bits into codes, least significant bit first within a byte.

    Parameters
    ----------
    bits : array-like or torch.Tensor of shape (n, n_bits), dtype bool or integer 0/1
        Bit ``j`` of row ``i`` goes to bit ``j % 8`` of byte ``j // 8`` of code ``i``.

    Returns
    -------
    numpy.ndarray of shape (n, ceil(n_bits / 8)), dtype uint8
        The padding bits of the last byte are 0. Equal to
        ``np.packbits(bits, axis=1, bitorder="little")``.

    Raises
    ------
    TypeError
        When ``bits`` is neither boolean nor integer.
    ValueError
        When ``bits`` is not 2-D, is empty, or holds values other than 0 and 1.
    """
    bits = _as_numpy(bits, "bits")
    if bits.dtype != np.bool_:
        if bits.dtype.kind not in "iu":
            raise TypeError(
                f"bits has dtype {bits.dtype}, but bool or integer 0/1 bits are expected. For "
                "real-valued embeddings use h2q.binarize or h2q.encode_sign."
            )
        if bits.size and (bits.min() < 0 or bits.max() > 1):
            raise ValueError(
                "bits holds values other than 0 and 1 (min "
                f"{bits.min()}, max {bits.max()}). Pass 0/1 bits, for example (X >= 0)."
            )
    if bits.ndim != 2:
        raise ValueError(
            f"bits must be 2-D with shape (n, n_bits), got {bits.ndim}-D shape {bits.shape}. "
            "For a single code use bits[None, :]."
        )
    if bits.shape[0] < 1 or bits.shape[1] < 1:
        raise ValueError(f"bits is empty (shape {bits.shape}); pass at least one bit per row.")
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_bits(codes: Any, n_bits: int) -> np.ndarray:
    """Unpack codes into rows of bits (the inverse of :func:`pack_bits`).

    Parameters
    ----------
    codes : numpy.ndarray of shape (n, ceil(n_bits / 8)), dtype uint8
        Packed codes, least significant bit first within a byte.
    n_bits : int
        Bits per code; the padding bits of the last byte are dropped.

    Returns
    -------
    numpy.ndarray of shape (n, n_bits), dtype bool

    Raises
    ------
    TypeError
        When ``codes`` is not ``uint8``.
    ValueError
        When ``codes`` is not 2-D, is empty, or its width is not ``ceil(n_bits / 8)``.
    """
    n_bits = check_n_bits(n_bits)
    codes = check_codes(codes, "codes", n_bits=None)
    n_bytes = (n_bits + 7) // 8
    if codes.shape[1] != n_bytes:
        raise ValueError(
            f"codes has {codes.shape[1]} bytes per code, but {n_bits} bits take {n_bytes} "
            f"bytes. Pass n_bits between {8 * codes.shape[1] - 7} and {8 * codes.shape[1]}."
        )
    bits = np.unpackbits(codes, axis=1, count=n_bits, bitorder="little")
    return bits.view(np.bool_)


# ----------------------------------------------------------------------------------------------
# Streaming sign encoder


def encode_sign(
    X: Any,
    *,
    rotation: Any = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Packed sign codes of ``X`` (or of ``X @ rotation.T``), computed in row chunks.

    Equal to ``np.packbits(X @ rotation.T >= 0, axis=1, bitorder="little")`` (or, without a
    rotation, ``np.packbits(X >= 0, ...)``), and byte-identical to faiss's
    ``fvecs2bitvecs`` applied to the same floats. Rows are processed ``chunk_size`` at a time
    into preallocated buffers, so the only large allocation is the output: extra memory stays
    about ``n_samples * ceil(n_bits / 8)`` bytes plus about 1.5 times the chunk (24 MiB by
    default).

    Parameters
    ----------
    X : numpy.ndarray or torch.Tensor of shape (n_samples, n_features), floating dtype
        Embeddings; a tensor may live on any device (it is copied to the CPU). Must be finite.
    rotation : numpy.ndarray or torch.Tensor of shape (n_bits, n_features), optional
        Real matrix applied to each row before taking signs (for example a fitted quantizer's
        rotation). The product is computed in ``np.result_type(X, rotation)``, as ``X @
        rotation.T`` would be. Without it, ``n_bits = n_features`` and the signs of ``X`` are
        taken as they are.
    chunk_size : int, optional
        Rows per chunk. The default picks about 16 MiB of floats per chunk (65,536 rows of 64
        float32 features): few enough BLAS calls to stay fast when the cores are busy.

    Returns
    -------
    numpy.ndarray of shape (n_samples, ceil(n_bits / 8)), dtype uint8
        Bit ``j`` is 1 where coordinate ``j`` is ``>= 0`` (an exact zero gives 1), least
        significant bit first within a byte, padding bits 0.

    Raises
    ------
    TypeError
        When ``X`` or ``rotation`` is not floating point.
    ValueError
        When shapes do not match, inputs are empty, or contain NaN or infinite values.
    """
    X = _as_float_matrix(X, "X")
    chunk_size = check_chunk_size(chunk_size)
    n_samples, n_features = X.shape
    R_t = None
    dtype = X.dtype
    if rotation is not None:
        R = _as_numpy(rotation, "rotation")
        _check_dtype_kind(R.dtype.kind == "f", str(R.dtype), "rotation")
        if R.ndim != 2 or R.shape[1] != n_features or R.shape[0] < 1:
            raise ValueError(
                f"rotation must have shape (n_bits, {n_features}) to multiply X of shape "
                f"{X.shape} (codes are signs of X @ rotation.T), got shape {R.shape}. Pass "
                "the rotation fitted on embeddings of the same width."
            )
        if not np.isfinite(R).all():
            raise ValueError(
                "rotation contains NaN or infinite values. Refit the quantizer that produced it."
            )
        dtype = np.result_type(X.dtype, R.dtype)
        if dtype not in (np.float32, np.float64):
            dtype = np.dtype(np.float32)
        R_t = R.astype(dtype, copy=False).T  # a transposed view; BLAS reads it as is
    n_bits = n_features if R_t is None else R_t.shape[1]
    n_bytes = (n_bits + 7) // 8
    if chunk_size is None:
        row_bytes = max(n_bits, n_features) * dtype.itemsize
        chunk_size = max(64, _ENCODE_CHUNK_BYTES // row_bytes)
    chunk_size = min(chunk_size, n_samples)

    out = np.empty((n_samples, n_bytes), dtype=np.uint8)
    y_buf = np.empty((chunk_size, n_bits), dtype=dtype) if R_t is not None else None
    packer = SignPacker(chunk_size, n_bits)
    for start in range(0, n_samples, chunk_size):
        stop = min(start + chunk_size, n_samples)
        m = stop - start
        x = X[start:stop]
        if R_t is not None:
            if x.dtype != dtype:
                x = x.astype(dtype)
            # Overflow to +-inf still has the right sign; NaN is caught just below.
            with np.errstate(over="ignore", invalid="ignore"):
                y = np.matmul(x, R_t, out=y_buf[:m])
        else:
            y = x
        _check_chunk_finite(x, y, start)
        packer.pack(y, out[start:stop])
    return out


class SignPacker:
    """Packs the signs of float rows into codes, reusing its buffers from chunk to chunk.

    Parameters
    ----------
    max_rows : int
        Most rows of one call to :meth:`pack`.
    n_bits : int
        Columns of the rows to pack.
    """

    def __init__(self, max_rows: int, n_bits: int) -> None:
        self.n_bits = n_bits
        n_bytes = (n_bits + 7) // 8
        # Bits go in a buffer padded to whole bytes; the padding columns stay False forever.
        self._bits = np.zeros((max_rows, 8 * n_bytes), dtype=np.bool_)
        # Each group of 8 bools, read as one little-endian uint64, becomes one output byte.
        self._gather = sys.byteorder == "little"
        self._words = np.empty((max_rows, n_bytes), dtype=np.uint64) if self._gather else None

    def pack(self, y: np.ndarray, out: np.ndarray) -> None:
        """Write the codes of ``y`` (m, n_bits) into ``out`` (m, ceil(n_bits / 8)), uint8:
        bit j set where ``y[:, j] >= 0``, least significant bit first."""
        m = len(y)
        bits = self._bits[:m]
        np.greater_equal(y, 0, out=bits[:, : self.n_bits])
        if self._gather:
            words = self._words[:m]
            np.multiply(bits.view(np.uint64), _GATHER_BITS, out=words)
            np.right_shift(words, np.uint64(56), out=words)
            np.copyto(out, words, casting="unsafe")
        else:
            out[...] = np.packbits(bits, axis=1, bitorder="little")


def _check_chunk_finite(x: np.ndarray, y: np.ndarray, start: int) -> None:
    # Cheap screen: min and max propagate NaN and expose +-inf, and numpy's SIMD min/max are
    # several times faster than a sum or isfinite(). The exact check runs only when it fails.
    if np.isfinite(y.min()) and np.isfinite(y.max()):
        return
    finite = np.isfinite(x)
    if not finite.all():
        count = int(finite.size - finite.sum())
        raise ValueError(
            _non_finite_message("X", count) + f" (first bad row: {start + _first_bad(finite)})"
        )
    if np.isnan(y).any():
        raise ValueError(
            "X @ rotation.T overflowed to NaN: X holds values too large for its dtype "
            f"(rows from {start}). Rescale X (for example to unit norm) before encoding."
        )


def _first_bad(finite: np.ndarray) -> int:
    return int(np.flatnonzero(~finite.all(axis=1))[0])


# ----------------------------------------------------------------------------------------------
# Hamming distances


def hamming_distances(A: Any, B: Any, *, chunk_size: int | None = None) -> np.ndarray:
    """All pairwise Hamming distances between two sets of packed codes.

    Parameters
    ----------
    A : numpy.ndarray of shape (n_a, n_bytes), dtype uint8
        Packed codes (see :func:`pack_bits`).
    B : numpy.ndarray of shape (n_b, n_bytes), dtype uint8
        Packed codes of the same width.
    chunk_size : int, optional
        Rows of ``A`` per block; by default chosen so that the scratch space stays about
        2 MiB. The output itself is ``4 * n_a * n_b`` bytes.

    Returns
    -------
    numpy.ndarray of shape (n_a, n_b), dtype int32
        ``D[i, j]`` is the number of bits in which ``A[i]`` and ``B[j]`` differ.

    Raises
    ------
    TypeError
        When a code array is not ``uint8``.
    ValueError
        When a code array is not 2-D or is empty, or the widths differ.
    """
    A = check_codes(A, "A")
    B = check_codes(B, "B")
    chunk_size = check_chunk_size(chunk_size)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"A has {A.shape[1]} bytes per code but B has {B.shape[1]}; Hamming distances "
            "need codes of the same bit length. Encode both with the same quantizer."
        )
    a_words = to_words(A)
    b_words_t = np.ascontiguousarray(to_words(B).T)
    out = np.empty((A.shape[0], B.shape[0]), dtype=np.int32)
    for start, stop, block in iter_distance_blocks(a_words, b_words_t, chunk_size, np.int32):
        out[start:stop] = block
    return out
