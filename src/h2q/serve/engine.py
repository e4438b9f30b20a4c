"""What the service serves: named indexes over one database, and how a query reaches them.

A :class:`ServedIndex` is one index (flat or multi-index Hamming, or an asymmetric one) with
the quantizer that encodes its queries; every index of a :class:`Catalog` covers the same
database items, so that the page can show the same query under several quantizers. The index
kinds are one mapping, :data:`INDEX_KINDS`; the asymmetric kind is imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .items import ItemStore

__all__ = ["INDEX_KINDS", "Catalog", "ServedIndex", "build_index"]


def _hamming(kind: str, codes: np.ndarray, n_bits: int) -> Any:
    from ..search import HammingIndex, MultiIndexHammingIndex

    index = MultiIndexHammingIndex(n_bits) if kind == "mih" else HammingIndex(n_bits)
    index.add(codes)
    return index


def _asymmetric_class() -> Any:
    try:
        from .. import AsymmetricIndex  # type: ignore[attr-defined]
    except ImportError:
        raise ValueError(
            "--index asymmetric needs h2q.AsymmetricIndex, which this version of h2q does not "
            "have; use --index flat or --index mih."
        ) from None
    return AsymmetricIndex


def _asymmetric(quantizer: Any, vectors: np.ndarray) -> Any:
    index = _asymmetric_class()(quantizer, metric="ip")
    index.add(vectors)
    return index


#: Index kinds: name -> (scoring, whether queries are codes (else float vectors)).
INDEX_KINDS: dict[str, tuple[str, bool]] = {
    "flat": ("hamming", True),
    "mih": ("hamming", True),
    "asymmetric": ("asymmetric-ip", False),
}


def build_index(
    kind: str, quantizer: Any, codes: np.ndarray | None, vectors: np.ndarray | None, n_bits: int
) -> Any:
    """An index of ``kind`` over the database (codes for Hamming kinds, vectors otherwise)."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}.")
    if kind == "asymmetric":
        _asymmetric_class()  # absent: say so first
        if vectors is None:
            raise ValueError(
                "--index asymmetric scores float queries against the database vectors; pass "
                "--embeddings with a 'database' fold."
            )
        return _asymmetric(quantizer, vectors)
    assert codes is not None
    return _hamming(kind, codes, n_bits)


@dataclass
class ServedIndex:
    """One served index.

    Parameters
    ----------
    name : str
        Name in the API (``"index"`` of a search request) and on the page.
    kind : str
        A key of :data:`INDEX_KINDS`.
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
        return INDEX_KINDS[self.kind][0]

    @property
    def takes_codes(self) -> bool:
        return INDEX_KINDS[self.kind][1]

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
