"""The FastAPI application: the JSON API, the page at ``/`` and its static files.

``create_app(catalog)`` builds the app over loaded indexes; nothing is loaded or written here.
Every search goes through the service's :class:`~h2q.serve.batcher.Batcher` (one search
thread for all indexes), so the event loop only parses, validates and answers.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from .._version import __version__
from .batcher import Batcher
from .engine import Catalog, ServedIndex
from .errors import ApiError, install_error_handlers
from .limits import BodyLimit
from .queries import query_rows

__all__ = ["SearchRequest", "create_app"]

_QUERY_FIELDS = ("id", "ids", "vector", "vectors", "code", "text")


class SearchRequest(BaseModel):
    """Body of ``POST /api/search``: ``k``, an optional ``index`` and exactly one query field."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    k: int = Field(10, description="neighbours per query, 1 <= k <= ntotal")
    index: str | None = Field(None, description="index name (optional when one is served)")
    id: int | None = Field(None, description="a database item as the query")
    ids: list[int] | None = Field(None, description="several database items (distinct)")
    vector: list[float] | None = Field(None, description="one float vector (encoded)")
    vectors: list[list[float]] | None = Field(None, description="a batch of float vectors")
    code: str | None = Field(None, description="a packed code as hex (2 digits per byte)")
    text: str | None = Field(None, description="a text (text sets with an encoder)")


class SearchRow(BaseModel):
    ids: list[int]
    scores: list[int | float]
    labels: list[Any] | None = None


class SearchResponse(BaseModel):
    index: str
    scoring: str
    results: list[SearchRow]
    took_ms: float


def _pick_index(catalog: Catalog, name: str | None) -> ServedIndex:
    if name is None:
        if len(catalog.indexes) == 1:
            return next(iter(catalog.indexes.values()))
        raise ApiError(
            422,
            f"this server holds {len(catalog.indexes)} indexes; name one in 'index' "
            f"({', '.join(catalog.indexes)}).",
        )
    served = catalog.indexes.get(name)
    if served is None:
        raise ApiError(404, f"unknown index {name!r}; choose one of {', '.join(catalog.indexes)}.")
    return served


def _check(request: SearchRequest, served: ServedIndex) -> None:
    given = [f for f in _QUERY_FIELDS if getattr(request, f) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise ApiError(
            422, f"pass exactly one of {', '.join(_QUERY_FIELDS)} as the query (got {what})."
        )
    if request.k < 1:
        raise ApiError(422, f"k={request.k} is below 1; pass k >= 1.")
    n = served.ntotal
    if request.k > n:
        raise ApiError(422, f"k={request.k} exceeds the {n} items in the index; pass k <= {n}.")


def _rows(catalog: Catalog, D: Any, I: Any) -> list[dict[str, Any]]:
    """Result rows as plain JSON-ready dicts (the shape of :class:`SearchRow`)."""
    return [
        {"ids": i.tolist(), "scores": d.tolist(), "labels": catalog.items.labels_of(i)}
        for d, i in zip(D, I, strict=True)
    ]


def _add_api(app: FastAPI, catalog: Catalog, batcher: Batcher) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness once the indexes are loaded, with the search thread's call and row counts."""
        return {
            "status": "ok",
            "indexes": len(catalog.indexes),
            "ntotal": catalog.ntotal,
            "search_calls": batcher.calls,
            "search_rows": batcher.rows,
        }

    @app.get("/api/indexes")
    async def indexes() -> dict[str, Any]:
        """The served indexes (name, kind, n_bits, ntotal, scoring) and the item kind."""
        return {
            "title": catalog.title,
            "items": {"kind": catalog.items.kind, "labels": catalog.items.labels is not None},
            "indexes": [ix.describe() for ix in catalog.indexes.values()],
        }

    # Note: the answer is built as a dict and sent as is; SearchResponse documents it (running
    # pydantic's validation over every outgoing row would only cost time).
    @app.post("/api/search", response_model=None, responses={200: {"model": SearchResponse}})
    async def search(request: SearchRequest) -> JSONResponse:
        """The k nearest database items of each query, best first (ties by id)."""
        start = time.perf_counter()
        served = _pick_index(catalog, request.index)
        _check(request, served)
        queries, encode = query_rows(served, request)
        search = served.search_vectors if encode else served.search
        D, I = await asyncio.wrap_future(batcher.submit(search, queries, request.k))
        rows = _rows(catalog, D, I)
        took = 1000 * (time.perf_counter() - start)
        return JSONResponse(
            {"index": served.name, "scoring": served.scoring, "results": rows, "took_ms": took}
        )

    def _item_id(item_id: int) -> int:
        if not 0 <= item_id < catalog.ntotal:
            raise ApiError(
                404,
                f"unknown id {item_id}: the database holds ids 0 to {catalog.ntotal - 1}.",
            )
        return item_id

    @app.get("/api/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        """Label, class names, text or image link of a database item."""
        return catalog.items.describe(_item_id(item_id))

    @app.get("/api/items/{item_id}/image")
    async def image(item_id: int) -> Response:
        """The item's picture as PNG (image data sets only)."""
        png = catalog.items.png(_item_id(item_id))
        if png is None:
            raise ApiError(404, "this database has no images; read /api/items/{id} instead.")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _add_page(app: FastAPI) -> None:
    static = resources.files("h2q.serve") / "static"
    files = {"app.js": "text/javascript", "style.css": "text/css"}

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in files:
            raise ApiError(404, f"no static file {name!r}.")
        return FileResponse(str(static / name), media_type=files[name])


def create_app(
    catalog: Catalog, *, n_threads: int | None = 1, max_body_bytes: int = 1 << 20
) -> FastAPI:
    """The search service over ``catalog``.

    Parameters
    ----------
    catalog : Catalog
        The loaded indexes and items (read-only while serving).
    n_threads : int, optional
        Threads of each search call (the compiled scan's); None leaves the setting as is.
    max_body_bytes : int
        Larger request bodies are refused with 413.

    Returns
    -------
    fastapi.FastAPI
    """

    batcher = Batcher(n_threads=n_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        batcher.start()
        for served in catalog.indexes.values():
            # A first search compiles (or loads) the scan's kernels: before the first request.
            await asyncio.wrap_future(batcher.submit(served.search, served.warmup_query(), 1))
        try:
            yield
        finally:
            batcher.stop()
            if catalog.close is not None:
                catalog.close()

    app = FastAPI(
        title="h2q search",
        version=__version__,
        description="k-NN search over binary codes of fitted h2q quantizers.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.state.batcher = batcher
    _add_api(app, catalog, batcher)
    _add_page(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
