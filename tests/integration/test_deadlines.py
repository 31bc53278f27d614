"""Deadlines (docs/scheduling-and-workflows.md): maxexectime, maxwaittime and maxretries, enforced by the
server's deadline sweeper on a single in-process server.

Contract: a process with ``maxexectime`` T > 0 still RUNNING T s after its assignment goes back to
WAITING with ``retries + 1`` and no assignee (within about a second), unless ``maxretries`` >= 0
and ``retries`` >= ``maxretries``, in which case it becomes FAILED with an error mentioning
"Maximum execution time". ``maxwaittime`` W > 0 fails a still-WAITING process after W s
("Maximum waiting time"). -1 and 0 mean no limit. A close by an executor whose deadline has passed
is refused. A requeued process wakes long-polling executors.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from pycolonies import Colonies, ColoniesServerError, NotFoundError, crypto, wire
from pycolonies.models import Process
from server.app import SERVICES
from server.scheduler import deadlines
from tests.conftest import ColonyEnv
from tests.support import wait_until

SWEEP_SLACK = 4.0  # how long after a deadline the sweeper may take on a loaded machine ("about a second")
EXEC_ERROR = "Maximum execution time"
WAIT_ERROR = "Maximum waiting time"


def spec(colony: ColonyEnv, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "funcname": "work",
        "args": [],
        "maxwaittime": -1,
        "maxexectime": -1,
        "maxretries": 0,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype},
    }
    body.update(overrides)
    return body


def get(colony: ColonyEnv, processid: str) -> Process:
    return colony.client.get_process(processid, colony.user_prvkey)


def wait_for(colony: ColonyEnv, processid: str, done: Callable[[Process], bool], timeout: float,
             what: str) -> Process:
    """Poll the process until ``done(process)``; fail (showing its last state) after ``timeout`` s."""
    last: list[Process] = []

    def reached() -> Process | None:
        last[:] = [get(colony, processid)]
        return last[0] if done(last[0]) else None

    try:
        return wait_until(reached, timeout, what)
    except AssertionError as exc:
        process = last[0]
        raise AssertionError(f"{exc}; process is in state {process.state} with retries={process.retries}, "
                             f"errors={process.errors}") from None


NOTHING_SWEPT = {"requeued_queues": 0, "failed_leases": 0, "failed_waits": 0}


def sweep_now(colony: ColonyEnv) -> dict[str, int]:
    """One pass of the deadline sweeper, run here (the server's own sweeper runs on as well)."""
    async def once() -> dict[str, int]:
        con = await asyncpg.connect(colony.server.dsn)
        try:
            return await deadlines.sweep(con)
        finally:
            await con.close()

    return asyncio.run(once())


def left_running(colony: ColonyEnv, processid: str, maxexectime: float) -> Process:
    return wait_for(colony, processid, lambda p: p.state != wire.RUNNING, maxexectime + SWEEP_SLACK,
                    "the sweeper to act on an expired execution deadline")


def assign(colony: ColonyEnv, prvkey: str | None = None, timeout: int = 5) -> Process:
    return colony.client.assign(colony.colonyname, timeout, prvkey or colony.executor_prvkey)


def sleep_past(deadline: datetime, margin: float = 0.05) -> None:
    remaining = (deadline - datetime.now(UTC)).total_seconds() + margin
    if remaining > 0:
        time.sleep(remaining)


def has_error(process: Process, needle: str) -> bool:
    return any(needle in str(error) for error in process.errors)


# -- maxexectime and maxretries -----------------------------------------------------------------------


def test_exec_timeout_requeues_with_a_retry_then_fails_when_retries_are_used_up(colony: ColonyEnv) -> None:
    submitted = colony.client.submit_func_spec(spec(colony, maxexectime=1, maxretries=1), colony.user_prvkey)
    started = time.monotonic()
    first = assign(colony)
    assert first.processid == submitted.processid
    assert first.execdeadline is not None
    assert first.retries == 0

    requeued = left_running(colony, submitted.processid, 1)
    assert time.monotonic() - started >= 0.9, "requeued before maxexectime passed"
    assert requeued.state == wire.WAITING
    assert requeued.retries == 1
    assert requeued.assignedexecutorid == ""
    assert not requeued.isassigned
    assert not requeued.errors

    second = assign(colony)
    assert second.processid == submitted.processid
    assert second.retries == 1
    failed = left_running(colony, submitted.processid, 1)
    assert failed.state == wire.FAILED
    assert failed.retries == 1
    assert has_error(failed, EXEC_ERROR), failed.errors
    assert failed.endtime is not None
    with pytest.raises(NotFoundError):
        assign(colony, timeout=-1)


def test_exec_timeout_with_maxretries_0_fails_on_the_first_expiry(colony: ColonyEnv) -> None:
    submitted = colony.client.submit_func_spec(spec(colony, maxexectime=1, maxretries=0), colony.user_prvkey)
    started = time.monotonic()
    assert assign(colony).processid == submitted.processid
    failed = left_running(colony, submitted.processid, 1)
    assert time.monotonic() - started >= 0.9, "failed before maxexectime passed"
    assert failed.state == wire.FAILED
    assert failed.retries == 0
    assert has_error(failed, EXEC_ERROR), failed.errors


def test_exec_timeout_with_maxretries_minus_1_keeps_retrying(colony: ColonyEnv) -> None:
    submitted = colony.client.submit_func_spec(spec(colony, maxexectime=1, maxretries=-1), colony.user_prvkey)
    for attempt in range(1, 4):
        assigned = assign(colony)
        assert assigned.processid == submitted.processid
        assert assigned.retries == attempt - 1
        requeued = left_running(colony, submitted.processid, 1)
        assert requeued.state == wire.WAITING, f"attempt {attempt}: {requeued.errors}"
        assert requeued.retries == attempt
    last = assign(colony)
    colony.client.close(last.processid, ["finally"], colony.executor_prvkey)
    done = get(colony, submitted.processid)
    assert (done.state, done.retries, done.output) == (wire.SUCCESS, 3, ["finally"])


def test_a_requeued_process_gets_a_fresh_maxwaittime(colony: ColonyEnv) -> None:
    """The requeue re-arms the wait deadline (now + maxwaittime)."""
    submitted = colony.client.submit_func_spec(
        spec(colony, maxexectime=1, maxwaittime=3, maxretries=2), colony.user_prvkey
    )
    assert submitted.waitdeadline is not None
    assert assign(colony).processid == submitted.processid
    requeued = left_running(colony, submitted.processid, 1)
    assert requeued.state == wire.WAITING
    # The requeue (>= 1 s after submission) set a fresh deadline: requeue time + 3 s.
    assert requeued.waitdeadline is not None
    assert (requeued.waitdeadline - submitted.waitdeadline).total_seconds() >= 0.9, (
        submitted.waitdeadline, requeued.waitdeadline)
    failed = wait_for(colony, submitted.processid, lambda p: p.state != wire.WAITING, 3 + SWEEP_SLACK,
                      "the re-armed wait deadline to expire")
    assert failed.endtime is not None
    assert failed.endtime >= requeued.waitdeadline, "failed by the original, not the re-armed, wait deadline"
    assert failed.state == wire.FAILED
    assert has_error(failed, WAIT_ERROR), failed.errors
    assert failed.retries == 1


# -- maxwaittime --------------------------------------------------------------------------------------


def test_wait_timeout_fails_a_waiting_process(colony: ColonyEnv) -> None:
    started = time.monotonic()
    submitted = colony.client.submit_func_spec(spec(colony, maxwaittime=1), colony.user_prvkey)
    assert submitted.waitdeadline is not None
    failed = wait_for(colony, submitted.processid, lambda p: p.state != wire.WAITING, 1 + SWEEP_SLACK,
                      "the sweeper to act on an expired wait deadline")
    assert time.monotonic() - started >= 0.9, "failed before maxwaittime passed"
    assert failed.state == wire.FAILED
    assert has_error(failed, WAIT_ERROR), failed.errors
    assert failed.assignedexecutorid == ""
    assert failed.retries == 0
    with pytest.raises(NotFoundError):
        assign(colony, timeout=-1)


# -- no limits ----------------------------------------------------------------------------------------


def test_zero_and_minus_1_mean_no_limit(colony: ColonyEnv) -> None:
    # Running ones first (assign takes the oldest); maxretries 0 would fail them on any expiry.
    running = [
        colony.client.submit_func_spec(spec(colony, maxexectime=value, maxretries=0), colony.user_prvkey)
        for value in (0, -1)
    ]
    nobody = {"colonyname": colony.colonyname, "executortype": "nobody-runs-this"}
    waiting = [
        colony.client.submit_func_spec(spec(colony, maxwaittime=value, conditions=nobody), colony.user_prvkey)
        for value in (0, -1)
    ]
    assigned = [assign(colony), assign(colony)]
    assert {p.processid for p in assigned} == {p.processid for p in running}
    assert all(p.execdeadline is None for p in assigned)
    assert all(p.waitdeadline is None for p in waiting)
    for _ in range(3):  # passes of the sweeper at any time: nothing may expire
        assert sweep_now(colony) == NOTHING_SWEPT
    for process in running:
        now = get(colony, process.processid)
        assert (now.state, now.retries, now.errors) == (wire.RUNNING, 0, []), now
    for process in waiting:
        now = get(colony, process.processid)
        assert (now.state, now.retries, now.errors) == (wire.WAITING, 0, []), now
    for process in running:
        colony.client.close(process.processid, ["ok"], colony.executor_prvkey)
        assert get(colony, process.processid).state == wire.SUCCESS


# -- closing around the deadline ----------------------------------------------------------------------


@pytest.mark.parametrize(("maxretries", "swept_state"), [(1, wire.WAITING), (0, wire.FAILED)])
def test_a_late_close_is_refused_and_the_sweepers_state_stands(
    colony: ColonyEnv, maxretries: int, swept_state: int
) -> None:
    submitted = colony.client.submit_func_spec(
        spec(colony, maxexectime=1, maxretries=maxretries), colony.user_prvkey
    )
    assigned = assign(colony)
    assert assigned.processid == submitted.processid
    assert assigned.execdeadline is not None
    sleep_past(assigned.execdeadline)

    # Right after the deadline, whether or not the sweeper got there first.
    with pytest.raises(ColoniesServerError) as late:
        colony.client.close(submitted.processid, ["too late"], colony.executor_prvkey)
    assert late.value.status in (400, 403), repr(late.value)
    with pytest.raises(ColoniesServerError) as late_fail:
        colony.client.fail(submitted.processid, ["too late"], colony.executor_prvkey)
    assert late_fail.value.status in (400, 403), repr(late_fail.value)

    swept = left_running(colony, submitted.processid, 0)
    assert swept.state == swept_state
    with pytest.raises(ColoniesServerError) as later:
        colony.client.close(submitted.processid, ["even later"], colony.executor_prvkey)
    assert later.value.status in (400, 403), repr(later.value)
    final = get(colony, submitted.processid)
    assert final.state == swept_state
    assert final.output == []
    if swept_state == wire.WAITING:
        assert (final.retries, final.assignedexecutorid) == (1, "")
        assert not final.errors
    else:
        assert final.retries == 0
        assert has_error(final, EXEC_ERROR), final.errors


def test_a_close_before_the_deadline_succeeds_and_stays_closed(colony: ColonyEnv) -> None:
    submitted = colony.client.submit_func_spec(spec(colony, maxexectime=2, maxretries=0), colony.user_prvkey)
    assigned = assign(colony)
    assert assigned.execdeadline is not None
    colony.client.close(submitted.processid, ["in time"], colony.executor_prvkey)
    sleep_past(assigned.execdeadline)
    assert sweep_now(colony) == NOTHING_SWEPT  # a pass after the old deadline leaves it alone
    done = get(colony, submitted.processid)
    assert (done.state, done.retries, done.output, done.errors) == (wire.SUCCESS, 0, ["in time"], [])


# -- wake-ups -----------------------------------------------------------------------------------------


class LongPoll(threading.Thread):
    def __init__(self, colony: ColonyEnv, prvkey: str, timeout: int) -> None:
        super().__init__(daemon=True)
        self.colony = colony
        self.prvkey = prvkey
        self.timeout = timeout
        self.result: Process | None = None
        self.error: BaseException | None = None
        self.returned_at: float | None = None

    def run(self) -> None:
        try:
            with Colonies(self.colony.server.host, self.colony.server.port, timeout=30) as sdk:
                self.result = sdk.assign(self.colony.colonyname, self.timeout, self.prvkey)
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            self.returned_at = time.monotonic()


def test_a_requeued_process_wakes_a_long_polling_executor(colony: ColonyEnv) -> None:
    second_prvkey = colony.add_executor("executor-2")
    submitted = colony.client.submit_func_spec(spec(colony, maxexectime=1, maxretries=3), colony.user_prvkey)
    assert assign(colony).processid == submitted.processid
    started = time.monotonic()
    poller = LongPoll(colony, second_prvkey, timeout=25)
    poller.start()
    wakeups = colony.server.app[SERVICES].wakeups
    wait_until(lambda: wakeups.waiting(colony.colonyname, colony.executortype) == 1 or not poller.is_alive(),
               1 + SWEEP_SLACK, "the long-poll to wait")
    assert poller.is_alive(), f"the long-poll returned before any work was ready: {poller.error!r}"
    poller.join(1 + SWEEP_SLACK + 3)
    assert not poller.is_alive(), "the long-poll was not woken by the requeue"
    assert poller.error is None, repr(poller.error)
    assert poller.result is not None and poller.result.processid == submitted.processid
    assert poller.result.retries == 1
    assert poller.result.assignedexecutorid == crypto.derive_id(second_prvkey)
    assert poller.returned_at is not None
    # Woken by the requeue (~1 s), not by its own 25 s timeout or an internal re-check slice.
    assert poller.returned_at - started < 1 + SWEEP_SLACK
    colony.client.close(submitted.processid, ["second"], second_prvkey)
    assert get(colony, submitted.processid).state == wire.SUCCESS


def test_the_sweeper_has_no_row_cap(colony: ColonyEnv, database: str) -> None:
    """The reference expires at most 1,000 waiting processes per pass; one sweep here takes all."""
    import asyncio

    import asyncpg

    from server.scheduler.deadlines import sweep

    count = 1500
    for _ in range(count):
        colony.client.submit_func_spec(spec(colony, maxwaittime=3600), colony.user_prvkey)

    async def expire_and_sweep() -> dict[str, int]:
        con = await asyncpg.connect(database)
        try:
            # One transaction: the server's own sweeper cannot see the expired deadlines first.
            async with con.transaction():
                await con.execute("UPDATE processes SET wait_deadline = now() - interval '1 second'")
                return await sweep(con)
        finally:
            await con.close()

    result = asyncio.run(expire_and_sweep())
    assert result["failed_waits"] == count
    stats = colony.client.stats(colony.colonyname, colony.user_prvkey)
    assert stats["failedprocesses"] == count and stats["waitingprocesses"] == 0
