"""Request ids and the last line of defence against bugs (pure ASGI, no per-request thread).

Every answer carries ``X-Request-Id``: the client's own when it sent a plausible one,
else a fresh one. Error bodies repeat it (``{"error", "detail", "request_id"}``) and the
sidecar's log lines name it, so a client's report can be found in the log. An exception
that no handler turned into an answer is logged once, with its traceback and the request
id, and answered with a 500 whose body says nothing about it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

HEADER = "X-Request-Id"
_VALID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id(scope: MutableMapping[str, Any]) -> str:
    """The id of the request ``scope`` belongs to (``-`` outside the middleware)."""
    return str(scope.get("state", {}).get("request_id", "-"))


def error_body(scope: MutableMapping[str, Any], reason: str, detail: str) -> dict[str, str]:
    """The documented error JSON."""
    return {"error": reason, "detail": detail, "request_id": request_id(scope)}


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _VALID.fullmatch(value):
            return value.decode()
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Tag requests with an id; answer unhandled exceptions with a bare 500.

    Args:
        app: the wrapped application.
        on_error: called with the scope and the exception before the 500 is sent
            (metrics).
    """

    def __init__(
        self, app: ASGIApp, on_error: Callable[[Scope, BaseException], None] | None = None
    ) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def tagged_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        except Exception as exc:
            log.exception("request %s: %s %s failed", rid, scope["method"], scope["path"])
            if self.on_error is not None:
                self.on_error(scope, exc)
            if started:
                return  # the answer is half sent: the server closes the connection
            body = (
                b'{"error":"internal","detail":"internal error; the sidecar log has it under '
                b'this request id","request_id":"' + rid.encode() + b'"}'
            )
            await tagged_send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await tagged_send({"type": "http.response.body", "body": body})
