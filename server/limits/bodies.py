"""Reading request bodies within limits: size, time, and the bytes held across all requests.

Every body being read holds a reservation in one process-wide budget (and in its peer's share of
it): a declared ``Content-Length`` is reserved before the first byte is read, so a body that
cannot fit is refused at once without reading it; bytes beyond what was declared (a chunked body,
or one that decompresses larger) are reserved as they arrive. The reservation lasts until the body
has been parsed (the ``read`` context), so the budget bounds what unsigned clients can make the
server hold, whatever their number.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from server.config import ServerConfig
from server.errors import BadRequest, PayloadTooLarge, RequestTimeout
from server.limits.peers import Cap, PeerCounter, peer_key


class RequestBodies:
    """The body limits of one server process and its bookkeeping of body bytes in flight."""

    def __init__(self, max_bytes: int, in_flight: Cap, in_flight_per_peer: Cap, timeout_s: float) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.in_flight = PeerCounter("request body bytes in flight", in_flight, in_flight_per_peer)

    @classmethod
    def from_config(cls, config: ServerConfig) -> RequestBodies:
        return cls(
            config.max_body_bytes,
            Cap(config.max_body_bytes_in_flight, "COLONIES_MAX_BODY_BYTES_IN_FLIGHT"),
            Cap(config.max_body_bytes_in_flight_per_peer, "COLONIES_MAX_BODY_BYTES_IN_FLIGHT_PER_PEER"),
            config.body_timeout_s,
        )

    @property
    def bytes_in_flight(self) -> int:
        """Bytes reserved by the bodies being read or parsed right now."""
        return self.in_flight.total

    @asynccontextmanager
    async def read(self, request: web.BaseRequest) -> AsyncIterator[bytes]:
        """The whole body, reserved in the budget until the ``async with`` block ends.

        Raises ``PayloadTooLarge`` (413) past ``max_bytes``, ``Unavailable`` (503) or
        ``TooManyRequests`` (429) when the body does not fit the budget, ``RequestTimeout`` (408)
        when it has not arrived within ``timeout_s``, and ``BadRequest`` when it cannot be read.
        """
        peer = peer_key(request.remote)
        declared = request.content_length
        if declared is not None and declared > self.max_bytes:
            raise self._too_large()
        reserved = 0
        try:
            if declared:
                self.in_flight.acquire(peer, declared)
                reserved = declared
            chunks: list[bytes] = []
            received = 0
            try:
                async with asyncio.timeout(self.timeout_s):
                    while chunk := await request.content.readany():
                        received += len(chunk)
                        if received > self.max_bytes:
                            raise self._too_large()
                        if received > reserved:
                            self.in_flight.acquire(peer, received - reserved)
                            reserved = received
                        chunks.append(chunk)
            except TimeoutError as exc:
                raise RequestTimeout(
                    f"Request body not received within {self.timeout_s:g} s (COLONIES_BODY_TIMEOUT): "
                    f"{received} bytes arrived" + (f" of {declared}" if declared is not None else "")
                ) from exc
            except (HttpProcessingError, RequestPayloadError) as exc:
                raise BadRequest(f"Bad request, the body could not be read: {exc}") from exc
            except ConnectionError as exc:  # the client went away; nobody will see this reply
                raise BadRequest("Bad request, the connection closed before the body was complete") from exc
            body = b"".join(chunks)
            del chunks
            yield body
        finally:
            if reserved:
                self.in_flight.release(peer, reserved)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body exceeds the limit of {self.max_bytes} bytes (COLONIES_MAX_BODY_BYTES)"
        )
