"""Assign: give an executor the highest-priority ready process it may run, long-polling if none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from pycolonies.codec import WireDict
from server.errors import BadRequest, NotFound, Unavailable
from server.scheduler.wakeups import Wakeups
from server.store import processes as process_store
from server.store.processes import Assignment

NO_LIMIT = 2**62
MAX_WAIT_SLICE_S = 30.0


async def assign(
    pool,
    wakeups: Wakeups,
    *,
    colony_name: str,
    executor_id: str,
    executor_type: Callable[[], Awaitable[str]],
    timeout: int,
    cpu_limit: int = NO_LIMIT,
    memory_limit: int = NO_LIMIT,
    replay_key: str | None = None,
) -> WireDict:
    """Assign one process; wait up to ``timeout`` s for one (a negative timeout tries once).
    The first attempt records ``replay_key`` (replay protection). When it finds nothing,
    ``executor_type()`` (the caller's authorization: it refuses a non-executor) gives the queue to
    wait on.

    While the colony's assignments are paused nothing is taken: a long-poll keeps waiting (a
    resume wakes it on every replica) and a single attempt, or a long-poll whose time runs out,
    gets 404 saying that assignments are paused."""
    if timeout == 0:
        raise BadRequest("Invalid timeout value, timeout cannot be zero")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout, 0)

    async def attempt(key: str | None = None) -> Assignment:
        return await process_store.assign_next(
            pool, colony_name=colony_name, executor_id=executor_id, cpu_limit=cpu_limit,
            memory_limit=memory_limit, replay_key=key,
        )

    heard = wakeups.notifications
    found = await attempt(replay_key)  # the fast path: one statement
    if found.process is not None:
        return found.process
    # The statement names the approved executor's queue; otherwise the caller's check refuses.
    queue = found.executor_type if found.executor_type is not None else await executor_type()
    if timeout < 0:
        raise _nothing(found.paused)
    # Registered before looking again, so a wake-up between the look and the wait is not lost;
    # when no wake-up at all arrived since the first look began, that look still holds.
    look_again = wakeups.notifications != heard
    with wakeups.waiter(colony_name, queue) as waiter:
        while True:
            if wakeups.closing:
                raise Unavailable("Server is shutting down, retry the assign on another replica or later")
            waiter.looked = wakeups.generation(colony_name, queue)
            waiter.event.clear()
            if look_again:
                found = await attempt()
                if found.process is not None:
                    return found.process
            look_again = True
            if wakeups.generation(colony_name, queue) != waiter.looked:
                continue  # new work (or a resume) was announced while we looked: look again
            if found.ready_left and not found.paused:
                # work we may not run, or that someone is taking: pass the wake-up on
                wakeups.hand_off(colony_name, queue, waiter)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _nothing(found.paused)
            waiter.idle = True
            try:
                with contextlib.suppress(TimeoutError):
                    # Bounded, so a very long long-poll still re-checks now and then.
                    await asyncio.wait_for(waiter.event.wait(), min(remaining, MAX_WAIT_SLICE_S))
            finally:
                waiter.idle = False


def _nothing(paused: bool) -> NotFound:
    if paused:
        return NotFound("No process available for assignment: colony assignments are paused")
    return NotFound("No process available for assignment")
