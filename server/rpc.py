"""POST /api: parse the envelope, recover the signer, dispatch by payloadtype, shape the reply.

The order of checks follows the reference server so that error precedence matches:
envelope JSON -> unsigned types -> signature recovery -> payload type lookup -> payload JSON ->
msgtype == payloadtype -> handler (authorization, then business logic).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import asyncpg
import msgpack
from aiohttp import web

from pycolonies import jsontext, wire
from pycolonies.codec import to_wire
from server import db
from server.context import Call, Handler, Services, reply_type
from server.envelope import decode_message, error_reply, parse_envelope, recover_signer
from server.errors import Forbidden, Replayed
from server.handlers import routing_table
from server.handlers.serverinfo import UNSIGNED
from server.metrics import CANCELLED, UNKNOWN
from server.params import Msg
from server.store import seen_requests

_EMPTY_TYPE_HINT = (
    "invalid rpcMsg.PayloadType: empty (this usually means the client is misconfigured - check that "
    "COLONIES_PRVKEY and other environment variables are set correctly)"
)


class RpcEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.handlers: dict[str, Handler] = routing_table()

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one request, and count it (metrics) by its type and status, with its duration.
        A type that no handler has is counted as ``unknown`` (unsigned clients choose it); a
        request whose client left before the reply (the handler was cancelled), as ``cancelled``."""
        started = time.perf_counter()
        label, status = UNKNOWN, CANCELLED
        try:
            use_msgpack = request.content_type == wire.MSGPACK_CONTENT_TYPE
            try:
                envelope = await self._read_envelope(request, use_msgpack)
                payloadtype = envelope["payloadtype"]
                if payloadtype in self.handlers:
                    label = payloadtype
                result = await self.dispatch(envelope)
                body = wire.reply_envelope(reply_type(self.handlers.get(payloadtype), payloadtype),
                                           to_wire(result))
                status = 200
            except Exception as exc:
                body, status = error_reply(exc)
                if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
                    # The pool reached a standby (a failover demoted its server): re-open every
                    # connection, which finds the primary again (db.primary_dsn).
                    self.services.pool.expire_connections()
            if use_msgpack:
                return web.Response(
                    body=msgpack.packb(body), status=status, content_type=wire.MSGPACK_CONTENT_TYPE
                )
            return web.Response(body=jsontext.dumps_bytes(body), status=status,
                                content_type="application/json", charset="utf-8")
        finally:
            self.services.metrics.request(label, status, time.perf_counter() - started)

    async def _read_envelope(self, request: web.Request, use_msgpack: bool) -> dict[str, str]:
        async with self.services.bodies.read(request) as raw:  # 413/429/503/408 past the limits
            return parse_envelope(raw, use_msgpack)

    async def dispatch(self, envelope: dict[str, str]) -> Any:
        payloadtype = envelope["payloadtype"]
        payload = envelope["payload"]
        signer = "" if payloadtype in UNSIGNED else recover_signer(envelope)
        handler = self.handlers.get(payloadtype)
        if handler is None:
            raise Forbidden(
                f"invalid rpcMsg.PayloadType: {payloadtype}" if payloadtype else _EMPTY_TYPE_HINT
            )
        if payloadtype == "getserverinfomsg":
            return await handler(Call(self.services, signer, Msg(payloadtype, {})))
        data = decode_message(payload, payloadtype)
        if not signer:
            return await handler(Call(self.services, signer, Msg(payloadtype, data)))
        replay = self.services.replay
        key = replay.key_for(payloadtype, data, envelope["signature"])
        records_itself = getattr(handler, "records_replay", False)
        if key is not None and not records_itself:
            # On the durable pool: a record that a failover could lose while the change it
            # guards survived would let a retry apply the change twice.
            await seen_requests.record(self.services.pool, key)
        try:
            return await handler(Call(self.services, signer, Msg(payloadtype, data), replay_key=key))
        except Replayed:
            raise
        except Exception as exc:
            # The request did not take effect: let the client retry it. Unless the database went
            # away under a handler that records the request in its own statement: whether that
            # committed is unknown here, and the record commits with the change, so it must stay
            # for a retry to be refused as a replay rather than applied again. (An assign whose
            # first look found nothing is then refused too, although nothing was handed out.)
            if not (records_itself and isinstance(exc, db.UNAVAILABLE_ERRORS)):
                with contextlib.suppress(Exception):
                    await seen_requests.forget(self.services.pool, key)
            raise
