"""Executor RPCs against a real server: add, approve, reject, remove, list, get, get by id
(who may sign each: docs/protocol.md, "Roles")."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pycolonies import crypto, func_spec, wire
from pycolonies.errors import ColoniesServerError
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused

EXECUTOR_KEYS = {
    "executorid", "executortype", "executorname", "colonyname", "state", "requirefuncreg",
    "commissiontime", "lastheardfromtime", "capabilities", "allocations",
}


def new_executor(env: ColonyEnv, name: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    """(private key, executor dict) of an executor not yet registered."""
    prvkey = crypto.generate_private_key()
    executor = {"executorid": crypto.derive_id(prvkey), "executorname": name,
                "executortype": env.executortype, "colonyname": env.colonyname, **extra}
    return prvkey, executor


def by_name(env: ColonyEnv, prvkey: str | None = None) -> dict[str, dict[str, Any]]:
    executors = env.client.list_executors(env.colonyname, prvkey or env.user_prvkey)
    return {e["executorname"]: e for e in executors}


def submit(env: ColonyEnv, prvkey: str | None = None) -> str:
    spec = func_spec("echo", [], env.colonyname, env.executortype)
    return env.client.submit_func_spec(spec, prvkey or env.user_prvkey).processid


def non_owners(env: ColonyEnv) -> list[str]:
    """Keys that are not the colony owner's: an executor, a user, the server, a stranger."""
    return [env.executor_prvkey, env.user_prvkey, env.server_prvkey, crypto.generate_private_key()]


def get_by_id(env: ColonyEnv, executorid: str, prvkey: str) -> tuple[int, Any]:
    msg = {"msgtype": "getexecutorbyidmsg", "colonyname": env.colonyname, "executorid": executorid}
    return rawrpc.call(env.server.url, msg, prvkey)


# -- add -------------------------------------------------------------------------------------------


def test_add_stores_pending_whatever_state_is_sent(colony: ColonyEnv) -> None:
    long_ago = "2001-02-03T04:05:06Z"
    prvkey, executor = new_executor(
        colony, "worker", state=wire.APPROVED, commissiontime=long_ago, lastheardfromtime=long_ago
    )
    before = datetime.now(UTC)
    reply = colony.client.add_executor(executor, colony.colony_prvkey)
    after = datetime.now(UTC)

    assert set(reply) == EXECUTOR_KEYS  # locationname is omitted when empty
    assert reply["executorid"] == crypto.derive_id(prvkey)
    assert reply["executorname"] == "worker"
    assert reply["executortype"] == colony.executortype
    assert reply["colonyname"] == "dev"
    assert reply["state"] == wire.PENDING
    assert reply["requirefuncreg"] is False
    commissioned = wire.parse_time(reply["commissiontime"])
    assert commissioned is not None
    assert before - timedelta(seconds=5) <= commissioned <= after + timedelta(seconds=5)
    assert reply["lastheardfromtime"] == wire.ZERO_TIME
    assert reply["capabilities"] == {"hardware": None, "software": None}
    assert reply["allocations"] == {"projects": None}

    # What is stored is what was returned.
    stored = by_name(colony)["worker"]
    assert stored == reply


def test_add_keeps_capabilities_allocations_and_location(colony: ColonyEnv) -> None:
    capabilities = {
        "hardware": [{"model": "m1", "nodes": 2, "cpu": "4000m", "cores": 4, "mem": "8Gi", "storage": "",
                      "gpu": {"name": "a100", "mem": "40Gi", "count": 1, "nodecount": 1},
                      "platform": "linux", "architecture": "amd64", "network": ["10.0.0.5"]}],
        "software": [{"name": "python", "type": "runtime", "version": "3.12"}],
    }
    allocations = {"projects": {"proj": {"allocatedcpu": 10, "usedcpu": 1, "allocatedgpu": 0, "usedgpu": 0,
                                         "allocatedstorage": 5, "usedstorage": 2}}}
    _, executor = new_executor(colony, "rich", capabilities=capabilities, allocations=allocations,
                               locationname="lab-1")
    reply = colony.client.add_executor(executor, colony.colony_prvkey)
    assert reply["capabilities"] == capabilities
    assert reply["allocations"] == allocations
    assert reply["locationname"] == "lab-1"
    stored = by_name(colony)["rich"]
    assert stored["capabilities"] == capabilities
    assert stored["allocations"] == allocations
    assert stored["locationname"] == "lab-1"


