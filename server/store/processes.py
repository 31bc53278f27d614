"""Processes: insert, assign, close, read, list and remove, each one conditional statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from pycolonies import wire
from pycolonies.codec import WireDict
from pycolonies.crypto import sha3_hex
from pycolonies.models import Attribute, FuncSpec
from server.domain.priority import priority_time
from server.domain.resources import reference_conditions
from server.store import Executor as Db
from server.store import queries, seen_requests
from server.store.rows import to_process

SQL = queries.load("processes")


class Assignment(NamedTuple):
    """What one assign attempt found: the process taken (or None), whether ready processes of the
    executor's type remain, and whether the colony's assignments are paused."""

    process: WireDict | None
    ready_left: bool
    paused: bool
    executor_type: str | None = None  # when nothing was taken: the approved signer's type


def new_id() -> str:
    return sha3_hex(str(uuid.uuid4()))


def time_from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns // 1000) % 1_000_000)


def stored_spec(spec: FuncSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The spec as the processes table keeps it, and its env: env lives in ENV attributes and
    is merged back when the process is read."""
    stored = spec.to_wire()
    stored["conditions"] = reference_conditions(stored["conditions"])
    env = stored.pop("env", None) or {}
    stored["env"] = {}
    return stored, env


def executor_names(spec: FuncSpec) -> list[str]:
    return [n for n in (spec.conditions.executornames or []) if n]


def attribute_id(target_id: str, key: str, attribute_type: int) -> str:
    return sha3_hex(f"{target_id}{key}{attribute_type}")


def new_process(
    spec: FuncSpec,
    *,
    process_id: str,
    initiator_id: str,
    initiator_name: str = "",
    submitted_ns: int,
    cpu_millis: int,
    memory_bytes: int,
    processgraph_id: str = "",
    wait_for_parents: bool = False,
    stored: dict[str, Any],
    input: list[Any] | None = None,
) -> dict[str, Any]:
    """A process to insert, keyed like the ``new_process`` type of the schema (timestamps as ISO
    text): the spec's ``conditions`` decide the queue it waits in, a ready one gets its wait
    deadline now."""
    submitted = time_from_ns(submitted_ns)
    waits_for_time = not wait_for_parents and spec.maxwaittime > 0
    wait_deadline = submitted + timedelta(seconds=spec.maxwaittime) if waits_for_time else None
    return {
        "process_id": process_id,
        "colony_name": spec.conditions.colonyname,
        "executor_type": spec.conditions.executortype,
        "executor_names": executor_names(spec),
        "location_name": spec.conditions.locationname,
        "cpu_millis": cpu_millis,
        "memory_bytes": memory_bytes,
        "initiator_id": initiator_id,
        "initiator_name": initiator_name,
        "funcname": spec.funcname,
        "label": spec.label,
        "priority": spec.priority,
        "priority_time": priority_time(spec, submitted_ns),
        "submission_time": submitted.isoformat(),
        "wait_deadline": wait_deadline.isoformat() if wait_deadline else None,
        "max_wait_time": spec.maxwaittime,
        "max_exec_time": spec.maxexectime,
        "max_retries": spec.maxretries,
        "spec": stored,
        "processgraph_id": processgraph_id,
        "wait_for_parents": wait_for_parents,
        "input": list(input) if input is not None else [],
    }


def env_attributes(process_id: str, env: dict[str, str]) -> list[dict[str, str]]:
    """A process's ENV attributes to insert, keyed like the ``new_env_attribute`` type."""
    return [
        {"attribute_id": attribute_id(process_id, key, wire.ENV), "target_id": process_id, "key": key,
         "value": value}
        for key, value in env.items()
    ]


def env_attribute_models(new: dict[str, Any], env: dict[str, str]) -> list[Attribute]:
    """The ENV attributes of the new process ``new`` (a ``new_process`` dict) as models."""
    return [
        Attribute(
            attributeid=attribute_id(new["process_id"], key, wire.ENV),
            targetid=new["process_id"],
            targetcolonyname=new["colony_name"],
            targetprocessgraphid=new["processgraph_id"],
            attributetype=wire.ENV,
            key=key,
            value=value,
        )
        for key, value in env.items()
    ]


