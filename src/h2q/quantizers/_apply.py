"""A fitted quantizer applied to CPU rows with numpy: rotate first, rescale after.

The codes are the signs of ``P @ R.T``, where ``P`` holds the centred (and projected) rows and
``R`` the rotation. Rescaling a row to norm sqrt(n_bits) multiplies its product by a positive
factor and changes no sign, so :func:`encode_rows` computes no norm at all: its work is that of
``np.packbits((P @ R.T) >= 0, axis=1, bitorder="little")``. :func:`transform_rows` multiplies
the same product by sqrt(n_bits) / ||P|| afterwards, so the packed ``transform(X) >= 0`` equals
``encode(X)`` exactly.

A row whose product overflows (float32 rows near 1e37) is recomputed from the row multiplied by
a power of two that brings its largest |entry| into [0.5, 1): the multiplication is exact, so
the signs are those of the exact product's rounding of the same row. Norms are taken of rows
divided by their largest |entry|, whose squares neither overflow nor underflow (rows near 1e30
or 1e-30).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._validation import _non_finite_message, raise_zero_rows
from ..codes import SignPacker

#: About 16 MiB of floats per chunk of rows.
CHUNK_BYTES = 1 << 24


class FittedState:
    """What a fitted quantizer applies, as numpy arrays of one dtype.

    Parameters
    ----------
    rotation : ndarray of shape (n_bits, n_bits)
    mean : ndarray of shape (n_features,) or None
    components : ndarray of shape (n_bits, n_features) or None
    rescale : bool
        Rows are checked for zeros and (by :func:`transform_rows`) rescaled.
    dtype : numpy dtype
        float32 or float64, the dtype of the rows.
    """

    def __init__(self, rotation, mean, components, rescale: bool, dtype) -> None:  # noqa: ANN001
        self.R_t = np.asarray(rotation, dtype=dtype).T
        self.mean = None if mean is None else np.asarray(mean, dtype=dtype)
        self.components_t = None if components is None else np.asarray(components, dtype=dtype).T
        self.rescale = rescale
        self.n_bits = self.R_t.shape[1]

    def project(self, x: np.ndarray) -> np.ndarray:
        """Centre and project rows ``x`` (m, n_features) -> (m, n_bits)."""
        if self.mean is not None:
            x = x - self.mean
        if self.components_t is not None:
            x = x @ self.components_t
        return x


def chunks(n_samples: int, width: int, n_bits: int, itemsize: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive row chunks of about :data:`CHUNK_BYTES` each."""
    rows = max(64, CHUNK_BYTES // (itemsize * max(width, n_bits)))
    for start in range(0, n_samples, rows):
        yield start, min(n_samples, start + rows)


def _rotate(
    p: np.ndarray, R_t: np.ndarray, out: np.ndarray, x: np.ndarray, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``p @ R_t`` into ``out``; rows that overflowed recomputed from power-of-two-scaled rows.

    Returns the product and the exponent ``e`` per row (0 where unscaled): row i of the
    product is ``(p[i] * 2**-e[i]) @ R_t``. Raises when the chunk ``x`` of ``X`` (the rows
    ``p`` come from) holds NaN or inf.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.matmul(p, R_t, out=out)
    shift = np.zeros(len(p), dtype=np.int32)
    # Cheap screen: min and max propagate NaN and expose +-inf.
    if np.isfinite(y.min()) and np.isfinite(y.max()):
        return y, shift
    _check_finite(x, X, "X")
    bad = np.flatnonzero(~np.isfinite(y).all(axis=1))
    _, exponent = np.frexp(np.abs(p[bad]).max(axis=1))
    shift[bad] = exponent
    y[bad] = np.ldexp(p[bad], -exponent[:, None]) @ R_t
    if not np.isfinite(y[bad]).all():
        raise ValueError(
            "X minus the training mean overflowed: X holds values too large for its dtype. "
            "Rescale X (for example to unit norm) before encoding."
        )
    return y, shift


def _check_finite(x: np.ndarray, X: np.ndarray, name: str) -> None:
    """Raise the non-finite error for ``X`` when the chunk ``x`` holds NaN or inf."""
    if not (np.isfinite(x.min()) and np.isfinite(x.max())):
        raise ValueError(_non_finite_message(name, int(X.size - np.isfinite(X).sum())))


def _zero_rows(p: np.ndarray, candidates: np.ndarray, start: int, name: str) -> None:
    """Raise for the rows among ``candidates`` (chunk positions) of ``p`` that are all zero."""
    if len(candidates) == 0:
        return
    zero = candidates[~np.any(p[candidates], axis=1)]
    if len(zero):
        raise_zero_rows([start + int(i) for i in zero], name)


def encode_rows(X: np.ndarray, state: FittedState, name: str) -> np.ndarray:
    """Packed codes of the rows of ``X`` (n, n_features): ``uint8`` (n, ceil(n_bits / 8)).

    Raises ValueError for non-finite values and, when ``state.rescale``, for rows that are all
    zero after centring (they have no direction).
    """
    n, width = X.shape
    n_bits = state.n_bits
    out = np.empty((n, (n_bits + 7) // 8), dtype=np.uint8)
    spans = list(chunks(n, width, n_bits, X.dtype.itemsize))
    rows = spans[0][1] - spans[0][0]
    buf = np.empty((rows, n_bits), dtype=X.dtype)
    packer = SignPacker(rows, n_bits)
    # An all-zero row gives an all-ones code: only rows with that code need the zero test.
    ones = np.full(out.shape[1], 0xFF, dtype=np.uint8)
    if n_bits % 8:
        ones[-1] = (1 << (n_bits % 8)) - 1
    for start, stop in spans:
        x = X[start:stop]
        p = state.project(x)
        y, _ = _rotate(p, state.R_t, buf[: stop - start], x, X)
        packer.pack(y, out[start:stop])
        if state.rescale:
            _zero_rows(p, np.flatnonzero((out[start:stop] == ones).all(axis=1)), start, name)
    return out


def transform_rows(X: np.ndarray, state: FittedState, name: str) -> np.ndarray:
    """Rotated (and, when ``state.rescale``, rescaled) rows of ``X``: (n, n_bits), X's dtype."""
    n, width = X.shape
    out = np.empty((n, state.n_bits), dtype=X.dtype)
    for start, stop in chunks(n, width, state.n_bits, X.dtype.itemsize):
        x = X[start:stop]
        p = state.project(x)
        y, shift = _rotate(p, state.R_t, out[start:stop], x, X)
        if not state.rescale:
            continue
        peak = np.abs(p).max(axis=1)
        _zero_rows(p, np.flatnonzero(peak == 0), start, name)
        # ||p * 2**-shift|| = (peak * 2**-shift) * ||p / peak||: divide by each factor in
        # turn, since their product overflows for rows near the dtype's largest value
        y /= np.ldexp(peak, -shift)[:, None]
        y *= (np.sqrt(state.n_bits) / np.linalg.norm(p / peak[:, None], axis=1))[:, None]
    return out
