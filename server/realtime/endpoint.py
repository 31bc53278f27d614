"""GET /pubsub: a websocket whose text frames are signed subscription requests.

Every text frame the client sends is a request envelope (as on POST /api) starting one more
subscription on the socket (see ``server.realtime.feeds``). The server sends reply envelopes:
``{"payloadtype": "subscribeprocessmsg", "payload": base64(process JSON), "error": false}`` per
push, or one error envelope (bad envelope or signature, unknown type, bad field, not a member,
unknown process, database down) after which it closes the socket. A subscription's ``timeout``
(seconds from its frame; <= 0 means right after the first look) closes the socket. A client that
disconnects ends all of its subscriptions; a server shutdown closes every socket.

Limits (docs/limits.md): a socket whose first valid signed subscription has not arrived within
``pubsub_subscribe_timeout_s`` gets a 408 error envelope and is closed, and a peer address may hold
at most ``max_websockets_per_peer`` sockets (past it the upgrade is refused with a 429 envelope).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSMsgType, web

from pycolonies import wire
from pycolonies.codec import WireDict, to_wire
from server.context import Services
from server.envelope import decode_message, error_reply, parse_envelope, recover_signer
from server.errors import BadRequest, Forbidden, RequestTimeout, RpcError, Unavailable
from server.limits import Cap, PeerCounter, peer_key
from server.params import Msg
from server.realtime import feeds
from server.realtime.listener import ProcessListener

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024  # a subscription request is a few hundred bytes
HEARTBEAT_S = 60.0  # ping quiet clients; one that has not answered half a period later is dropped
CLOSE_TIMEOUT_S = 5.0  # how long a close waits for the client's close frame
MAX_SUBSCRIPTIONS = 100  # per socket


class PubSubEndpoint:
    """The /pubsub handler of one replica, and the set of its open sockets."""

    def __init__(self, services: Services, listener: ProcessListener) -> None:
        self.services = services
        self.listener = listener
        self._open: set[_Socket] = set()
        self.closing = False  # the server is shutting down: no socket stays open
        per_peer = Cap(services.config.max_websockets_per_peer, "COLONIES_MAX_WEBSOCKETS_PER_PEER")
        self.sockets = PeerCounter("websockets", Cap(0, ""), per_peer)

    @property
    def open_sockets(self) -> int:
        return len(self._open)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = peer_key(request.remote)
        try:
            if self.closing:
                raise Unavailable("Server is shutting down, subscribe on another replica")
            self.sockets.acquire(peer)
        except RpcError as refusal:
            body, status = error_reply(refusal)
            return web.json_response(body, status=status)
        try:
            ws = web.WebSocketResponse(
                max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S, timeout=CLOSE_TIMEOUT_S
            )
            await ws.prepare(request)
            socket = _Socket(ws, self.services, self.listener)
            self._open.add(socket)
            if self.closing:  # the shutdown began while the handshake was under way
                socket.close_soon()
            try:
                await socket.serve()
            finally:
                self._open.discard(socket)
            return ws
        finally:
            self.sockets.release(peer)

    async def close_all(self) -> None:
        """Close every open socket, and every one whose handshake is still under way when it
        ends (server shutdown: clients subscribe again, on another replica)."""
        self.closing = True
        closing = [socket.close_soon() for socket in list(self._open)]
        if closing:
            await asyncio.wait(closing, timeout=CLOSE_TIMEOUT_S)


class _Socket:
    """One client connection: reads subscription frames, runs one task per subscription."""

    def __init__(self, ws: web.WebSocketResponse, services: Services, listener: ProcessListener) -> None:
        self.ws = ws
        self.services = services
        self.listener = listener
        self._subscriptions: set[asyncio.Task[None]] = set()
        self._closer: asyncio.Task[Any] | None = None
        self._send_lock = asyncio.Lock()
        self._subscribed = False  # a valid signed subscription has arrived

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        watchdog = loop.call_later(self.services.config.pubsub_subscribe_timeout_s, self._check_subscribed)
        try:
            async for frame in self.ws:
                if frame.type is WSMsgType.TEXT:
                    self._spawn(self._subscribe(frame.data, loop.time()))
                elif frame.type is WSMsgType.BINARY:
                    self._spawn(self._fail(BadRequest("Bad request, send each RPC envelope as a text frame")))
                else:  # an error frame: aiohttp has already closed the socket
                    break
        finally:
            watchdog.cancel()
            await self._end()

    def _check_subscribed(self) -> None:
        if not self._subscribed:
            seconds = self.services.config.pubsub_subscribe_timeout_s
            self._spawn(self._fail(RequestTimeout(
                f"No valid signed subscription within {seconds:g} s of connecting "
                "(COLONIES_PUBSUB_SUBSCRIBE_TIMEOUT)"
            )))

    def close_soon(self) -> asyncio.Task[Any]:
        """Start closing the socket (once); the reading loop then ends."""
        if self._closer is None:
            self._closer = asyncio.ensure_future(self.ws.close())
        return self._closer

    async def _end(self) -> None:
        tasks = list(self._subscriptions)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.close_soon()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._subscriptions.add(task)
        task.add_done_callback(self._subscriptions.discard)

    async def _subscribe(self, text: str, received_at: float) -> None:
        try:
            if len(self._subscriptions) > MAX_SUBSCRIPTIONS:
                raise BadRequest(f"Bad request, at most {MAX_SUBSCRIPTIONS} subscriptions per socket")
            feed = self._feed(text)
            self._subscribed = True
            push = functools.partial(self._push, feed.reply_type)
            with feed.watch(self.listener) as inbox:
                await feed.check(push)
                deadline = received_at + feed.timeout
                try:
                    async with asyncio.timeout_at(deadline) as window:
                        await feed.follow(inbox, push)
                except TimeoutError:
                    if not window.expired():
                        raise
                    farewell = feed.farewell()
                    if farewell is not None:
                        await push(farewell)
            self.close_soon()
        except Exception as exc:
            await self._fail(exc)

    def _feed(self, text: str) -> feeds.Feed:
        envelope = parse_envelope(text)
        signer = recover_signer(envelope)
        payloadtype = envelope["payloadtype"]
        if payloadtype not in feeds.PAYLOADTYPES:
            raise Forbidden(
                f"invalid rpcMsg.PayloadType: {payloadtype or 'empty'} "
                f"(/pubsub accepts {' and '.join(feeds.PAYLOADTYPES)})"
            )
        data = decode_message(envelope["payload"], payloadtype)
        return feeds.feed_for(self.services.pool, signer, Msg(payloadtype, data))

    async def _push(self, payloadtype: str, message: WireDict | list[WireDict]) -> None:
        await self._send(wire.reply_envelope(payloadtype, to_wire(message)))

    async def _fail(self, exc: Exception) -> None:
        body, _status = error_reply(exc)
        await self._send(body)
        self.close_soon()

    async def _send(self, envelope: dict[str, Any]) -> None:
        if self._closer is not None or self.ws.closed:
            return
        async with self._send_lock:
            try:
                await self.ws.send_str(json.dumps(envelope))
            except ConnectionError as exc:  # the client went away mid-send
                log.debug("pubsub client gone: %s", exc)
                self.close_soon()
