"""Assignment: long-polling, timeouts, who may assign, concurrency and colony isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import asyncpg
import pytest

from pycolonies import (
    AccessDeniedError,
    AsyncColonies,
    BadRequestError,
    Colonies,
    NotFoundError,
    crypto,
    wire,
)
from server.app import SERVICES
from server.scheduler.wakeups import Wakeups
from server.testing import ServerThread
from tests.conftest import ColonyEnv, make_colony
from tests.support import wait_until

WAIT_S = 20.0  # only a guard against a hang: the waits below end as soon as the state is reached


def spec(colony: ColonyEnv, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "funcname": "work",
        "args": [],
        "maxwaittime": -1,
        "maxexectime": -1,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype},
    }
    body.update(overrides)
    return body


def wakeups_of(server: ServerThread) -> Wakeups:
    """The server's long-poll waiter registry (who waits for a wake-up, hand-offs so far)."""
    return server.app[SERVICES].wakeups


def wait_for_waiters(server: ServerThread, colonyname: str, executortype: str, count: int) -> None:
    """Wait until ``count`` assign calls of (colony, executortype) wait for a wake-up: they have
    looked, found nothing, and only a submit (or their timeout) can end them now."""
    wakeups = wakeups_of(server)
    wait_until(lambda: wakeups.waiting(colonyname, executortype) == count, WAIT_S,
               f"{count} assign call(s) of {colonyname}/{executortype} to wait")


class AssignThread(threading.Thread):
    """Runs one ``assign`` call on its own client and records the outcome and how long it took."""

    def __init__(self, colony: ColonyEnv, timeout: int, prvkey: str | None = None) -> None:
        super().__init__(daemon=True)
        self.colony = colony
        self.timeout = timeout
        self.prvkey = prvkey or colony.executor_prvkey
        self.result: Any = None
        self.error: BaseException | None = None
        self.elapsed = 0.0

    def run(self) -> None:
        start = time.monotonic()
        try:
            with Colonies(self.colony.server.host, self.colony.server.port) as sdk:
                self.result = sdk.assign(self.colony.colonyname, self.timeout, self.prvkey)
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            self.elapsed = time.monotonic() - start


def test_long_poll_returns_promptly_when_a_process_is_submitted(colony: ColonyEnv) -> None:
    waiter = AssignThread(colony, timeout=30)
    waiter.start()
    wait_for_waiters(colony.server, colony.colonyname, colony.executortype, 1)
    assert waiter.is_alive(), f"assign returned before any process existed: {waiter.error!r}"
    submitted = colony.client.submit_func_spec(spec(colony), colony.user_prvkey)
    waiter.join(25)
    assert not waiter.is_alive(), "assign did not return after a process was submitted"
    assert waiter.error is None, repr(waiter.error)
    assert waiter.result.processid == submitted.processid
    assert waiter.result.state == wire.RUNNING
    # Woken by the submit, not by the 30 s timeout (generous bound: a loaded machine is slow).
    assert waiter.elapsed < 10
    assert colony.client.get_process(submitted.processid, colony.user_prvkey).state == wire.RUNNING


def test_long_poll_ignores_work_for_another_executortype(colony: ColonyEnv) -> None:
    colony.add_executor("gpu-1", "gpu")
    waiter = AssignThread(colony, timeout=2)
    waiter.start()
    wait_for_waiters(colony.server, colony.colonyname, colony.executortype, 1)
    other = colony.client.submit_func_spec(spec(colony, conditions={
        "colonyname": colony.colonyname, "executortype": "gpu"}), colony.user_prvkey)
    waiter.join(20)
    assert isinstance(waiter.error, NotFoundError), repr(waiter.error or waiter.result)
    assert colony.client.get_process(other.processid, colony.user_prvkey).state == wire.WAITING


def test_timeout_expiry_is_not_found(colony: ColonyEnv) -> None:
    start = time.monotonic()
    with pytest.raises(NotFoundError, match="No process available for assignment") as info:
        colony.client.assign(colony.colonyname, 1, colony.executor_prvkey)
    elapsed = time.monotonic() - start
    assert info.value.status == 404
    assert elapsed >= 0.9, "returned before the timeout"
    assert elapsed < 10


