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

Writes that never lose the old codes
------------------------------------
A name (``collection``) is served by a collection named ``<name>__h2q_<12 hex>``, found
through h2q's name record in the same database (:mod:`h2q.integrations._milvus_names`; Milvus
Lite has no aliases). :meth:`MilvusHammingIndex.build` checks every input first, writes the
codes into a fresh collection, flushes it, marks it complete, switches the name to it in one
atomic insert and only then drops the collection the name served before. A process killed at
any moment leaves the old collection served; what it leaves behind (a collection no name
serves) is dropped by the next write to the database. :meth:`~MilvusHammingIndex.add` and
:meth:`~MilvusHammingIndex.remove_ids` mark the collection incomplete while they run, and
searching an incomplete collection is refused with the command that rebuilds it. Only one
process writes to a database at a time (Milvus Lite locks its file; on a server, run one
writer per database).

Milvus Lite's own log files go beside the ``.db`` file and only for errors (``GLOG_*``
variables set while its server starts, unless already set), not into ``/tmp``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import extra_missing

try:
    from pymilvus import DataType, MilvusClient
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise extra_missing("h2q.integrations.milvus", "pymilvus and milvus-lite", "milvus") from exc

from ..codes import check_codes, check_n_bits
from ..quantizers import BaseQuantizer
from ..search import PAD_DISTANCE, PAD_ID
from ._fingerprint import quantizer_checksum, quantizer_n_bits
from ._milvus_connect import SERVER_SCHEMES as _SERVER_SCHEMES
from ._milvus_connect import check_uri as _check_uri
from ._milvus_connect import connect
from ._milvus_names import NameRecord, check_name, is_h2q_collection, new_collection_name

__all__ = ["INDEX_TYPES", "MilvusHammingIndex", "collection_exists", "connect"]

#: Index types for binary vectors, with their default build and search parameters.
INDEX_TYPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "BIN_FLAT": ({}, {}),
    "BIN_IVF_FLAT": ({"nlist": 128}, {"nprobe": 16}),
}
#: Largest ``k`` (Milvus's ``topk`` limit).
MAX_K = 16384
_META_KEY = "h2q"
_META_VERSION = 2
_ID, _CODE, _PAYLOAD = "id", "code", "payload"


