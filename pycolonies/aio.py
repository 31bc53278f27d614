"""The asyncio client: ``AsyncColonies(host, port)``.

Every RPC of :class:`~pycolonies.api.ColoniesApi` returns an awaitable of the value the sync client
returns::

    async with AsyncColonies("localhost", 50080) as client:
        process = await client.submit_func_spec(spec, prvkey)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace, TracebackType
from typing import Any, cast

import aiohttp

from pycolonies import pubsub, retrying, rpc
from pycolonies.aio_files import AsyncFileTransfers
from pycolonies.api import JSONDict, Parse, children_specs
from pycolonies.base import HttpClientBase
from pycolonies.errors import AccessDeniedError, ColoniesError, unsupported
from pycolonies.models import FuncSpec, Process
from pycolonies.s3 import S3Settings

_STALE_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE})


async def _mark_reused(
    session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceConnectionReuseconnParams
) -> None:
    state = ctx.trace_request_ctx
    if isinstance(state, dict):
        state["reused"] = True


def _is_stale_connection(exc: BaseException | None) -> bool:
    """The server had closed the pooled connection: disconnected, reset or broken pipe.

    aiohttp may wrap the socket error (``ClientOSError("Can not write request body")``), so the
    chain of causes is searched too.
    """
    while exc is not None:
        if isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionResetError, BrokenPipeError)):
            return True
        if isinstance(exc, OSError) and exc.errno in _STALE_ERRNOS:
            return True
        exc = exc.__cause__
    return False


class AsyncColonies(AsyncFileTransfers, HttpClientBase):
    """Asyncio Colonies client on one lazily created :class:`aiohttp.ClientSession`.

    Same constructor as :class:`~pycolonies.client.Colonies`. Close it with ``await
    client.close()`` or ``async with``; ``await client.close(processid, output, prvkey)`` is the
    close-process RPC, as in the sync client. File transfers (``upload_file``, ``download_file``,
    ``sync``, ...) are those of the sync client, awaited (:mod:`pycolonies.aio_files`).
    """

    def _init_transport(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.s3: S3Settings | None = None  # as the sync client's: None means AWS_S3_* if set

    async def __aenter__(self) -> AsyncColonies:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_transport()

    async def find_process(self, nodename: str, processids: list[str], prvkey: str) -> Process | None:
        """The first process among ``processids`` whose ``spec.nodename`` is ``nodename``."""
        for processid in processids:
            process = await cast("Awaitable[Process]", self.get_process(processid, prvkey))
            if process.spec.nodename == nodename:
                return process
        return None

    async def wait(self, process: Process | str, timeout: float, prvkey: str) -> Process:
        """Wait until the process (a :class:`Process` or its id) is SUCCESS, FAILED or CANCELLED and
        return it, re-read from the server; wait at most ``timeout`` seconds (<= 0: only look).

        Raises :class:`~pycolonies.errors.ColoniesTimeout` when time runs out, and the usual
        server errors (e.g. ``AccessDeniedError`` for a non-member, ``NotFoundError``).
        """
        processid = pubsub.process_id(process)
        get_process = cast("Callable[[str, str], Awaitable[Process]]", self.get_process)
        if timeout > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            early_closes = retrying.Attempts(self.retry_for)
            left = timeout
            while left > 0:
                pushes = self._pushes(pubsub.wait_messages(process, left), left, prvkey)
                cause: ColoniesError | None = None
                try:
                    async with contextlib.aclosing(pushes):
                        pushed = await anext(pushes, None)
                except ColoniesError as exc:
                    if not retrying.worth_retrying(exc):
                        raise
                    pushed, cause = None, exc
                if pushed is not None:
                    return await get_process(processid, prvkey)
                left = deadline - loop.time()
                if left > 0:  # closed early or a 503 (a replica shutting down): subscribe again
                    await asyncio.sleep(pubsub.resubscribe_pause(early_closes, self._where, left, cause))
                    left = pubsub.resubscribe_timeout(deadline - loop.time())
        else:
            current = await get_process(processid, prvkey)
            if current.state in pubsub.FINAL_STATES:
                return current
        raise pubsub.not_finished(processid, timeout)

    async def subscribe_processes(
        self, colonyname: str, executortype: str, state: int, timeout: float, prvkey: str
    ) -> AsyncIterator[Process]:
        """Yield each process of ``executortype`` in the colony that enters ``state``, for
        ``timeout`` seconds (the iteration then ends)."""
        message = pubsub.processes_message(colonyname, executortype, state, timeout)
        pushes = self._pushes([message], timeout, prvkey)
        async with contextlib.aclosing(pushes):
            async for process in pushes:
                yield process

    async def follow_channel(self, processid: str, name: str, prvkey: str, afterseq: int = 0,
                             timeout: float = 30) -> AsyncIterator[JSONDict]:
        """Yield the entries of channel ``name`` of a process after sequence ``afterseq`` (those
        already there first), each as it is appended, for ``timeout`` seconds or until the process
        ends; entries as :meth:`channel_read` returns them."""
        message = pubsub.channel_message(processid, name, afterseq, timeout)
        pushes = self._pushes([message], timeout, prvkey, pubsub.decode_entries)
        async with contextlib.aclosing(pushes):
            async for entries in pushes:
                if not entries:
                    return
                for entry in entries:
                    yield entry

    async def add_children(self, processgraphid: str, parentprocessid: str, childprocessid: str,
                           funcspecs: list[FuncSpec | JSONDict], nodenames: list[str] | None, insert: bool,
                           prvkey: str) -> list[JSONDict]:
        """As the sync client's :meth:`~pycolonies.client.Colonies.add_children`, awaited."""
        specs = children_specs(funcspecs, nodenames)
        try:
            return await self._add_children(processgraphid, parentprocessid, childprocessid, specs, insert,
                                            prvkey)
        except AccessDeniedError as exc:
            if not unsupported(exc):
                raise
        return [await self.add_child(processgraphid, parentprocessid, childprocessid, spec, spec["nodename"],
                                     insert and index == 0, prvkey) for index, spec in enumerate(specs)]

    # -- transport ------------------------------------------------------------------------------

    async def _invoke(self, msg: JSONDict, prvkey: str | None, parse: Parse) -> Any:
        envelope = rpc.request_envelope(msg, prvkey)
        body, headers = rpc.encode_request(envelope, self.use_msgpack)
        timeout = rpc.http_timeout(msg, self.timeout)
        attempts = retrying.Attempts(self.retry_for)
        while True:
            try:
                status, content_type, data = await self._post(body, headers, timeout)
                reply = rpc.decode_reply(data, content_type, status, self._where)
            except ColoniesError as exc:
                pause = attempts.pause_after(exc)
                if pause is None:
                    attempts.raise_final(exc)
                await asyncio.sleep(pause)
                continue
            return parse(reply)

    async def _pushes(self, messages: list[JSONDict], timeout: float, prvkey: str,
                      decode: Callable[[str, str], Any] = pubsub.decode_push) -> AsyncIterator[Any]:
        """Send the subscription frames on one websocket and yield every pushed process (or what
        ``decode`` makes of a frame) until the server closes it (or ``timeout`` plus a grace has
        passed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + pubsub.read_timeout(timeout, self.timeout)
        try:
            async with self._get_session().ws_connect(self.pubsub_url, autoping=True) as ws:
                for msg in messages:
                    await ws.send_str(json.dumps(rpc.request_envelope(msg, prvkey)))
                while True:
                    frame = await ws.receive(timeout=max(deadline - loop.time(), 0.001))
                    if frame.type is aiohttp.WSMsgType.TEXT:
                        yield decode(frame.data, self._where)
                    elif frame.type is aiohttp.WSMsgType.ERROR:
                        raise self._unreachable(frame.data, cut=True)
                    elif frame.type is not aiohttp.WSMsgType.BINARY:  # closed
                        return
        except TimeoutError:
            return
        except (aiohttp.ClientError, OSError) as exc:  # refused, or cut once open
            raise self._unreachable(exc, cut=not isinstance(exc, (aiohttp.ClientConnectorError,
                                                                    aiohttp.ConnectionTimeoutError))) from exc

    async def _close_transport(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_reuseconn.append(_mark_reused)
            self._session = aiohttp.ClientSession(trace_configs=[trace])
        return self._session

    async def _post(
        self, body: bytes, headers: dict[str, str], timeout: float | None
    ) -> tuple[int, str, bytes]:
        session = self._get_session()
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        for attempt in (1, 2):
            state: dict[str, bool] = {"reused": False, "responded": False}
            try:
                async with session.post(
                    self.url,
                    data=body,
                    headers=headers,
                    timeout=client_timeout,
                    trace_request_ctx=state,
                ) as response:
                    state["responded"] = True
                    data = await response.read()
                    return response.status, response.headers.get("Content-Type", ""), data
            except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
                cut = _is_stale_connection(exc) or isinstance(exc, aiohttp.ClientPayloadError)
                if cut and attempt == 1 and state["reused"] and not state["responded"]:
                    continue
                raise self._unreachable(exc, cut=cut) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises
