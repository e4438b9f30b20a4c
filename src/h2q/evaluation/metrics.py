"""Retrieval metrics: pure functions of a ranking (or a Hamming search) and labels.

Relevance is the rule of :func:`h2q.labels.share_label`: a database item is relevant to a
query when they share at least one label. Labels are class ids of shape ``(n,)`` or multi-hot
rows of shape ``(n, n_classes)``.

The published deep-hashing toolkits disagree on mAP, so every convention is an explicit
argument and every variant has a name (see :func:`variant_name`):

- ``denominator="topk"``: "mAP@k (top-k relevant denominator)". AP@k divides by the number of
  relevant items in the top k. The paper's definition (and that of the DPSH, DeepHash and
  HashNet evaluation code).
- ``denominator="database"``: "mAP@k (database relevant denominator)". AP@k divides by the
  number of relevant items in the whole database, so relevant items missing from the top k
  lower the score.
- ``empty``: what a query scores when its denominator is 0 (the 0/0 case): ``"zero"`` scores 0
  and the query still counts in the mean (the paper's rule); ``"skip"`` gives NaN and the mean
  leaves the query out.

Metrics take the ranking as given: ties in Hamming distance must already be broken by the
caller (the paper breaks them by the Euclidean distance of the continuous features), and
exact numbers depend on that rule.

Memory stays bounded: queries are processed ``chunk_size`` at a time, and relevance is
computed only for the ranked ids of a chunk, through the distinct label rows of the database
(one ``share_label`` call of shape ``(chunk_size, n_distinct_labels)`` per chunk).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

import numpy as np

from .._validation import check_labels, is_tensor
from ..labels import share_label

__all__ = [
    "MAP_VARIANTS",
    "PrecisionRecallCurve",
    "average_precision",
    "map_within_radius",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "recall_at_k",
    "variant_name",
    "within_radius_metrics",
]

Denominator = Literal["topk", "database"]
Empty = Literal["zero", "skip"]

#: Short names of the mAP@k variants, keyed by the ``denominator`` argument.
MAP_VARIANTS: dict[str, str] = {
    "topk": "mAP@k (top-k relevant denominator)",
    "database": "mAP@k (database relevant denominator)",
}

_EMPTY_WORDS = {"zero": "empty queries score 0", "skip": "empty queries skipped"}


def variant_name(
    k: int | None = None, denominator: Denominator = "topk", empty: Empty = "zero"
) -> str:
    """Name of an mAP variant, for printed results and reports.

    Parameters
    ----------
    k : int or None
        Cut-off; None (the whole ranking) prints as ``"all"``.
    denominator : {"topk", "database"}
        The denominator of AP@k, as in :func:`average_precision`.
    empty : {"zero", "skip"}
        The empty-query policy, as in :func:`average_precision`.

    Returns
    -------
    str
        For example ``"mAP@5000 (top-k relevant denominator; empty queries score 0)"``.
    """
    _check_choice(denominator, "denominator", MAP_VARIANTS)
    _check_choice(empty, "empty", _EMPTY_WORDS)
    cut = "all" if k is None else str(_check_k(k, None))
    base = MAP_VARIANTS[denominator].replace("mAP@k", f"mAP@{cut}")
    return f"{base[:-1]}; {_EMPTY_WORDS[empty]})"


def average_precision(
    ranking: Any,
    query_labels: Any,
    db_labels: Any,
    k: int | None = None,
    *,
    denominator: Denominator = "topk",
    empty: Empty = "zero",
    chunk_size: int = 256,
) -> np.ndarray:
    """Average precision at k of each query.

    AP@k = (1 / denominator) * sum over relevant ranks r <= k of precision@r, where
    precision@r is the fraction of relevant items among the first r.

    Parameters
    ----------
    ranking : int array of shape (n_queries, n_ranked)
        Database ids, best first, ties already broken (for example the ``I`` of a search).
        Each row should list distinct ids in ``[0, n_db)``; a repeated id raises.
    query_labels : array of shape (n_queries,) or (n_queries, n_classes)
        Class ids or multi-hot rows.
    db_labels : array of shape (n_db,) or (n_db, n_classes)
        Same kind as ``query_labels``; ``ranking`` indexes its rows.
    k : int or None, default None
        Cut-off, ``1 <= k <= n_ranked``; None uses the whole ranking. A k wider than the
        ranking raises: search with at least k results rather than scoring a shorter list.
    denominator : {"topk", "database"}, default "topk"
        ``"topk"``: the number of relevant items in the top k (the paper's definition,
        "mAP@k (top-k relevant denominator)"). ``"database"``: the number of relevant items
        in the whole database ("mAP@k (database relevant denominator)").
    empty : {"zero", "skip"}, default "zero"
        Score of a query whose denominator is 0 (no relevant item in the top k for
        ``"topk"``, none in the database for ``"database"``): ``"zero"`` gives 0, so the query
        still counts in a mean (the paper's rule); ``"skip"`` gives NaN, so
        :func:`mean_average_precision` leaves it out.
    chunk_size : int, default 256
        Queries processed at once; peak memory is about
        ``chunk_size * (13 * k + 4 * n_distinct_db_labels)`` bytes.

    Returns
    -------
    ndarray of float64, shape (n_queries,)
        AP@k of each query, in [0, 1] (NaN for skipped queries).
    """
    ranking, query_labels, db_labels = _check_ranking_inputs(ranking, query_labels, db_labels)
    k = ranking.shape[1] if k is None else _check_k(k, ranking.shape[1])
    _check_choice(denominator, "denominator", MAP_VARIANTS)
    _check_choice(empty, "empty", _EMPTY_WORDS)
    chunk_size = _check_chunk_size(chunk_size)
    return _average_precision(ranking, query_labels, db_labels, k, denominator, empty, chunk_size)


def _trusted_map(ranking: np.ndarray, query_labels: Any, db_labels: Any, k: int) -> float:
    """:func:`mean_average_precision` (top-k denominator, empty queries score 0) of a ranking
    made by :mod:`h2q.search` (distinct ids in range, by construction), bit for bit, without
    checking its ids again (a repeated-id check costs as much as the score on a full ranking).
    The labels and ``k`` are still checked."""
    query_labels, db_labels = _check_label_pair(query_labels, db_labels)
    if ranking.ndim != 2 or ranking.shape[0] != len(query_labels):
        raise ValueError(f"ranking has shape {ranking.shape}; expected one row per query.")
    k = _check_k(k, ranking.shape[1])
    ap = _average_precision(ranking, query_labels, db_labels, k, "topk", "zero", 256)
    return _mean_ignoring_nan(ap)


def _whole_ranking_map(
    blocks: Iterable[tuple[slice, np.ndarray]], query_labels: Any, db_labels: Any
) -> float:
    """:func:`_trusted_map` of a ranking of the whole database with ``k = n_db``, bit for
    bit, from its rows a chunk of queries at a time (``(rows, ranking)``, as
    :func:`h2q.search.iter_rank_order` yields them), so the whole ranking is never held."""
    query_labels, db_labels = _check_label_pair(query_labels, db_labels)
    relevance = _Relevance(query_labels, db_labels)
    ap = np.full(len(query_labels), np.nan)
    for rows, ranking in blocks:
        if ranking.shape != (rows.stop - rows.start, len(db_labels)):
            raise ValueError(
                f"a block of rankings has shape {ranking.shape}; expected one row per query "
                "of the block, each ranking the whole database."
            )
        terms = _ranked_terms(relevance, rows.start, rows.stop, ranking, ranking.shape[1])
        ap[rows] = _safe_divide(terms.numerator, terms.hits, "zero")
    if np.isnan(ap).any():
        raise ValueError("the blocks of rankings do not cover every query.")
    return _mean_ignoring_nan(ap)


class _RankedTerms(NamedTuple):
    """:func:`_ap_terms` of a block of rankings, in all and in the first ``k`` ranks."""

    numerator: np.ndarray
    hits: np.ndarray
    numerator_at_k: np.ndarray
    hits_at_k: np.ndarray


def _ranked_terms(
    relevance: _Relevance, start: int, stop: int, ranking: np.ndarray, k: int
) -> _RankedTerms:
    """:func:`_ap_terms` of the relevance of ``ranking`` (query rows ``start:stop``) and of
    its first ``k`` columns, bit for bit: the compiled kernel's terms summed by numpy (a row
    prefix of the terms sums as the terms of the prefix would), or numpy's own passes."""
    from ..search._jit import numba_available

    whole = k >= ranking.shape[1]
    if not numba_available():
        rel = relevance.gather(start, stop, ranking)
        numerator, hits = _ap_terms(rel)
        at_k = (numerator, hits) if whole else _ap_terms(rel[:, :k])
        return _RankedTerms(numerator, hits, *at_k)
    from ._ap_kernels import ranked_ap_terms

    terms = np.empty(ranking.shape, dtype=np.float64)
    hits = np.empty(len(ranking), dtype=np.int64)
    hits_at_k = np.empty(len(ranking), dtype=np.int64)
    shared = np.ascontiguousarray(relevance.share(start, stop))
    ranking = np.ascontiguousarray(ranking, dtype=np.int64)
    ranked_ap_terms(ranking, shared, relevance.label_row, k, terms, hits, hits_at_k)
    numerator = terms.sum(axis=1)
    numerator_at_k = numerator if whole else np.ascontiguousarray(terms[:, :k]).sum(axis=1)
    return _RankedTerms(numerator, hits, numerator_at_k, hits_at_k)