class MilvusHammingIndex:
    """A Milvus collection of packed binary codes with :class:`h2q.HammingIndex`'s surface.

    Parameters
    ----------
    uri : str or os.PathLike
        A local file ending in ``.db`` (Milvus Lite, embedded) or ``http(s)://host:port`` of a
        Milvus server or cluster. A missing ``.db`` file is created only when ``n_bits`` is
        given (opening never creates a database); its folder must exist.
    collection : str
        Collection name (letters, digits and ``_``). An existing h2q collection is opened; a
        missing one is created (empty) when ``n_bits`` is given.
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
    physical_name : str
        The Milvus collection that serves ``collection`` now (see the module notes).
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
        self._connect(uri, collection, batch_size, token, create=n_bits is not None)
        physical = self._names.resolve(collection)
        if physical is None:
            self._refuse_legacy()
            if n_bits is None:
                raise ValueError(
                    f"collection {collection!r} does not exist in {self.uri}; pass n_bits to "
                    "create it."
                )
            n_bits = check_n_bits(n_bits)
            self._check_new(n_bits, index, quantizer)
            self._remove_orphans()
            physical = new_collection_name(collection)
            self._create(physical, n_bits, index, index_params, quantizer)
            self._names.mark(physical, complete=True, ntotal=0)
            self._names.point(collection, physical)
        self._attach(physical, search_params)
        if n_bits is not None and check_n_bits(n_bits) != self.n_bits:
            raise ValueError(
                f"collection {collection!r} holds {self.n_bits}-bit codes, but "
                f"n_bits={n_bits} was given. Open it with n_bits={self.n_bits} (or None), or "
                "use another collection."
            )
        if quantizer is not None:
            self.check_quantizer(quantizer)

    # -- connection and metadata ---------------------------------------------------------
    def _connect(
        self, uri: str | os.PathLike, collection: str, batch_size: int, token: str, create: bool
    ) -> None:
        self.uri = _check_uri(uri)
        self.collection = check_name(collection)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.batch_size = batch_size
        self.is_lite = not self.uri.startswith(_SERVER_SCHEMES)
        if self.is_lite and not create and not Path(self.uri).is_file():
            raise FileNotFoundError(
                f"no Milvus Lite database {self.uri}; write codes into it first (`h2q export "
                "milvus`, or MilvusHammingIndex.build), or check the path."
            )
        self._client = connect(self.uri, token)
        self._names = NameRecord(self._client)

    def _attach(self, physical: str, search_params: dict[str, Any] | None) -> None:
        self.physical_name = physical
        meta = self._read_metadata()
        self.metadata = meta
        self.n_bits = int(meta["n_bits"])
        self.code_size = (self.n_bits + 7) // 8
        self.index_type = str(meta["index"])
        self._search_params = {**INDEX_TYPES[self.index_type][1], **(search_params or {})}
        self._client.load_collection(physical)

    def _refuse_legacy(self) -> None:
        """A collection under the user's own name predates the name record: not served."""
        if self._client.has_collection(self.collection):
            raise ValueError(
                f"collection {self.collection!r} in {self.uri} was not written through h2q's "
                "name record (an older h2q, or another program), so it is not known to be "
                f"complete. Rebuild it: `h2q export milvus {self.uri} --collection "
                f"{self.collection} --codes CODES.npy --force` (the old one is dropped only "
                "if h2q wrote it), or use another name."
            )

    def _check_new(self, n_bits: int, index: str, quantizer: BaseQuantizer | None) -> None:
        if index not in INDEX_TYPES:
            raise ValueError(f"index must be one of {sorted(INDEX_TYPES)}, got {index!r}.")
        if index != "BIN_FLAT" and self.is_lite:
            raise ValueError(
                f"Milvus Lite supports only index='BIN_FLAT', not {index!r}; use BIN_FLAT, or "
                "an http://host:19530 Milvus server for BIN_IVF_FLAT."
            )
        if quantizer is not None and quantizer_n_bits(quantizer) != n_bits:
            raise ValueError(
                f"the quantizer makes {quantizer_n_bits(quantizer)}-bit codes, but "
                f"n_bits={n_bits} was given. Pass n_bits={quantizer_n_bits(quantizer)}."
            )

    def _create(
        self,
        physical: str,
        n_bits: int,
        index: str,
        index_params: dict[str, Any] | None,
        quantizer: BaseQuantizer | None,
    ) -> None:
        meta: dict[str, Any] = {"version": _META_VERSION, "n_bits": n_bits, "index": index}
        if quantizer is not None:
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
            physical, schema=schema, index_params=params, consistency_level="Strong"
        )

    def _read_metadata(self, physical: str | None = None) -> dict[str, Any]:
        physical = physical or self.physical_name
        meta = _h2q_metadata(self._client, physical)
        if meta is None:
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

    def _remove_orphans(self) -> list[str]:
        """Drop the collections a killed write left behind (h2q's, served by no name)."""
        served = self._names.targets()
        orphans = [
            name
            for name in self._client.list_collections()
            if is_h2q_collection(name) and name not in served
        ]
        for name in orphans:
            self._client.drop_collection(name)
        self._names.prune()
        return orphans

    @property
    def complete(self) -> bool:
        """Whether every write to the collection finished (searching needs it)."""
        state = self._names.state(self.physical_name)
        return bool(state and state.get("complete"))

    def check_complete(self) -> None:
        """Raise ``ValueError`` (naming the command that rebuilds it) unless the collection
        is complete."""
        if not self.complete:
            raise ValueError(
                f"collection {self.collection!r} in {self.uri} is incomplete: a write to it was "
                "interrupted, so its codes are not all there. Rebuild it: `h2q export milvus "
                f"{self.uri} --collection {self.collection} --codes CODES.npy --force` (or "
                "MilvusHammingIndex.build(..., replace=True))."
            )

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

    # -- building a whole collection -----------------------------------------------------
    @classmethod
    def build(
        cls,
        uri: str | os.PathLike,
        collection: str,
        codes: Any,
        *,
        n_bits: int | None = None,
        ids: Any = None,
        payload: Sequence[Any] | None = None,
        quantizer: BaseQuantizer | None = None,
        replace: bool = False,
        index: str = "BIN_FLAT",
        **kwargs: Any,
    ) -> MilvusHammingIndex:
        """Write a whole collection, replacing an existing one only once the new one is complete.

        Every input is checked before anything is created; the codes go into a fresh
        collection, which is flushed and marked complete before the name switches to it (one
        atomic insert in h2q's name record); the collection the name served before is dropped
        last. A process killed at any moment leaves the old collection served.

        Parameters
        ----------
        uri, collection : as for the constructor
        codes : numpy.ndarray of shape (n, ceil(n_bits / 8)), dtype uint8
            Padding bits (beyond ``n_bits`` in the last byte) must be 0.
        n_bits : int, optional
            Default: the quantizer's, else ``8 * codes.shape[1]``.
        ids : array-like of shape (n,), int, optional
            Distinct ids in ``[0, 2**63)``; default ``0 .. n-1``.
        payload : sequence of length n, optional
            One JSON-serialisable value per code.
        quantizer : h2q quantizer, optional
            The quantizer the codes come from, recorded with the collection.
        replace : bool, default False
            Replace an existing collection of that name (without it, an existing one raises).
        index : str, default "BIN_FLAT"
        **kwargs
            ``index_params``, ``search_params``, ``batch_size``, ``token``.

        Returns
        -------
        MilvusHammingIndex
            The new collection, open.
        """
        if n_bits is None:
            width = np.shape(codes)[1] if np.ndim(codes) == 2 else 0
            n_bits = quantizer_n_bits(quantizer) if quantizer is not None else 8 * width
        n_bits = check_n_bits(n_bits)
        codes = check_codes(codes, "codes", n_bits=n_bits)
        ids = np.arange(len(codes), dtype=np.int64) if ids is None else _check_ids(ids, len(codes))
        payload = _check_payload(payload, len(codes))
        self = cls.__new__(cls)
        token = kwargs.pop("token", "")
        self._connect(uri, collection, kwargs.pop("batch_size", 10_000), token, create=True)
        self._check_new(n_bits, index, quantizer)
        old = self._names.resolve(collection)
        legacy = old is None and self._client.has_collection(collection)
        if (old is not None or legacy) and not replace:
            self.close()
            raise ValueError(
                f"collection {collection!r} exists in {self.uri}; pass replace=True to replace "
                "it, or choose another name."
            )
        if legacy and _h2q_metadata(self._client, collection) is None:
            self.close()
            raise ValueError(
                f"collection {collection!r} in {self.uri} was not created by h2q; it is never "
                "replaced. Choose another name."
            )
        self._remove_orphans()
        physical = new_collection_name(collection)
        self._create(physical, n_bits, index, kwargs.pop("index_params", None), quantizer)
        self._attach(physical, kwargs.pop("search_params", None))
        if kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}.")
        self._names.mark(physical, complete=False, ntotal=0)
        try:
            self._insert(codes, ids, payload)
            self._finish_write()
        except Exception:
            with contextlib.suppress(Exception):  # else the next write removes it
                self._client.drop_collection(physical)
            self.close()
            raise
        self._names.point(collection, physical)
        for gone in (old, collection if legacy else None):
            if gone is not None:
                self._client.drop_collection(gone)
        self._names.prune()
        return self

    @classmethod
    def from_quantizer(
        cls,
        uri: str | os.PathLike,
        collection: str,
        quantizer: BaseQuantizer,
        X: Any,
        ids: Any = None,
        payload: Sequence[Any] | None = None,
        *,
        replace: bool = False,
        **kwargs: Any,
    ) -> MilvusHammingIndex:
        """Encode embeddings ``X`` (shape (n_samples, n_features)) with a fitted quantizer and
        :meth:`build` a collection of them (an existing one is replaced only with
        ``replace=True``; to add to it, open it and call :meth:`add`). ``X`` is encoded, and
        so checked, before anything is created; the quantizer's kind and checksum are stored
        with the collection."""
        codes = quantizer.encode(X)
        return cls.build(
            uri,
            collection,
            codes,
            ids=ids,
            payload=payload,
            quantizer=quantizer,
            replace=replace,
            **kwargs,
        )

    # -- the HammingIndex surface --------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"MilvusHammingIndex(uri={self.uri!r}, collection={self.collection!r}, "
            f"n_bits={self.n_bits}, index={self.index_type!r})"
        )

    @property
    def ntotal(self) -> int:
        """Number of codes in the collection."""
        rows = self._client.query(self.physical_name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, codes: Any, ids: Any = None, payload: Sequence[Any] | None = None) -> np.ndarray:
        """Insert codes, all or none: every input is checked before the first row goes in.

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

        Notes
        -----
        The collection is marked incomplete while the rows go in; a failed insert removes the
        rows it added, and a killed process leaves the collection incomplete (searches are
        refused until it is rebuilt).
        """
        self.check_complete()
        codes = check_codes(codes, "codes", n_bits=self.n_bits)
        n = len(codes)
        if ids is None:
            start = self.ntotal
            ids = np.arange(start, start + n, dtype=np.int64)
        else:
            ids = _check_ids(ids, n)
        payload = _check_payload(payload, n)
        for start in range(0, n, self.batch_size):
            self._refuse_existing(ids[start : start + self.batch_size])
        self._names.mark(self.physical_name, complete=False, ntotal=0)
        try:
            self._insert(codes, ids, payload)
        except BaseException:
            self._undo(ids)
            raise
        self._finish_write()
        return ids

    def _insert(self, codes: np.ndarray, ids: np.ndarray, payload: Sequence[Any] | None) -> None:
        for start in range(0, len(codes), self.batch_size):
            stop = min(start + self.batch_size, len(codes))
            rows = [
                {
                    _ID: int(ids[i]),
                    _CODE: codes[i].tobytes(),
                    _PAYLOAD: {} if payload is None else payload[i],
                }
                for i in range(start, stop)
            ]
            self._client.insert(self.physical_name, rows)

    def _finish_write(self) -> None:
        self._client.flush(self.physical_name)
        self._names.mark(self.physical_name, complete=True, ntotal=self.ntotal)

    def _undo(self, ids: np.ndarray) -> None:
        """Delete the rows of a failed :meth:`add` (the collection stays incomplete if that
        fails too)."""
        with contextlib.suppress(Exception):
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start : start + self.batch_size].tolist()
                self._client.delete(self.physical_name, ids=chunk)
            self._finish_write()

    def _refuse_existing(self, ids: np.ndarray) -> None:
        found = self._client.query(
            self.physical_name, filter=f"{_ID} in {ids.tolist()}", output_fields=[_ID], limit=5
        )
        if found:
            present = sorted(int(row[_ID]) for row in found)
            raise ValueError(
                f"ids {present} (and maybe more) are already in collection "
                f"{self.collection!r}; Milvus would store duplicates. Pass new ids, or "
                "remove_ids() first. Nothing was added."
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
            where padded (k > ntotal), as :class:`h2q.HammingIndex` pads.
        I : numpy.ndarray of shape (n_queries, k), int64
            Ids, sorted by (distance, id); -1 where padded (see the module notes on ties).

        Raises
        ------
        ValueError
            When the collection is incomplete (an interrupted write).
        """
        query_codes = check_codes(query_codes, "query_codes", n_bits=self.n_bits)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an integer in [1, {MAX_K}] (Milvus's limit), got {k!r}.")
        self.check_complete()
        k = int(k)
        D = np.full((len(query_codes), k), PAD_DISTANCE, dtype=np.int32)
        I = np.full((len(query_codes), k), PAD_ID, dtype=np.int64)
        params = {"metric_type": "HAMMING", "params": self._search_params}
        step = max(1, min(self.batch_size, MAX_K))
        for start in range(0, len(query_codes), step):
            batch = query_codes[start : start + step]
            hits = self._client.search(
                self.physical_name,
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
        self.check_complete()
        before = self.ntotal
        self._names.mark(self.physical_name, complete=False, ntotal=before)
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size].tolist()
            self._client.delete(self.physical_name, ids=chunk)
        self._finish_write()
        return before - self.ntotal

    def payloads(self, ids: Iterable[int]) -> list[Any]:
        """The payload stored with each id: ``None`` for an absent id, ``{}`` for a code added
        without payload."""
        ids = [int(i) for i in ids]
        found: dict[int, Any] = {}
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            for row in self._client.get(self.physical_name, ids=chunk, output_fields=[_PAYLOAD]):
                found[int(row[_ID])] = row.get(_PAYLOAD)
        return [found.get(i) for i in ids]

    def drop(self) -> None:
        """Delete the whole collection (its codes and metadata) and free its name."""
        self._names.point(self.collection, None)
        self._client.drop_collection(self.physical_name)
        self._names.prune()

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
    """Whether ``collection`` exists at ``uri`` (a Milvus Lite file or a server URI), served
    through h2q's name record or under its own name. A missing ``.db`` file is not created."""
    uri = _check_uri(uri)
    if not uri.startswith(_SERVER_SCHEMES) and not Path(uri).is_file():
        return False
    client = connect(uri, token)
    try:
        if NameRecord(client).resolve(collection) is not None:
            return True
        return bool(client.has_collection(collection))
    finally:
        client.close()


def _h2q_metadata(client: MilvusClient, physical: str) -> dict[str, Any] | None:
    """h2q's metadata in a collection's description, None when it has none."""
    info = client.describe_collection(physical)
    try:
        meta = json.loads(info.get("description") or "")[_META_KEY]
        ok = isinstance(meta, dict) and meta.get("index") in INDEX_TYPES
        ok = ok and int(meta["n_bits"]) >= 1
    except (ValueError, KeyError, TypeError):
        ok = False
    return meta if ok else None


def _check_ids(ids: Any, n: int) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"ids must have shape ({n},), one per code, got shape {array.shape}.")
    if array.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got {array.dtype}.")
    if n and (array.min() < 0 or array.max() > np.iinfo(np.int64).max):
        raise ValueError("ids must be in [0, 2**63) (-1 marks padding in search results).")
    array = array.astype(np.int64)
    unique, counts = np.unique(array, return_counts=True)
    if len(unique) != n:
        raise ValueError(
            f"ids contain duplicates (id {int(unique[counts > 1][0])} appears "
            f"{int(counts.max())} times); pass distinct ids."
        )
    return array


def _check_payload(payload: Sequence[Any] | None, n: int) -> Sequence[Any] | None:
    """One JSON-serialisable value per code (checked before any row is inserted)."""
    if payload is None:
        return None
    if len(payload) != n:
        raise ValueError(f"payload has {len(payload)} entries for {n} codes; pass one each.")
    for i, value in enumerate(payload):
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"payload[{i}] is not JSON-serialisable ({exc}); pass dicts, lists, strings "
                "or numbers."
            ) from None
    return payload