def test_timeout_zero_is_bad_request(colony: ColonyEnv) -> None:
    colony.client.submit_func_spec(spec(colony), colony.user_prvkey)
    with pytest.raises(BadRequestError, match="timeout cannot be zero"):
        colony.client.assign(colony.colonyname, 0, colony.executor_prvkey)
    # Nothing was assigned by the rejected call.
    waiting = colony.client.list_processes(colony.colonyname, 10, wire.WAITING, colony.user_prvkey)
    assert len(waiting) == 1


def test_negative_timeout_returns_immediately(colony: ColonyEnv) -> None:
    start = time.monotonic()
    with pytest.raises(NotFoundError, match="No process available"):
        colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    assert time.monotonic() - start < 5
    submitted = colony.client.submit_func_spec(spec(colony), colony.user_prvkey)
    assigned = colony.client.assign(colony.colonyname, -5, colony.executor_prvkey)
    assert assigned.processid == submitted.processid


def test_user_cannot_assign(colony: ColonyEnv) -> None:
    submitted = colony.client.submit_func_spec(spec(colony), colony.user_prvkey)
    with pytest.raises(AccessDeniedError):
        colony.client.assign(colony.colonyname, -1, colony.user_prvkey)
    with pytest.raises(AccessDeniedError):  # nor the colony owner
        colony.client.assign(colony.colonyname, -1, colony.colony_prvkey)
    with pytest.raises(AccessDeniedError):  # nor a stranger
        colony.client.assign(colony.colonyname, -1, crypto.generate_private_key())
    assert colony.client.get_process(submitted.processid, colony.user_prvkey).state == wire.WAITING


def test_unapproved_executor_cannot_assign(colony: ColonyEnv) -> None:
    pending = colony.add_executor("pending-1", approve=False)
    colony.client.submit_func_spec(spec(colony), colony.user_prvkey)
    with pytest.raises(AccessDeniedError):
        colony.client.assign(colony.colonyname, -1, pending)
    colony.client.approve_executor(colony.colonyname, "pending-1", colony.colony_prvkey)
    assert colony.client.assign(colony.colonyname, -1, pending).state == wire.RUNNING


def test_concurrent_executors_get_each_process_exactly_once(colony: ColonyEnv) -> None:
    total, workers = 200, 4
    keys = [colony.add_executor(f"worker-{i}") for i in range(workers)]
    submitted = {
        colony.client.submit_func_spec(spec(colony, args=[i]), colony.user_prvkey).processid
        for i in range(total)
    }
    assert len(submitted) == total

    got: dict[int, list[str]] = {i: [] for i in range(workers)}
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work(index: int) -> None:
        executor_id = crypto.derive_id(keys[index])
        try:
            with Colonies(colony.server.host, colony.server.port) as sdk:
                barrier.wait(10)
                while True:
                    try:
                        process = sdk.assign(colony.colonyname, 1, keys[index])
                    except NotFoundError:
                        return
                    assert process.assignedexecutorid == executor_id
                    assert process.state == wire.RUNNING
                    got[index].append(process.processid)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    assigned = [pid for pids in got.values() for pid in pids]
    duplicates = [pid for pid, n in Counter(assigned).items() if n > 1]
    assert duplicates == []
    assert set(assigned) == submitted
    assert len(assigned) == total
    # The server agrees on who has what.
    for index, pids in got.items():
        for pid in pids[:5]:
            process = colony.client.get_process(pid, colony.user_prvkey)
            assert process.assignedexecutorid == crypto.derive_id(keys[index])
    assert colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey) == []


