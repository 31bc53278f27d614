"""Pausing and resuming a colony's assignments: durable, shared by every replica; paused assign
long-polls wait and a resume on any replica wakes them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from pycolonies import Colonies, wire
from pycolonies.errors import AccessDeniedError, NotFoundError
from pycolonies.models import Conditions, FuncSpec, Process
from server.app import SERVICES
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv
from tests.support import wait_until

WAIT = 20.0
# Far longer than any wait here: an assign that returns did so because it was woken, not because
# its long-poll ran out (its final look would then find the process too).
LONG_POLL = 600


def submit(env: ColonyEnv) -> Process:
    spec = FuncSpec(funcname="work", conditions=Conditions(colonyname=env.colonyname,
                                                           executortype=env.executortype))
    return env.client.submit_func_spec(spec, env.user_prvkey)


def waiting_assigns(server: ServerThread, env: ColonyEnv) -> int:
    return server.app[SERVICES].wakeups.waiting(env.colonyname, env.executortype)


def in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``work`` in a thread; the returned function joins it and returns (or raises) its result."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the joining test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(WAIT)
        assert not thread.is_alive(), "the call did not return"
        if "error" in result:
            raise result["error"]
        return result["value"]

    return join


def test_pause_status_and_resume(colony: ColonyEnv) -> None:
    client = colony.client
    assert client.get_pause_status(colony.colonyname, colony.user_prvkey) is False
    assert client.pause_assignments(colony.colonyname, colony.colony_prvkey) == {}
    assert client.get_pause_status(colony.colonyname, colony.user_prvkey) is True
    assert client.get_pause_status(colony.colonyname, colony.executor_prvkey) is True
    assert client.get_pause_status(colony.colonyname, colony.colony_prvkey) is True
    client.pause_assignments(colony.colonyname, colony.colony_prvkey)  # pausing twice is fine
    client.resume_assignments(colony.colonyname, colony.colony_prvkey)
    assert client.get_pause_status(colony.colonyname, colony.user_prvkey) is False


def test_pause_status_reply_has_the_reference_payloadtype(colony: ColonyEnv) -> None:
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    msg = {"msgtype": "getpausestatusmsg", "colonyname": colony.colonyname}
    status, envelope = rawrpc.post(
        colony.server.url, rawrpc.json.dumps(wire.signed_request(msg, colony.user_prvkey)).encode()
    )
    assert status == 200
    assert envelope["payloadtype"] == "pausestatusreplymsg"
    assert wire.decode_payload(envelope["payload"]) == {
        "msgtype": "pausestatusreplymsg", "colonyname": colony.colonyname, "ispaused": True}


def test_only_the_colony_owner_pauses_and_resumes(colony: ColonyEnv) -> None:
    for prvkey in (colony.user_prvkey, colony.executor_prvkey, colony.server_prvkey):
        for msgtype in ("pauseassignmentsmsg", "resumeassignmentsmsg"):
            msg = {"msgtype": msgtype, "colonyname": colony.colonyname}
            status, reply = rawrpc.call(colony.server.url, msg, prvkey)
            assert (status, reply["message"]) == (403, "Access denied, not colony owner")
    assert colony.client.get_pause_status(colony.colonyname, colony.user_prvkey) is False


def test_bad_colony_names(colony: ColonyEnv) -> None:
    url = colony.server.url
    status, reply = rawrpc.call(url, {"msgtype": "pauseassignmentsmsg", "colonyname": ""},
                                colony.colony_prvkey)
    assert (status, reply["message"]) == (400, "Empty Colony name")
    status, reply = rawrpc.call(url, {"msgtype": "pauseassignmentsmsg", "colonyname": "nope"},
                                colony.colony_prvkey)
    assert status == 403 and "does not exist" in reply["message"]
    status, reply = rawrpc.call(url, {"msgtype": "getpausestatusmsg", "colonyname": 7}, colony.user_prvkey)
    assert status == 400 and "colonyname" in reply["message"]
    with pytest.raises(AccessDeniedError):
        colony.client.get_pause_status("nope", colony.user_prvkey)


def test_a_paused_colony_assigns_nothing_to_a_single_attempt(colony: ColonyEnv) -> None:
    submit(colony)
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    with pytest.raises(NotFoundError, match="colony assignments are paused"):
        colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    with pytest.raises(NotFoundError, match="colony assignments are paused"):
        colony.client.assign(colony.colonyname, 1, colony.executor_prvkey)
    colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)
    assert colony.client.assign(colony.colonyname, -1, colony.executor_prvkey).state == wire.RUNNING


def test_a_paused_long_poll_waits_and_resume_wakes_it(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    with Colonies(server.host, server.port) as executor_client:
        join = in_thread(lambda: executor_client.assign(colony.colonyname, LONG_POLL, colony.executor_prvkey))
        wait_until(lambda: waiting_assigns(server, colony) == 1, WAIT, "the assign to wait")
        colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)
        assigned = join()
    assert assigned.processid == process.processid


def test_resume_on_one_replica_wakes_a_waiter_on_another(
    colony: ColonyEnv, server: ServerThread, database: str
) -> None:
    """Pause on replica A; an assign long-poll on replica B waits although a process is ready;
    resume on A: B's waiter gets the process."""
    process = submit(colony)
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    with ServerThread(database, server_prvkey=server.server_prvkey) as replica_b, \
            Colonies(replica_b.host, replica_b.port) as client_b:
        assert client_b.get_pause_status(colony.colonyname, colony.user_prvkey) is True  # durable, shared
        join = in_thread(lambda: client_b.assign(colony.colonyname, LONG_POLL, colony.executor_prvkey))
        wait_until(lambda: waiting_assigns(replica_b, colony) == 1, WAIT, "the assign on B to wait")
        submit(colony)  # a new process wakes B's waiter, which must go on waiting
        wait_until(lambda: waiting_assigns(replica_b, colony) == 1, WAIT, "the assign on B to wait again")
        assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.WAITING
        colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)  # on A
        assigned = join()
    assert assigned.processid == process.processid


