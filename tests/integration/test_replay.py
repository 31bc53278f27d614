"""Replay protection: a captured state-changing request cannot be sent again."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time

import asyncpg
import pytest

from pycolonies import AlreadyApplied, Colonies, crypto, wire
from pycolonies import rpc as client_rpc
from server.store import processes as process_store
from server.store import seen_requests
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.support import wait_until


def _send(url: str, envelope: dict[str, str]) -> tuple[int, dict]:
    status, reply = rawrpc.post(url, json.dumps(envelope).encode())
    return status, wire.decode_payload(reply["payload"])


def go_request(msg: dict, prvkey: str) -> dict[str, str]:
    """A request built as the reference Go client builds it: compact JSON in struct field order,
    no requestnonce or requesttime, signed deterministically (the same bytes every time)."""
    payload = base64.b64encode(json.dumps(msg, separators=(",", ":")).encode()).decode()
    return {"payloadtype": msg["msgtype"], "payload": payload, "signature": crypto.sign(payload, prvkey)}


def go_executor(colonyname: str, name: str, executor_id: str) -> dict:
    return {"executorid": executor_id, "executortype": "cli", "executorname": name, "colonyname": colonyname,
            "state": 0, "requirefuncreg": False, "commissiontime": "0001-01-01T00:00:00Z",
            "lastheardfromtime": "0001-01-01T00:00:00Z", "locationname": "",
            "capabilities": {"hardware": None, "software": None}, "allocations": {"projects": None}}


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


def test_legacy_revocation_replay_is_refused_within_the_window(colony: ColonyEnv) -> None:
    """Reference clients send no requesttime: a captured revocation cannot undo a later re-grant."""
    reject = go_request({"colonyname": colony.colonyname, "executorname": colony.executorname,
                         "msgtype": "rejectexecutormsg"}, colony.colony_prvkey)
    assert _send(colony.server.url, reject)[0] == 200
    colony.client.approve_executor(colony.colonyname, colony.executorname, colony.colony_prvkey)
    status, error = _send(colony.server.url, reject)
    assert status == 403 and "Replayed" in error["message"]
    assert _executor_state(colony, colony.executorname) == wire.APPROVED


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
            return await seen_requests.expire(con, 300)
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


def _close(processid: str, out: list[str], prvkey: str) -> dict[str, str]:
    """A signed closesuccessfulmsg, as the SDK sends it (with its nonce and time)."""
    return client_rpc.request_envelope({"msgtype": "closesuccessfulmsg", "processid": processid, "out": out},
                                       prvkey)


def _refused_twice(url: str, envelope: dict[str, str], reason: str) -> None:
    """The request is refused (403, ``reason``), and so is its identical copy: the refusal left no
    replay record behind."""
    for _ in range(2):
        status, error = _send(url, envelope)
        assert status == 403 and reason in error["message"]


def _accepted_once(url: str, envelope: dict[str, str]) -> None:
    """The request is accepted, and its identical copy refused as a replay."""
    assert _send(url, envelope)[0] == 200
    status, error = _send(url, envelope)
    assert status == 403 and "Replayed" in error["message"]


def test_replayed_sdk_close_is_refused_and_a_refused_close_can_be_retried(colony: ColonyEnv) -> None:
    spec = {"funcname": "once", "conditions": {"colonyname": colony.colonyname,
                                                "executortype": colony.executortype}}
    process = colony.client.submit_func_spec(spec, colony.user_prvkey)
    other_key = colony.add_executor("bystander")
    # refused (not assigned), forgotten, and refused the same way again
    _refused_twice(colony.server.url, _close(process.processid, ["x"], other_key), "not assigned")
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    _accepted_once(colony.server.url, _close(process.processid, ["done"], colony.executor_prvkey))
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


# -- the reference Go CLI's everyday repeats (identical bytes every time) ----------------------


def _go_executor_commands(colony: ColonyEnv, name: str) -> tuple[dict, dict, dict, dict]:
    executor_id = crypto.derive_id(crypto.generate_private_key())
    target = {"colonyname": colony.colonyname, "executorname": name}
    add = go_request({"executor": go_executor(colony.colonyname, name, executor_id),
                      "msgtype": "addexecutormsg"}, colony.colony_prvkey)
    approve = go_request({**target, "msgtype": "approveexecutormsg"}, colony.colony_prvkey)
    reject = go_request({**target, "msgtype": "rejectexecutormsg"}, colony.colony_prvkey)
    remove = go_request({**target, "msgtype": "removeexecutormsg"}, colony.colony_prvkey)
    return add, approve, reject, remove


def test_go_cli_executor_add_approve_reject_approve(colony: ColonyEnv) -> None:
    add, approve, reject, _ = _go_executor_commands(colony, "go-exec")
    for request in (add, approve, reject):  # executor add --approve; executor reject
        assert _send(colony.server.url, request)[0] == 200
    assert _executor_state(colony, "go-exec") == wire.REJECTED
    status, reply = _send(colony.server.url, approve)  # executor approve: the same bytes as before
    assert status == 200, reply
    assert _executor_state(colony, "go-exec") == wire.APPROVED


def test_go_cli_executor_remove_then_add_again(colony: ColonyEnv) -> None:
    add, approve, _, remove = _go_executor_commands(colony, "go-exec")
    for request in (add, approve, remove):
        assert _send(colony.server.url, request)[0] == 200
    assert _executor_state(colony, "go-exec") == wire.UNREGISTERED
    for request in (add, approve):  # executor add --approve with the same name and id
        status, reply = _send(colony.server.url, request)
        assert status == 200, reply
    assert _executor_state(colony, "go-exec") == wire.APPROVED
    # A captured removal cannot be replayed to undo the owner's later re-registration.
    status, error = _send(colony.server.url, remove)
    assert status == 403 and "Replayed" in error["message"]
    assert _executor_state(colony, "go-exec") == wire.APPROVED


def test_go_cli_colony_remove_then_add_again(colony: ColonyEnv) -> None:
    server_key = colony.server_prvkey
    colony_id = crypto.derive_id(crypto.generate_private_key())
    add = go_request({"colony": {"colonyid": colony_id, "name": "go-colony"}, "msgtype": "addcolonymsg"},
                     server_key)
    remove = go_request({"colonyname": "go-colony", "msgtype": "removecolonymsg"}, server_key)
    for request in (add, remove):
        assert _send(colony.server.url, request)[0] == 200
    status, reply = _send(colony.server.url, add)  # colony add with the same name and id
    assert status == 200, reply
    assert _colony_ids(colony, "go-colony") == [colony_id]
    status, error = _send(colony.server.url, remove)  # the captured removal, replayed
    assert status == 403 and "Replayed" in error["message"]
    assert _colony_ids(colony, "go-colony") == [colony_id]


def _colony_ids(colony: ColonyEnv, name: str) -> list[str]:
    return [c["colonyid"] for c in colony.client.list_colonies(colony.server_prvkey) if c["name"] == name]


def test_go_cli_duplicate_grant_gets_the_servers_answer(colony: ColonyEnv) -> None:
    """A repeated grant with nothing in between is not a replay error: the handler answers it."""
    add, approve, _, _ = _go_executor_commands(colony, "go-exec")
    assert _send(colony.server.url, add)[0] == 200
    status, error = _send(colony.server.url, add)
    assert status == 400 and "already exists" in error["message"]
    for _ in range(2):
        assert _send(colony.server.url, approve)[0] == 200


# -- requesttime: how far ahead, and how long a record is kept ---------------------------------


def _stamped(msg: dict, prvkey: str, offset_s: float) -> dict[str, str]:
    stamped = {**msg, "requestnonce": secrets.token_hex(16),
               "requesttime": time.time_ns() + int(offset_s * 1e9)}
    return wire.signed_request(stamped, prvkey)


def test_request_time_edges(database: str) -> None:
    overrides = {"replay_window_s": 20, "replay_future_skew_s": 10}
    with (ServerThread(database, overrides=overrides) as server,
          Colonies(server.host, server.port) as client):
        env = make_colony(client, server)
        reject = {"msgtype": "rejectexecutormsg", "colonyname": env.colonyname,
                  "executorname": env.executorname}
        for offset_s in (8, -18):  # inside: a little ahead, nearly a window behind
            assert _send(server.url, _stamped(reject, env.colony_prvkey, offset_s))[0] == 200
        status, error = _send(server.url, _stamped(reject, env.colony_prvkey, 15))
        assert status == 403 and "ahead" in error["message"] and "10 s" in error["message"]
        status, error = _send(server.url, _stamped(reject, env.colony_prvkey, -25))
        assert status == 403 and "behind" in error["message"] and "20 s" in error["message"]


def test_a_future_dated_request_is_remembered_until_its_time_is_stale(database: str) -> None:
    """Seen 16 s ago with a requesttime 10 s ahead of now: its time is still acceptable, so its
    record must outlive the 15 s window (it is kept window + future skew = 45 s)."""
    overrides = {"replay_window_s": 15, "replay_future_skew_s": 30}
    with (ServerThread(database, overrides=overrides) as server,
          Colonies(server.host, server.port) as client):
        env = make_colony(client, server)
        spec = {"funcname": "once", "conditions": {"colonyname": env.colonyname,
                                                    "executortype": env.executortype}}
        submit = _stamped({"msgtype": "submitfuncspecmsg", "spec": spec}, env.user_prvkey, 10)
        assert _send(server.url, submit)[0] == 200

        async def age(sql: str, *args: object) -> object:
            con = await asyncpg.connect(database)
            try:
                return await con.fetchval(sql, *args)
            finally:
                await con.close()

        key = submit["signature"].lower()
        asyncio.run(age("UPDATE seen_requests SET seen_at = now() - interval '16 seconds' "
                        "WHERE signature = $1 RETURNING 1", key))
        asyncio.run(age("INSERT INTO seen_requests (signature, seen_at) "
                        "VALUES ('canary', now() - interval '46 seconds') RETURNING 1"))
        canary_gone = "SELECT count(*) = 0 FROM seen_requests WHERE signature = 'canary'"
        wait_until(lambda: asyncio.run(age(canary_gone)), 30, "the deadline sweeper to expire old records")
        assert asyncio.run(age("SELECT count(*) FROM seen_requests WHERE signature = $1", key)) == 1
        status, error = _send(server.url, submit)
        assert status == 403 and "Replayed" in error["message"]
        assert len(client.list_processes(env.colonyname, 100, wire.WAITING, env.user_prvkey)) == 1


def test_a_workflow_members_close_is_recorded_once_and_a_refused_one_is_not(colony: ColonyEnv) -> None:
    """A workflow member's close takes the transactional path (its children are released with
    it); its replay record is made there, once, and a refused close leaves none behind."""
    cond = {"colonyname": colony.colonyname, "executortype": colony.executortype}
    workflow = {"colonyname": colony.colonyname, "functionspecs": [
        {"nodename": "a", "funcname": "a", "conditions": {**cond, "dependencies": []}},
        {"nodename": "b", "funcname": "b", "conditions": {**cond, "dependencies": ["a"]}}]}
    graph = colony.client.submit_workflow(workflow, colony.user_prvkey)
    first = colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    assert first.spec.nodename == "a" and first.processgraphid == graph.processgraphid
    other_key = colony.add_executor("bystander")
    # refused both times: the first refusal left no replay record
    _refused_twice(colony.server.url, _close(first.processid, ["x"], other_key), "another executor")
    _accepted_once(colony.server.url, _close(first.processid, ["from a"], colony.executor_prvkey))
    child = colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    assert child.spec.nodename == "b" and child.input == ["from a"]  # released by the close


def test_a_close_whose_reply_was_lost_with_the_database_is_already_applied_on_retry(
    colony: ColonyEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close commits, then the connection is lost before the reply (a failover at the wrong
    moment): the client gets a 503 and sends the identical request again, which must be refused
    as a replay (the SDK's AlreadyApplied), not closed a second time or answered "already
    closed"; the close's own record says it took effect."""
    real_close = process_store.close_successful
    lost: list[str] = []

    async def commit_then_lose_the_reply(*args: object, **kwargs: object) -> object:
        closed = await real_close(*args, **kwargs)
        if not lost:
            lost.append("reply")
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return closed

    conditions = {"colonyname": colony.colonyname, "executortype": colony.executortype}
    spec = {"funcname": "f", "conditions": conditions}
    submitted = colony.client.submit_func_spec(spec, colony.user_prvkey)
    assigned = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    assert assigned.processid == submitted.processid
    monkeypatch.setattr(process_store, "close_successful", commit_then_lose_the_reply)
    with pytest.raises(AlreadyApplied):
        colony.client.close(assigned.processid, ["once"], colony.executor_prvkey)
    assert lost == ["reply"]
    process = colony.client.get_process(assigned.processid, colony.user_prvkey)
    assert (process.state, process.output) == (wire.SUCCESS, ["once"])