def test_only_the_colony_owner_may_add(colony: ColonyEnv) -> None:
    _, executor = new_executor(colony, "intruder")
    for prvkey in non_owners(colony):
        refused(lambda k=prvkey: colony.client.add_executor(executor, k), 403, "Access denied")
    assert "intruder" not in by_name(colony)


def test_add_to_unknown_colony_is_refused(colony: ColonyEnv) -> None:
    _, executor = new_executor(colony, "lost")
    executor["colonyname"] = "nope"
    refused(lambda: colony.client.add_executor(executor, colony.colony_prvkey), 403)


def test_add_with_invalid_fields_is_refused(colony: ColonyEnv) -> None:
    changes = [{"executorid": "abc"}, {"executorid": "z" * 64}, {"executorname": ""}, {"executortype": ""}]
    for change in changes:
        executor = new_executor(colony, "bad")[1] | change
        refused(lambda e=executor: colony.client.add_executor(e, colony.colony_prvkey), 400)
    assert set(by_name(colony)) == {"executor-1"}


def test_add_without_executor_is_refused(colony: ColonyEnv) -> None:
    status, _ = rawrpc.call(colony.server.url, {"msgtype": "addexecutormsg"}, colony.colony_prvkey)
    assert status == 400


def test_duplicate_name_of_an_active_executor_is_refused(colony: ColonyEnv) -> None:
    original = by_name(colony)["executor-1"]
    _, executor = new_executor(colony, "executor-1")
    refused(lambda: colony.client.add_executor(executor, colony.colony_prvkey), 400, "already exists")
    assert by_name(colony)["executor-1"] == original  # same id, still approved
    # The same for a pending or a rejected executor.
    colony.add_executor("pending", approve=False)
    colony.add_executor("rejected", approve=False)
    colony.client.reject_executor("dev", "rejected", colony.colony_prvkey)
    for name in ("pending", "rejected"):
        _, executor = new_executor(colony, name)
        refused(lambda e=executor: colony.client.add_executor(e, colony.colony_prvkey), 400, "already exists")
    assert by_name(colony)["rejected"]["state"] == wire.REJECTED


def test_duplicate_executorid_is_refused(colony: ColonyEnv) -> None:
    executor = {"executorid": crypto.derive_id(colony.executor_prvkey), "executorname": "twin",
                "executortype": colony.executortype, "colonyname": "dev"}
    refused(lambda: colony.client.add_executor(executor, colony.colony_prvkey), 400, "already exists")
    assert set(by_name(colony)) == {"executor-1"}


# -- approve / reject ------------------------------------------------------------------------------


def test_approve_and_reject_change_state(colony: ColonyEnv) -> None:
    colony.add_executor("worker", approve=False)
    assert colony.client.approve_executor("dev", "worker", colony.colony_prvkey) == {}
    assert by_name(colony)["worker"]["state"] == wire.APPROVED
    assert colony.client.reject_executor("dev", "worker", colony.colony_prvkey) == {}
    assert by_name(colony)["worker"]["state"] == wire.REJECTED
    colony.client.approve_executor("dev", "worker", colony.colony_prvkey)
    assert by_name(colony)["worker"]["state"] == wire.APPROVED


def test_only_the_colony_owner_may_approve_reject_remove(colony: ColonyEnv) -> None:
    worker_key = colony.add_executor("worker", approve=False)
    client = colony.client
    for prvkey in non_owners(colony):
        refused(lambda k=prvkey: client.approve_executor("dev", "worker", k), 403, "Access denied")
        refused(lambda k=prvkey: client.reject_executor("dev", "executor-1", k), 403, "Access denied")
        refused(lambda k=prvkey: client.remove_executor("dev", "executor-1", k), 403, "Access denied")
    # A pending executor cannot approve itself either.
    refused(lambda: colony.client.approve_executor("dev", "worker", worker_key), 403, "Access denied")
    states = {name: e["state"] for name, e in by_name(colony).items()}
    assert states == {"executor-1": wire.APPROVED, "worker": wire.PENDING}


