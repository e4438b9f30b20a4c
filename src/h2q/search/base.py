"""The surface every search index shares: :class:`BaseIndex`, and :class:`BaseHammingIndex`.

:class:`~h2q.search.HammingIndex`, :class:`~h2q.search.MultiIndexHammingIndex` and
:class:`~h2q.search.AsymmetricIndex` subclass it, so that code that builds, searches, saves
and loads an index (the CLI, the benchmarks) works with any of them. Ids are assigned in order
of addition; ``search`` returns ``(scores, ids)`` of shape ``(n_queries, k)``, best first.

:class:`BaseHammingIndex` is what the two indexes of packed codes share (the flat scan and
multi-index hashing): the code width, the continuous features kept to re-rank Hamming ties,
and the order in which a search checks its input and picks its path (rescored, re-ranked by
features, or plain Hamming).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..codes import check_n_bits
from ._common import (
    RangeSearchResult,
    check_query,
    joined_chunks,
    normalised_features,
    query_features_for,
)
from .rescore import Metric, search_and_rescore

__all__ = ["BaseHammingIndex", "BaseIndex"]


class BaseIndex:
    """Abstract base of the search indexes.

    Subclasses implement :attr:`ntotal`, :meth:`add`, :meth:`search`, :meth:`reset`,
    :meth:`memory_bytes`, :meth:`save` and :meth:`load`.
    """

    #: How queries are scored: ``"hamming"`` (query codes against codes) or ``"asymmetric"``
    #: (float queries against codes).
    scoring: str = "hamming"

    @property
    def ntotal(self) -> int:
        """Number of searchable items."""
        raise NotImplementedError

    def add(self, data: Any, *args: Any, **kwargs: Any) -> None:
        """Append items; the i-th added item gets id ``ntotal + i``."""
        raise NotImplementedError

    def search(
        self, queries: Any, k: int, *args: Any, **kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items of each query: ``(scores, ids)`` of shape (n_queries, k)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Remove every item."""
        raise NotImplementedError

    def memory_bytes(self) -> int:
        """Bytes held in memory by the index."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` atomically (a versioned ``.npz`` archive)."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | os.PathLike, *args: Any, **kwargs: Any) -> BaseIndex:
        """Read an index written by :meth:`save`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ntotal={self.ntotal})"


