"""The msgpack transport: the same envelope as a msgpack map, replies and errors in msgpack."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import msgpack
import pytest

from pycolonies import (
    AccessDeniedError,
    AsyncColonies,
    BadRequestError,
    Colonies,
    NotFoundError,
    wire,
)
from tests.conftest import ColonyEnv

MSGPACK = wire.MSGPACK_CONTENT_TYPE


def spec(colony: ColonyEnv, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "funcname": "echo",
        "args": ["hello", 1.5, None, {"nested": [1, 2]}],
        "kwargs": {"k": [True, None]},
        "maxwaittime": -1,
        "maxexectime": -1,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype},
        "env": {"E": "1"},
    }
    body.update(overrides)
    return body


def post_msgpack(url: str, body: bytes, content_type: str = MSGPACK) -> tuple[int, str, dict[str, Any]]:
    """POST raw bytes; return (status, reply content type, msgpack-decoded reply envelope)."""
    request = urllib.request.Request(f"{url}/api", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, ctype, raw = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        status, ctype, raw = error.code, error.headers.get("Content-Type", ""), error.read()
    return status, ctype, msgpack.unpackb(raw, raw=False)


def call_msgpack(url: str, msg: dict[str, Any], prvkey: str) -> tuple[int, dict[str, Any], Any]:
    """Sign ``msg``, send it as a msgpack envelope; return (status, reply envelope, decoded payload)."""
    body = msgpack.packb(wire.signed_request(msg, prvkey), use_bin_type=True)
    status, ctype, reply = post_msgpack(url, body)
    assert MSGPACK in ctype
    return status, reply, wire.decode_payload(reply["payload"])


def msgpack_error(status: int, reply: dict[str, Any], expected: int) -> str:
    assert status == expected, reply
    assert reply["payloadtype"] == wire.ERROR_PAYLOADTYPE
    assert reply["error"] is True
    payload = wire.decode_payload(reply["payload"])
    assert payload["status"] == expected
    return payload["message"]


def test_raw_msgpack_submit_and_get(colony: ColonyEnv) -> None:
    url = colony.server.url
    status, reply, process = call_msgpack(
        url, {"msgtype": "submitfuncspecmsg", "spec": spec(colony)}, colony.user_prvkey
    )
    assert status == 200
    assert reply["payloadtype"] == "submitfuncspecmsg"
    assert reply["error"] is False
    assert process["state"] == wire.WAITING
    assert process["initiatorname"] == colony.username
    assert process["spec"]["args"] == ["hello", 1.5, None, {"nested": [1, 2]}]
    assert process["spec"]["env"] == {"E": "1"}

    status, reply, got = call_msgpack(
        url, {"msgtype": "getprocessmsg", "processid": process["processid"]}, colony.user_prvkey
    )
    assert status == 200
    assert reply["payloadtype"] == "getprocessmsg"
    assert got["processid"] == process["processid"]
    assert got["spec"]["kwargs"] == {"k": [True, None]}

    # The JSON client sees the process that arrived over msgpack.
    assert colony.client.get_process(process["processid"], colony.user_prvkey).spec.funcname == "echo"

    status, _, listed = call_msgpack(
        url, {"msgtype": "getprocessesmsg", "colonyname": colony.colonyname, "count": 10, "state": 0},
        colony.executor_prvkey,
    )
    assert status == 200
    assert [p["processid"] for p in listed] == [process["processid"]]


def test_msgpack_errors_are_msgpack_encoded(colony: ColonyEnv) -> None:
    url = colony.server.url
    status, reply, _ = call_msgpack(url, {"msgtype": "getprocessmsg", "processid": "0" * 64},
                                    colony.user_prvkey)
    assert "not found" in msgpack_error(status, reply, 404)

    status, reply, _ = call_msgpack(url, {"msgtype": "submitfuncspecmsg"}, colony.user_prvkey)
    assert "spec" in msgpack_error(status, reply, 400)

    envelope = wire.signed_request({"msgtype": "submitfuncspecmsg", "spec": spec(colony)}, colony.user_prvkey)
    envelope["signature"] = "ab" * 10
    status, ctype, reply = post_msgpack(url, msgpack.packb(envelope))
    assert MSGPACK in ctype
    assert "signature length" in msgpack_error(status, reply, 403)

    envelope = wire.signed_request({"msgtype": "x"}, colony.user_prvkey)
    status, _, reply = post_msgpack(url, msgpack.packb(envelope))
    assert msgpack_error(status, reply, 403) == "invalid rpcMsg.PayloadType: x"

    assert colony.client.list_processes(colony.colonyname, 10, wire.WAITING, colony.user_prvkey) == []


def test_malformed_msgpack_body(colony: ColonyEnv) -> None:
    cases = [
        (b"\xc1\xc1\xc1", "msgpack"),  # 0xc1 is never valid msgpack
        (b'{"payloadtype": "versionmsg"}', "msgpack"),  # JSON labelled as msgpack
        (msgpack.packb([1, 2, 3]), "must be an object"),
        (msgpack.packb({"payloadtype": "versionmsg", "payload": b"\x00\x01", "signature": ""},
                       use_bin_type=True), "payload"),
    ]
    for body, fragment in cases:
        code, ctype, reply = post_msgpack(colony.server.url, body)
        assert MSGPACK in ctype
        assert fragment in msgpack_error(code, reply, 400)
    assert colony.client.server_version()["buildversion"]


def test_unsigned_version_over_msgpack(colony: ColonyEnv) -> None:
    envelope = {"signature": "", "payloadtype": "versionmsg",
                "payload": wire.encode_payload({"msgtype": "versionmsg"})}
    status, _, reply = post_msgpack(colony.server.url, msgpack.packb(envelope))
    assert status == 200
    assert reply["error"] is False
    assert wire.decode_payload(reply["payload"])["buildversion"]


def test_sdk_with_msgpack_end_to_end(colony: ColonyEnv) -> None:
    with Colonies(colony.server.host, colony.server.port, use_msgpack=True) as sdk:
        assert sdk.server_version()["buildversion"]
        submitted = sdk.submit_func_spec(spec(colony), colony.user_prvkey)
        assert submitted.state == wire.WAITING
        assert submitted.spec.env == {"E": "1"}
        assigned = sdk.assign(colony.colonyname, 5, colony.executor_prvkey)
        assert assigned.processid == submitted.processid
        assert assigned.state == wire.RUNNING
        sdk.add_log(assigned.processid, "via msgpack", colony.executor_prvkey)
        attribute = sdk.add_attribute(assigned.processid, "k", "v", colony.executor_prvkey)
        assert sdk.get_attribute(attribute["attributeid"], colony.user_prvkey)["value"] == "v"
        sdk.set_output(assigned.processid, [{"partial": 0.5}], colony.executor_prvkey)
        sdk.close(assigned.processid, [{"result": [1, 2.5, None]}], colony.executor_prvkey)
        got = sdk.get_process(submitted.processid, colony.user_prvkey)
        assert got.state == wire.SUCCESS
        assert got.output == [{"result": [1, 2.5, None]}]
        logs = sdk.get_process_log(colony.colonyname, submitted.processid, 10, 0, colony.user_prvkey)
        assert [e["message"] for e in logs] == ["via msgpack"]
        listed = sdk.list_processes(colony.colonyname, 10, wire.SUCCESS, colony.user_prvkey)
        assert [p["processid"] for p in listed] == [submitted.processid]

        # Errors come back typed over msgpack too.
        with pytest.raises(NotFoundError, match="No process available"):
            sdk.assign(colony.colonyname, -1, colony.executor_prvkey)
        with pytest.raises(BadRequestError, match="timeout cannot be zero"):
            sdk.assign(colony.colonyname, 0, colony.executor_prvkey)
        with pytest.raises(AccessDeniedError):
            sdk.assign(colony.colonyname, -1, colony.user_prvkey)
        with pytest.raises(BadRequestError, match="already closed"):
            sdk.close(submitted.processid, ["again"], colony.executor_prvkey)
        sdk.remove_process(submitted.processid, colony.user_prvkey)
        with pytest.raises(NotFoundError):
            sdk.get_process(submitted.processid, colony.user_prvkey)
    # A JSON client agrees.
    assert colony.client.list_processes(colony.colonyname, 10, wire.SUCCESS, colony.user_prvkey) == []


def test_async_sdk_with_msgpack(colony: ColonyEnv) -> None:
    async def scenario() -> None:
        async with AsyncColonies(colony.server.host, colony.server.port, use_msgpack=True) as sdk:
            submitted = await sdk.submit_func_spec(spec(colony), colony.user_prvkey)
            assigned = await sdk.assign(colony.colonyname, 5, colony.executor_prvkey)
            assert assigned.processid == submitted.processid
            await sdk.fail(assigned.processid, ["msgpack failure"], colony.executor_prvkey)
            got = await sdk.get_process(submitted.processid, colony.user_prvkey)
            assert got.state == wire.FAILED
            assert got.errors == ["msgpack failure"]
            with pytest.raises(NotFoundError):
                await sdk.get_process("0" * 64, colony.user_prvkey)

    asyncio.run(scenario())
