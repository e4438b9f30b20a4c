"""Errors of the search service: every bad request becomes a 4xx JSON answer, never a 500.

An answer is ``{"detail": "<one line that names the problem and the fix>"}`` with a 4xx status
(FastAPI's own shape, so that its 404 and 405 answers look the same). :class:`ApiError` is what
the service raises on purpose; the handlers here also turn FastAPI's validation errors, a body
that is not JSON, and anything unforeseen (logged, answered 500 without a traceback) into that
shape.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["ApiError", "install_error_handlers", "validation_message"]

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the service refuses.

    Parameters
    ----------
    status : int
        HTTP status, 4xx.
    message : str
        One line that names the problem and how to fix it.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) if parts else "the request body"


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line out of pydantic's error list: the first problem, with its field and input."""
    if not errors:
        return "invalid request; see the API description at /docs."
    err = errors[0]
    kind = err.get("type", "")
    where = _where(tuple(err.get("loc", ())))
    if kind == "json_invalid":
        ctx = err.get("ctx", {})
        return (
            f"the body is not valid JSON ({ctx.get('error', 'parse error')}); send a JSON object."
        )
    if kind == "missing" and where == "the request body":
        return 'the request has no JSON body; send e.g. {"k": 10, "id": 0}.'
    if where == "the request body" and kind in ("model_attributes_type", "dict_type"):
        return (
            "the body must be a JSON object sent with Content-Type: application/json, e.g. "
            '{"k": 10, "id": 0}.'
        )
    if kind == "extra_forbidden":
        return (
            f"unknown field {where!r}; the fields are k, index, id, ids, vector, vectors, code, "
            "text (see /docs)."
        )
    text = str(err.get("input"))
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"{where}: {err.get('msg', 'invalid value')} (got {shown}); see /docs for the fields."


def install_error_handlers(app: Any) -> None:
    """Register the handlers that give every error the ``{"detail": ...}`` 4xx shape."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def _api_error(request: Any, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Any, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        status = 400 if errors and errors[0].get("type") == "json_invalid" else 422
        return JSONResponse({"detail": validation_message(errors)}, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http(request: Any, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "bad request"
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = (  # FastAPI's words for a body json cannot read (e.g. nested too deep)
                "the body could not be read as JSON (nested too deep or not UTF-8); send a "
                'flat JSON object such as {"k": 10, "id": 0}.'
            )
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Any, exc: Exception) -> JSONResponse:
        logger.error("unexpected error on %s", request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); the server log has the details."},
            status_code=500,
        )
