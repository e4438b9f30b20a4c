"""Packed codes in a Milvus collection, searched like :class:`h2q.HammingIndex`.

Milvus stores binary vectors natively (``BINARY_VECTOR``, metric ``HAMMING``) and serves them
from an embedded file (Milvus Lite), a standalone server or a distributed cluster behind one
client API. :class:`MilvusHammingIndex` translates h2q's arrays to that API and back:

- ``uri`` a local path ending in ``.db`` opens (or creates) a Milvus Lite file in-process;
  ``http://host:19530`` (or ``https://``) talks to a Milvus server or cluster. Nothing else
  changes between the two.
- Codes are stored as bytes of ``ceil(n_bits / 8)``; Milvus's vector dimension is the padded
  width ``8 * ceil(n_bits / 8)``, whose padding bits are 0 in every code, so distances are
  exactly the ``n_bits``-bit Hamming distances.
- ``search`` returns ``(D, I)`` as ``HammingIndex`` does: ``int32`` distances, ``int64`` ids,
  padded with id -1 and distance ``np.iinfo(np.int32).max`` when fewer than ``k`` items exist.
- The collection's description holds h2q's metadata (``n_bits``, index type, and the
  quantizer's kind and checksum, see :func:`h2q.integrations.quantizer_checksum`), so that
  opening with a different ``n_bits`` and searching embeddings with another quantizer are
  refused.

Ties (measured, ``benchmarks/bench_milvus.py`` and ``tests/integrations/test_milvus.py``)
---------------------------------------------------------------------------------------
With ``index="BIN_FLAT"`` the distances are exact: ``D`` equals ``HammingIndex``'s on every
query. Rows are returned sorted by (distance, id). Which of several items tied at the k-th
distance make the cut is the engine's choice: Milvus Lite keeps the earliest *inserted* ones
(checked on every query of the tests, with ids inserted in shuffled order). So when ids are
inserted in increasing order (the default ``ids=None`` does), Milvus Lite returns exactly
``HammingIndex``'s ``(D, I)``, whose rule is "smaller id first". A Milvus server merges the
results of several segments, and its choice among items tied at the k-th distance is not
specified. ``BIN_IVF_FLAT`` searches ``nprobe`` of ``nlist`` clusters: faster, approximate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    from pymilvus import DataType, MilvusClient
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "h2q.integrations.milvus needs pymilvus and milvus-lite, which are not installed. "
        "Install the extra: pip install 'h2q[milvus]'."
    ) from exc

from ..codes import check_codes, check_n_bits
from ..quantizers import BaseQuantizer
from ..search import PAD_DISTANCE, PAD_ID
from ._fingerprint import quantizer_checksum, quantizer_n_bits

__all__ = ["INDEX_TYPES", "MilvusHammingIndex", "collection_exists"]

#: Index types for binary vectors, with their default build and search parameters.
INDEX_TYPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "BIN_FLAT": ({}, {}),
    "BIN_IVF_FLAT": ({"nlist": 128}, {"nprobe": 16}),
}
#: Largest ``k`` (Milvus's ``topk`` limit).
MAX_K = 16384
_META_KEY = "h2q"
_META_VERSION = 1
_ID, _CODE, _PAYLOAD = "id", "code", "payload"
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")


class MilvusHammingIndex:
    """A Milvus collection of packed binary codes with :class:`h2q.HammingIndex`'s surface.

    Parameters
    ----------
    uri : str or os.PathLike
        A local file ending in ``.db`` (Milvus Lite, embedded; created if missing, its folder
        must exist) or ``http(s)://host:port`` of a Milvus server or cluster.
    collection : str
        Collection name. An existing h2q collection is opened; a missing one is created.
    n_bits : int, optional
        Bits per code. Required to create a collection; checked against an existing one.
    index : {"BIN_FLAT", "BIN_IVF_FLAT"}, default "BIN_FLAT"
        Index type of a new collection (an existing one keeps its own). ``BIN_FLAT`` is exact;
        Milvus Lite supports only ``BIN_FLAT``.
    quantizer : h2q quantizer, optional
        The fitted quantizer the codes come from. Recorded in a new collection; checked
        against the one recorded in an existing collection (a mismatch raises).
    index_params, search_params : dict, optional
        Extra Milvus parameters (defaults: ``nlist=128`` and ``nprobe=16`` for IVF).
    batch_size : int, default 10000
        Rows per insert request and queries per search request.
    token : str, default ""
        Credentials of a Milvus server (``"user:password"`` or an API key).

    Attributes
    ----------
    n_bits, code_size : int
    index_type : str
    is_lite : bool
        Whether ``uri`` is a Milvus Lite file.
    metadata : dict
        h2q's metadata stored with the collection.
    ntotal : int
        Number of codes in the collection (a count query).
    """

    def __init__(
        self,
        uri: str | os.PathLike,
        collection: str,
        n_bits: int | None = None,
        index: str = "BIN_FLAT",
        *,
        quantizer: BaseQuantizer | None = None,
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
        batch_size: int = 10_000,
        token: str = "",
    ) -> None:
        self.uri = _check_uri(uri)
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty name, got {collection!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.collection = collection
        self.is_lite = not self.uri.startswith(_SERVER_SCHEMES)
        self.batch_size = batch_size
        self._client = MilvusClient(self.uri, token=token)
        if self._client.has_collection(collection):
            meta = self._read_metadata()
            if n_bits is not None and check_n_bits(n_bits) != meta["n_bits"]:
                raise ValueError(
                    f"collection {collection!r} holds {meta['n_bits']}-bit codes, but "
                    f"n_bits={n_bits} was given. Open it with n_bits={meta['n_bits']} (or "
                    "None), or use another collection."
                )
        else:
            if n_bits is None:
                raise ValueError(
                    f"collection {collection!r} does not exist in {self.uri}; pass n_bits to "
                    "create it."
                )
            meta = self._create(check_n_bits(n_bits), index, index_params, quantizer)
        self.metadata = meta
        self.n_bits = int(meta["n_bits"])
        self.code_size = (self.n_bits + 7) // 8
        self.index_type = str(meta["index"])
        self._search_params = {**INDEX_TYPES[self.index_type][1], **(search_params or {})}
        if quantizer is not None:
            self.check_quantizer(quantizer)
        self._client.load_collection(collection)

    # -- creation and metadata -----------------------------------------------------------
    def _create(
        self,
        n_bits: int,
        index: str,
        index_params: dict[str, Any] | None,
        quantizer: BaseQuantizer | None,
    ) -> dict[str, Any]:
        if index not in INDEX_TYPES:
            raise ValueError(f"index must be one of {sorted(INDEX_TYPES)}, got {index!r}.")
        if index != "BIN_FLAT" and self.is_lite:
            raise ValueError(
                f"Milvus Lite supports only index='BIN_FLAT', not {index!r}; use BIN_FLAT, or "
                "an http://host:19530 Milvus server for BIN_IVF_FLAT."
            )
        meta: dict[str, Any] = {"version": _META_VERSION, "n_bits": n_bits, "index": index}
        if quantizer is not None:
            if quantizer_n_bits(quantizer) != n_bits:
                raise ValueError(
                    f"the quantizer makes {quantizer_n_bits(quantizer)}-bit codes, but "
                    f"n_bits={n_bits} was given. Pass n_bits={quantizer_n_bits(quantizer)}."
                )
            meta["quantizer"] = {
                "kind": type(quantizer).__name__,
                "checksum": quantizer_checksum(quantizer),
            }
        schema = MilvusClient.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description=json.dumps({_META_KEY: meta}, sort_keys=True),
        )
        schema.add_field(_ID, DataType.INT64, is_primary=True)
        schema.add_field(_CODE, DataType.BINARY_VECTOR, dim=8 * ((n_bits + 7) // 8))
        schema.add_field(_PAYLOAD, DataType.JSON)  # Milvus Lite has no nullable fields
        params = self._client.prepare_index_params()
        params.add_index(
            field_name=_CODE,
            index_type=index,
            metric_type="HAMMING",
            params={**INDEX_TYPES[index][0], **(index_params or {})},
        )
        self._client.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level="Strong"
        )
        return meta

    def _read_metadata(self) -> dict[str, Any]:
        info = self._client.describe_collection(self.collection)
        try:
            meta = json.loads(info.get("description") or "")[_META_KEY]
            ok = isinstance(meta, dict) and meta.get("index") in INDEX_TYPES
            ok = ok and int(meta["n_bits"]) >= 1
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ValueError(
                f"collection {self.collection!r} in {self.uri} was not created by h2q (no h2q "
                "metadata in its description). Use another collection name."
            )
        if meta.get("version") != _META_VERSION:
            raise ValueError(
                f"collection {self.collection!r} has h2q metadata version "
                f"{meta.get('version')}, but this release reads version {_META_VERSION}. "
                "Export the codes again with this release."
            )
        return meta

    def check_quantizer(self, quantizer: BaseQuantizer) -> None:
        """Raise ``ValueError`` unless ``quantizer`` is the one recorded with the collection."""
        recorded = self.metadata.get("quantizer")
        if recorded is None:
            raise ValueError(
                f"collection {self.collection!r} records no quantizer, so embeddings cannot be "
                "checked against it. Search with codes, or export with the quantizer "
                "(MilvusHammingIndex.from_quantizer or `h2q export milvus --quantizer`)."
            )
        checksum = quantizer_checksum(quantizer)
        if checksum != recorded["checksum"]:
            raise ValueError(
                f"the quantizer ({type(quantizer).__name__}, {quantizer_n_bits(quantizer)} "
                f"bits, checksum {checksum[:12]}) is not the one the codes of collection "
                f"{self.collection!r} were made with ({recorded['kind']}, {self.n_bits} bits, "
                f"checksum {recorded['checksum'][:12]}). Use that quantizer, or export again."
            )

    @classmethod
    def from_quantizer(
        cls,
        uri: str | os.PathLike,
        collection: str,
        quantizer: BaseQuantizer,
        X: Any,
        ids: Any = None,
        payload: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> MilvusHammingIndex:
        """Encode embeddings ``X`` with a fitted quantizer into a new or matching collection.

        ``X`` (array of shape (n_samples, n_features)) is encoded ``batch_size`` rows at a time;
        ``ids`` and ``payload`` are as in :meth:`add`; other keyword arguments go to the
        constructor. The quantizer's kind and checksum are stored with a new collection.
        """
        index = cls(uri, collection, quantizer_n_bits(quantizer), quantizer=quantizer, **kwargs)
        index.add(quantizer.encode(X), ids=ids, payload=payload)
        return index

    # -- the HammingIndex surface --------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"MilvusHammingIndex(uri={self.uri!r}, collection={self.collection!r}, "
            f"n_bits={self.n_bits}, index={self.index_type!r})"
        )

    @property
    def ntotal(self) -> int:
        """Number of codes in the collection."""
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, codes: Any, ids: Any = None, payload: Sequence[Any] | None = None) -> np.ndarray:
        """Insert codes, ``batch_size`` rows per request.

        Parameters
        ----------
        codes : numpy.ndarray of shape (n, code_size), dtype uint8
        ids : array-like of shape (n,), int, optional
            Distinct non-negative ids not yet in the collection. Default
            ``ntotal, ntotal + 1, ...`` (pass ids explicitly after :meth:`remove_ids`).
        payload : sequence of length n, optional
            One JSON-serialisable value per code (a dict, a string, ...), see :meth:`payloads`;
            stored as ``{}`` when omitted (Milvus Lite has no nullable fields).

        Returns
        -------
        numpy.ndarray of shape (n,), int64
            The ids of the inserted codes.
        """
        codes = check_codes(codes, "codes", n_bits=self.n_bits)
        n = len(codes)
        if ids is None:
            start = self.ntotal
            ids = np.arange(start, start + n, dtype=np.int64)
        else:
            ids = _check_ids(ids, n)
        if payload is not None and len(payload) != n:
            raise ValueError(f"payload has {len(payload)} entries for {n} codes; pass one each.")
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            self._refuse_existing(ids[start:stop])
            rows = [
                {
                    _ID: int(ids[i]),
                    _CODE: codes[i].tobytes(),
                    _PAYLOAD: {} if payload is None else payload[i],
                }
                for i in range(start, stop)
            ]
            self._client.insert(self.collection, rows)
        return ids

    def _refuse_existing(self, ids: np.ndarray) -> None:
        found = self._client.query(
            self.collection, filter=f"{_ID} in {ids.tolist()}", output_fields=[_ID], limit=5
        )
        if found:
            present = sorted(int(row[_ID]) for row in found)
            raise ValueError(
                f"ids {present} (and maybe more) are already in collection "
                f"{self.collection!r}; Milvus would store duplicates. Pass new ids, or "
                "remove_ids() first."
            )

    def search(self, query_codes: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query in Hamming distance.

        Parameters
        ----------
        query_codes : numpy.ndarray of shape (n_queries, code_size), dtype uint8
        k : int
            1 <= k <= 16384 (Milvus's limit).

        Returns
        -------
        D : numpy.ndarray of shape (n_queries, k), int32
            Hamming distances, non-decreasing along each row; ``np.iinfo(np.int32).max``
            where padded.
        I : numpy.ndarray of shape (n_queries, k), int64
            Ids, sorted by (distance, id); -1 where padded (see the module notes on ties).
        """
        query_codes = check_codes(query_codes, "query_codes", n_bits=self.n_bits)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an integer in [1, {MAX_K}] (Milvus's limit), got {k!r}.")
        k = int(k)
        D = np.full((len(query_codes), k), PAD_DISTANCE, dtype=np.int32)
        I = np.full((len(query_codes), k), PAD_ID, dtype=np.int64)
        params = {"metric_type": "HAMMING", "params": self._search_params}
        step = max(1, min(self.batch_size, MAX_K))
        for start in range(0, len(query_codes), step):
            batch = query_codes[start : start + step]
            hits = self._client.search(
                self.collection,
                data=[row.tobytes() for row in batch],
                anns_field=_CODE,
                limit=k,
                search_params=params,
                output_fields=[],
            )
            for r, row in enumerate(hits, start=start):
                for j, hit in enumerate(row):
                    D[r, j] = int(round(hit["distance"]))
                    I[r, j] = int(hit["id"])
        order = np.lexsort((I, D), axis=1)  # padding (largest D) stays last
        return np.take_along_axis(D, order, axis=1), np.take_along_axis(I, order, axis=1)

    def search_embeddings(
        self, X: Any, k: int, quantizer: BaseQuantizer
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode query embeddings with ``quantizer`` (checked against the collection's) and
        :meth:`search` them."""
        self.check_quantizer(quantizer)
        return self.search(quantizer.encode(X), k)

    def remove_ids(self, ids: Any) -> int:
        """Delete the codes with these ids (absent ids are ignored); return how many went."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TypeError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}.")
        if ids.size == 0:
            return 0
        before = self.ntotal
        for start in range(0, len(ids), self.batch_size):
            self._client.delete(self.collection, ids=ids[start : start + self.batch_size].tolist())
        return before - self.ntotal

    def payloads(self, ids: Iterable[int]) -> list[Any]:
        """The payload stored with each id: ``None`` for an absent id, ``{}`` for a code added
        without payload."""
        ids = [int(i) for i in ids]
        found: dict[int, Any] = {}
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            for row in self._client.get(self.collection, ids=chunk, output_fields=[_PAYLOAD]):
                found[int(row[_ID])] = row.get(_PAYLOAD)
        return [found.get(i) for i in ids]

    def drop(self) -> None:
        """Delete the whole collection (its codes and metadata)."""
        self._client.drop_collection(self.collection)

    def close(self) -> None:
        """Close the client connection (Milvus Lite stops when its last client closes)."""
        self._client.close()

    def __enter__(self) -> MilvusHammingIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# Helpers


def collection_exists(uri: str | os.PathLike, collection: str, token: str = "") -> bool:
    """Whether ``collection`` exists at ``uri`` (a Milvus Lite file or a server URI)."""
    client = MilvusClient(_check_uri(uri), token=token)
    try:
        return bool(client.has_collection(collection))
    finally:
        client.close()


def _check_uri(uri: Any) -> str:
    """A Milvus URI: ``http(s)://...`` as is, or a local ``.db`` file (absolute path)."""
    if not isinstance(uri, (str, os.PathLike)):
        raise TypeError(f"uri must be a path or an http(s):// URL, got {type(uri).__name__}.")
    text = os.fspath(uri)
    if text.startswith(_SERVER_SCHEMES):
        return text
    if "://" in text:
        raise ValueError(
            f"unsupported Milvus URI {text!r}: pass a local file ending in .db (Milvus Lite) or "
            "http://host:19530 (a Milvus server)."
        )
    path = Path(text)
    if path.suffix != ".db":
        raise ValueError(
            f"Milvus Lite file names end in .db, got {text!r}. Pass e.g. {path.stem}.db, or "
            "http://host:19530 for a Milvus server."
        )
    if not path.parent.resolve().is_dir():
        raise FileNotFoundError(f"cannot open {path}: folder {path.parent} does not exist.")
    return str(path.resolve())


def _check_ids(ids: Any, n: int) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"ids must have shape ({n},), one per code, got shape {array.shape}.")
    if array.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got {array.dtype}.")
    if n and (array.min() < 0 or array.max() > np.iinfo(np.int64).max):
        raise ValueError("ids must be in [0, 2**63) (-1 marks padding in search results).")
    array = array.astype(np.int64)
    if len(np.unique(array)) != n:
        raise ValueError("ids contain duplicates; pass distinct ids.")
    return array
