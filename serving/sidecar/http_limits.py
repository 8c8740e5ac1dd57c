"""HTTP limits below the app: header size, and read timeouts for headers and body.

uvicorn's httptools protocol has none of them: a client may send megabytes of headers, or
open connections and never finish a request, and hold a connection (and its buffers)
for as long as it likes. :func:`guarded_protocol` returns that protocol with three limits
(``SIDECAR_MAX_HEADER_BYTES``, ``SIDECAR_HEADER_TIMEOUT_S``, ``SIDECAR_BODY_TIMEOUT_S``):

- request line + headers larger than ``max_header_bytes``: 431, connection closed;
- headers not complete ``header_timeout_s`` after the request's first byte (for a new
  connection: after it opened): 408, connection closed;
- body not complete ``body_timeout_s`` after the headers: 408, connection closed; the
  app sees the client leave (the frame is not processed).

Idle keep-alive connections are closed after ``keep_alive_timeout_s`` by uvicorn itself.
Each cut is counted by ``on_cut(reason)``; the answers are the API's error JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    """The three limits, in bytes and seconds."""

    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float


def error_response(status: int, reason: str, detail: str, rid: str) -> bytes:
    """A complete HTTP/1.1 error answer that closes the connection."""
    body = json.dumps({"error": reason, "detail": detail, "request_id": rid}).encode()
    head = (
        b"content-type: application/json\r\ncontent-length: %d\r\n"
        b"x-request-id: %s\r\nconnection: close\r\n\r\n" % (len(body), rid.encode())
    )
    return STATUS_LINE[status] + head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection; see the module docstring. :func:`guarded_protocol` sets the limits."""

    limits: ClassVar[HttpLimits] = HttpLimits(16 * 1024, 10.0, 30.0)

    @staticmethod
    def on_cut(reason: str) -> None:
        """Count a cut connection (replaced by :func:`guarded_protocol`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._in_headers = True  # until the first request's headers are complete
        self._header_bytes = 0  # exact: request target + header lines
        self._raw_bytes = 0  # received while the headers are not complete
        self._oversized = False  # complete headers over the limit: no request started
        self._refused = False

    # ---------------------------------------------------------- timers
    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expire, reason)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, reason: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if not self._in_headers else None
        if cycle is not None and cycle.response_started:
            self.transport.close()  # the app answered already; just stop waiting
            return
        rid = uuid.uuid4().hex
        if cycle is not None:  # the app waits for the body: it will see a disconnect
            state = cycle.scope.setdefault("state", {})
            state["cut"] = reason
            rid = state.get("request_id", rid)
        what = "headers" if reason == "header_timeout" else "body"
        self._refuse(408, "request_timeout", f"the request {what} did not arrive in time", rid)
        self.on_cut(reason)

    def _refuse(self, status: int, reason: str, detail: str, rid: str) -> None:
        self._refused = True
        self._disarm()
        log.info("connection from %s cut (request %s): %s", self.client, rid, detail)
        self.transport.write(error_response(status, reason, detail, rid))
        self.transport.close()

    # ---------------------------------------------------------- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_headers:
            self._raw_bytes += len(data)
        super().data_received(data)
        unfinished = self._in_headers and self._raw_bytes > self.limits.max_header_bytes
        if not self._refused and (self._oversized or unfinished):
            self._header_too_large()

    def _header_too_large(self) -> None:
        detail = f"request headers exceed {self.limits.max_header_bytes} bytes"
        self._refuse(431, "header_too_large", detail, uuid.uuid4().hex)
        self.on_cut("header_too_large")

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "bad_request", "malformed HTTP request", uuid.uuid4().hex)

    # ---------------------------------------------------------- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers, self._header_bytes = True, 0
        if self._timer is None:
            self._arm(self.limits.header_timeout_s, "header_timeout")

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers, self._raw_bytes = False, 0
        self._disarm()
        if self._header_bytes > self.limits.max_header_bytes:
            self._oversized = True  # data_received answers once the parser returns
            return
        super().on_headers_complete()
        self._arm(self.limits.body_timeout_s, "body_timeout")

    def on_body(self, body: bytes) -> None:
        if not (self._refused or self._oversized):
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_headers, self._raw_bytes = True, 0  # the next request's headers
        if not (self._refused or self._oversized):
            super().on_message_complete()


def guarded_protocol(
    limits: HttpLimits, on_cut: Callable[[str], None] = lambda reason: None
) -> type[GuardedHttpToolsProtocol]:
    """The guarded protocol with ``limits`` (pass it as ``uvicorn.run(http=...)``)."""
    attributes = {"limits": limits, "on_cut": staticmethod(on_cut)}
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), attributes)
