"""POST /api: parse the envelope, recover the signer, dispatch by payloadtype, shape the reply.

The order of checks follows the reference server so that error precedence matches:
envelope JSON -> unsigned types -> signature recovery -> payload type lookup -> payload JSON ->
msgtype == payloadtype -> handler (authorization, then business logic).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from typing import Any

import asyncpg
import msgpack
from aiohttp import web

from pycolonies import wire
from pycolonies.codec import to_wire
from pycolonies.crypto import SignatureError, recover_id
from server.context import Call, Handler, Services
from server.errors import BadRequest, Forbidden, Replayed, RpcError
from server.handlers import routing_table
from server.handlers.serverinfo import UNSIGNED
from server.params import Msg
from server.payload import JsonRejected, load_json, text_problem

log = logging.getLogger(__name__)

_EMPTY_TYPE_HINT = (
    "invalid rpcMsg.PayloadType: empty (this usually means the client is misconfigured - check that "
    "COLONIES_PRVKEY and other environment variables are set correctly)"
)


class RpcEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.handlers: dict[str, Handler] = routing_table()

    async def handle(self, request: web.Request) -> web.Response:
        use_msgpack = request.content_type == wire.MSGPACK_CONTENT_TYPE
        try:
            envelope = await self._read_envelope(request, use_msgpack)
            payloadtype = envelope["payloadtype"]
            result = await self.dispatch(envelope)
            body = wire.reply_envelope(payloadtype, to_wire(result))
            status = 200
        except Exception as exc:
            body, status = error_reply(exc)
        if use_msgpack:
            return web.Response(
                body=msgpack.packb(body), status=status, content_type=wire.MSGPACK_CONTENT_TYPE
            )
        return web.Response(text=json.dumps(body), status=status, content_type="application/json")

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
        if key is not None and not getattr(handler, "records_replay", False):
            await replay.record(self.services.relaxed_pool, key)
        try:
            return await handler(Call(self.services, signer, Msg(payloadtype, data), replay_key=key))
        except Replayed:
            raise
        except Exception:
            # The request did not take effect: let the client retry it.
            with contextlib.suppress(Exception):
                await replay.forget(self.services.relaxed_pool, key)
            raise


def error_reply(exc: Exception) -> tuple[dict[str, Any], int]:
    """The wire error envelope and HTTP status for an exception raised while serving a request."""
    if isinstance(exc, RpcError):
        return wire.error_envelope(exc.status, exc.message), exc.status
    if isinstance(exc, (asyncpg.DataError, OverflowError)):
        return wire.error_envelope(400, f"Invalid value: {exc}"), 400
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
        log.warning("database unavailable: %s", exc)
        return wire.error_envelope(503, "Database unavailable, try again"), 503
    log.error("unexpected error handling request", exc_info=exc)
    return wire.error_envelope(500, "Internal server error"), 500


def parse_envelope(raw: bytes | str, use_msgpack: bool = False) -> dict[str, str]:
    """A request envelope with its three fields as strings (missing or null ones are "")."""
    try:
        envelope = msgpack.unpackb(raw) if use_msgpack else json.loads(raw)
    except Exception as exc:
        raise BadRequest("Bad request, the body is not a valid RPC envelope "
                         f"({'msgpack' if use_msgpack else 'JSON'} decode failed)") from exc
    if not isinstance(envelope, dict):
        raise BadRequest("Bad request, the RPC envelope must be an object")
    for key in ("payloadtype", "payload", "signature"):
        value = envelope.get(key)
        if value is None:
            envelope[key] = ""
        elif not isinstance(value, str):
            raise BadRequest(f"Bad request, envelope field {key} must be a string")
        elif text_problem(value):
            raise BadRequest(f"Bad request, envelope field {key} {text_problem(value)}")
    return envelope


def recover_signer(envelope: dict[str, str]) -> str:
    """The id of the key that signed the envelope's payload; 403 if the signature does not verify."""
    try:
        return recover_id(envelope["payload"], envelope["signature"])
    except SignatureError as exc:
        raise Forbidden(str(exc)) from exc


def decode_message(payload: str, payloadtype: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"Failed to decode {payloadtype}, payload is not valid base64") from exc
    try:
        data = load_json(raw)
    except JsonRejected as exc:
        raise BadRequest(f"Invalid {payloadtype}: {exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"Failed to decode {payloadtype}, invalid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"Failed to decode {payloadtype}, the message must be a JSON object")
    if data.get("msgtype") != payloadtype:
        raise BadRequest(f"Failed to decode {payloadtype}, msg.MsgType does not match payloadType")
    return data
