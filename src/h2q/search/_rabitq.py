"""The RaBitQ estimator (internal): item codes and factors, quantized queries.

Gao and Long, "RaBitQ: Quantizing High-Dimensional Vectors with a Theoretical Error Bound for
Approximate Nearest Neighbor Search" (SIGMOD 2024), and its multi-bit extension (Gao et al.,
SIGMOD 2025). Notation, for a float row ``x``:

- ``y = M (x - m)``: the fitted quantizer's centring ``m``, PCA and rotation (``M`` of shape
  ``(D, d)``, orthonormal rows), without its rescaling;
- ``c``: the item's centroid (in ``y`` space), ``r = y - c``, ``o = r / ||r||``;
- the code ``u`` (``B`` bits per dimension, integers ``0 .. 2**B - 1``) and its grid vector
  ``x_bar = u - h`` with ``h = (2**B - 1) / 2``: for ``B = 1`` the signs of ``r`` (``+-1/2``),
  for ``B > 1`` the grid point nearest to ``o`` in angle (extended RaBitQ);
- the estimator of ``<o, q>`` for any vector ``q``: ``<x_bar, q> / <x_bar, o>``, unbiased
  under the random rotation. So ``<r, q> ~= f <x_bar, q>`` with ``f = ||r||^2 / <x_bar, r>``.

A query row ``y_q`` is quantized once to ``qb`` bits as ``q~ = delta * qu + lo`` (``qu``
integers, rounded to nearest or at random as the paper), so that
``<x_bar, q~> = delta <u, qu> + lo sum(u) - h sum(q~)``, all integer bit-plane work; relative to
the item's centroid, ``<x_bar, q_c> = <x_bar, y_q> - <x_bar, c>``, the second term exact per item.

The scores: inner product ``<x, x_q> = <r, q_c> + <r, c> + <x - m, m> + <c, y_q> + <m, x_q>``
(the middle terms exact per item, the last two per query); squared L2
``||x - x_q||^2 ~= ||r||^2 + ||q_c||^2 - 2 <r, q_c> + e_x + e_q`` with ``e = ||x - m||^2 -
||y||^2`` the part outside the PCA subspace (zero without PCA). Keys rank smaller first: the
inner product is negated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._popcount import to_words
from .._threads import thread_limit

#: Rows per chunk when mapping floats into the rotated space (bounds the temporary memory).
CHUNK_ROWS = 1 << 15
#: Rows k-means fits on (a seeded sample of the first batch), and its iterations.
KMEANS_SAMPLE = 50_000
KMEANS_ITER = 20


def linear_map(quantizer: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """``(m, M)`` of a fitted quantizer: ``y = (x - m) @ M.T`` (``m`` None when not centred)."""
    for name in ("rotation_", "n_features_in_"):
        if not hasattr(quantizer, name):
            raise ValueError(
                f"the quantizer is not fitted (it has no {name}); call quantizer.fit(X) "
                "before building an AsymmetricIndex with it."
            )
    R = np.asarray(quantizer.rotation_, dtype=np.float64)
    comps = getattr(quantizer, "components_", None)
    M = R if comps is None else R @ np.asarray(comps, dtype=np.float64)
    mean = getattr(quantizer, "mean_", None)
    return (None if mean is None else np.asarray(mean, dtype=np.float64)), M


def rotate(X: np.ndarray, mean: np.ndarray | None, M: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(Y, e, xm)``: rotated rows (float64), out-of-subspace energy, ``<x - m, m>``."""
    Xc = X.astype(np.float64) if mean is None else X.astype(np.float64) - mean
    Y = Xc @ M.T
    e = np.maximum((Xc * Xc).sum(axis=1) - (Y * Y).sum(axis=1), 0.0)
    if M.shape[0] == M.shape[1]:
        e[:] = 0.0  # a rotation keeps every norm; what is left is rounding
    xm = np.zeros(len(X)) if mean is None else Xc @ mean
    return Y, e, xm


