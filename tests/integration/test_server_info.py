"""Server RPCs against a real server: versionmsg and getserverinfomsg (unsigned) and
getstatisticsmsg (server owner)."""

from __future__ import annotations

import base64
import json

import pytest

from pycolonies import Colonies, crypto, func_spec, wire
from pycolonies.errors import ColoniesServerError
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony

STATS_KEYS = {
    "colonies", "executors", "activeexecutors", "unregisteredexecutors",
    "waitingprocesses", "runningprocesses", "successfulprocesses", "failedprocesses", "cancelledprocesses",
    "waitingworkflows", "runningworkflows", "successfulworkflows", "failedworkflows", "cancelledworkflows",
}


def unsigned(msg: dict, payload: str | None = None) -> dict[str, str]:
    return {"signature": "", "payloadtype": msg["msgtype"],
            "payload": wire.encode_payload(msg) if payload is None else payload}


def assert_build_fields(reply: dict) -> None:
    assert isinstance(reply["buildversion"], str) and reply["buildversion"]
    assert isinstance(reply["buildtime"], str) and reply["buildtime"]
    assert wire.parse_time(reply["buildtime"]) is not None  # RFC 3339 with a zone


# -- versionmsg ------------------------------------------------------------------------------------


def test_version_unsigned(server: ServerThread) -> None:
    msg = {"msgtype": "versionmsg", "buildversion": "", "buildtime": ""}
    status, reply = rawrpc.envelope_call(server.url, unsigned(msg))
    assert status == 200, reply
    assert set(reply) == {"buildversion", "buildtime", "msgtype"}
    assert reply["msgtype"] == "versionmsg"
    assert_build_fields(reply)


def test_version_via_sdk_and_ignores_a_signature(client: Colonies, server: ServerThread) -> None:
    reply = client.server_version()
    assert reply["msgtype"] == "versionmsg"
    assert_build_fields(reply)
    # Signed by anybody it is the same answer: there is no signature check.
    msg = {"msgtype": "versionmsg", "buildversion": "x", "buildtime": "y"}
    status, signed = rawrpc.call(server.url, msg, crypto.generate_private_key())
    assert status == 200
    assert signed == reply


def test_version_still_checks_the_msgtype(server: ServerThread) -> None:
    envelope = unsigned({"msgtype": "getcoloniesmsg"})
    envelope["payloadtype"] = "versionmsg"
    status, reply = rawrpc.envelope_call(server.url, envelope)
    assert status == 400
    assert "msgtype" in reply["message"].lower()


# -- getserverinfomsg ------------------------------------------------------------------------------


def test_server_info_unsigned(server: ServerThread) -> None:
    status, reply = rawrpc.envelope_call(server.url, unsigned({"msgtype": "getserverinfomsg"}))
    assert status == 200, reply
    assert set(reply) == {"buildversion", "buildtime", "backends"}
    assert_build_fields(reply)
    assert reply["backends"] == [{"type": "http", "port": server.port, "host": server.host}]


def test_server_info_via_sdk_matches_version(client: Colonies, server: ServerThread) -> None:
    info = client.server_info()
    version = client.server_version()
    assert info["buildversion"] == version["buildversion"]
    assert info["buildtime"] == version["buildtime"]
    assert info["backends"][0]["port"] == server.port
    assert "tls" not in info["backends"][0]


def test_server_info_does_not_parse_the_payload(server: ServerThread) -> None:
    for payload in ("", "not base64!", base64.b64encode(b"[1, 2]").decode()):
        envelope = {"signature": "", "payloadtype": "getserverinfomsg", "payload": payload}
        status, reply = rawrpc.envelope_call(server.url, envelope)
        assert status == 200, (payload, reply)
        assert reply["backends"][0]["type"] == "http"


def test_other_messages_need_a_signature(server: ServerThread) -> None:
    for msgtype in ("getcoloniesmsg", "getstatisticsmsg"):
        status, reply = rawrpc.envelope_call(server.url, unsigned({"msgtype": msgtype}))
        assert status == 403, (msgtype, reply)


# -- getstatisticsmsg ------------------------------------------------------------------------------


def test_statistics_of_an_empty_server(client: Colonies, server: ServerThread) -> None:
    stats = client.server_statistics(server.server_prvkey)
    assert set(stats) == STATS_KEYS
    assert all(value == 0 for value in stats.values()), stats


def test_statistics_count_across_colonies(colony: ColonyEnv) -> None:
    client = colony.client
    other = make_colony(client, colony.server, "other")
    other.add_executor("pending", approve=False)
    colony.add_executor("gone")
    client.remove_executor("dev", "gone", colony.colony_prvkey)
    for env, count in ((colony, 6), (other, 4)):
        for _ in range(count):
            spec = func_spec("echo", [], env.colonyname, env.executortype)
            client.submit_func_spec(spec, env.user_prvkey)
    dev = [client.assign("dev", -1, colony.executor_prvkey) for _ in range(5)]
    for process in dev[:3]:
        client.close(process.processid, [], colony.executor_prvkey)
    client.fail(dev[3].processid, ["x"], colony.executor_prvkey)
    failed = client.assign("other", -1, other.executor_prvkey)
    client.fail(failed.processid, ["x"], other.executor_prvkey)

    stats = client.server_statistics(colony.server_prvkey)
    assert set(stats) == STATS_KEYS
    assert stats == {key: 0 for key in STATS_KEYS} | {
        "colonies": 2,
        "executors": 4,  # executor-1 twice, pending, gone
        "activeexecutors": 2,
        "unregisteredexecutors": 1,
        "waitingprocesses": 4,
        "runningprocesses": 1,
        "successfulprocesses": 3,
        "failedprocesses": 2,
    }


def test_statistics_is_server_owner_only(colony: ColonyEnv) -> None:
    for prvkey in (colony.colony_prvkey, colony.executor_prvkey, colony.user_prvkey,
                   crypto.generate_private_key()):
        with pytest.raises(ColoniesServerError) as info:
            colony.client.server_statistics(prvkey)
        assert info.value.status == 403
        assert info.value.message == "Access denied, not server owner"


def test_reply_envelope_of_unsigned_call(server: ServerThread) -> None:
    """The reply envelope echoes the payload type and carries base64 JSON."""
    msg = {"msgtype": "versionmsg", "buildversion": "", "buildtime": ""}
    status, envelope = rawrpc.post(server.url, json.dumps(unsigned(msg)).encode())
    assert status == 200
    assert envelope["payloadtype"] == "versionmsg"
    assert envelope["error"] is False
    assert json.loads(base64.b64decode(envelope["payload"]))["msgtype"] == "versionmsg"