def test_unknown_executor_is_not_found(colony: ColonyEnv) -> None:
    client = colony.client
    for action in (client.approve_executor, client.reject_executor, client.remove_executor):
        refused(lambda a=action: a("dev", "ghost", colony.colony_prvkey), 404, "ghost")
    assert set(by_name(colony)) == {"executor-1"}


def test_owner_of_another_colony_cannot_approve_here(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    colony.add_executor("worker", approve=False)
    refused(lambda: colony.client.approve_executor("dev", "worker", other.colony_prvkey), 403)
    assert by_name(colony)["worker"]["state"] == wire.PENDING


# -- what a non-approved executor may do -----------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "rejected"])
def test_unapproved_executor_cannot_submit_or_assign_but_can_list(colony: ColonyEnv, state: str) -> None:
    prvkey = colony.add_executor("worker", approve=False)
    if state == "rejected":
        colony.client.reject_executor("dev", "worker", colony.colony_prvkey)
    process_id = submit(colony)

    refused(lambda: submit(colony, prvkey), 403, "not a member")
    refused(lambda: colony.client.assign("dev", -1, prvkey), 403, "not a member")
    refused(lambda: colony.client.get_process(process_id, prvkey), 403)
    refused(lambda: colony.client.get_executor("dev", "worker", prvkey), 403)
    refused(lambda: colony.client.get_colony("dev", prvkey), 403)
    # MEMBER* operations work in any state.
    executors = by_name(colony, prvkey)
    assert set(executors) == {"executor-1", "worker"}
    assert executors["worker"]["state"] == (wire.PENDING if state == "pending" else wire.REJECTED)
    assert [u["name"] for u in colony.client.get_users("dev", prvkey)] == ["alice"]
    # The process is still waiting for a real executor.
    assert colony.client.get_process(process_id, colony.user_prvkey).state == wire.WAITING


def test_rejecting_an_approved_executor_revokes_access(colony: ColonyEnv) -> None:
    submit(colony)
    colony.client.reject_executor("dev", "executor-1", colony.colony_prvkey)
    refused(lambda: colony.client.assign("dev", -1, colony.executor_prvkey), 403)
    colony.client.approve_executor("dev", "executor-1", colony.colony_prvkey)
    assert colony.client.assign("dev", -1, colony.executor_prvkey).state == wire.RUNNING


# -- remove ----------------------------------------------------------------------------------------


def test_remove_is_a_soft_delete_and_requeues_running_processes(colony: ColonyEnv) -> None:
    client = colony.client
    second_key = colony.add_executor("executor-2")
    process_id = submit(colony)
    running = client.assign("dev", -1, colony.executor_prvkey)
    assert running.processid == process_id
    assert running.assignedexecutorid == crypto.derive_id(colony.executor_prvkey)

    assert client.remove_executor("dev", "executor-1", colony.colony_prvkey) == {}

    executors = by_name(colony)
    assert executors["executor-1"]["state"] == wire.UNREGISTERED
    assert executors["executor-1"]["executorid"] == crypto.derive_id(colony.executor_prvkey)
    requeued = client.get_process(process_id, colony.user_prvkey)
    assert requeued.state == wire.WAITING
    assert requeued.assignedexecutorid == ""
    assert requeued.isassigned is False
    assert requeued.starttime is None
    assert requeued.endtime is None

    # The removed executor cannot close it, assign or submit any more, but may still list executors.
    refused(lambda: client.close(process_id, [], colony.executor_prvkey), 403)
    refused(lambda: client.assign("dev", -1, colony.executor_prvkey), 403)
    refused(lambda: submit(colony, colony.executor_prvkey), 403)
    assert "executor-1" in by_name(colony, colony.executor_prvkey)

    # Another executor gets it and can finish it.
    again = client.assign("dev", -1, second_key)
    assert again.processid == process_id
    assert again.assignedexecutorid == crypto.derive_id(second_key)
    client.close(process_id, ["ok"], second_key)
    assert client.get_process(process_id, colony.user_prvkey).state == wire.SUCCESS


def test_remove_only_requeues_the_removed_executors_processes(colony: ColonyEnv) -> None:
    client = colony.client
    second_key = colony.add_executor("executor-2")
    submit(colony)
    submit(colony)
    mine = client.assign("dev", -1, colony.executor_prvkey)
    theirs = client.assign("dev", -1, second_key)
    client.remove_executor("dev", "executor-1", colony.colony_prvkey)
    assert client.get_process(mine.processid, colony.user_prvkey).state == wire.WAITING
    still = client.get_process(theirs.processid, colony.user_prvkey)
    assert still.state == wire.RUNNING
    assert still.assignedexecutorid == crypto.derive_id(second_key)


def test_remove_wakes_a_waiting_executor(colony: ColonyEnv) -> None:
    """A requeued process reaches an executor already long-polling for work."""
    client = colony.client
    second_key = colony.add_executor("executor-2")
    process_id = submit(colony)
    client.assign("dev", -1, colony.executor_prvkey)
    got: dict[str, Any] = {}

    def poll() -> None:
        try:
            got["process"] = client.assign("dev", 10, second_key)
        except Exception as exc:  # reported below
            got["error"] = exc

    waiter = threading.Thread(target=poll)
    waiter.start()
    try:
        # Give the long-poll a moment to start waiting, then free the process.
        threading.Event().wait(0.3)
        client.remove_executor("dev", "executor-1", colony.colony_prvkey)
    finally:
        waiter.join(15)
    assert "error" not in got, got
    assert got["process"].processid == process_id


def test_readding_an_unregistered_name_makes_a_new_pending_executor(colony: ColonyEnv) -> None:
    client = colony.client
    old_id = crypto.derive_id(colony.executor_prvkey)
    client.remove_executor("dev", "executor-1", colony.colony_prvkey)

    new_key, executor = new_executor(colony, "executor-1", executortype="other-type")
    reply = client.add_executor(executor, colony.colony_prvkey)
    assert reply["state"] == wire.PENDING
    assert reply["executorid"] == crypto.derive_id(new_key) != old_id
    assert reply["executortype"] == "other-type"
    executors = client.list_executors("dev", colony.user_prvkey)
    assert [(e["executorname"], e["executorid"], e["state"]) for e in executors] == [
        ("executor-1", crypto.derive_id(new_key), wire.PENDING)
    ]
    # The old key is nobody now; the new one works once approved.
    refused(lambda: client.list_executors("dev", colony.executor_prvkey), 403)
    refused(lambda: client.assign("dev", -1, new_key), 403)
    client.approve_executor("dev", "executor-1", colony.colony_prvkey)
    spec = func_spec("echo", [], "dev", "other-type")
    process_id = client.submit_func_spec(spec, colony.user_prvkey).processid
    assert client.assign("dev", -1, new_key).processid == process_id


def test_removed_executors_id_can_be_reused_under_another_name(colony: ColonyEnv) -> None:
    client = colony.client
    client.remove_executor("dev", "executor-1", colony.colony_prvkey)
    executor = {"executorid": crypto.derive_id(colony.executor_prvkey), "executorname": "renamed",
                "executortype": colony.executortype, "colonyname": "dev"}
    assert client.add_executor(executor, colony.colony_prvkey)["state"] == wire.PENDING
    client.approve_executor("dev", "renamed", colony.colony_prvkey)
    got = client.get_executor("dev", "renamed", colony.executor_prvkey)
    assert got["executorid"] == crypto.derive_id(colony.executor_prvkey)


# -- get / get by id / list ------------------------------------------------------------------------


def test_get_list_and_get_by_id(colony: ColonyEnv) -> None:
    client = colony.client
    second_key = colony.add_executor("executor-2", executortype="gpu")
    listed = client.list_executors("dev", colony.executor_prvkey)
    assert sorted(e["executorname"] for e in listed) == ["executor-1", "executor-2"]
    for executor in listed:
        assert set(executor) == EXECUTOR_KEYS
        assert executor["colonyname"] == "dev"
        assert executor["state"] == wire.APPROVED

    one = client.get_executor("dev", "executor-2", colony.user_prvkey)
    assert one == by_name(colony)["executor-2"]
    assert one["executorid"] == crypto.derive_id(second_key)
    assert one["executortype"] == "gpu"

    status, found = get_by_id(colony, crypto.derive_id(second_key), colony.executor_prvkey)
    assert status == 200
    assert found == one

    status, payload = get_by_id(colony, "0" * 64, colony.executor_prvkey)
    assert status == 404, payload
    refused(lambda: client.get_executor("dev", "ghost", colony.user_prvkey), 404, "ghost")


def test_get_and_get_by_id_require_membership(colony: ColonyEnv) -> None:
    for prvkey in (colony.colony_prvkey, colony.server_prvkey, crypto.generate_private_key()):
        refused(lambda k=prvkey: colony.client.get_executor("dev", "executor-1", k), 403)
        status, _ = get_by_id(colony, crypto.derive_id(colony.executor_prvkey), prvkey)
        assert status == 403
    for prvkey in (colony.server_prvkey, crypto.generate_private_key()):
        refused(lambda k=prvkey: colony.client.list_executors("dev", k), 403)


def test_the_colony_owner_lists_its_executors(colony: ColonyEnv) -> None:
    """Unlike the reference: the owner approves and rejects them, so it may see them (the dashboard)."""
    names = [e["executorname"] for e in colony.client.list_executors("dev", colony.colony_prvkey)]
    assert names == [e["executorname"] for e in colony.client.list_executors("dev", colony.user_prvkey)]
    assert "executor-1" in names


def test_lastheardfromtime_is_set_by_assign(colony: ColonyEnv) -> None:
    assert by_name(colony)["executor-1"]["lastheardfromtime"] == wire.ZERO_TIME
    with pytest.raises(ColoniesServerError):
        colony.client.assign("dev", -1, colony.executor_prvkey)
    heard = wire.parse_time(by_name(colony)["executor-1"]["lastheardfromtime"])
    assert heard is not None
    assert abs(datetime.now(UTC) - heard) < timedelta(seconds=30)


def test_executor_of_one_colony_cannot_read_another(colony: ColonyEnv) -> None:
    client = colony.client
    other = make_colony(client, colony.server, "other")
    other_process = submit(other)
    intruder = colony.executor_prvkey
    refused(lambda: client.get_colony("other", intruder), 403)
    refused(lambda: client.list_executors("other", intruder), 403)
    refused(lambda: client.get_executor("other", "executor-1", intruder), 403)
    refused(lambda: client.get_users("other", intruder), 403)
    refused(lambda: client.list_processes("other", 10, wire.WAITING, intruder), 403)
    refused(lambda: client.get_process(other_process, intruder), 403)
    refused(lambda: submit(other, intruder), 403)
    refused(lambda: client.assign("other", -1, intruder), 403)
    status, _ = get_by_id(other, crypto.derive_id(other.executor_prvkey), intruder)
    assert status == 403
    # Its own colony is not affected, and the other colony's process is still waiting.
    assert client.get_executor("dev", "executor-1", intruder)["colonyname"] == "dev"
    assert client.get_process(other_process, other.user_prvkey).state == wire.WAITING


def test_unregistered_executor_cannot_be_approved_back(colony: ColonyEnv) -> None:
    colony.client.remove_executor(colony.colonyname, colony.executorname, colony.colony_prvkey)
    with pytest.raises(ColoniesServerError) as info:
        colony.client.approve_executor(colony.colonyname, colony.executorname, colony.colony_prvkey)
    assert info.value.status == 400
    assert "unregistered" in info.value.message
    executor = colony.client.get_executor(colony.colonyname, colony.executorname, colony.user_prvkey)
    assert executor["state"] == wire.UNREGISTERED
