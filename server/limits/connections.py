"""The listening socket's protocol factory: aiohttp's HTTP protocol behind a connection watchdog.

aiohttp closes idle keep-alive connections (``keepalive_timeout``) but has no limit on how long a
client may take to send a request's headers, nor on how many connections it may open. Here every
accepted connection is a ``_Connection`` that

- counts against the connection caps, total and per peer; past one, the client gets a 503 or 429
  error envelope and the connection is closed without reaching aiohttp;
- hands every byte to aiohttp's protocol (``RequestHandler``) unchanged;
- closes the connection, with a 408 error envelope if the client had sent anything, when a
  request's headers are not complete ``header_timeout_s`` after the connection opened or after
  the first byte of the request arrived.

The request factory and request handler of aiohttp's ``web.Server`` are wrapped so the watchdog
learns when a request's headers are complete and when its handler is done.
"""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from pycolonies import wire
from server.config import ServerConfig
from server.errors import RequestTimeout, RpcError
from server.limits.peers import Cap, PeerCounter, peer_key


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: Cap
    max_connections_per_peer: Cap
    header_timeout_s: float
    drain_timeout_s: float

    @classmethod
    def from_config(cls, config: ServerConfig) -> ConnectionLimits:
        return cls(
            Cap(config.max_connections, "COLONIES_MAX_CONNECTIONS"),
            Cap(config.max_connections_per_peer, "COLONIES_MAX_CONNECTIONS_PER_PEER"),
            config.header_timeout_s,
            config.drain_timeout_s,
        )


def http_error_reply(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 reply carrying the wire error envelope, after which the server closes."""
    body = json.dumps(wire.error_envelope(status, message)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ConnectionGuard:
    """Call it for a protocol per accepted connection (``loop.create_server(guard, ...)``)."""

    def __init__(self, server: web.Server, limits: ConnectionLimits) -> None:
        self.server = server
        self.limits = limits
        self.connections = PeerCounter("open connections", limits.max_connections,
                                       limits.max_connections_per_peer)
        self._watched: dict[RequestHandler, _Connection] = {}
        self._wrap(server)

    @property
    def open_connections(self) -> int:
        """Connections admitted and not yet closed (refused ones are not counted)."""
        return self.connections.total

    def __call__(self) -> asyncio.Protocol:
        return _Connection(self)

    def _wrap(self, server: web.Server) -> None:
        make_request = server.request_factory
        handle_request = server.request_handler

        def request_factory(message: Any, payload: StreamReader, protocol: RequestHandler,
                            writer: Any, task: asyncio.Task[None]) -> web.BaseRequest:
            watched = self._watched.get(protocol)
            if watched is not None:
                watched.request_started(payload)
            return make_request(message, payload, protocol, writer, task)

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handle_request(request)
            finally:
                watched = self._watched.get(request.protocol)  # type: ignore[arg-type]
                if watched is not None:
                    watched.request_done()

        server.request_factory = request_factory
        server.request_handler = request_handler


class _Phase(enum.Enum):
    HEADERS = "waiting for a request's headers (the watchdog is armed)"
    BUSY = "a request's handler is running (a long poll, a websocket, ...)"
    DRAINING = "the handler is done; the rest of that request's body may still arrive"
    IDLE = "between requests (aiohttp's keep-alive timeout applies)"


class _Connection(asyncio.Protocol):
    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self._transport: asyncio.Transport | None = None
        self._inner: RequestHandler | None = None
        self._peer = ""
        self._phase = _Phase.HEADERS
        self._heard = False  # bytes arrived in this HEADERS phase
        self._payload: StreamReader | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport, so no isinstance check here.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peername = transport.get_extra_info("peername")
        self._peer = peer_key(peername[0] if isinstance(peername, tuple) else None)
        try:
            self.guard.connections.acquire(self._peer)
        except RpcError as refusal:
            self._refuse(refusal)
            return
        self._inner = self.guard.server()
        self.guard._watched[self._inner] = self
        self._inner.connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:  # refused: what the client still sends is discarded
            return
        if self._phase is _Phase.IDLE:
            self._await_headers()
        if self._phase is _Phase.HEADERS:
            self._heard = True
        inner.data_received(data)
        if self._phase is _Phase.DRAINING and (self._payload is None or self._payload.is_eof()):
            self._phase, self._payload = _Phase.IDLE, None

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        inner, self._inner, self._transport = self._inner, None, None
        if inner is None:
            return
        self.guard._watched.pop(inner, None)
        self.guard.connections.release(self._peer)
        inner.connection_lost(exc)

    # -- told by the wrapped request factory and handler ----------------------------------------

    def request_started(self, payload: StreamReader) -> None:
        self._cancel_timer()
        self._phase, self._payload = _Phase.BUSY, payload

    def request_done(self) -> None:
        if self._payload is not None and not self._payload.is_eof():
            self._phase = _Phase.DRAINING
        else:
            self._phase, self._payload = _Phase.IDLE, None

    # -- the watchdog ---------------------------------------------------------------------------

    def _await_headers(self) -> None:
        self._phase, self._heard = _Phase.HEADERS, False
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.guard.limits.header_timeout_s, self._headers_too_late)

    def _headers_too_late(self) -> None:
        self._timer = None
        transport, inner = self._transport, self._inner
        if self._phase is not _Phase.HEADERS or transport is None or inner is None:
            return
        # Nothing of an earlier reply may still be queued, or the 408 would land inside it.
        if self._heard and transport.get_write_buffer_size() == 0:
            seconds = self.guard.limits.header_timeout_s
            refusal = RequestTimeout(
                f"Request headers not received within {seconds:g} s (COLONIES_HEADER_TIMEOUT)"
            )
            transport.write(http_error_reply(refusal.status, refusal.message))
        inner.force_close()

    def _refuse(self, refusal: RpcError) -> None:
        """Answer a connection past a cap and close it once the client has seen the reply."""
        transport = self._transport
        assert transport is not None
        transport.write(http_error_reply(refusal.status, refusal.message))
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the reply, then closes its side
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.guard.limits.drain_timeout_s, transport.close)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