def test_assign_skips_a_process_another_transaction_holds(colony: ColonyEnv, database: str) -> None:
    """Assign is ``FOR UPDATE SKIP LOCKED``: a waiting process whose row another transaction holds
    (a replica assigning or closing it, a sweeper) is passed over at once, never waited for."""
    first = colony.client.submit_func_spec(spec(colony, funcname="first"), colony.user_prvkey)
    second = colony.client.submit_func_spec(spec(colony, funcname="second"), colony.user_prvkey)
    guard = 30.0  # only a failure guard: without SKIP LOCKED the assign waits for the lock forever

    async def scenario() -> Any:
        holder = await asyncpg.connect(database)
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1 FROM processes WHERE process_id = $1 FOR UPDATE",
                                     first.processid)
                async with AsyncColonies(colony.server.host, colony.server.port) as sdk:
                    try:
                        taken = await asyncio.wait_for(
                            sdk.assign(colony.colonyname, 5, colony.executor_prvkey), guard)
                    except TimeoutError:
                        pytest.fail(f"assign waited {guard} s behind the locked row instead of skipping it")
                # Decided while the lock is still held.
                still = await holder.fetchval("SELECT state FROM processes WHERE process_id = $1",
                                              first.processid)
                return taken, still
        finally:
            await holder.close()

    taken, first_state_meanwhile = asyncio.run(scenario())
    assert taken.processid == second.processid, "the assign took the locked process, or none"
    assert first_state_meanwhile == wire.WAITING
    # The locked process was first in line: once released, it is the next one assigned.
    assert colony.client.assign(colony.colonyname, -1, colony.executor_prvkey).processid == first.processid


