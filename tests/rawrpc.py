"""Raw wire access for tests that must send what no well-behaved client would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pycolonies import wire


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    """POST ``body`` to ``url``/api; return (HTTP status, decoded reply envelope)."""
    request = urllib.request.Request(f"{url}/api", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw)


def call(url: str, msg: dict[str, Any], prvkey: str) -> tuple[int, Any]:
    """Sign and send ``msg``; return (HTTP status, decoded reply payload)."""
    status, envelope = post(url, json.dumps(wire.signed_request(msg, prvkey)).encode())
    return status, wire.decode_payload(envelope["payload"])


def envelope_call(url: str, envelope: dict[str, Any]) -> tuple[int, Any]:
    """Send a hand-built envelope; return (HTTP status, decoded reply payload)."""
    status, reply = post(url, json.dumps(envelope).encode())
    return status, wire.decode_payload(reply["payload"])
