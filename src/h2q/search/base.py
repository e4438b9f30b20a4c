"""The surface every search index shares: :class:`BaseIndex`.

:class:`~h2q.search.HammingIndex`, :class:`~h2q.search.MultiIndexHammingIndex` and
:class:`~h2q.search.AsymmetricIndex` subclass it, so that code that builds, searches, saves
and loads an index (the CLI, the benchmarks) works with any of them. Ids are assigned in order
of addition; ``search`` returns ``(scores, ids)`` of shape ``(n_queries, k)``, best first.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["BaseIndex"]


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
