"""The one list of index kinds and flat-scan back ends: the CLI and the benchmarks read these.

A new index kind is one module plus one line in :data:`INDEX_KINDS`.
"""

from __future__ import annotations

import os

from .. import _io
from .asymmetric import AsymmetricIndex
from .base import BaseIndex
from .flat import HammingIndex
from .mih import MultiIndexHammingIndex

__all__ = ["BACKENDS", "INDEX_KINDS", "index_class", "load_index"]

#: Index kinds (as the CLI spells them) -> classes.
INDEX_KINDS: dict[str, type[BaseIndex]] = {
    "flat": HammingIndex,
    "mih": MultiIndexHammingIndex,
    "asymmetric": AsymmetricIndex,
}
#: Back ends of the flat Hamming scan; ``"auto"`` picks the fastest available.
BACKENDS: tuple[str, ...] = ("auto", "numba", "numpy", "faiss")


def index_class(kind: str) -> type[BaseIndex]:
    """The class behind an index kind, with an error that lists the valid kinds."""
    try:
        return INDEX_KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown index kind {kind!r}; choose one of {', '.join(INDEX_KINDS)}."
        ) from None


def load_index(path: str | os.PathLike) -> BaseIndex:
    """Read any index written by ``save``, whatever its kind.

    Raises
    ------
    FileFormatError
        When ``path`` holds something other than a search index.
    """
    kind = _io.read_kind(path)
    for cls in INDEX_KINDS.values():
        if cls.__name__ == kind:
            return cls.load(path)
    raise _io.FileFormatError(
        f"{path} holds a {kind}, not a search index; pass a file written by an index's save()."
    )