def _average_precision(
    ranking: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int,
    denominator: str,
    empty: str,
    chunk_size: int,
) -> np.ndarray:
    """The computation of :func:`average_precision` on checked inputs."""
    relevance = _Relevance(query_labels, db_labels)
    out = np.empty(len(ranking), dtype=np.float64)
    for start in range(0, len(ranking), chunk_size):
        stop = min(start + chunk_size, len(ranking))
        numerator, n_hits, _, _ = _ranked_terms(relevance, start, stop, ranking[start:stop, :k], k)
        if denominator == "topk":
            denom = n_hits
        else:
            denom = relevance.n_relevant_in_db(start, stop)
        out[start:stop] = _safe_divide(numerator, denom, empty)
    return out


def mean_average_precision(
    ranking: Any,
    query_labels: Any,
    db_labels: Any,
    k: int | None = None,
    *,
    denominator: Denominator = "topk",
    empty: Empty = "zero",
    chunk_size: int = 256,
) -> float:
    """Mean over queries of :func:`average_precision` (mAP@k).

    The arguments are those of :func:`average_precision`; :func:`variant_name` with the same
    ``k``, ``denominator`` and ``empty`` names the result. With ``empty="skip"`` the mean is
    over the non-empty queries only, and is NaN when every query is empty.

    Returns
    -------
    float
        mAP@k in [0, 1] (multiply by 100 for the paper's tables).
    """
    ap = average_precision(
        ranking,
        query_labels,
        db_labels,
        k,
        denominator=denominator,
        empty=empty,
        chunk_size=chunk_size,
    )
    return _mean_ignoring_nan(ap)


