"""A pure ASGI middleware that refuses request bodies over a size limit with 413 JSON.

It checks ``Content-Length`` first and counts the bytes of a chunked body as they arrive, so
an oversized body is never held in memory whole.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["BodyLimit"]


def _message(max_bytes: int) -> str:
    return f"the request body is over {max_bytes} bytes; send fewer or shorter queries."


class _TooLarge(HTTPException):
    """Raised inside the app while a chunked body is read (FastAPI passes HTTPExceptions on)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _message(max_bytes))


async def _send_413(send: Any, max_bytes: int) -> None:
    body = json.dumps({"detail": _message(max_bytes)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse HTTP request bodies longer than ``max_bytes`` (413, JSON ``detail``)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_long = int(value) > self.max_bytes
                except ValueError:
                    too_long = False  # the HTTP server refuses a malformed length itself
                if too_long:
                    await _send_413(send, self.max_bytes)
                    return
        seen = 0
        started = False

        async def counted_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _send_413(send, self.max_bytes)