def fit_centroids(Y: np.ndarray, n_centroids: int, seed: int) -> np.ndarray:
    """``n_centroids`` k-means centroids of rows ``Y`` (the mean when 1); shape (c, D)."""
    if n_centroids == 1:
        return Y.mean(axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    if len(Y) > KMEANS_SAMPLE:
        Y = Y[np.sort(rng.choice(len(Y), KMEANS_SAMPLE, replace=False))]
    C = Y[rng.choice(len(Y), n_centroids, replace=False)].copy()
    for _ in range(KMEANS_ITER):
        a = nearest(Y, C)
        sums = np.zeros_like(C)
        np.add.at(sums, a, Y)
        counts = np.bincount(a, minlength=n_centroids)
        empty = counts == 0
        C[~empty] = sums[~empty] / counts[~empty, None]
        if empty.any():  # reseed an empty cluster on a random row
            C[empty] = Y[rng.choice(len(Y), int(empty.sum()), replace=False)]
    return C


def nearest(Y: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared L2) of each row, int64."""
    if len(C) == 1:
        return np.zeros(len(Y), dtype=np.int64)
    d = (C * C).sum(axis=1)[None, :] - 2.0 * (Y @ C.T)
    return np.argmin(d, axis=1)


def item_codes(R: np.ndarray, bits: int) -> np.ndarray:
    """The codes ``u`` (uint8, shape of ``R``) of residual rows: signs, or the best grid."""
    pos = R >= 0
    if bits == 1:
        return pos.astype(np.uint8)
    from . import _asym_kernels

    norms = np.linalg.norm(R, axis=1, keepdims=True)
    unit = np.abs(R) / np.where(norms > 0, norms, 1.0)
    lev = _asym_kernels.grid_levels(unit, bits)
    half = 1 << (bits - 1)
    return np.where(pos, half + lev, half - 1 - lev).astype(np.uint8)


def item_factors(
    R: np.ndarray,
    u: np.ndarray,
    bits: int,
    metric: str,
    C_of: np.ndarray,
    e: np.ndarray,
    xm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item ``(A, B)`` (float64) of ``key = A + B <x_bar, y_q~> + off[q, c]``.

    The query is quantized once, not per centroid: ``<x_bar, q_c> = <x_bar, y_q> - <x_bar, c>``
    and the second term is exact per item, so it moves into ``A``.
    """
    h = ((1 << bits) - 1) / 2.0
    xbar = u.astype(np.float64) - h
    xbar_r = (xbar * R).sum(axis=1)
    xbar_c = (xbar * C_of).sum(axis=1)
    nr2 = (R * R).sum(axis=1)
    f = np.divide(nr2, xbar_r, out=np.zeros_like(nr2), where=xbar_r > 0)
    if metric == "ip":
        return f * xbar_c - (R * C_of).sum(axis=1) - xm, -f
    return nr2 + e + 2.0 * f * xbar_c, -2.0 * f


def half_scale(values: np.ndarray) -> float:
    """A power of two near ``max |values|``: values divided by it are stored as half floats
    (about 3 significant digits; room for values 60,000 times larger)."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    return float(2.0 ** np.round(np.log2(peak))) if peak > 0 else 1.0


def to_half(values: np.ndarray, scale: float, name: str) -> np.ndarray:
    """``values / scale`` as half floats, viewed as uint16 (what the kernels read)."""
    half = (values / scale).astype(np.float16)
    if not np.isfinite(half).all():
        raise ValueError(
            f"item factor {name} is out of range for this index (rows far larger than those "
            "of the first add()); build a new index, adding a representative batch first."
        )
    return half.view(np.uint16)


def pack_planes(u: np.ndarray, bits: int, plane_offset: int = 0) -> np.ndarray:
    """Bit planes of integer codes, word-major: uint64 of shape (bits, n_words, n).

    Plane ``p`` holds bit ``bits - 1 - p`` of each code (plane 0 the most significant), packed
    least significant bit first as :func:`h2q.pack_bits` does, padding bits 0.
    """
    planes = []
    for p in range(bits):
        bit = (u >> (bits - 1 - p)) & 1
        packed = np.packbits(bit.astype(np.uint8), axis=1, bitorder="little")
        planes.append(np.ascontiguousarray(to_words(packed).T))
    return np.stack(planes)


def query_planes(
    Yq: np.ndarray, C: np.ndarray, qb: int, rounding: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Quantized queries per centroid: ``(planes, (delta, lo, sum_q))``.

    ``planes`` is uint64 of shape (n_q, n_c, qb, n_words) (plane ``j`` of weight ``2**j``);
    the parameters have shape (n_q, n_c, 3), float64. Levels are
    ``floor((q_c - lo) / delta + 1/2)`` (deterministic) or ``+ U[0, 1)`` (random, unbiased).
    """
    from . import _asym_kernels

    n_q, D = Yq.shape
    n_c = len(C)
    random = rounding == "random"
    noise = rng.random((n_q, n_c, D)) if random else np.zeros((1, 1, 1))
    planes = np.empty((n_q, n_c, qb, (D + 63) // 64), dtype=np.uint64)
    par = np.empty((n_q, n_c, 3))
    Yq, C = np.ascontiguousarray(Yq, dtype=np.float64), np.ascontiguousarray(C, dtype=np.float64)
    with thread_limit(None, parallel_kernels=True):
        _asym_kernels.quantize_queries(Yq, C, qb, random, noise, planes, par)
    return planes, par


def query_constants(
    Yq: np.ndarray, C: np.ndarray, e_q: np.ndarray, xq_m: np.ndarray, metric: str
) -> np.ndarray:
    """The per (query, centroid) constant of the key, shape (n_q, n_c), float64.

    ``xq_m`` is ``<x_q, m>`` (zero without centring).
    """
    if metric == "ip":
        return -(Yq @ C.T + xq_m[:, None])
    Qc = Yq[:, None, :] - C[None, :, :]
    return (Qc * Qc).sum(axis=2) + e_q[:, None]