def test_executor_never_gets_another_colonys_process(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    # Same executor name and type in both colonies; only the colony tells them apart.
    assert other.executorname == colony.executorname and other.executortype == colony.executortype
    theirs = colony.client.submit_func_spec(spec(other), other.user_prvkey)

    with pytest.raises(NotFoundError):
        colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    with pytest.raises(AccessDeniedError):  # and it cannot ask in the other colony
        colony.client.assign(other.colonyname, -1, colony.executor_prvkey)
    assert colony.client.get_process(theirs.processid, other.user_prvkey).state == wire.WAITING

    # A waiting executor of colony A is not handed B's new work either.
    waiter = AssignThread(colony, timeout=2)
    waiter.start()
    wait_for_waiters(colony.server, colony.colonyname, colony.executortype, 1)
    second = colony.client.submit_func_spec(spec(other), other.user_prvkey)
    waiter.join(20)
    assert isinstance(waiter.error, NotFoundError), repr(waiter.error or waiter.result)

    assigned = {colony.client.assign(other.colonyname, -1, other.executor_prvkey).processid for _ in range(2)}
    assert assigned == {theirs.processid, second.processid}


def test_async_client_submit_assign_close(colony: ColonyEnv) -> None:
    async def scenario() -> None:
        async with AsyncColonies(colony.server.host, colony.server.port) as sdk:
            waiter = asyncio.create_task(sdk.assign(colony.colonyname, 20, colony.executor_prvkey))
            # Polled in a thread, so this loop goes on sending the assign meanwhile.
            await asyncio.to_thread(
                wait_for_waiters, colony.server, colony.colonyname, colony.executortype, 1)
            assert not waiter.done()
            submitted = await sdk.submit_func_spec(spec(colony, args=[{"x": 1.5}]), colony.user_prvkey)
            assert submitted.state == wire.WAITING
            assigned = await asyncio.wait_for(waiter, 15)
            assert assigned.processid == submitted.processid
            assert assigned.state == wire.RUNNING
            assert assigned.spec.args == [{"x": 1.5}]
            assert await sdk.close(assigned.processid, ["async-done"], colony.executor_prvkey) == {}
            final = await sdk.get_process(submitted.processid, colony.user_prvkey)
            assert final.state == wire.SUCCESS
            assert final.output == ["async-done"]

            with pytest.raises(NotFoundError):
                await sdk.assign(colony.colonyname, -1, colony.executor_prvkey)
            failing = await sdk.submit_func_spec(spec(colony), colony.user_prvkey)
            await sdk.assign(colony.colonyname, -1, colony.executor_prvkey)
            await sdk.fail(failing.processid, ["async-error"], colony.executor_prvkey)
            failed = await sdk.get_process(failing.processid, colony.user_prvkey)
            assert failed.state == wire.FAILED and failed.errors == ["async-error"]

    asyncio.run(scenario())
    # The sync client sees the same state.
    assert colony.client.list_processes(colony.colonyname, 10, wire.SUCCESS, colony.user_prvkey)[0][
        "out"] == ["async-done"]


def test_long_polls_do_not_hold_database_connections(database: str) -> None:
    """Waiting executors hold no pooled connection: with a pool of one, four long-polls and a
    submitter still all get through."""
    with ServerThread(database, overrides={"db_pool_size": 1}) as server, \
            Colonies(server.host, server.port) as client:
        env = make_colony(client, server)
        keys = [env.add_executor(f"pooled-{i}") for i in range(4)]
        got: list[str] = []

        def poll(key: str) -> None:
            with Colonies(server.host, server.port) as poller:
                got.append(poller.assign(env.colonyname, 20, key).processid)

        threads = [threading.Thread(target=poll, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        wait_for_waiters(server, env.colonyname, env.executortype, 4)
        submitted = {client.submit_func_spec(spec(env), env.user_prvkey).processid for _ in range(4)}
        for thread in threads:
            thread.join(30)
        assert sorted(got) == sorted(submitted)


def test_a_wake_up_reaches_the_eligible_waiter_behind_an_ineligible_one(colony: ColonyEnv) -> None:
    """The reference wakes one waiter; if that one cannot take the process, nobody else wakes
    until their own timeout. Here the process targets the executor that started waiting last."""
    targeted_key = colony.add_executor("targeted")
    first = AssignThread(colony, 20)  # executor-1, waiting first, not targeted
    first.start()
    wait_for_waiters(colony.server, colony.colonyname, colony.executortype, 1)
    second = AssignThread(colony, 20, targeted_key)
    second.start()
    wait_for_waiters(colony.server, colony.colonyname, colony.executortype, 2)
    handoffs = wakeups_of(colony.server).handoffs
    started = time.monotonic()
    submitted = colony.client.submit_func_spec(
        spec(colony, conditions={"colonyname": colony.colonyname, "executortype": colony.executortype,
                                 "executornames": ["targeted"]}),
        colony.user_prvkey,
    )
    second.join(15)
    assert not second.is_alive()
    assert second.result is not None and second.result.processid == submitted.processid
    assert time.monotonic() - started < 10, "the targeted executor waited for its own timeout"
    assert first.is_alive(), "the untargeted executor keeps waiting"
    # The wake-up went to the longest waiter, which passed it on: the hand-off is what ended the wait.
    assert wakeups_of(colony.server).handoffs == handoffs + 1
    colony.client.submit_func_spec(spec(colony), colony.user_prvkey)  # release the first waiter
    first.join(15)
    assert first.result is not None


def test_a_wake_up_that_arrives_during_the_first_look_is_not_lost(colony: ColonyEnv, database: str) -> None:
    """The first look of a long-poll runs before the waiter has a queue to be woken on. Work
    committed during that look (invisible to its snapshot) announces itself then; the assign must
    notice and look again, not sleep through it. The look is held on the executor's row lock (its
    liveness stamp) while the process is submitted and its wake-up is heard."""
    wakeups = wakeups_of(colony.server)

    async def scenario() -> Any:
        holder = await asyncpg.connect(database)
        try:
            async with AsyncColonies(colony.server.host, colony.server.port) as sdk:
                tx = holder.transaction()
                await tx.start()
                await holder.execute(
                    "UPDATE executors SET last_heard_from = now() - interval '1 hour' "
                    "WHERE colony_name = $1 AND name = $2", colony.colonyname, colony.executorname)
                assign = asyncio.create_task(sdk.assign(colony.colonyname, 120, colony.executor_prvkey))
                await wait_until_async(lambda: _blocked_on_lock(holder))
                heard = wakeups.notifications
                submitted = await sdk.submit_func_spec(spec(colony, funcname="late"), colony.user_prvkey)
                await wait_until_async(lambda: _true(wakeups.notifications > heard))
                await tx.commit()
                try:  # only a failure guard: a lost wake-up leaves the long-poll asleep for 120 s
                    return submitted, await asyncio.wait_for(assign, 20)
                except TimeoutError:
                    pytest.fail("the long-poll slept through the wake-up heard during its first look")
        finally:
            await holder.close()

    submitted, taken = asyncio.run(scenario())
    assert taken.processid == submitted.processid


async def _true(value: bool) -> bool:
    return value


async def _blocked_on_lock(con: asyncpg.Connection) -> bool:
    return bool(await con.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"))


async def wait_until_async(check, timeout: float = 30.0) -> None:  # noqa: ANN001 - an async predicate
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
