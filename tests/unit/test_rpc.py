"""The client-side envelope codec: signing, encodings, reply decoding and error mapping."""

from __future__ import annotations

import base64
import json
import re
import time

import msgpack
import pytest

from pycolonies import (
    AccessDeniedError,
    BadRequestError,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesServerError,
    NotFoundError,
    crypto,
    rpc,
    wire,
)

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
KEY_ID = "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac"


def _reply(body: object, error: bool = False, payloadtype: str = "x") -> bytes:
    return json.dumps(
        {"payloadtype": payloadtype, "payload": wire.encode_payload(body), "error": error}
    ).encode()


def test_signed_envelope_recovers_signer() -> None:
    msg = {"msgtype": "getcolonymsg", "colonyname": "dev"}
    env = rpc.request_envelope(msg, KEY)
    assert env["payloadtype"] == "getcolonymsg"
    sent = json.loads(base64.b64decode(env["payload"]))
    nonce, request_time = sent.pop("requestnonce"), sent.pop("requesttime")
    assert sent == msg
    assert re.fullmatch(r"[0-9a-f]{32}", nonce)
    assert abs(request_time - time.time_ns()) < 60 * 10**9
    assert crypto.recover_id(env["payload"], env["signature"]) == KEY_ID


def test_signed_envelopes_of_the_same_message_differ() -> None:
    """Every signed request is unique, so a server can refuse replays without refusing repeats."""
    msg = {"msgtype": "closesuccessfulmsg", "processid": "p", "out": []}
    first, second = rpc.request_envelope(msg, KEY), rpc.request_envelope(msg, KEY)
    assert first["signature"] != second["signature"]
    assert first["payload"] != second["payload"]


def test_unsigned_envelope_has_empty_signature() -> None:
    env = rpc.request_envelope({"msgtype": "versionmsg"}, None)
    assert env["signature"] == ""
    assert env["payloadtype"] == "versionmsg"
    assert json.loads(base64.b64decode(env["payload"])) == {"msgtype": "versionmsg"}


def test_json_and_msgpack_request_bodies() -> None:
    env = rpc.request_envelope({"msgtype": "versionmsg"}, None)
    body, headers = rpc.encode_request(env, use_msgpack=False)
    assert json.loads(body) == env
    assert headers["Content-Type"] == "application/json"
    body, headers = rpc.encode_request(env, use_msgpack=True)
    assert msgpack.unpackb(body) == env
    assert headers["Content-Type"] == "application/msgpack"


def test_http_timeout_covers_the_assign_long_poll() -> None:
    assert rpc.http_timeout({"msgtype": "getprocessmsg"}, None) is None
    assert rpc.http_timeout({"msgtype": "getprocessmsg"}, 5) == 5
    assert rpc.http_timeout({"msgtype": "assignprocessmsg", "timeout": 30}, 5) == 35
    assert rpc.http_timeout({"msgtype": "assignprocessmsg", "timeout": -1}, 5) == 5
    assert rpc.http_timeout({"msgtype": "assignprocessmsg", "timeout": 30}, None) is None


def test_decode_success_reply() -> None:
    assert rpc.decode_reply(_reply({"a": [1, 2.5]}), "text/plain", 200, "h:1") == {"a": [1, 2.5]}
    assert rpc.decode_reply(_reply(None), "", 200, "h:1") is None


def test_decode_msgpack_reply() -> None:
    body = msgpack.packb({"payloadtype": "x", "payload": wire.encode_payload([1, "a"]), "error": False})
    assert rpc.decode_reply(body, "application/msgpack", 200, "h:1") == [1, "a"]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, AccessDeniedError),
        (404, NotFoundError),
        (500, ColoniesServerError),
        (408, ColoniesServerError),
    ],
)
def test_error_reply_raises_typed_error(status: int, cls: type[ColoniesServerError]) -> None:
    body = _reply({"status": status, "message": "No process available for assignment"}, error=True)
    with pytest.raises(cls) as info:
        rpc.decode_reply(body, "", status, "h:1")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, ColoniesConnectionError)  # reference-compatible catch
    assert isinstance(err, ColoniesError)
    assert err.status == status
    assert err.message == str(err) == "No process available for assignment"


def test_error_reply_without_status_uses_http_status() -> None:
    body = _reply({"message": "denied"}, error=True)
    with pytest.raises(AccessDeniedError) as info:
        rpc.decode_reply(body, "", 403, "h:1")
    assert info.value.status == 403


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"",
        b"[1, 2]",
        b'{"payloadtype": "x", "payload": "%%%not base64", "error": false}',
        b'{"payloadtype": "x", "payload": "bm90IGpzb24=", "error": false}',
    ],
)
def test_non_envelope_replies_raise_connection_errors(body: bytes) -> None:
    with pytest.raises(ColoniesConnectionError) as info:
        rpc.decode_reply(body, "text/html", 502, "myhost:1234")
    assert not isinstance(info.value, ColoniesServerError)
    assert "myhost:1234" in str(info.value)
    assert info.value.status == 502


def test_error_repr_and_hierarchy() -> None:
    err = NotFoundError("gone", 404)
    assert repr(err) == "NotFoundError('gone', status=404)"
    assert issubclass(ColoniesServerError, ColoniesConnectionError)
    assert ColoniesError("x").status is None
