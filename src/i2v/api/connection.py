"""Limits on a connection that the ASGI app cannot see: the size of a request's head
(request line and headers) and how long a client may take to send it.

The app only runs once the server has parsed a whole head, so a 50 MB header or a client
sending a byte a second ("slowloris") must be stopped in the server's protocol. uvicorn's
httptools protocol has no header cap and neither protocol has a head deadline (its
keep-alive timer stops at the first byte of the next request), so `uvicorn_options` hands
uvicorn its own protocol class wrapped by `guarded`:

- a head over `MAX_HEAD_BYTES` gets 431 in the dialect's envelope, and the connection closes;
- a head not complete `HEAD_TIMEOUT_S` after its first byte (or after the connection opened,
  or the previous response ended) gets 408 the same way.

A slow *body* is the app's to bound (`i2v.api.limits.BodyLimit` waits at most
`BODY_IDLE_TIMEOUT_S` for each chunk). In production, put a reverse proxy in front anyway
(docs/security.md): it buffers slow clients and caps what it forwards.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.requests import Request

from i2v.api.errors import error_response

MAX_HEAD_BYTES = 32 * 1024  # request line + headers; nginx allows 4 x 8 KB by default
HEAD_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5  # uvicorn's default, said here so the document can quote it
# After a refusal the write side is shut and what the client still sends is read and
# dropped for this long before the socket closes: closing at once, with its bytes unread,
# would make the kernel reset the connection and the client lose the refusal.
LINGER_S = 2.0
_END_OF_HEAD = b"\r\n\r\n"
_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


def _base_protocol() -> type[asyncio.Protocol]:
    try:
        import httptools  # noqa: F401
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run`/`uvicorn.Config`: the guarded protocol (on the
    parser uvicorn would pick itself) and the keep-alive timeout."""
    return {
        "http": guarded(_base_protocol()),
        # h11's own buffer cap (16 KB by default) must not fire first with a plain 400.
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES + len(_END_OF_HEAD),
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


def refusal(status: int, message: str, head: bytes) -> bytes:
    """A complete HTTP/1.1 response closing the connection, with the error in the envelope
    of the dialect the request line names (if any of it arrived)."""
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    path = parts[1].decode("latin-1").split("?", 1)[0] if len(parts) > 1 else "/"
    scope = {"type": "http", "path": path, "headers": [], "query_string": b"", "scheme": "http"}
    body = bytes(error_response(Request(scope), status, message).body)
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("latin-1") + body


def guarded(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """`base` (a uvicorn HTTP protocol class) with the head limits of this module."""

    class Guarded(base):  # type: ignore[valid-type, misc]
        _head: bytearray | None  # bytes of the head being received; None: in a body
        _deadline: asyncio.TimerHandle | None
        _refused = False  # answered with a refusal: the rest of the input is dropped

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._transport = transport
            self._deadline = None
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._head is not None:
                start = max(0, len(self._head) - len(_END_OF_HEAD) + 1)
                self._head += data
                end = self._head.find(_END_OF_HEAD, start)
                if end < 0 and len(self._head) > MAX_HEAD_BYTES:
                    self._refuse(
                        431, f"headers: must be at most {MAX_HEAD_BYTES} bytes in all, got more"
                    )
                    return
                if end >= 0:
                    if end > MAX_HEAD_BYTES:
                        self._refuse(
                            431,
                            f"headers: must be at most {MAX_HEAD_BYTES} bytes in all, got {end}",
                        )
                        return
                    self._head = None  # the rest is body (or a pipelined request)
                    self._cancel_deadline()
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self._transport.is_closing():
                self._await_head()

        def _await_head(self) -> None:
            self._head = bytearray()
            self._cancel_deadline()
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(HEAD_TIMEOUT_S, self._too_slow)

        def _too_slow(self) -> None:
            self._deadline = None
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                return  # a pipelined request is being answered: its head came long ago
            if self._head is None or not self._head:
                # Nothing sent since the last response: an idle keep-alive connection, or
                # one that never spoke; close it without an answer.
                self._transport.close()
                return
            self._refuse(408, f"headers: must arrive within {HEAD_TIMEOUT_S:g} s, took longer")

        def _refuse(self, status: int, message: str) -> None:
            self._cancel_deadline()
            # Not an isinstance check: uvloop's transports do not derive from asyncio's.
            transport = cast(asyncio.Transport, self._transport)
            self._refused = True
            if not transport.is_closing():
                transport.write(refusal(status, message, bytes(self._head or b"")))
                if transport.can_write_eof():
                    transport.write_eof()
                    asyncio.get_running_loop().call_later(LINGER_S, transport.close)
                    self._head = None
                    return
            self._head = None
            transport.close()

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded
