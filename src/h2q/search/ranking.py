"""Ranking a database without an index: the top k (or the whole database) of each query.

The order is the rule of :mod:`h2q.search`: Hamming distance, then (when features are given)
the squared Euclidean distance of the L2-normalised features, then database id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._popcount import to_words
from .._validation import check_positive_int
from ..codes import check_chunk_size, check_codes
from ._common import normalised_features
from ._scan import Scan

__all__ = ["iter_rank_database", "iter_rank_order", "rank_database"]


def rank_database(
    query_codes: Any,
    db_codes: Any,
    k: int | None = None,
    *,
    query_features: Any = None,
    db_features: Any = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank database items for each query: the top ``k``, or the whole database.

    The order is the module's ranking rule: Hamming distance, then (when features are
    given) the squared Euclidean distance of the L2-normalised features, then database id.
    The scan is exact and identical to :meth:`HammingIndex.search`; queries are processed
    ``chunk_size`` at a time so that scratch memory stays bounded (the output itself is
    ``8 * n_queries * k`` bytes; see :func:`iter_rank_database` to consume it in chunks).

    Parameters
    ----------
    query_codes : numpy.ndarray of shape (n_queries, n_bytes), dtype uint8
    db_codes : numpy.ndarray of shape (n_db, n_bytes), dtype uint8
        Packed codes of the same width (padding bits, if any, must be 0 in both).
    k : int, optional
        Length of each ranking; None ranks the whole database (``k = n_db``). When
        ``k > n_db`` rows are padded with id -1 (and distance ``np.iinfo(np.int32).max``).
    query_features : numpy.ndarray or torch.Tensor of shape (n_queries, n_features), optional
    db_features : numpy.ndarray or torch.Tensor of shape (n_db, n_features), optional
        Continuous features for the exact tie re-ranking; give both or neither.
    chunk_size : int, optional
        Queries per chunk; by default chosen from the database size.

    Returns
    -------
    D : numpy.ndarray of shape (n_queries, k), dtype int32
        Hamming distances, non-decreasing along each row.
    I : numpy.ndarray of shape (n_queries, k), dtype int64
        Database ids in ranking order.
    """
    parts = list(
        iter_rank_database(
            query_codes,
            db_codes,
            k,
            query_features=query_features,
            db_features=db_features,
            chunk_size=chunk_size,
        )
    )
    D = np.concatenate([p[1] for p in parts])
    I = np.concatenate([p[2] for p in parts])
    return D, I


def iter_rank_database(
    query_codes: Any,
    db_codes: Any,
    k: int | None = None,
    *,
    query_features: Any = None,
    db_features: Any = None,
    chunk_size: int | None = None,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Like :func:`rank_database`, but yield the result one chunk of queries at a time.

    Yields
    ------
    queries : slice
        The query rows of this chunk.
    D : numpy.ndarray of shape (chunk, k), dtype int32
    I : numpy.ndarray of shape (chunk, k), dtype int64
    """
    k = None if k is None else check_positive_int(k, "k")
    scan, q_words, query_features = _prepare(query_codes, db_codes, query_features, db_features)
    chunk_size = check_chunk_size(chunk_size)
    yield from scan.iter_topk(q_words, scan.n_db if k is None else k, query_features, chunk_size)


def iter_rank_order(
    query_codes: Any,
    db_codes: Any,
    *,
    query_features: Any = None,
    db_features: Any = None,
    chunk_size: int | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """The whole database in ranking order, one chunk of queries at a time: the ids of
    :func:`iter_rank_database` with ``k=None``, without the distances (what a score over
    the whole ranking, such as mAP, needs).

    Yields
    ------
    queries : slice
        The query rows of this chunk.
    I : numpy.ndarray of shape (chunk, n_db), dtype int64
        Database ids in ranking order.
    """
    scan, q_words, query_features = _prepare(query_codes, db_codes, query_features, db_features)
    for start, stop, _, order in scan.iter_order(
        q_words, query_features, check_chunk_size(chunk_size)
    ):
        yield slice(start, stop), order


def _prepare(
    query_codes: Any, db_codes: Any, query_features: Any, db_features: Any
) -> tuple[Scan, np.ndarray, np.ndarray | None]:
    """Checked inputs of a ranking: the scan of the database, the query words and the
    normalised query features (None without features)."""
    query_codes = check_codes(query_codes, "query_codes")
    db_codes = check_codes(db_codes, "db_codes")
    if query_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(
            f"query_codes have {query_codes.shape[1]} bytes per code but db_codes have "
            f"{db_codes.shape[1]}; ranking needs codes of the same bit length. Encode both "
            "with the same quantizer."
        )
    n_db = len(db_codes)
    if (query_features is None) != (db_features is None):
        given, missing = (
            ("query_features", "db_features")
            if db_features is None
            else ("db_features", "query_features")
        )
        raise ValueError(
            f"{given} were given without {missing}; re-ranking needs features for both the "
            "queries and the database. Pass both, or neither."
        )
    scan_features = None
    if db_features is not None:
        scan_features = normalised_features(db_features, "db_features", n_db, None, None)
        query_features = normalised_features(
            query_features,
            "query_features",
            len(query_codes),
            scan_features.shape[1],
            scan_features.dtype,
        )
    scan = Scan(db_codes, 8 * db_codes.shape[1], scan_features)
    return scan, to_words(query_codes), query_features
