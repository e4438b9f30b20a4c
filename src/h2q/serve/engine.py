"""What the service serves: named indexes over one database, and how a query reaches them.

A :class:`ServedIndex` is one index (flat or multi-index Hamming, or an asymmetric one) with
the quantizer that encodes its queries; every index of a :class:`Catalog` covers the same
database items, so that the page can show the same query under several quantizers. The index
kinds are those of :data:`h2q.search.INDEX_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..search.registry import index_class
from .items import ItemStore

__all__ = ["Catalog", "ServedIndex", "build_index"]


def build_index(
    kind: str, quantizer: Any, codes: np.ndarray | None, vectors: np.ndarray | None, n_bits: int
) -> Any:
    """An index of ``kind`` (a key of :data:`h2q.search.INDEX_KINDS`) over the database.

    Hamming kinds index the codes; the asymmetric kind indexes the float vectors.
    """
    cls = index_class(kind)
    if cls.scoring == "asymmetric":
        if vectors is None:
            raise ValueError(
                f"--index {kind} scores float queries against the database vectors; pass "
                "--embeddings with a 'database' fold."
            )
        index = cls(quantizer, metric="ip")
        index.add(vectors)
        return index
    assert codes is not None
    index = cls(n_bits)
    index.add(codes)
    return index


@dataclass
class ServedIndex:
    """One served index.

    Parameters
    ----------
    name : str
        Name in the API (``"index"`` of a search request) and on the page.
    kind : str
        A key of :data:`h2q.search.INDEX_KINDS`.
    index : object
        Has ``search(queries, k) -> (D, I)`` and ``ntotal``.
    n_bits : int
    codes : numpy.ndarray of shape (ntotal, ceil(n_bits / 8)), dtype uint8, optional
        The database codes (queries by id read them); None for an asymmetric index.
    quantizer : BaseQuantizer, optional
        Encodes float query vectors; None serves code and id queries only.
    vectors : numpy.ndarray of shape (ntotal, d), optional
        Database vectors (queries by id for an asymmetric index).
    description : str
        One line for the page (what the quantizer is).
    """

    name: str
    kind: str
    index: Any
    n_bits: int
    codes: np.ndarray | None = None
    quantizer: Any = None
    vectors: np.ndarray | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for array in (self.codes, self.vectors):  # served read-only
            if array is not None:
                array.flags.writeable = False

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def scoring(self) -> str:
        scoring = type(self.index).scoring
        return f"{scoring}-{self.index.metric}" if scoring == "asymmetric" else scoring

    @property
    def takes_codes(self) -> bool:
        return type(self.index).scoring == "hamming"

    @property
    def n_features(self) -> int | None:
        """Length of a query vector (None without a quantizer)."""
        if self.quantizer is None:
            return None
        return int(self.quantizer.n_features_in_)

    def warmup_query(self) -> np.ndarray:
        """One query row of the index's form (the first database item's code or vector)."""
        rows = self.codes if self.takes_codes else self.vectors
        assert rows is not None
        return rows[:1]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Run the index's search on queries in its own form (the batcher calls this)."""
        return self.index.search(queries, k)

    def search_vectors(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Encode float vectors with the quantizer, then search (a Hamming index).

        Note: the batcher calls this in its thread, so the quantizer's thread limit is set
        where the scan's already is, and the event loop does no torch work.
        """
        return self.index.search(self.quantizer.encode(X), k)

    def describe(self) -> dict[str, Any]:
        """The entry of ``GET /api/indexes``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n_bits": self.n_bits,
            "ntotal": self.ntotal,
            "scoring": self.scoring,
            "n_features": self.n_features,
            "description": self.description,
        }


@dataclass
class Catalog:
    """Everything one server serves: indexes over the same database, and its items.

    Parameters
    ----------
    indexes : dict of str to ServedIndex
        In display order.
    items : ItemStore
        Labels, texts and images of the database items (any of them may be absent).
    title : str
        Shown on the page.
    close : callable, optional
        Called once when the server stops (e.g. to remove a temporary folder).
    """

    indexes: dict[str, ServedIndex]
    items: ItemStore
    title: str = "h2q search"
    close: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        sizes = {ix.ntotal for ix in self.indexes.values()}
        if not self.indexes:
            raise ValueError("nothing to serve: no index was loaded.")
        if len(sizes) != 1:
            raise ValueError(f"the served indexes cover different databases (sizes {sizes}).")
        if self.items.n_items not in (None, *sizes):
            raise ValueError(
                f"the items describe {self.items.n_items} database items, but the indexes hold "
                f"{sizes.pop()}; pass the embeddings of the same database."
            )

    @property
    def ntotal(self) -> int:
        return next(iter(self.indexes.values())).ntotal