def precision_at_k(
    ranking: Any, query_labels: Any, db_labels: Any, k: int, *, chunk_size: int = 256
) -> float:
    """Mean over queries of the fraction of relevant items among the top k.

    Parameters
    ----------
    ranking : int array of shape (n_queries, n_ranked)
        Database ids, best first, ties already broken.
    query_labels : array of shape (n_queries,) or (n_queries, n_classes)
    db_labels : array of shape (n_db,) or (n_db, n_classes)
    k : int
        Cut-off, ``1 <= k <= n_ranked``.
    chunk_size : int, default 256
        Queries processed at once.

    Returns
    -------
    float
        Precision@k in [0, 1]; every query counts (the denominator is always k).
    """
    ranking, query_labels, db_labels = _check_ranking_inputs(ranking, query_labels, db_labels)
    k = _check_k(k, ranking.shape[1])
    chunk_size = _check_chunk_size(chunk_size)
    relevance = _Relevance(query_labels, db_labels)
    per_query = np.empty(len(ranking), dtype=np.float64)
    for start in range(0, len(ranking), chunk_size):
        stop = min(start + chunk_size, len(ranking))
        rel = relevance.gather(start, stop, ranking[start:stop, :k])
        per_query[start:stop] = rel.sum(axis=1) / k
    return float(per_query.mean())


