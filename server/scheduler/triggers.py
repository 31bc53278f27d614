"""The trigger loop: one leader across all replicas fires due crons and timed-out generators.

Every replica runs this task; the one holding the PostgreSQL session advisory lock
``TRIGGER_LOCK_ID`` looks for work every ``period`` seconds, the others try to take the lock once
a second (as the deadline sweeper does). Each firing is its own transaction that locks the cron or
generator row (``SKIP LOCKED``) and re-checks that it is still due, so even two leaders (a lock
lost mid-pass) could not fire the same run twice. ``runcronmsg`` and ``packgeneratormsg`` use the
same ``fire_cron`` / ``fire_generator`` in their own transactions.

Crons: a due cron (``next_run`` passed) that waits for its previous graph is skipped while that
graph is active (a SUCCESS, FAILED or CANCELLED graph, or a removed one, does not block). Firing
creates the graph with the previous graph's leaf outputs as the roots' input and records the run
and the next run. A cron whose workflow cannot be created any more (its initiator left the colony)
is not retried every tick: its next run is advanced and a warning is logged.

Generators: when ``trigger`` args are queued, ``floor(queued / trigger)`` workflows are submitted,
each with ``trigger`` args in pack order as the roots' ``args`` (this happens in the pack
transaction itself); when fewer are queued and the oldest has waited ``timeout`` seconds, one
workflow with all of them (this loop). The args used are deleted in the same transaction.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from pycolonies.codec import FieldError, WireDict, from_wire
from pycolonies.models import FuncSpec, Workflow
from server.domain import cron_schedule
from server.domain.graph_plan import Node, PlanError, plan_workflow
from server.scheduler.leader import LeaderLoop
from server.store import Executor as Db
from server.store import crons as cron_store
from server.store import generators as generator_store
from server.store import graphs as graph_store
from server.store import processes as process_store

log = logging.getLogger(__name__)

TRIGGER_LOCK_ID = 0x636F6C6F6E79_02  # "colony" + 2 (the deadline sweeper is + 1)
TRIGGER_PERIOD_S = 0.5
CHECKER_PERIOD_MS = int(TRIGGER_PERIOD_S * 1000)  # reported as ``checkerperiod`` in replies
MAX_FIRINGS_PER_PASS = 100
PROBLEM_RETRY_S = 30.0  # a generator (or a cron hit by a database error) that failed waits this long


class FireError(Exception):
    """The workflow of a cron or generator cannot be created now; the message says why."""


def load_workflow(text: str) -> tuple[list[FuncSpec], list[Node]]:
    """The stored workflow spec's function specs and their plan (checked when it was added)."""
    try:
        workflow = from_wire(Workflow, json.loads(text), "workflowspec")
        return workflow.functionspecs, plan_workflow(workflow.functionspecs, "workflowspec.functionspecs")
    except (ValueError, FieldError, PlanError) as exc:
        raise FireError(f"its workflow spec is no longer usable: {exc}") from exc


async def _submit(db: Db, owner: Any, *, root_input: list[Any] | None = None,
                  root_args: list[Any] | None = None) -> WireDict:
    """Create ``owner``'s (a cron or generator row) workflow as its initiator, or FireError."""
    specs, nodes = load_workflow(owner["workflow_spec"])
    try:
        graph = await graph_store.insert_workflow(
            db,
            colony_name=owner["colony_name"],
            initiator_id=owner["initiator_id"],
            specs=specs,
            nodes=nodes,
            submitted_ns=time.time_ns(),
            root_input=root_input,
            root_args=root_args,
        )
    except ValueError as exc:  # e.g. a resource string the current parser refuses
        raise FireError(f"its workflow spec is no longer usable: {exc}") from exc
    if graph is None:
        raise FireError(
            f"its initiator <{owner['initiator_name']}> is no longer a member of colony "
            f"<{owner['colony_name']}>"
        )
    return graph


async def initiator_is_member(db: Db, owner: Any) -> bool:
    return await process_store.member_name(db, owner["colony_name"], owner["initiator_id"]) is not None


# -- crons ----------------------------------------------------------------------------------------


@dataclass
class CronFiring:
    cron: Any  # the cron row after this evaluation
    graph: WireDict | None = None  # the graph created, if it fired
    blocked: bool = False  # waits for its previous graph, which is still active
    problem: str = ""  # why the workflow could not be created


def _next_run(row: Any, now: datetime, rng: random.Random | None) -> datetime:
    try:
        return cron_schedule.next_run(
            interval=row["interval_s"], random=row["random"], expression=row["cron_expression"], now=now,
            previous=row["next_run"], rng=rng,
        )
    except cron_schedule.ScheduleError as exc:
        log.warning("cron %s <%s> in colony <%s>: %s; trying again in a day", row["cron_id"], row["name"],
                    row["colony_name"], exc)
        return now + timedelta(days=1)


