"""Client-side RPC codec shared by the sync and async clients (no I/O here).

A call is: message dict -> request envelope (signed, or unsigned for ``versionmsg`` and
``getserverinfomsg``) -> HTTP body (JSON, or msgpack when asked) -> reply body -> reply envelope
-> decoded payload JSON, or a typed :class:`~pycolonies.errors.ColoniesServerError`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import msgpack

from pycolonies import wire
from pycolonies.errors import ColoniesConnectionError, server_error

JSON_CONTENT_TYPE = "application/json"
ASSIGN_MSGTYPE = "assignprocessmsg"


def request_envelope(msg: dict[str, Any], prvkey: str | None) -> dict[str, str]:
    """Signed envelope for ``msg``; with ``prvkey=None`` the signature is ``""`` (unsigned types).

    Signed messages carry a random ``requestnonce`` and the ``requesttime`` (Unix ns), so every
    request is unique and a captured one cannot be replayed (servers without replay protection
    ignore both fields).
    """
    if prvkey is not None:
        fresh = {**msg, "requestnonce": os.urandom(16).hex(), "requesttime": time.time_ns()}
        return wire.signed_request(fresh, prvkey)
    return {"signature": "", "payloadtype": msg["msgtype"], "payload": wire.encode_payload(msg)}


def encode_request(envelope: dict[str, str], use_msgpack: bool) -> tuple[bytes, dict[str, str]]:
    """HTTP body and headers for a request envelope."""
    if use_msgpack:
        body = msgpack.packb(envelope, use_bin_type=True)
        content_type = wire.MSGPACK_CONTENT_TYPE
    else:
        body = json.dumps(envelope).encode()
        content_type = JSON_CONTENT_TYPE
    return body, {"Content-Type": content_type, "Accept": content_type}


def http_timeout(msg: dict[str, Any], base: float | None) -> float | None:
    """Socket timeout for one call: an assign long-poll gets its own timeout on top of ``base``."""
    if base is None:
        return None
    if msg.get("msgtype") == ASSIGN_MSGTYPE:
        poll = msg.get("timeout")
        if isinstance(poll, (int, float)) and poll > 0:
            return base + float(poll)
    return base


def decode_reply(body: bytes, content_type: str, status: int, where: str) -> Any:
    """Decoded payload of a reply, or raise the typed error the reply describes.

    ``where`` (e.g. ``host:port``) is used in messages about replies that are not envelopes.
    """
    envelope = _parse_envelope(body, content_type, status, where)
    try:
        payload = _decode_payload(envelope.get("payload", ""))
    except ValueError as exc:
        raise ColoniesConnectionError(
            f"invalid reply payload from {where} (HTTP {status}): {exc}", status
        ) from exc
    if envelope.get("error"):
        if isinstance(payload, dict):
            code = payload.get("status")
            message = payload.get("message")
        else:
            code, message = None, None
        if not isinstance(code, int) or isinstance(code, bool):
            code = status
        if not isinstance(message, str):
            message = f"server error (HTTP {status})"
        raise server_error(code, message)
    if status >= 400:
        raise ColoniesConnectionError(f"unexpected HTTP {status} from {where} without an error flag", status)
    return payload


def _parse_envelope(body: bytes, content_type: str, status: int, where: str) -> dict[str, Any]:
    is_msgpack = wire.MSGPACK_CONTENT_TYPE in (content_type or "").lower()
    try:
        envelope = msgpack.unpackb(body, raw=False) if is_msgpack else json.loads(body)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ColoniesConnectionError(_not_envelope(body, status, where), status) from exc
    if not isinstance(envelope, dict) or "payload" not in envelope:
        raise ColoniesConnectionError(_not_envelope(body, status, where), status)
    return envelope


def _decode_payload(payload: Any) -> Any:
    if isinstance(payload, bytes):
        payload = payload.decode("ascii", errors="strict")
    if not isinstance(payload, str):
        raise ValueError("payload is not a base64 string")
    if payload == "":
        return None
    return wire.decode_payload(payload)


def _not_envelope(body: bytes, status: int, where: str) -> str:
    snippet = body[:200].decode("utf-8", errors="replace").strip()
    return f"invalid reply from {where} (HTTP {status}), not a Colonies reply envelope: {snippet!r}"
