"""Replay protection: a captured state-changing request cannot be sent again."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg

from pycolonies import Colonies, wire
from pycolonies import rpc as client_rpc
from server import replay
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony


def _send(url: str, envelope: dict[str, str]) -> tuple[int, dict]:
    status, reply = rawrpc.post(url, json.dumps(envelope).encode())
    return status, wire.decode_payload(reply["payload"])


def _executor_state(env: ColonyEnv, name: str) -> int:
    return env.client.get_executor(env.colonyname, name, env.user_prvkey)["state"]


def test_sdk_requests_cannot_be_replayed(colony: ColonyEnv) -> None:
    colony.add_executor("worker-2", approve=False)
    approve = client_rpc.request_envelope(
        {"msgtype": "approveexecutormsg", "colonyname": colony.colonyname, "executorname": "worker-2"},
        colony.colony_prvkey,
    )
    assert _send(colony.server.url, approve)[0] == 200
    colony.client.reject_executor(colony.colonyname, "worker-2", colony.colony_prvkey)

    status, error = _send(colony.server.url, approve)  # an attacker replays the captured approval
    assert status == 403
    assert "Replayed request refused" in error["message"]
    assert _executor_state(colony, "worker-2") == wire.REJECTED


def test_sdk_requests_are_unique_so_repeating_an_operation_works(colony: ColonyEnv) -> None:
    first = client_rpc.request_envelope({"msgtype": "getcolonymsg", "colonyname": "dev"}, colony.user_prvkey)
    second = client_rpc.request_envelope({"msgtype": "getcolonymsg", "colonyname": "dev"}, colony.user_prvkey)
    assert first["signature"] != second["signature"]
    colony.add_executor("worker-3", approve=False)
    for _ in range(3):  # the same operation, issued three times by the SDK, is three requests
        colony.client.approve_executor(colony.colonyname, "worker-3", colony.colony_prvkey)
    assert _executor_state(colony, "worker-3") == wire.APPROVED


def test_stale_request_time_is_refused(colony: ColonyEnv) -> None:
    msg = {"msgtype": "rejectexecutormsg", "colonyname": colony.colonyname,
           "executorname": colony.executorname, "requestnonce": "ab" * 16,
           "requesttime": time.time_ns() - 3600 * 10**9}
    status, error = _send(colony.server.url, wire.signed_request(msg, colony.colony_prvkey))
    assert status == 403
    assert "clock" in error["message"] and "replay window" in error["message"]
    assert _executor_state(colony, colony.executorname) == wire.APPROVED


def test_legacy_state_change_replay_is_refused_within_the_window(colony: ColonyEnv) -> None:
    """Reference clients send no requesttime: an identical signed request is accepted once."""
    colony.add_executor("worker-4", approve=False)
    approve = wire.signed_request(
        {"msgtype": "approveexecutormsg", "colonyname": colony.colonyname, "executorname": "worker-4"},
        colony.colony_prvkey,
    )
    assert _send(colony.server.url, approve)[0] == 200
    colony.client.reject_executor(colony.colonyname, "worker-4", colony.colony_prvkey)
    status, error = _send(colony.server.url, approve)
    assert status == 403 and "Replayed" in error["message"]
    assert _executor_state(colony, "worker-4") == wire.REJECTED


def test_legacy_repeatable_requests_still_work(colony: ColonyEnv) -> None:
    """The reference client signs deterministically: submitting the same spec twice must work."""
    spec = {"funcname": "same", "conditions": {"colonyname": colony.colonyname,
                                                "executortype": colony.executortype}}
    submit = wire.signed_request({"msgtype": "submitfuncspecmsg", "spec": spec}, colony.user_prvkey)
    first, second = _send(colony.server.url, submit), _send(colony.server.url, submit)
    assert first[0] == second[0] == 200
    assert first[1]["processid"] != second[1]["processid"]
    poll = wire.signed_request({"msgtype": "assignprocessmsg", "colonyname": colony.colonyname,
                                "timeout": -1}, colony.executor_prvkey)
    assert _send(colony.server.url, poll)[0] == 200
    assert _send(colony.server.url, poll)[0] == 200


def test_a_failed_request_can_be_retried(colony: ColonyEnv) -> None:
    approve = wire.signed_request(
        {"msgtype": "approveexecutormsg", "colonyname": colony.colonyname, "executorname": "late"},
        colony.colony_prvkey,
    )
    assert _send(colony.server.url, approve)[0] == 404
    colony.add_executor("late", approve=False)
    assert _send(colony.server.url, approve)[0] == 200  # not refused as a replay: it failed before
    assert _executor_state(colony, "late") == wire.APPROVED


def test_reads_are_never_recorded(colony: ColonyEnv) -> None:
    read = wire.signed_request({"msgtype": "getcolonymsg", "colonyname": colony.colonyname},
                               colony.user_prvkey)
    for _ in range(3):
        assert _send(colony.server.url, read)[0] == 200


def test_expired_legacy_signatures_are_forgotten(colony: ColonyEnv, database: str) -> None:
    colony.add_executor("worker-5", approve=False)
    approve = wire.signed_request(
        {"msgtype": "approveexecutormsg", "colonyname": colony.colonyname, "executorname": "worker-5"},
        colony.colony_prvkey,
    )
    assert _send(colony.server.url, approve)[0] == 200

    async def expire_all() -> int:
        con = await asyncpg.connect(database)
        try:
            await con.execute("UPDATE seen_requests SET seen_at = now() - interval '1 hour'")
            return await replay.expire(con, 300)
        finally:
            await con.close()

    assert asyncio.run(expire_all()) >= 1
    assert _send(colony.server.url, approve)[0] == 200


def test_require_request_time_refuses_legacy_state_changes(database: str) -> None:
    with (ServerThread(database, overrides={"require_request_time": True}) as server,
          Colonies(server.host, server.port) as client):
        env = make_colony(client, server)  # our SDK sends requesttime: accepted
        legacy = wire.signed_request(
            {"msgtype": "rejectexecutormsg", "colonyname": env.colonyname, "executorname": env.executorname},
            env.colony_prvkey,
        )
        status, error = _send(server.url, legacy)
        assert status == 403 and "requires requesttime" in error["message"]
        read = wire.signed_request({"msgtype": "getcolonymsg", "colonyname": env.colonyname},
                                   env.user_prvkey)
        assert _send(server.url, read)[0] == 200


def test_replayed_sdk_submit_creates_nothing(colony: ColonyEnv) -> None:
    spec = {"funcname": "once", "conditions": {"colonyname": colony.colonyname,
                                                "executortype": colony.executortype}}
    submit = client_rpc.request_envelope({"msgtype": "submitfuncspecmsg", "spec": spec}, colony.user_prvkey)
    assert _send(colony.server.url, submit)[0] == 200
    status, error = _send(colony.server.url, submit)
    assert status == 403 and "Replayed" in error["message"]
    waiting = colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey)
    assert len(waiting) == 1


def test_replayed_sdk_close_is_refused_and_a_refused_close_can_be_retried(colony: ColonyEnv) -> None:
    spec = {"funcname": "once", "conditions": {"colonyname": colony.colonyname,
                                                "executortype": colony.executortype}}
    process = colony.client.submit_func_spec(spec, colony.user_prvkey)
    other_key = colony.add_executor("bystander")
    early_close = client_rpc.request_envelope(
        {"msgtype": "closesuccessfulmsg", "processid": process.processid, "out": ["x"]}, other_key)
    for _ in range(2):  # refused (not assigned), forgotten, and refused the same way again
        status, error = _send(colony.server.url, early_close)
        assert status == 403 and "not assigned" in error["message"]
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    close = client_rpc.request_envelope(
        {"msgtype": "closesuccessfulmsg", "processid": process.processid, "out": ["done"]},
        colony.executor_prvkey)
    assert _send(colony.server.url, close)[0] == 200
    status, error = _send(colony.server.url, close)
    assert status == 403 and "Replayed" in error["message"]
    assert colony.client.get_process(process.processid, colony.user_prvkey).output == ["done"]


def test_replayed_sdk_assign_is_refused(colony: ColonyEnv) -> None:
    spec = {"funcname": "once", "conditions": {"colonyname": colony.colonyname,
                                                "executortype": colony.executortype}}
    for _ in range(2):
        colony.client.submit_func_spec(spec, colony.user_prvkey)
    assign = client_rpc.request_envelope(
        {"msgtype": "assignprocessmsg", "colonyname": colony.colonyname, "timeout": -1},
        colony.executor_prvkey)
    assert _send(colony.server.url, assign)[0] == 200
    status, error = _send(colony.server.url, assign)  # would hand the second process to the victim
    assert status == 403 and "Replayed" in error["message"]
    waiting = colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey)
    assert len(waiting) == 1


def test_an_sdk_assign_that_found_nothing_is_forgotten(colony: ColonyEnv) -> None:
    assign = client_rpc.request_envelope(
        {"msgtype": "assignprocessmsg", "colonyname": colony.colonyname, "timeout": -1},
        colony.executor_prvkey)
    assert _send(colony.server.url, assign)[0] == 404
    spec = {"funcname": "later", "conditions": {"colonyname": colony.colonyname,
                                                 "executortype": colony.executortype}}
    colony.client.submit_func_spec(spec, colony.user_prvkey)
    status, process = _send(colony.server.url, assign)  # the same request again: not a replay
    assert status == 200 and process["spec"]["funcname"] == "later"