def _ap_terms(rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of precision at each relevant rank, and hit count, of each row of ``rel``.

    ``rel`` : bool array of shape (n_rows, n_ranked), relevance in ranking order; returns
    float64 and int64 arrays of shape (n_rows,). Their ratio is the row's AP when every
    relevant item is counted in the hits.
    """
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    hits = np.cumsum(rel, axis=1, dtype=np.int64)
    return (rel * (hits / ranks)).sum(axis=1), hits[:, -1]


def _ranking_scores(
    ranking: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int,
    *,
    trusted: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """AP@all, AP@k and mean precision@k of a whole-database ranking, from one relevance pass.

    The fast path of :mod:`h2q.evaluation.supervised`: equal, bit for bit, to
    ``average_precision(ranking, ...)``, ``average_precision(ranking[:, :k], ..., k)`` and
    ``precision_at_k(ranking[:, :k], ..., k)`` (top-k denominator, empty queries score 0),
    which check the ranking once each and gather its relevance three times.

    Parameters
    ----------
    ranking : int array of shape (n_queries, n_ranked)
        Distinct database ids of each query, best first (checked here once).
    query_labels : array of shape (n_queries,) or (n_queries, n_classes)
    db_labels : array of shape (n_db,) or (n_db, n_classes)
    k : int
        Cut-off, ``1 <= k <= n_ranked``.
    trusted : bool, default False
        The ranking comes from :mod:`h2q.search` (distinct ids in range by construction):
        its ids are not checked again (the labels and ``k`` still are).

    Returns
    -------
    ap_all : ndarray of float64, shape (n_queries,)
    ap_k : ndarray of float64, shape (n_queries,)
    precision : float
        Mean over queries of precision@k.
    """
    if trusted:
        query_labels, db_labels = _check_label_pair(query_labels, db_labels)
        if ranking.ndim != 2 or ranking.shape[0] != len(query_labels):
            raise ValueError(f"ranking has shape {ranking.shape}; expected one row per query.")
    else:
        ranking, query_labels, db_labels = _check_ranking_inputs(ranking, query_labels, db_labels)
    k = _check_k(k, ranking.shape[1])
    relevance = _Relevance(query_labels, db_labels)
    ap_all = np.empty(len(ranking), dtype=np.float64)
    ap_k = np.empty(len(ranking), dtype=np.float64)
    per_query = np.empty(len(ranking), dtype=np.float64)
    for start in range(0, len(ranking), 256):  # the chunks of average_precision
        stop = min(start + 256, len(ranking))
        terms = _ranked_terms(relevance, start, stop, ranking[start:stop], k)
        ap_all[start:stop] = _safe_divide(terms.numerator, terms.hits, "zero")
        ap_k[start:stop] = _safe_divide(terms.numerator_at_k, terms.hits_at_k, "zero")
        per_query[start:stop] = terms.hits_at_k / k
    return ap_all, ap_k, float(per_query.mean())


def _check_radius_inputs(
    D: Any, I: Any, query_labels: Any, db_labels: Any, radius: Any, empty: Any, chunk_size: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Shared checks of the within-radius metrics; warns when a row may be cut off."""
    D, I, query_labels, db_labels = _check_search_inputs(D, I, query_labels, db_labels)
    radius = _check_radius(radius)
    _check_choice(empty, "empty", _EMPTY_WORDS)
    chunk_size = _check_chunk_size(chunk_size)
    _warn_if_truncated(D, radius, len(db_labels))
    return D, I, query_labels, db_labels, radius, chunk_size


def map_within_radius(
    D: Any,
    I: Any,
    query_labels: Any,
    db_labels: Any,
    radius: int = 2,
    *,
    empty: Empty = "zero",
    chunk_size: int = 256,
) -> float:
    """mAP over the items within Hamming distance ``radius`` ("mAP@H<=r").

    The retrieved list of a query is the prefix of its row of ``I`` with ``D <= radius``; its
    AP divides by the number of relevant items in that list (the top-k relevant convention).

    Parameters
    ----------
    D : array of shape (n_queries, n_results)
        Hamming distances of a search, sorted ascending within each row.
    I : int array of shape (n_queries, n_results)
        The matching database ids, ties already broken. It must hold every database item
        within ``radius`` of each query: a row whose last distance is still within the radius
        (with ``n_results < n_db``) may have been cut off, and a ``UserWarning`` says so.
    query_labels : array of shape (n_queries,) or (n_queries, n_classes)
    db_labels : array of shape (n_db,) or (n_db, n_classes)
    radius : int, default 2
        Hamming radius, ``>= 0``.
    empty : {"zero", "skip"}, default "zero"
        Score of a query with no relevant item within the radius (including one with no item
        at all there): ``"zero"`` gives 0 and the query counts; ``"skip"`` leaves it out.
    chunk_size : int, default 256
        Queries processed at once.

    Returns
    -------
    float
        mAP@H<=radius in [0, 1] (NaN if ``empty="skip"`` and every query is empty).
    """
    # D is sorted, so "within the radius" is a prefix and the ranks stay 1, 2, ...
    return _mean_within_radius(
        lambda rel, _: _ap_terms(rel), D, I, query_labels, db_labels, radius, empty, chunk_size
    )


def precision_within_radius(
    D: Any,
    I: Any,
    query_labels: Any,
    db_labels: Any,
    radius: int = 2,
    *,
    empty: Empty = "zero",
    chunk_size: int = 256,
) -> float:
    """Mean precision of the items within Hamming distance ``radius`` ("P@H<=r").

    Parameters
    ----------
    D, I, query_labels, db_labels, radius, chunk_size
        As in :func:`map_within_radius`: a Hamming search of shape (n_queries, n_results)
        whose ``I`` holds every item within ``radius`` (a possibly cut-off row raises a
        ``UserWarning``), the labels, the radius (default 2) and the queries per chunk.
    empty : {"zero", "skip"}, default "zero"
        Score of a query with no item within the radius: ``"zero"`` gives precision 0 and
        the query counts (the usual P@H<=2 convention of hashing papers); ``"skip"`` leaves
        it out of the mean.

    Returns
    -------
    float
        P@H<=radius in [0, 1] (NaN if ``empty="skip"`` and no query retrieves anything).
    """
    return _mean_within_radius(
        _precision_terms, D, I, query_labels, db_labels, radius, empty, chunk_size
    )


def _precision_terms(rel: np.ndarray, within: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relevant and retrieved counts of each row (bool arrays of shape (n_rows, n_results))."""
    return rel.sum(axis=1), within.sum(axis=1)


def _mean_within_radius(
    score: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    D: Any,
    I: Any,
    query_labels: Any,
    db_labels: Any,
    radius: Any,
    empty: Empty,
    chunk_size: Any,
) -> float:
    """Check a radius search's inputs and average ``score`` over the queries.

    ``score(rel, within)`` gets boolean arrays of shape (chunk, n_results), ``within`` marking
    the results within the radius and ``rel`` those of them that are relevant, and returns each
    row's numerator and denominator (a zero denominator is scored as ``empty`` says).
    """
    D, I, query_labels, db_labels, radius, chunk_size = _check_radius_inputs(
        D, I, query_labels, db_labels, radius, empty, chunk_size
    )
    relevance = _Relevance(query_labels, db_labels)
    per_query = np.empty(len(I), dtype=np.float64)
    for start in range(0, len(I), chunk_size):
        stop = min(start + chunk_size, len(I))
        within = D[start:stop] <= radius
        rel = relevance.gather(start, stop, I[start:stop]) & within
        per_query[start:stop] = _safe_divide(*score(rel, within), empty)
    return _mean_ignoring_nan(per_query)


def within_radius_metrics(
    lims: Any,
    I: Any,
    query_labels: Any,
    db_labels: Any,
    *,
    empty: Empty = "zero",
    chunk_size: int = 256,
) -> tuple[float, float]:
    """P@H<=r and mAP@H<=r from a range search (the classic hash-lookup protocol).

    Takes the output of :meth:`h2q.search.MultiIndexHammingIndex.range_search` (or
    :meth:`h2q.HammingIndex.range_search`, or faiss's ``range_search``): every item within the
    radius, no cut-off, so the scores are exact whatever the number of items per query.

    Parameters
    ----------
    lims : int array of shape (n_queries + 1,)
        Query ``q``'s results are ``I[lims[q]:lims[q + 1]]``.
    I : int array of shape (lims[-1],)
        Database ids, in ranking order within each query ((distance, id) for the indexes).
    query_labels : array of shape (n_queries,) or (n_queries, n_classes)
    db_labels : array of shape (n_db,) or (n_db, n_classes)
    empty : {"zero", "skip"}, default "zero"
        Score of a query with nothing relevant (or nothing at all) within the radius, as in
        :func:`precision_within_radius` and :func:`map_within_radius`.
    chunk_size : int, default 256
        Queries processed at once.

    Returns
    -------
    (float, float)
        ``(precision, map)``: the same numbers :func:`precision_within_radius` and
        :func:`map_within_radius` give on a search that returns every item within the radius.
    """
    query_labels, db_labels = _check_label_pair(query_labels, db_labels)
    lims = _to_numpy(lims).astype(np.int64, copy=False)
    I = _to_numpy(I)
    if lims.shape != (len(query_labels) + 1,) or lims[0] != 0 or np.any(np.diff(lims) < 0):
        raise ValueError(
            f"lims must be non-decreasing offsets of shape ({len(query_labels) + 1},) starting "
            f"at 0 (one more than the queries), got shape {lims.shape}. Pass the lims of a "
            "range search over these queries."
        )
    if I.shape != (lims[-1],) or (I.size and (I.min() < 0 or I.max() >= len(db_labels))):
        raise ValueError(
            f"I must hold lims[-1] = {lims[-1]} database ids in [0, {len(db_labels) - 1}], got "
            f"shape {I.shape}."
        )
    _check_choice(empty, "empty", _EMPTY_WORDS)
    chunk_size = _check_chunk_size(chunk_size)
    relevance = _Relevance(query_labels, db_labels)
    precision = np.empty(len(query_labels), dtype=np.float64)
    average = np.empty(len(query_labels), dtype=np.float64)
    for start in range(0, len(query_labels), chunk_size):
        stop = min(start + chunk_size, len(query_labels))
        counts = np.diff(lims[start : stop + 1])
        width = max(1, int(counts.max()))
        valid = np.arange(width) < counts[:, None]
        ids = np.zeros((stop - start, width), dtype=np.int64)
        ids[valid] = I[lims[start] : lims[stop]]
        rel = relevance.gather(start, stop, ids) & valid
        hits = np.cumsum(rel, axis=1, dtype=np.int64)
        ranks = np.arange(1, width + 1, dtype=np.float64)
        precision[start:stop] = _safe_divide(rel.sum(axis=1), counts, empty)
        average[start:stop] = _safe_divide((rel * (hits / ranks)).sum(axis=1), hits[:, -1], empty)
    return _mean_ignoring_nan(precision), _mean_ignoring_nan(average)


def recall_at_k(
    I: Any,
    query_vectors: Any = None,
    database_vectors: Any = None,
    k: int | None = None,
    *,
    metric: Literal["ip", "l2"] = "ip",
    true_neighbors: Any = None,
) -> float:
    """Recall@k of a search against the exact float nearest neighbours (for unlabelled data).

    The mean over queries of ``|retrieved top k  ∩  true top k| / k``: the share of each
    query's k exact float neighbours (by inner product or L2, see
    :func:`h2q.search.exact_neighbors`) that the search returned in its first k results.

    Parameters
    ----------
    I : int array of shape (n_queries, n_results)
        Retrieved database ids (for example from a Hamming search, with or without
        rescoring); id -1 (padding) never counts.
    query_vectors : array of shape (n_queries, d), optional
    database_vectors : array of shape (n_db, d), optional
        Float vectors to compute the exact neighbours from, in blocks (10^5 queries x 10^6
        items fit in memory). Not needed with ``true_neighbors``.
    k : int, optional
        Cut-off, ``<= n_results``; by default ``n_results``.
    metric : {"ip", "l2"}, default "ip"
    true_neighbors : int array of shape (n_queries, >= k), optional
        Exact neighbour ids computed beforehand (to score several searches against them).

    Returns
    -------
    float
        Recall@k in [0, 1].
    """
    I = _to_numpy(I)
    if I.ndim != 2 or I.dtype.kind not in "iu":
        raise ValueError(f"I must be a 2-D integer array of ids, got {I.dtype} {I.shape}.")
    k = _check_k(I.shape[1] if k is None else k, I.shape[1])
    if true_neighbors is None:
        if query_vectors is None or database_vectors is None:
            raise ValueError(
                "recall_at_k needs query_vectors and database_vectors (to find the exact "
                "neighbours), or true_neighbors; pass one of them."
            )
        from ..search.exact import exact_neighbors

        _, true_neighbors = exact_neighbors(query_vectors, database_vectors, k, metric=metric)
    T = _to_numpy(true_neighbors)
    if T.ndim != 2 or len(T) != len(I) or T.shape[1] < k:
        raise ValueError(
            f"true_neighbors must have shape ({len(I)}, >= {k}), got {T.shape}; compute them "
            "with h2q.search.exact_neighbors for the same queries."
        )
    retrieved, truth = I[:, :k].astype(np.int64), T[:, :k].astype(np.int64)
    span = int(max(retrieved.max(), truth.max())) + 2
    rows = np.arange(len(I), dtype=np.int64)[:, None] * span
    # Offset ids by row so that one isin call matches within rows only; padding never matches.
    found = np.isin(retrieved + rows, truth + rows) & (retrieved >= 0)
    return float(found.sum(axis=1).mean() / k)


class PrecisionRecallCurve(NamedTuple):
    """Precision and recall at each Hamming radius 0..n_bits (unpacks as a 3-tuple)."""

    radius: np.ndarray
    """int64, shape (n_bits + 1,): the radii 0, 1, ..., n_bits."""
    precision: np.ndarray
    """float64, shape (n_bits + 1,): mean precision of the items within each radius."""
    recall: np.ndarray
    """float64, shape (n_bits + 1,): mean fraction of the relevant items within each radius."""


DistanceBlocks = Callable[[int, int], Any]


def precision_recall_curve(
    D: Any | DistanceBlocks,
    query_labels: Any,
    db_labels: Any,
    n_bits: int,
    *,
    empty: Empty = "skip",
    chunk_size: int = 256,
) -> PrecisionRecallCurve:
    """Precision-recall curve by Hamming radius (the PR curve of hashing papers).

    At radius r a query retrieves every database item at Hamming distance <= r. Its precision
    is (relevant retrieved) / (retrieved) and its recall is (relevant retrieved) / (relevant
    in the database); the curve is the mean over queries at each radius (macro average).

    Parameters
    ----------
    D : array of shape (n_queries, n_db), or callable ``D(start, stop) -> array``
        Hamming distances from every query to every database item, integers in
        ``[0, n_bits]``. An array (a ``np.memmap`` works) is read ``chunk_size`` rows at a
        time. A callable returns the rows ``start:stop`` of that matrix, shape
        ``(stop - start, n_db)``, so the full matrix never has to exist (for example, compute
        the block from packed codes).
    query_labels : array of shape (n_queries,) or (n_queries, n_classes)
    db_labels : array of shape (n_db,) or (n_db, n_classes)
    n_bits : int
        Code length; the radii are 0..n_bits.
    empty : {"skip", "zero"}, default "skip"
        The 0/0 cases: a query with no item within radius r (precision) or no relevant item
        in the database (recall). ``"skip"`` leaves the query out of the mean at that point
        (otherwise short radii, where most queries retrieve nothing, read as precision near
        0); ``"zero"`` counts it as 0. A point where every query is skipped is NaN.
    chunk_size : int, default 256
        Queries processed at once; peak memory is about ``chunk_size * n_db * 18`` bytes
        plus what the callable allocates.

    Returns
    -------
    PrecisionRecallCurve
        ``(radius, precision, recall)``, each of shape (n_bits + 1,).
    """
    query_labels, db_labels = _check_label_pair(query_labels, db_labels)
    n_queries, n_db = len(query_labels), len(db_labels)
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(
            f"n_bits must be a positive integer (the code length), got {n_bits!r}. Pass the "
            "number of bits of the codes, for example n_bits=64."
        )
    n_bits = int(n_bits)
    _check_choice(empty, "empty", _EMPTY_WORDS)
    chunk_size = _check_chunk_size(chunk_size)
    if callable(D):
        blocks = D
    else:
        D = D.detach().cpu().numpy() if is_tensor(D) else D
        if not hasattr(D, "shape"):
            D = np.asarray(D)
        if D.shape != (n_queries, n_db):
            raise ValueError(
                f"D has shape {tuple(D.shape)}, but {n_queries} query labels and {n_db} "
                f"database labels need shape ({n_queries}, {n_db}). Pass the full distance "
                "matrix (queries by database items), or a callable D(start, stop) that returns "
                "its rows."
            )
        matrix = D

        def blocks(start: int, stop: int) -> Any:
            return matrix[start:stop]

    n_radii = n_bits + 1
    relevance = _Relevance(query_labels, db_labels)
    precision = np.empty((n_queries, n_radii), dtype=np.float64)
    recall = np.empty((n_queries, n_radii), dtype=np.float64)
    for start in range(0, n_queries, chunk_size):
        stop = min(start + chunk_size, n_queries)
        block = _check_distance_block(blocks(start, stop), start, stop, n_db, n_bits)
        retrieved, true_pos = _radius_counts(block, relevance, start, stop, n_radii)
        precision[start:stop] = _safe_divide(true_pos, retrieved, empty)
        recall[start:stop] = _safe_divide(true_pos, true_pos[:, -1:], empty)
    return PrecisionRecallCurve(
        radius=np.arange(n_radii, dtype=np.int64),
        precision=_mean_ignoring_nan(precision, axis=0),
        recall=_mean_ignoring_nan(recall, axis=0),
    )


def _radius_counts(
    block: np.ndarray, relevance: _Relevance, start: int, stop: int, n_radii: int
) -> tuple[np.ndarray, np.ndarray]:
    """Items, and relevant items, within each radius of queries ``start:stop`` (int64,
    ``(stop - start, n_radii)``): the compiled kernel, or numpy's offset histograms."""
    from ..search._jit import numba_available

    if numba_available():
        from ._ap_kernels import radius_counts

        retrieved = np.empty((stop - start, n_radii), dtype=np.int64)
        true_pos = np.empty_like(retrieved)
        shared = np.ascontiguousarray(relevance.share(start, stop))
        radius_counts(block, shared, relevance.label_row, retrieved, true_pos)
        return retrieved, true_pos
    rel = relevance.all_pairs(start, stop)
    # One histogram per query: offset each row's distances by row * n_radii.
    offsets = (np.arange(stop - start) * n_radii)[:, None]
    flat = (block.astype(np.int64, copy=False) + offsets).ravel()
    size = (stop - start) * n_radii
    retrieved = np.bincount(flat, minlength=size).reshape(-1, n_radii).cumsum(axis=1)
    true_pos = np.bincount(flat[rel.ravel()], minlength=size).reshape(-1, n_radii)
    return retrieved, true_pos.cumsum(axis=1)


# --- relevance -----------------------------------------------------------------------------


class _Relevance:
    """Relevance of (query, database item) pairs through the distinct database label rows.

    ``share_label`` is evaluated on (query chunk) x (distinct db label rows) only; a pair's
    relevance is then looked up by the database item's label-row index, so no (chunk, n_db)
    float matrix is built for a (chunk, k) ranking.
    """

    def __init__(self, query_labels: np.ndarray, db_labels: np.ndarray) -> None:
        self._query_labels = query_labels
        self._distinct, inverse, self._counts = np.unique(
            db_labels, axis=0, return_inverse=True, return_counts=True
        )
        self.label_row = inverse.reshape(-1)  # numpy 2.0.0 gave it the input's shape
        """Index of each database item's row among the distinct label rows."""
        self._cache: tuple[int, int, np.ndarray] | None = None

    def share(self, start: int, stop: int) -> np.ndarray:
        """Bool (stop - start, n_distinct): does query ``start + i`` share a label with each
        distinct database label row."""
        if self._cache is None or self._cache[:2] != (start, stop):
            shared = np.asarray(share_label(self._query_labels[start:stop], self._distinct))
            self._cache = (start, stop, shared)
        return self._cache[2]

    def gather(self, start: int, stop: int, ids: np.ndarray) -> np.ndarray:
        """Bool (stop - start, width): is ``ids[i, j]`` relevant to query ``start + i``."""
        shared = self.share(start, stop)
        return shared[np.arange(stop - start)[:, None], self.label_row[ids]]

    def all_pairs(self, start: int, stop: int) -> np.ndarray:
        """Bool (stop - start, n_db): relevance of every database item."""
        return self.share(start, stop)[:, self.label_row]

    def n_relevant_in_db(self, start: int, stop: int) -> np.ndarray:
        """Int64 (stop - start,): number of relevant database items of each query."""
        return self.share(start, stop).astype(np.int64) @ self._counts


# --- arithmetic ----------------------------------------------------------------------------


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray, empty: str) -> np.ndarray:
    """numerator / denominator, with the 0/0 cases set by the empty policy (0 or NaN)."""
    denominator = np.broadcast_to(denominator, np.shape(numerator))
    fill = 0.0 if empty == "zero" else np.nan
    out = np.full(np.shape(numerator), fill, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _mean_ignoring_nan(values: np.ndarray, axis: int | None = None) -> Any:
    """Mean over the non-NaN entries; NaN (without a warning) where there are none."""
    kept = ~np.isnan(values)
    count = kept.sum(axis=axis)
    total = np.where(kept, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(mean) if axis is None else mean


# --- validation ----------------------------------------------------------------------------


def _check_choice(value: Any, name: str, choices: dict[str, str]) -> None:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")


def _check_k(k: Any, width: int | None) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(
            f"k must be a positive integer (the cut-off), got {k!r}. Pass for example k=5000, "
            "or k=None to score the whole ranking."
        )
    if width is not None and k > width:
        raise ValueError(
            f"k={k} but the ranking has only {width} columns. Search with at least k results "
            f"(a ranking of width >= {k}), or lower k; a shorter ranking is not scored as if it "
            "were mAP@k."
        )
    return int(k)


def _check_radius(radius: Any) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(
            f"radius must be a non-negative integer Hamming distance, got {radius!r}. Pass for "
            "example radius=2."
        )
    return int(radius)


def _check_chunk_size(chunk_size: Any) -> int:
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size must be a positive integer (queries per chunk), got {chunk_size!r}. "
            "Pass for example chunk_size=256."
        )
    return int(chunk_size)


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if is_tensor(x) else np.asarray(x)


def _check_label_pair(query_labels: Any, db_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    query_labels = _to_numpy(query_labels)
    db_labels = _to_numpy(db_labels)
    for name, y in (("query_labels", query_labels), ("db_labels", db_labels)):
        if y.ndim >= 1 and len(y) == 0:
            raise ValueError(
                f"{name} is empty (shape {y.shape}); pass at least one label (row). Metrics "
                "need at least one query and one database item."
            )
    query_labels = check_labels(
        query_labels, len(query_labels) if query_labels.ndim else 0, "query_labels"
    )
    db_labels = check_labels(db_labels, len(db_labels) if db_labels.ndim else 0, "db_labels")
    share_label(query_labels[:1], db_labels[:1])  # raises on kinds or class lists that differ
    return query_labels, db_labels


def _check_ids(ids: Any, name: str, n_queries: int, n_db: int) -> np.ndarray:
    ids = _to_numpy(ids)
    if ids.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (n_queries, n_ranked), got shape {ids.shape}. For "
            f"one query pass {name}[None, :]."
        )
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"{name} has dtype {ids.dtype}, but database ids must be integers. Pass the I of a "
            f"search, or convert with {name}.astype(np.int64)."
        )
    if ids.shape[0] != n_queries:
        raise ValueError(
            f"{name} has {ids.shape[0]} rows but query_labels has {n_queries}; pass one row "
            "per query, in the order of query_labels."
        )
    if ids.shape[1] == 0:
        raise ValueError(
            f"{name} has no columns (shape {ids.shape}); search with at least one result."
        )
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= n_db:
        bad = low if low < 0 else high
        hint = (
            " faiss pads missing results with -1 when k exceeds the database size; search "
            "with k <= n_db."
            if bad == -1
            else ""
        )
        raise ValueError(
            f"{name} contains id {bad}, but db_labels has {n_db} rows (ids must be in "
            f"[0, {n_db})).{hint} Pass the labels of the database that was searched."
        )
    repeated = _rows_with_repeats(ids, n_db)
    if len(repeated):
        raise ValueError(
            f"{name} repeats a database id in {len(repeated)} row(s) (first: row "
            f"{repeated[0]}); a ranking lists each item at most once. Check the search that "
            "produced it."
        )
    return ids


#: Elements of the scratch counts of :func:`_rows_with_repeats` (16 MiB of int64).
_REPEAT_BLOCK = 1 << 21


def _rows_with_repeats(ids: np.ndarray, n_db: int) -> np.ndarray:
    """Indices of the rows of ``ids`` (values in ``[0, n_db)``) that list an id twice.

    Counting per row (linear time) when the rows are about as long as the database, as a
    full ranking is; sorting each row (its length times its log) when they are much shorter.
    """
    n_rows, width = ids.shape
    if 4 * width < n_db:
        return np.flatnonzero((np.diff(np.sort(ids, axis=1), axis=1) == 0).any(axis=1))
    step = max(1, _REPEAT_BLOCK // n_db)
    found = []
    for start in range(0, n_rows, step):
        block = ids[start : start + step].astype(np.int64, copy=False)  # uint64 + int64: float
        offsets = np.arange(0, len(block) * n_db, n_db)[:, None]
        counts = np.bincount((block + offsets).ravel(), minlength=len(block) * n_db)
        found.append(start + np.flatnonzero((counts.reshape(len(block), n_db) > 1).any(axis=1)))
    return np.concatenate(found)


def _check_ranking_inputs(
    ranking: Any, query_labels: Any, db_labels: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    query_labels, db_labels = _check_label_pair(query_labels, db_labels)
    ranking = _check_ids(ranking, "ranking", len(query_labels), len(db_labels))
    return ranking, query_labels, db_labels


def _check_search_inputs(
    D: Any, I: Any, query_labels: Any, db_labels: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    query_labels, db_labels = _check_label_pair(query_labels, db_labels)
    I = _check_ids(I, "I", len(query_labels), len(db_labels))
    D = _to_numpy(D)
    if D.shape != I.shape:
        raise ValueError(
            f"D has shape {D.shape} but I has shape {I.shape}; pass the (D, I) pair of one search."
        )
    if D.dtype.kind not in "iuf":
        raise TypeError(f"D has dtype {D.dtype}; Hamming distances must be numbers.")
    unsorted = np.flatnonzero((np.diff(D, axis=1) < 0).any(axis=1))
    if len(unsorted):
        raise ValueError(
            f"D must be sorted ascending within each row (as a search returns it), but "
            f"{len(unsorted)} row(s) are not (first: row {unsorted[0]}). Sort both with "
            "order = np.argsort(D, axis=1, kind='stable'), then np.take_along_axis on D and I "
            "(and break ties by your documented rule)."
        )
    return D, I, query_labels, db_labels


def _warn_if_truncated(D: np.ndarray, radius: int, n_db: int) -> None:
    if D.shape[1] >= n_db:
        return
    cut = int((D[:, -1] <= radius).sum())
    if cut:
        warnings.warn(
            f"{cut} of {len(D)} queries have all {D.shape[1]} returned items within radius "
            f"{radius}, so items within the radius may be missing and the score is not exact. "
            "Search with a larger k (up to the database size).",
            UserWarning,
            stacklevel=3,
        )


def _check_distance_block(block: Any, start: int, stop: int, n_db: int, n_bits: int) -> np.ndarray:
    block = _to_numpy(block)
    if block.shape != (stop - start, n_db):
        raise ValueError(
            f"the distances of queries {start}:{stop} have shape {block.shape}, expected "
            f"({stop - start}, {n_db}) (one row per query, one column per database item)."
        )
    if block.dtype.kind == "f":
        if not np.array_equal(block, np.round(block)):
            raise ValueError(
                "D holds non-integer distances; pass Hamming distances (integers in "
                f"[0, {n_bits}])."
            )
    elif block.dtype.kind not in "iu":
        raise TypeError(f"D has dtype {block.dtype}; Hamming distances must be integers.")
    if block.size and (block.min() < 0 or block.max() > n_bits):
        raise ValueError(
            f"D holds distances in [{block.min()}, {block.max()}], outside [0, {n_bits}]. Pass "
            f"Hamming distances and the code length as n_bits (got n_bits={n_bits})."
        )
    if block.dtype.kind == "f":
        return block.astype(np.int64)
    return np.ascontiguousarray(block)
