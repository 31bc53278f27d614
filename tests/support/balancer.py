"""A TCP load balancer on loopback, in front of server replicas, for the tests that restart them.

It stands for the one a deployment puts in front of its replicas (HAProxy, nginx, a cloud load
balancer) and does what they do by default at the TCP level: each new client connection goes to
the next backend in turn; a backend that refuses the connection (a replica that is down) is
skipped for the next one; the bytes are relayed both ways until either side closes, and then
the other side is closed too. It never looks inside the bytes and never retries a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

HOST = "127.0.0.1"
CHUNK = 64 * 1024


class Balancer:
    """``with Balancer([port, ...]) as lb``: clients connect to ``lb.port``."""

    def __init__(self, backend_ports: list[int]) -> None:
        self.backend_ports = list(backend_ports)
        self.port = 0
        self.connections = 0  # client connections relayed to a backend
        self.unrouted = 0  # client connections no backend accepted (closed at once)
        self._turn = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="balancer", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    def __enter__(self) -> Balancer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> asyncio.base_events.Server:
        return await asyncio.start_server(self._relay, HOST, 0)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    def _order(self) -> Iterator[int]:
        """The backends to try for one connection: the next in turn first."""
        start = self._turn
        self._turn += 1
        count = len(self.backend_ports)
        return (self.backend_ports[(start + i) % count] for i in range(count))

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            for port in self._order():
                try:
                    backend_reader, backend_writer = await asyncio.open_connection(HOST, port)
                except OSError:
                    continue  # refused: that replica is down, try the next
                self.connections += 1
                await _pipe_both_ways(client_reader, client_writer, backend_reader, backend_writer)
                return
            self.unrouted += 1
        finally:
            _close(client_writer)
            self._relays.discard(task)


async def _pipe_both_ways(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                          backend_reader: asyncio.StreamReader, backend_writer: asyncio.StreamWriter) -> None:
    upstream = asyncio.create_task(_copy(client_reader, backend_writer))
    downstream = asyncio.create_task(_copy(backend_reader, client_writer))
    try:
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (upstream, downstream):
            task.cancel()
        await asyncio.gather(upstream, downstream, return_exceptions=True)
        _close(backend_writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
