"""Exact search over packed binary codes: flat and multi-index Hamming indexes, ranking, rescoring.

Ranking rule (the same for every index, back end and function here): database items are ordered
by increasing Hamming distance to the query; among equal distances the smaller database id comes
first, also at the k-th boundary. See :mod:`h2q.search.flat` for the details and the optional
exact re-ranking of ties by continuous features.

- :class:`HammingIndex`: the flat scan (compiled kernel, numpy, or faiss back end);
- :class:`MultiIndexHammingIndex`: exact multi-index hashing (Norouzi et al.), k-NN and range;
- :class:`AsymmetricIndex`: float queries scored against compact codes (RaBitQ's estimator);
- :class:`BaseIndex`: the surface they share; :data:`INDEX_KINDS`, :func:`load_index`;
- :func:`rank_database`, :func:`iter_rank_database`, :func:`iter_rank_order`: ranking without
  an index;
- :func:`rescore`: re-order a Hamming shortlist by exact float scores;
- :func:`exact_neighbors`: the exact float neighbours (blocked), for recall.
"""

from ._common import RangeSearchResult
from ._pad import PAD_DISTANCE, PAD_ID
from .asymmetric import AsymmetricIndex
from .base import BaseIndex
from .exact import exact_neighbors
from .flat import HammingIndex
from .mih import MultiIndexHammingIndex
from .ranking import iter_rank_database, iter_rank_order, rank_database
from .registry import BACKENDS, INDEX_KINDS, load_index
from .rescore import rescore

__all__ = [
    "BACKENDS",
    "INDEX_KINDS",
    "AsymmetricIndex",
    "BaseIndex",
    "load_index",
    "PAD_DISTANCE",
    "PAD_ID",
    "HammingIndex",
    "MultiIndexHammingIndex",
    "RangeSearchResult",
    "exact_neighbors",
    "iter_rank_database",
    "iter_rank_order",
    "rank_database",
    "rescore",
]
