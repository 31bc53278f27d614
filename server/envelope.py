"""The signed envelope, for /api and /pubsub alike: parse it, recover its signer, decode its
payload, and turn an exception into the wire error reply with its HTTP status."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import asyncpg
import msgpack

from pycolonies import jsontext, wire
from pycolonies.crypto import SignatureError, recover_id
from server import db
from server.errors import BadRequest, Forbidden, RpcError
from server.payload import JsonRejected, load_json, text_problem

log = logging.getLogger(__name__)


def error_reply(exc: Exception) -> tuple[dict[str, Any], int]:
    """The wire error envelope and HTTP status for an exception raised while serving a request."""
    if isinstance(exc, RpcError):
        return wire.error_envelope(exc.status, exc.message), exc.status
    if isinstance(exc, (asyncpg.DataError, OverflowError)):
        return wire.error_envelope(400, f"Invalid value: {exc}"), 400
    if isinstance(exc, db.UNAVAILABLE_ERRORS):
        # It did not take effect or, at worst, committed just before the connection was lost
        # (server.rpc keeps such a request's replay record where that can be): a retryable 503.
        log.warning("database unavailable: %s", exc)
        return wire.error_envelope(503, "Database unavailable, try again"), 503
    log.error("unexpected error handling request", exc_info=exc)
    return wire.error_envelope(500, "Internal server error"), 500


def parse_envelope(raw: bytes | str, use_msgpack: bool = False) -> dict[str, str]:
    """A request envelope with its three fields as strings (missing or null ones are "")."""
    try:
        envelope = msgpack.unpackb(raw) if use_msgpack else jsontext.loads(raw)
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
        elif problem := text_problem(value):
            raise BadRequest(f"Bad request, envelope field {key} {problem}")
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