async def insert(
    db: Db,
    spec: FuncSpec,
    *,
    initiator_id: str,
    cpu_millis: int,
    memory_bytes: int,
    submitted_ns: int,
    announce: bool = True,
    replay_key: str | None = None,
) -> WireDict | None:
    """Insert a WAITING process with its ENV attributes in one statement; with ``announce`` its
    queue's waiters are woken when the statement's transaction commits.

    The initiator must be a member of the colony (an approved executor or a user), whose name
    becomes ``initiatorname``; otherwise nothing is inserted and None is returned.
    """
    stored, env = stored_spec(spec)
    new = new_process(
        spec, process_id=new_id(), initiator_id=initiator_id, submitted_ns=submitted_ns,
        cpu_millis=cpu_millis, memory_bytes=memory_bytes, stored=stored,
    )
    row = await db.fetchrow(
        SQL["insert_process"], new, env_attributes(new["process_id"], env), replay_key, announce
    )
    seen_requests.check_recorded(row, replay_key)
    if row["process_id"] is None:
        return None
    return to_process(row, env_attribute_models(new, env))


async def member_name(db: Db, colony_name: str, member_id: str) -> str | None:
    """The name under which ``member_id`` acts in the colony (an approved executor's name before a
    user's), or None if it is no member."""
    return await db.fetchval(SQL["member_name"], colony_name, member_id)


async def assign_next(
    db: Db,
    *,
    colony_name: str,
    executor_id: str,
    cpu_limit: int,
    memory_limit: int,
    replay_key: str | None = None,
) -> Assignment:
    """Atomically take the highest-priority ready process that the approved executor
    ``executor_id`` may run (and stamp its liveness); None if there is none, if the signer is
    not an approved executor of the colony, or if the colony's assignments are paused.
    ``replay_key`` records the request (first attempt). Also says whether ready processes of its
    type remain (ones it may not run, or locked ones)."""
    row = await db.fetchrow(SQL["assign_next"], colony_name, executor_id, cpu_limit, memory_limit, replay_key)
    seen_requests.check_recorded(row, replay_key)
    process = to_process(row) if row["process_id"] is not None else None
    return Assignment(process, bool(row["ready_left"]), bool(row["paused"]), row["signer_executor_type"])


async def get_row(db: Db, process_id: str) -> Any:
    """The process row including its attributes (``to_process(row)`` builds the Process)."""
    return await db.fetchrow(SQL["get"], process_id)


async def get(db: Db, process_id: str) -> WireDict | None:
    row = await get_row(db, process_id)
    return to_process(row) if row else None


def lease_expired(row: Any) -> bool:
    deadline = row["exec_deadline"]
    return deadline is not None and deadline <= datetime.now(UTC)


IN_GRAPH = object()  # close_successful(standalone_only=True) of a workflow member: nothing done


async def close_successful(
    db: Db, process_id: str, executor_id: str, output: list[Any] | None, replay_key: str | None = None,
    *, standalone_only: bool = False,
) -> Any:
    """RUNNING -> SUCCESS by its assignee (still an approved executor, lease not expired), folding
    the run into its function's statistics. Returns the updated row, or None if refused. Run it in a
    transaction and release the process's children next (``graphs.after_success``).

    ``standalone_only``: for a workflow member, change nothing (the replay record included) and
    return ``IN_GRAPH``, so that a process outside workflows closes in one autocommit statement
    and a member is closed again the transactional way."""
    row = await db.fetchrow(SQL["close_successful"], process_id, executor_id, output, replay_key,
                            standalone_only)
    if row["in_graph"]:
        return IN_GRAPH
    seen_requests.check_recorded(row, replay_key)
    return row if row["process_id"] is not None else None


async def close_failed(
    db: Db, process_id: str, executor_id: str, errors: list[Any], replay_key: str | None = None
) -> Any:
    """RUNNING -> FAILED by its assignee, locking its graph first, if any (run it in a transaction
    and cascade the failure next). Returns the updated row, or None if refused."""
    row = await db.fetchrow(SQL["close_failed"], process_id, executor_id, errors, replay_key)
    seen_requests.check_recorded(row, replay_key)
    return row if row["process_id"] is not None else None


