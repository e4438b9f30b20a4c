"""h2q's name record in a Milvus database: which collection a user's name serves, and which
collections are complete.

Milvus Lite has no aliases (``create_alias`` answers UNIMPLEMENTED) and cannot change a
collection's description or properties, so h2q keeps both facts in one small collection of
its own, :data:`RECORD`, in the same database:

- ``alias`` rows map a user's name (``items``) to the collection that holds its codes
  (``items__h2q_<12 hex>``); an empty target means the name was dropped.
- ``state`` rows say whether a collection is complete (every row inserted and flushed) and
  how many codes it holds.

Rows are only ever inserted, never updated in place: each carries a sequence number and the
newest row of a name wins. A single-row insert is atomic, so a process killed at any moment
leaves either the old answer or the new one, never a half-written row. Superseded rows are
deleted afterwards (:meth:`NameRecord.prune`), which is harmless at any point.

Every h2q reader resolves names through this record; a Milvus server's own aliases are not
used, so other Milvus clients see the ``__h2q_`` collection names.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from pymilvus import DataType, MilvusClient

__all__ = ["RECORD", "NameRecord", "check_name", "is_h2q_collection", "new_collection_name"]

#: Name of the record collection.
RECORD = "h2q_names"
#: What separates a user's name from the unique suffix of the collection that serves it.
_SUFFIX = "__h2q_"
_PHYSICAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*__h2q_[0-9a-f]{12}$")
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
_LIMIT = 16384  # Milvus's largest query limit


def check_name(name: Any) -> str:
    """A user's collection name: letters, digits and ``_``, not starting with a digit."""
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise ValueError(
            f"collection must be a name of letters, digits and _ (not starting with a digit, at "
            f"most 201 characters), got {name!r}."
        )
    if name == RECORD or _SUFFIX in name:
        raise ValueError(
            f"collection name {name!r} is reserved for h2q's own bookkeeping; choose another."
        )
    return name


def new_collection_name(name: str) -> str:
    """A fresh collection name that serves ``name`` once complete."""
    return f"{name}{_SUFFIX}{uuid.uuid4().hex[:12]}"


def is_h2q_collection(physical: str) -> bool:
    """Whether ``physical`` is a collection h2q created to serve a user's name."""
    return bool(_PHYSICAL.match(physical))


class NameRecord:
    """The record collection of one Milvus database, read and appended through ``client``."""

    def __init__(self, client: MilvusClient) -> None:
        self._client = client
        self._ready = False

    # -- reading ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the database holds a record at all (readers never create it)."""
        if not self._ready:
            self._ready = bool(self._client.has_collection(RECORD))
            if self._ready:
                self._client.load_collection(RECORD)
        return self._ready

    def _latest(self, kind: str, key: str | None = None) -> dict[str, dict[str, Any]]:
        """The newest row of each key of ``kind`` (only ``key`` when given)."""
        if not self.exists():
            return {}
        expr = f'kind == "{kind}"' + ("" if key is None else f' and name == "{key}"')
        rows = self._client.query(
            RECORD, filter=expr, output_fields=["name", "seq", "value"], limit=_LIMIT
        )
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["name"] not in latest or row["seq"] > latest[row["name"]]["seq"]:
                latest[row["name"]] = row
        return latest

    def resolve(self, name: str) -> str | None:
        """The collection that serves ``name``, or None when the record has none."""
        row = self._latest("alias", name).get(name)
        return None if row is None else (json.loads(row["value"]) or None)

    def targets(self) -> set[str]:
        """Every collection that some name serves."""
        values = (json.loads(row["value"]) for row in self._latest("alias").values())
        return {value for value in values if value}

    def state(self, physical: str) -> dict[str, Any] | None:
        """``{"complete": bool, "ntotal": int}`` of a collection, None when never recorded."""
        row = self._latest("state", physical).get(physical)
        return None if row is None else json.loads(row["value"])

    # -- writing ---------------------------------------------------------------------------
    def _create(self) -> None:
        if self.exists():
            return
        schema = MilvusClient.create_schema(
            auto_id=False, enable_dynamic_field=False, description="h2q name record"
        )
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("kind", DataType.VARCHAR, max_length=16)
        schema.add_field("name", DataType.VARCHAR, max_length=255)
        schema.add_field("seq", DataType.INT64)
        schema.add_field("value", DataType.VARCHAR, max_length=4096)
        schema.add_field("unused", DataType.BINARY_VECTOR, dim=8)  # Milvus needs a vector
        params = self._client.prepare_index_params()
        params.add_index(field_name="unused", index_type="BIN_FLAT", metric_type="HAMMING")
        self._client.create_collection(
            RECORD, schema=schema, index_params=params, consistency_level="Strong"
        )
        self._ready = False
        self.exists()

    def _append(self, kind: str, name: str, value: Any) -> None:
        self._create()
        newest = self._latest(kind, name).get(name)
        seq = max(time.time_ns(), 0 if newest is None else newest["seq"] + 1)
        row = {
            "key": f"{kind}:{name}:{seq:020d}",
            "kind": kind,
            "name": name,
            "seq": seq,
            "value": json.dumps(value),
            "unused": b"\x00",
        }
        self._client.insert(RECORD, [row])
        self._client.flush(RECORD)

    def point(self, name: str, physical: str | None) -> None:
        """Make ``name`` serve ``physical`` (None: serve nothing), in one atomic insert."""
        self._append("alias", name, physical or "")

    def mark(self, physical: str, *, complete: bool, ntotal: int) -> None:
        """Record whether ``physical`` is complete, and its number of codes."""
        self._append("state", physical, {"complete": complete, "ntotal": int(ntotal)})

    def prune(self) -> None:
        """Delete superseded rows, and the state rows of collections that no longer exist."""
        if not self.exists():
            return
        live = set(self._client.list_collections())
        stale: list[str] = []
        for kind in ("alias", "state"):
            expr = f'kind == "{kind}"'
            rows = self._client.query(
                RECORD, filter=expr, output_fields=["key", "name", "seq"], limit=_LIMIT
            )
            newest: dict[str, int] = {}
            for row in rows:
                newest[row["name"]] = max(newest.get(row["name"], row["seq"]), row["seq"])
            for row in rows:
                gone = kind == "state" and row["name"] not in live
                if row["seq"] < newest[row["name"]] or gone:
                    stale.append(row["key"])
        for start in range(0, len(stale), 1000):
            self._client.delete(RECORD, ids=stale[start : start + 1000])