async def fire_cron(
    db: Db, row: Any, *, manual: bool = False, rng: random.Random | None = None
) -> CronFiring:
    """Fire the cron locked by ``cron_store.lock`` (``row``), inside that transaction. On a problem
    a scheduled run advances the next run (so it is not retried every tick), a manual one changes
    nothing (its caller refuses the request and rolls back)."""
    now = row["now"]
    if row["next_run"] is None and not manual:  # never evaluated: schedule only
        return CronFiring(await cron_store.reschedule(db, row["cron_id"], _next_run(row, now, rng)))
    if row["wait_for_prev_processgraph"] and await cron_store.previous_active(db, row["cron_id"]):
        return CronFiring(row, blocked=True)
    try:
        root_input = await cron_store.leaf_outputs(db, row["prev_processgraph_id"])
        graph = await _submit(db, row, root_input=root_input)
    except FireError as exc:
        if manual:
            return CronFiring(row, problem=str(exc))
        log.warning("cron %s <%s> in colony <%s> did not run: %s", row["cron_id"], row["name"],
                    row["colony_name"], exc)
        return CronFiring(await cron_store.reschedule(db, row["cron_id"], _next_run(row, now, rng)),
                          problem=str(exc))
    updated = await cron_store.record_run(
        db, row["cron_id"], ran_at=now, next_run=_next_run(row, now, rng), graph_id=graph["processgraphid"]
    )
    return CronFiring(updated, graph=graph)


# -- generators -----------------------------------------------------------------------------------


async def fire_generator(db: Db, row: Any) -> int:
    """With the generator locked (``row`` from ``generator_store.lock``): submit what is due, in
    pack order, and delete the args used. Returns the number of workflows submitted; FireError
    (nothing must be committed then) if they cannot be created."""
    queued, oldest = await generator_store.queue_state(db, row["generator_id"])
    trigger = row["trigger"]
    if queued >= trigger:
        batches, size = queued // trigger, trigger
    elif queued and row["timeout_s"] > 0 and oldest <= row["now"] - timedelta(seconds=row["timeout_s"]):
        batches, size = 1, queued
    else:
        return 0
    args = await generator_store.first_args(db, row["generator_id"], batches * size)
    for i in range(batches):
        batch = args[i * size:(i + 1) * size]
        await _submit(db, row, root_args=[a["arg"] for a in batch])
    await generator_store.take(db, row["generator_id"], [a["arg_id"] for a in args])
    return batches


# -- the loop -------------------------------------------------------------------------------------


async def run_due(con: asyncpg.Connection, *, rng: random.Random | None = None,
                  holdoff: dict[str, float] | None = None) -> dict[str, int]:
    """One pass: fire the due crons and the timed-out generators, each in its own transaction.
    ``holdoff`` (id -> monotonic time) keeps ones that just failed from being retried every pass."""
    holdoff = {} if holdoff is None else holdoff
    clock = time.monotonic()
    for key in [k for k, until in holdoff.items() if until <= clock]:
        del holdoff[key]
    result = {"crons_fired": 0, "crons_failed": 0, "generator_workflows": 0, "generators_failed": 0}
    for cron_id in await cron_store.due_ids(con, MAX_FIRINGS_PER_PASS):
        if cron_id in holdoff:
            continue
        try:
            async with con.transaction():
                row = await cron_store.lock(con, cron_id, skip_locked=True)
                if row is None or (row["next_run"] is not None and row["next_run"] > row["now"]):
                    continue  # being fired elsewhere, or fired since it was listed
                firing = await fire_cron(con, row, rng=rng)
        except (asyncpg.PostgresError, ValueError) as exc:  # not the connection: skip it for a while
            log.exception("cron %s could not be fired: %s", cron_id, exc)
            holdoff[cron_id] = time.monotonic() + PROBLEM_RETRY_S
            result["crons_failed"] += 1
            continue
        if firing.graph is not None:
            result["crons_fired"] += 1
        elif firing.problem:
            result["crons_failed"] += 1
    for generator_id in await generator_store.timed_out_ids(con, MAX_FIRINGS_PER_PASS):
        if generator_id in holdoff:
            continue
        try:
            async with con.transaction():
                row = await generator_store.lock(con, generator_id, skip_locked=True)
                if row is not None:
                    result["generator_workflows"] += await fire_generator(con, row)
        except (FireError, asyncpg.PostgresError, ValueError) as exc:
            log.warning("generator %s could not submit its workflow: %s; trying again in %.0f s",
                        generator_id, exc, PROBLEM_RETRY_S)
            holdoff[generator_id] = time.monotonic() + PROBLEM_RETRY_S
            result["generators_failed"] += 1
    return result


class TriggerLoop(LeaderLoop):
    name = "trigger loop"
    duty = "fires crons and generators"
    lock_id = TRIGGER_LOCK_ID

    def __init__(self, dsn: str, period: float = TRIGGER_PERIOD_S, rng: random.Random | None = None) -> None:
        super().__init__(dsn, period)
        self.rng = rng or random.Random()
        self._holdoff: dict[str, float] = {}

    async def tick(self, con: asyncpg.Connection) -> None:
        result = await run_due(con, rng=self.rng, holdoff=self._holdoff)
        if any(result.values()):
            log.debug("triggers: %s", result)