async def release(db: Db, process_id: str, executor_id: str) -> bool:
    """RUNNING -> WAITING by its assignee (still an approved executor, lease not expired), without
    counting a retry: the executor gives the process back (e.g. it is shutting down). Waiting
    executors are woken when the statement commits."""
    row = await db.fetchrow(SQL["release"], process_id, executor_id)
    return bool(row["released"])


async def set_output(db: Db, process_id: str, executor_id: str, output: list[Any]) -> bool:
    status = await db.execute(SQL["set_output"], process_id, executor_id, output)
    return status.endswith(" 1")


# Where a page of list_by_state ends: the last process's order key (priority time in ns for
# waiting processes, start or end time otherwise) and its id.
PageKey = tuple[int | datetime, str]


async def list_by_state(
    db: Db,
    colony_name: str,
    state: int,
    count: int,
    *,
    executor_type: str = "",
    label: str = "",
    initiator_name: str = "",
) -> list[WireDict]:
    """Up to ``count`` of the colony's processes in ``state``: waiting ones next-to-run first,
    running ones longest-running first, ended ones latest first."""
    processes, _ = await page_by_state(db, colony_name, state, count, executor_type=executor_type,
                                       label=label, initiator_name=initiator_name)
    return processes


async def page_by_state(
    db: Db,
    colony_name: str,
    state: int,
    count: int,
    *,
    executor_type: str = "",
    label: str = "",
    initiator_name: str = "",
    after: PageKey | None = None,
) -> tuple[list[WireDict], PageKey | None]:
    """A page of ``list_by_state`` that starts after ``after``, and the key the next page starts
    after (None when this page is the last)."""
    key, after_id = after if after is not None else (None, "")
    filters = (colony_name, count, executor_type, label, initiator_name, key, after_id)
    if state == wire.WAITING:
        rows = await db.fetch(SQL["list_waiting"], *filters)
    elif state == wire.RUNNING:
        rows = await db.fetch(SQL["list_running"], *filters)
    else:
        rows = await db.fetch(SQL["list_ended"], *filters, state)
    following = None
    if rows and len(rows) == count:
        last = rows[-1]
        order = {wire.WAITING: "priority_time", wire.RUNNING: "start_time"}.get(state, "end_time")
        following = (last[order], last["process_id"])
    return [to_process(r) for r in rows], following


async def history(db: Db, colony_name: str, state: int, seconds: int, executor_id: str,
                  limit: int) -> list[WireDict]:
    """The colony's processes in ``state`` submitted in the last ``seconds``, oldest first (only
    those assigned to ``executor_id`` unless it is ''), at most ``limit``."""
    rows = await db.fetch(SQL["history"], colony_name, state, float(seconds), executor_id, limit)
    return [to_process(r) for r in rows]


async def remove(db: Db, process_id: str) -> bool:
    """Delete a process that is neither running nor part of a workflow."""
    return (await db.execute(SQL["remove"], process_id)).endswith(" 1")


async def remove_all(db: Db, colony_name: str, state: int) -> int:
    """Delete the colony's processes outside workflows: all of them (state -1) or one state."""
    status = await db.execute(SQL["remove_all"], colony_name, state)
    return int(status.split()[-1])


async def requeue_for_executor(db: Db, colony_name: str, executor_id: str) -> list[tuple[str, str]]:
    """Put an executor's RUNNING processes back to WAITING; return their (colony, executortype)."""
    rows = await db.fetch(SQL["requeue_for_executor"], colony_name, executor_id)
    return sorted({(r["colony_name"], r["executor_type"]) for r in rows})


class QueueCount(NamedTuple):
    """One group of ``counts_by_queue``: how many processes of a colony and executor type are in
    ``state`` (waiting for their parents or not), and the age of the oldest one's submission.
    Ended processes are counted per colony and state only: executor type '', no age."""

    colony_name: str
    executor_type: str
    state: int
    wait_for_parents: bool
    count: int
    oldest_age_s: float | None


async def counts_by_queue(db: Db) -> list[QueueCount]:
    """Process counts by colony, executor type (live ones), state and waiting for parents."""
    return [QueueCount(*row) for row in await db.fetch(SQL["counts_by_queue"])]
