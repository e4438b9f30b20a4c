"""Shared pieces of the search indexes: padding, feature checks, back ends (internal)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._popcount import iter_distance_blocks, to_words
from .._validation import check_embeddings, check_nonzero_rows, check_positive_int
from ..codes import check_codes
from ._jit import DISABLE_VAR, numba_available
from ._pad import PAD_ID


class RangeSearchResult(NamedTuple):
    """Result of a range search, laid out as faiss's ``range_search`` (unpacks as a 3-tuple)."""

    lims: np.ndarray
    """int64, shape (n_queries + 1,): the results of query q are at ``lims[q]:lims[q + 1]``."""
    D: np.ndarray
    """int32, shape (lims[-1],): Hamming distances, by (distance, id) within each query."""
    I: np.ndarray
    """int64, shape (lims[-1],): database ids, in the same order."""


def check_radius(radius: Any) -> int:
    """Validate a Hamming radius: an integer >= 0."""
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius!r}.")
    return int(radius)


def check_query(
    query_codes: Any, n_bits: int, n_items: int, *, k: Any = None, radius: Any = None
) -> tuple[np.ndarray, int]:
    """The checked query codes, shape (n_queries, code_size), and ``k`` (or ``radius``).

    Shared by the indexes' searches: the codes, then ``k`` (or the ``radius`` when given),
    then that the index holds ``n_items > 0`` searchable items are checked, in that order.
    """
    query_codes = check_codes(query_codes, "query_codes", n_bits=n_bits)
    value = check_positive_int(k, "k") if radius is None else check_radius(radius)
    if n_items == 0:
        raise ValueError("the index is empty: add() codes before searching.")
    return query_codes, value


def flat_range_search(
    words_t: np.ndarray, query_codes: np.ndarray, radii: np.ndarray, backend: str
) -> RangeSearchResult:
    """Scan for every item within ``radii[q]`` of query ``q`` (compiled kernel or numpy)."""
    q_words = to_words(query_codes)
    if backend == "numba":
        from . import _kernels

        return RangeSearchResult(*_kernels.range_search(words_t, q_words, radii))
    n_vals = int(radii.max()) + 1
    counts = np.zeros(len(q_words), dtype=np.int64)
    parts_d, parts_i = [], []
    for start, stop, dist in iter_distance_blocks(q_words, words_t, None, np.int32):
        rows, ids = np.nonzero(dist <= radii[start:stop, None])
        d = dist[rows, ids]
        # nonzero is in (row, id) order; a stable sort by (row, distance) keeps it within a key.
        order = np.argsort(rows * n_vals + d, kind="stable")
        parts_d.append(d[order])
        parts_i.append(ids[order].astype(np.int64))
        counts[start:stop] = np.bincount(rows, minlength=stop - start)
    lims = np.zeros(len(q_words) + 1, dtype=np.int64)
    np.cumsum(counts, out=lims[1:])
    return RangeSearchResult(lims, np.concatenate(parts_d), np.concatenate(parts_i))


def misordered_rows(D: np.ndarray, I: np.ndarray) -> np.ndarray:
    """Rows of a faiss result not sorted by (distance, id) (padding entries excepted)."""
    if D.shape[1] < 2:
        return np.zeros(0, dtype=np.int64)
    dD = np.diff(D, axis=1)
    dI = np.diff(I, axis=1)
    ok = (dD > 0) | ((dD == 0) & (dI > 0)) | (I[:, 1:] == PAD_ID)
    return np.flatnonzero(~ok.all(axis=1))


def normalised_features(
    features: Any,
    name: str,
    n_rows: int,
    n_features: int | None,
    dtype: np.dtype | None,
) -> np.ndarray:
    """Validate features and return them L2-normalised, C-contiguous, in ``dtype``."""
    X = check_embeddings(features, name, allow_torch=False)
    if len(X) != n_rows:
        raise ValueError(
            f"{name} has {len(X)} rows, but there are {n_rows} codes; pass one feature row "
            "per code, in the same order."
        )
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the database features have {n_features}. "
            "Pass features from the same model (and rotation) for queries and database."
        )
    check_nonzero_rows(X, name)
    if dtype is not None and X.dtype != dtype:
        X = X.astype(dtype)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / norms)


def query_features_for(
    query_features: Any, n_queries: int, n_features: int | None, dtype: np.dtype | None
) -> np.ndarray:
    """Query features checked against an index's stored ones (``n_features``, ``dtype``).

    Returns them as :func:`normalised_features` does, shape ``(n_queries, n_features)``;
    raises ``ValueError`` when the index holds no features (``n_features`` is None).
    """
    if n_features is None:
        raise ValueError(
            "query_features were given, but the index holds no features to compare "
            "them with. Pass features to add(), or search without query_features."
        )
    return normalised_features(query_features, "query_features", n_queries, n_features, dtype)


