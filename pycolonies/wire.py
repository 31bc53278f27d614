"""The ColonyOS RPC envelope, reply/error shapes, constants and timestamp format.

Request envelope:  {"signature": hex, "payloadtype": type, "payload": base64(json)}
Reply envelope:    {"payloadtype": type, "payload": base64(json), "error": bool}
Error payload:     {"status": int, "message": str}
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from pycolonies import crypto, jsontext

# Process and process-graph states
WAITING = 0
RUNNING = 1
SUCCESS = 2
FAILED = 3
CANCELLED = 4
NOTSET = -1

# Executor states
PENDING = 0
APPROVED = 1
REJECTED = 2
UNREGISTERED = 3

# Attribute types
IN = 0
OUT = 1
ERR = 2
ENV = 3

MAX_COUNT = 100
MAX_LOG_COUNT = 500
MIN_PRIORITY = -50000
MAX_PRIORITY = 50000
PRIORITY_TIME_UNIT_NS = 86_400_000_000_000  # one priority point is worth one day of queueing age

ZERO_TIME = "0001-01-01T00:00:00Z"
ERROR_PAYLOADTYPE = "error"
MSGPACK_CONTENT_TYPE = "application/msgpack"


def encode_payload(msg: dict[str, Any]) -> str:
    """Standard base64 (with padding) of the message's JSON text."""
    return base64.b64encode(jsontext.dumps_bytes(msg)).decode()


def decode_payload(payload: str) -> Any:
    """Decode a base64 JSON payload (reply side); raises ValueError on bad base64 or JSON."""
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("payload is not valid base64") from exc
    return jsontext.loads(raw) if raw else None


def signed_request(msg: dict[str, Any], prvkey: str) -> dict[str, str]:
    """Build a signed request envelope for ``msg`` (which must carry ``msgtype``)."""
    payload = encode_payload(msg)
    return {
        "signature": crypto.sign(payload, prvkey),
        "payloadtype": msg["msgtype"],
        "payload": payload,
    }


def reply_envelope(payloadtype: str, body: Any) -> dict[str, Any]:
    return {"payloadtype": payloadtype, "payload": encode_payload(body), "error": False}


def error_envelope(status: int, message: str) -> dict[str, Any]:
    return {
        "payloadtype": ERROR_PAYLOADTYPE,
        "payload": encode_payload({"status": status, "message": message}),
        "error": True,
    }


def format_time(value: datetime | None) -> str:
    """RFC 3339 with fractional seconds trimmed and a zone; None is Go's zero time."""
    if value is None:
        return ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += ("." + f"{value.microsecond:06d}").rstrip("0")
    return text + "Z"


_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(text: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp (nanoseconds allowed); the zero time and empty give None."""
    if not text or text.startswith("0001-01-01T00:00:00"):
        return None
    match = _TIME_RE.match(text)
    if not match:
        raise ValueError(f"invalid RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    iso = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro:06d}"
    iso += "+00:00" if zone in ("Z", "z") else zone
    return datetime.fromisoformat(iso).astimezone(UTC)
