"""Turn a validated search request into the query rows of one index (codes or vectors).

A request names its query one way: ``id``/``ids`` (database items as queries), ``vector`` /
``vectors`` (float vectors, encoded by the index's quantizer), ``code`` (packed bits as hex) or
``text``. Each check raises :class:`~h2q.serve.errors.ApiError` with a one-line message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .engine import ServedIndex
from .errors import ApiError

__all__ = ["MAX_QUERIES", "query_rows"]

#: Most queries in one request.
MAX_QUERIES = 1024


def _ids(ids: list[int], ntotal: int) -> np.ndarray:
    if not ids:
        raise ApiError(422, "ids is empty; pass at least one database id.")
    if len(ids) > MAX_QUERIES:
        raise ApiError(422, f"{len(ids)} ids in one request; pass at most {MAX_QUERIES}.")
    bad = [i for i in ids if i < 0 or i >= ntotal]
    if bad:
        raise ApiError(
            404, f"unknown id {bad[0]}: the index holds ids 0 to {ntotal - 1}; pass one of those."
        )
    seen: set[int] = set()
    for i in ids:
        if i in seen:
            raise ApiError(422, f"id {i} appears twice in ids; pass each id once.")
        seen.add(i)
    return np.asarray(ids, dtype=np.int64)


def _vectors(served: ServedIndex, rows: list[list[float]]) -> np.ndarray:
    if served.quantizer is None:
        raise ApiError(
            422,
            f"index {served.name!r} has no quantizer to encode vectors; query it by id or code, "
            "or start the server with --quantizer.",
        )
    if not rows:
        raise ApiError(422, "vectors is empty; pass at least one vector.")
    if len(rows) > MAX_QUERIES:
        raise ApiError(422, f"{len(rows)} vectors in one request; pass at most {MAX_QUERIES}.")
    d = served.n_features
    for r in rows:
        if len(r) != d:
            raise ApiError(
                422,
                f"a vector has {len(r)} values, but index {served.name!r} takes {d}; pass "
                f"vectors of length {d}.",
            )
    X = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(X).all():  # finite float64 values may overflow float32
        raise ApiError(422, "a vector holds a value too large for float32; pass finite values.")
    return X


def _code(served: ServedIndex, text: str) -> np.ndarray:
    size = (served.n_bits + 7) // 8
    if not served.takes_codes:
        raise ApiError(
            422, f"index {served.name!r} scores float queries; pass vector or id, not code."
        )
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ApiError(
            422, f"code is not hexadecimal; pass {2 * size} hex digits (e.g. {'00' * size})."
        ) from None
    if len(raw) != size:
        raise ApiError(
            422,
            f"code has {len(raw)} bytes, but index {served.name!r} holds {served.n_bits}-bit "
            f"codes; pass {2 * size} hex digits.",
        )
    code = np.frombuffer(raw, dtype=np.uint8).reshape(1, size).copy()
    spare = 8 * size - served.n_bits
    if spare and code[0, -1] >> (8 - spare):
        raise ApiError(
            422, f"code sets padding bits beyond bit {served.n_bits}; clear them (they must be 0)."
        )
    return code


def query_rows(served: ServedIndex, request: Any) -> tuple[np.ndarray, bool]:
    """The query rows of ``request`` for ``served``, and whether they still need encoding.

    Returns ``(rows, encode)``: rows of shape ``(n, ...)`` in the index's own query form
    (codes for a Hamming index, float vectors for an asymmetric one) with ``encode=False``,
    or float vectors a Hamming index must encode first (``encode=True``; the search thread
    does it, see :meth:`ServedIndex.search_vectors`).
    """
    if request.text is not None:
        raise ApiError(
            422,
            "text queries need a text encoder with the model of this run, which this server "
            "does not hold; query by id or vector.",
        )
    if request.id is not None or request.ids is not None:
        ids = _ids([request.id] if request.id is not None else request.ids, served.ntotal)
        rows = served.codes if served.takes_codes else served.vectors
        assert rows is not None
        return rows[ids], False
    if request.code is not None:
        return _code(served, request.code), False
    vectors = [request.vector] if request.vector is not None else request.vectors
    return _vectors(served, vectors), served.takes_codes