class BaseHammingIndex(BaseIndex):
    """Abstract base of the indexes of packed codes searched by Hamming distance.

    Subclasses implement :attr:`ntotal`, :meth:`add`, :meth:`reset`, :meth:`memory_bytes`,
    :meth:`save`, :meth:`load` and the three searches :meth:`_knn`, :meth:`_knn_reranked`
    and :meth:`_range`; they call :meth:`_set_width` first in ``__init__``, and keep features
    with :meth:`_reset_features` and :meth:`_add_features`.
    """

    n_bits: int
    code_size: int

    def _set_width(self, n_bits: int) -> None:
        self.n_bits = check_n_bits(n_bits)
        self.code_size = (self.n_bits + 7) // 8

    @property
    def has_features(self) -> bool:
        """Whether features were added with the codes (so that searches can re-rank)."""
        return self._n_features is not None

    def search(
        self,
        query_codes: Any,
        k: int,
        query_features: Any = None,
        *,
        rescore: int | None = None,
        query_vectors: Any = None,
        database_vectors: Any = None,
        metric: Metric = "ip",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query in Hamming distance (or rescored).

        Parameters
        ----------
        query_codes : numpy.ndarray of shape (n_queries, code_size), dtype uint8
            Packed query codes of ``n_bits`` bits.
        k : int
            Number of neighbours, >= 1. When ``k > ntotal`` the rows are padded with id -1
            and distance ``np.iinfo(np.int32).max`` (as faiss does).
        query_features : numpy.ndarray or torch.Tensor of shape (n_queries, n_features), optional
            Continuous features of the queries. When given (the index must hold features),
            ties in Hamming distance are re-ranked exactly by the squared Euclidean distance of
            the L2-normalised features, then by id. Without them, ties go by id.
        rescore : int, optional
            Binary search + rescore: take the Hamming top ``rescore`` (>= k) and re-order it
            by the exact float score of ``query_vectors`` against ``database_vectors`` (see
            :func:`h2q.search.rescore`). The result is then ``(scores, I)``.
        query_vectors : array of shape (n_queries, d), optional
        database_vectors : array of shape (n_ids, d), optional
            Float vectors for ``rescore`` (required with it), one row per id ever assigned
            (removed ones included).
        metric : {"ip", "l2"}, default "ip"
            Score of ``rescore``: inner product (larger first) or squared L2 (smaller first).

        Returns
        -------
        D : numpy.ndarray of shape (n_queries, k), dtype int32
            Hamming distances, non-decreasing along each row (float32 scores with ``rescore``).
        I : numpy.ndarray of shape (n_queries, k), dtype int64
            Database ids, in ranking order (equal distances: the smaller id first).

        Raises
        ------
        TypeError, ValueError
            On bad codes, ``k < 1``, an empty index, or bad or unexpected features.
        """
        query_codes, k = check_query(query_codes, self.n_bits, self.ntotal, k=k)
        if rescore is not None:
            return search_and_rescore(
                lambda kk: self.search(query_codes, kk, query_features),
                k,
                rescore,
                query_vectors,
                database_vectors,
                metric,
                self._n_ids(),
            )
        if query_features is not None:
            query_features = query_features_for(
                query_features, len(query_codes), self._n_features, self._feature_dtype
            )
            return self._knn_reranked(query_codes, k, query_features)
        return self._knn(query_codes, k)

    def range_search(self, query_codes: Any, radius: int) -> RangeSearchResult:
        """Every indexed item within Hamming distance ``radius`` of each query.

        Parameters
        ----------
        query_codes : numpy.ndarray of shape (n_queries, code_size), dtype uint8
        radius : int
            Hamming radius, >= 0 (items at distance <= radius are returned).

        Returns
        -------
        RangeSearchResult
            ``(lims, D, I)`` as faiss returns them: the results of query ``q`` are
            ``D[lims[q]:lims[q + 1]]`` and ``I[lims[q]:lims[q + 1]]``, ordered by (distance, id).
            Feed them to :func:`h2q.evaluation.metrics.within_radius_metrics` for P@H<=r and
            mAP@H<=r.
        """
        query_codes, radius = check_query(query_codes, self.n_bits, self.ntotal, radius=radius)
        return self._range(query_codes, np.full(len(query_codes), radius, dtype=np.int64))

    # -- what subclasses implement ------------------------------------------------------------

    def _n_ids(self) -> int:
        """Ids assigned so far (the rows ``database_vectors`` must have)."""
        raise NotImplementedError

    def _knn(self, query_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Checked queries' top ``k``, ties by id."""
        raise NotImplementedError

    def _knn_reranked(
        self, query_codes: np.ndarray, k: int, query_features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Checked queries' top ``k``, ties re-ranked by the checked features, then id."""
        raise NotImplementedError

    def _range(self, query_codes: np.ndarray, radii: np.ndarray) -> RangeSearchResult:
        """Every item within ``radii[q]`` of checked query ``q``."""
        raise NotImplementedError

    # -- features ------------------------------------------------------------------------------

    def _reset_features(self) -> None:
        self._feature_chunks: list[np.ndarray] = []
        self._n_features: int | None = None
        self._feature_dtype: np.dtype | None = None

    def _add_features(self, features: Any, n: int) -> None:
        """Check, normalise and keep the features of ``n`` codes being added."""
        features = normalised_features(
            features, "features", n, self._n_features, self._feature_dtype
        )
        self._n_features, self._feature_dtype = features.shape[1], features.dtype
        self._feature_chunks.append(features)

    def _features(self) -> np.ndarray | None:
        return None if self._n_features is None else joined_chunks(self._feature_chunks)