def test_every_waiter_of_the_colony_wakes_on_resume(colony: ColonyEnv, server: ServerThread) -> None:
    other_type_prvkey = colony.add_executor("other-1", executortype="other-type")
    second_prvkey = colony.add_executor("executor-2")
    first = submit(colony)
    second = submit(colony)
    other = colony.client.submit_func_spec(
        FuncSpec(funcname="work", conditions=Conditions(colonyname=colony.colonyname,
                                                        executortype="other-type")), colony.user_prvkey)
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    clients = [Colonies(server.host, server.port) for _ in range(3)]
    try:
        joins = [in_thread(lambda c=c, k=k: c.assign(colony.colonyname, LONG_POLL, k))
                 for c, k in zip(clients, (colony.executor_prvkey, second_prvkey, other_type_prvkey),
                                 strict=True)]
        wakeups = server.app[SERVICES].wakeups
        wait_until(lambda: waiting_assigns(server, colony) == 2
                   and wakeups.waiting(colony.colonyname, "other-type") == 1, WAIT, "three waiting assigns")
        colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)
        assigned = {join().processid for join in joins}
    finally:
        for c in clients:
            c.close()
    assert assigned == {first.processid, second.processid, other.processid}


def test_close_and_assign_respects_the_pause(colony: ColonyEnv, server: ServerThread) -> None:
    running = submit(colony)
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    following = submit(colony)
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    assert colony.client.close_and_assign(running.processid, [], colony.colonyname,
                                          colony.executor_prvkey) is None
    assert colony.client.get_process(running.processid, colony.user_prvkey).state == wire.SUCCESS
    assert colony.client.get_process(following.processid, colony.user_prvkey).state == wire.WAITING

    third = submit(colony)
    colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)
    taken = colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    colony.client.pause_assignments(colony.colonyname, colony.colony_prvkey)
    with Colonies(server.host, server.port) as executor_client:
        join = in_thread(lambda: executor_client.close_and_assign(
            taken.processid, [], colony.colonyname, colony.executor_prvkey, timeout=LONG_POLL))
        wait_until(lambda: waiting_assigns(server, colony) == 1, WAIT, "the close-and-assign to wait")
        colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)
        assigned = join()
    assert assigned is not None and assigned.processid == third.processid


def test_async_client(colony: ColonyEnv, server: ServerThread) -> None:
    import asyncio

    from pycolonies import AsyncColonies

    async def run() -> list[bool]:
        async with AsyncColonies(server.host, server.port) as client:
            seen = [await client.get_pause_status(colony.colonyname, colony.user_prvkey)]
            await client.pause_assignments(colony.colonyname, colony.colony_prvkey)
            seen.append(await client.get_pause_status(colony.colonyname, colony.user_prvkey))
            await client.resume_assignments(colony.colonyname, colony.colony_prvkey)
            seen.append(await client.get_pause_status(colony.colonyname, colony.user_prvkey))
            return seen

    assert asyncio.run(run()) == [False, True, False]