def joined_chunks(chunks: list[np.ndarray]) -> np.ndarray:
    """The arrays of the non-empty list ``chunks`` concatenated; ``chunks`` then holds only it."""
    if len(chunks) != 1:
        chunks[:] = [np.concatenate(chunks)]
    return chunks[0]


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: Any, n_bits: int = 64) -> str:
    """The flat scan's back end for a setting: ``"auto"`` picks the fastest available.

    Measured interleaved in one process (``benchmarks/bench_flat.py``, 10^6 codes, 1,000
    queries, 2 threads): the compiled kernel beats faiss's ``IndexBinaryFlat`` at 64 and at 256
    bits (see ``benchmarks/results/bench_flat.md``), and faiss beats the numpy scan. So
    ``"auto"`` is the compiled kernel, else faiss, else numpy.
    """
    if backend == "auto":
        if numba_available():
            return "numba"
        return "faiss" if faiss_available() else "numpy"
    if backend == "numpy":
        return "numpy"
    if backend == "numba":
        if not numba_available():
            raise ImportError(
                "backend='numba' needs the numba package, which is not installed (or is "
                f"disabled by {DISABLE_VAR}). Install the extra (pip install 'h2q[fast]'), or "
                "use backend='numpy' or 'auto'."
            )
        return "numba"
    if backend == "faiss":
        if not faiss_available():
            raise ImportError(
                "backend='faiss' needs the faiss package, which is not installed. Install the "
                "extra (pip install 'h2q[faiss]'), or use backend='numpy' or 'auto'."
            )
        return "faiss"
    raise ValueError(f"backend must be 'auto', 'numba', 'numpy' or 'faiss', got {backend!r}.")


def new_faiss_index(code_size: int) -> Any:
    import faiss

    # faiss needs a whole number of bytes; padding bits are 0 in every code, so searching
    # 8 * code_size bits gives the same distances as searching n_bits.
    index = faiss.IndexBinaryFlat(8 * code_size)
    index.use_heap = True  # the exact heap path, whose tie order is documented above
    return index


def feature_distances(
    db_features: np.ndarray, ids: np.ndarray | None, query: np.ndarray, buffer: np.ndarray
) -> np.ndarray:
    """``((db_features[ids] - query) ** 2).sum(axis=1)`` (all rows when ``ids`` is None).

    Every caller goes through here, so each row gets the same arithmetic whichever path
    ranks it. ``buffer`` (at least ``len(ids)`` rows) avoids a fresh allocation per query;
    the in-place steps are several times faster than the plain expression.
    """
    if ids is None:
        diff = np.subtract(db_features, query, out=buffer[: len(db_features)])
    else:
        diff = np.take(db_features, ids, axis=0, out=buffer[: len(ids)])
        np.subtract(diff, query, out=diff)
    np.square(diff, out=diff)
    return diff.sum(axis=1)


def feature_distances_block(db_features_t: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """:func:`feature_distances` of several queries at once, bit for bit, shape (c, n_db).

    ``db_features_t`` is the transposed database features, shape (n_features, n_db), each
    feature contiguous; ``queries`` has shape (c, n_features). numpy sums each row of
    :func:`feature_distances` with its pairwise summation (8 accumulators for up to 128
    terms, halves beyond); the same additions in the same order are done here a feature at a
    time over whole (c, n_db) blocks, which is several times faster than c row-wise sums of
    a few dozen terms. Callers check the result against :func:`feature_distances` on one row
    (:func:`same_as_rowwise`) before trusting it, in case numpy's summation changes.
    """

    n_features, n_db = db_features_t.shape
    if _compiled_distances(db_features_t, queries):
        from ._feature_kernels import feature_distances_rows

        out = np.empty((len(queries), n_db), dtype=np.float32)
        feature_distances_rows(db_features_t, np.ascontiguousarray(queries), out)
        return out

    def term(j: int) -> np.ndarray:
        t = np.subtract(db_features_t[j][None, :], queries[:, j : j + 1])
        return np.square(t, out=t)

    return _pairwise_sum(term, 0, n_features)


def _compiled_distances(db_features_t: np.ndarray, queries: np.ndarray) -> bool:
    """Whether the compiled kernel (:mod:`._feature_kernels`) computes this block: numba is
    available, both are float32 and the rows are at most its width (the same order of sums)."""
    if not numba_available():
        return False
    from ._feature_kernels import MAX_FEATURES

    return (
        db_features_t.dtype == np.float32
        and queries.dtype == np.float32
        and db_features_t.flags.c_contiguous
        and 1 <= db_features_t.shape[0] <= MAX_FEATURES
    )


def _pairwise_sum(term: Any, start: int, n: int) -> np.ndarray:
    """numpy's pairwise summation of ``term(start) ... term(start + n - 1)``, elementwise."""
    if n < 8:
        total = term(start)
        for i in range(start + 1, start + n):
            total += term(i)  # -0.0 + x (numpy's start) is x for the squares summed here
        return total
    if n <= 128:
        acc = [term(start + j) for j in range(8)]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                acc[j] += term(start + i + j)
            i += 8
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for rest in range(i, n):
            total += term(start + rest)
        return total
    half = n // 2
    half -= half % 8
    return _pairwise_sum(term, start, half) + _pairwise_sum(term, start + half, n - half)


def same_as_rowwise(db_features: np.ndarray, query: np.ndarray, block_row: np.ndarray) -> bool:
    """Whether ``block_row`` (a row of :func:`feature_distances_block`) equals, bit for bit,
    :func:`feature_distances` of ``query``."""
    buffer = np.empty_like(db_features)
    return bool(np.array_equal(feature_distances(db_features, None, query, buffer), block_row))
