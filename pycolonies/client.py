"""The synchronous client: ``Colonies(host, port)``.

One keep-alive ``http.client`` connection per thread; a request that fails on a reused connection
before any reply bytes arrive (the server closed the idle connection) is resent once on a fresh
connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import threading
import time
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pycolonies import pubsub, rpc
from pycolonies.api import JSONDict, Parse
from pycolonies.base import API_PATH, HttpClientBase
from pycolonies.models import Process
from pycolonies.websocket import WebSocket

# Failures that mean "the idle keep-alive connection was already closed by the server".
# http.client.RemoteDisconnected is a ConnectionResetError.
_STALE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class Colonies(HttpClientBase):
    """Blocking Colonies client; every RPC of :class:`~pycolonies.api.ColoniesApi` returns its value.

    ``Colonies(host, port, tls=False, native_crypto=False, *, use_msgpack=False, timeout=None)``,
    see :class:`~pycolonies.base.HttpClientBase` for the options.
    """

    def _init_transport(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()

    def __enter__(self) -> Colonies:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_transport()

    def find_process(self, nodename: str, processids: list[str], prvkey: str) -> Process | None:
        """The first process among ``processids`` whose ``spec.nodename`` is ``nodename``."""
        for processid in processids:
            process = self.get_process(processid, prvkey)
            if process.spec.nodename == nodename:
                return process
        return None

    def wait(self, process: Process | str, timeout: float, prvkey: str) -> Process:
        """Block until the process (a :class:`Process` or its id) is SUCCESS, FAILED or CANCELLED
        and return it, re-read from the server; wait at most ``timeout`` seconds (<= 0: only look).

        Raises :class:`~pycolonies.errors.ColoniesTimeout` when time runs out, and the usual
        server errors (e.g. ``AccessDeniedError`` for a non-member, ``NotFoundError``).
        """
        processid = pubsub.process_id(process)
        if timeout > 0:
            started = time.monotonic()
            messages = pubsub.wait_messages(process, timeout)
            with contextlib.closing(self._pushes(messages, timeout, prvkey)) as pushes:
                pushed = next(pushes, None)
            if pushed is not None:
                return self.get_process(processid, prvkey)
            if time.monotonic() - started < timeout:
                raise pubsub.closed_early(self._where)
        else:
            current = self.get_process(processid, prvkey)
            if current.state in pubsub.FINAL_STATES:
                return current
        raise pubsub.not_finished(processid, timeout)

    def subscribe_processes(
        self, colonyname: str, executortype: str, state: int, timeout: float, prvkey: str
    ) -> Iterator[Process]:
        """Yield each process of ``executortype`` in the colony that enters ``state``, for
        ``timeout`` seconds (the iteration then ends). The websocket answers the server's pings
        only while the iteration waits for the next process, so do not spend more than about 30 s
        on one item (the server then drops the socket and the iteration raises)."""
        yield from self._pushes([pubsub.processes_message(colonyname, executortype, state, timeout)],
                                timeout, prvkey)

    # -- transport ------------------------------------------------------------------------------

    def _invoke(self, msg: JSONDict, prvkey: str | None, parse: Parse) -> Any:
        envelope = rpc.request_envelope(msg, prvkey)
        body, headers = rpc.encode_request(envelope, self.use_msgpack)
        status, content_type, data = self._post(body, headers, rpc.http_timeout(msg, self.timeout))
        return parse(rpc.decode_reply(data, content_type, status, self._where))

    def _pushes(self, messages: list[JSONDict], timeout: float, prvkey: str) -> Iterator[Process]:
        """Send the subscription frames on one websocket and yield every pushed process until the
        server closes it (or ``timeout`` plus a grace has passed)."""
        deadline = time.monotonic() + pubsub.read_timeout(timeout, self.timeout)
        try:
            ws = WebSocket.connect(self.pubsub_url, self.timeout)
        except OSError as exc:
            raise self._unreachable(exc) from exc
        with ws:
            try:
                for msg in messages:
                    ws.send_text(json.dumps(rpc.request_envelope(msg, prvkey)))
                while (text := ws.receive_text(deadline - time.monotonic())) is not None:
                    yield pubsub.decode_push(text, self._where)
            except TimeoutError:
                return
            except OSError as exc:
                raise self._unreachable(exc) from exc

    def _close_transport(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.tls:
                conn = http.client.HTTPSConnection(self.host, self.port, context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(self.host, self.port)
            self._local.conn = conn
            with self._lock:
                self._connections.add(conn)
        return conn

    def _post(self, body: bytes, headers: dict[str, str], timeout: float | None) -> tuple[int, str, bytes]:
        conn = self._connection()
        for attempt in (1, 2):
            reused = conn.sock is not None  # a closed connection reopens itself on request()
            _set_timeout(conn, timeout)
            try:
                conn.request("POST", API_PATH, body=body, headers=headers)
                response = conn.getresponse()
            except _STALE_CONNECTION_ERRORS as exc:
                conn.close()
                if reused and attempt == 1:
                    continue
                raise self._unreachable(exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self._unreachable(exc) from exc
            except BaseException:
                conn.close()
                raise
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self._unreachable(exc) from exc
            except BaseException:
                conn.close()
                raise
            return response.status, response.getheader("Content-Type") or "", data
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


def _set_timeout(conn: http.client.HTTPConnection, timeout: float | None) -> None:
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
