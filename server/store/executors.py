"""Executors: registration, approval state, liveness, membership lookups."""

from __future__ import annotations

from dataclasses import dataclass

from pycolonies import wire
from pycolonies.models import Allocations, Capabilities, Executor
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_executor

SQL = queries.load("executors")


@dataclass(frozen=True)
class AddResult:
    executor: Executor | None
    conflict: str = ""  # "name" or "id" when refused


async def add(db: Db, executor: Executor) -> AddResult:
    """Register as PENDING. A name whose executor is UNREGISTERED is re-used in place."""
    row = await db.fetchrow(
        SQL["add"],
        executor.colonyname,
        executor.executorname,
        executor.executorid,
        executor.executortype,
        executor.requirefuncreg,
        executor.locationname,
        executor.capabilities.to_wire(),
        executor.allocations.to_wire(),
    )
    if row:
        return AddResult(to_executor(row))
    taken = await get(db, executor.colonyname, executor.executorname)
    return AddResult(None, "name" if taken else "id")


async def get(db: Db, colony_name: str, name: str) -> Executor | None:
    row = await db.fetchrow(SQL["get"], colony_name, name)
    return to_executor(row) if row else None


async def get_by_id(db: Db, colony_name: str, executor_id: str) -> Executor | None:
    row = await db.fetchrow(SQL["get_by_id"], colony_name, executor_id)
    return to_executor(row) if row else None


async def list_for_colony(db: Db, colony_name: str) -> list[Executor]:
    rows = await db.fetch(SQL["list_for_colony"], colony_name)
    return [to_executor(r) for r in rows]


async def set_state(db: Db, colony_name: str, name: str, state: int) -> bool:
    """Approve or reject a registered executor; an UNREGISTERED one must be registered again."""
    status = await db.execute(SQL["set_state"], colony_name, name, state)
    return status.endswith(" 1")


async def unregister(db: Db, colony_name: str, name: str) -> Executor | None:
    """Soft delete: state UNREGISTERED and its functions removed. Returns the executor as it was."""
    row = await db.fetchrow(SQL["unregister"], colony_name, name)
    if not row:
        return None
    await db.execute(SQL["remove_functions"], colony_name, name)
    return to_executor(row)


@dataclass(frozen=True)
class Member:
    """The signer as a member of a colony: an executor or a user."""

    kind: str  # "executor" | "user"
    name: str
    member_id: str
    state: int = wire.APPROVED
    executortype: str = ""
    locationname: str = ""


async def find_member(db: Db, colony_name: str, signer_id: str) -> list[Member]:
    """Every identity the signer has in the colony (executor rows first, approved first)."""
    rows = await db.fetch(SQL["find_member"], colony_name, signer_id)
    return [
        Member(r["kind"], r["name"], r["member_id"], r["state"], r["executor_type"], r["location_name"])
        for r in rows
    ]


async def mark_alive(db: Db, colony_name: str, executor_id: str) -> bool:
    """Stamp an approved executor's ``lastheardfromtime``; False if it is no approved executor."""
    status = await db.execute(SQL["mark_alive"], colony_name, executor_id)
    return not status.endswith(" 0")


async def update_capabilities(db: Db, colony_name: str, name: str, executor_id: str,
                              capabilities: Capabilities) -> bool:
    """Replace the capabilities of executor ``name`` if it is ``executor_id``; False otherwise."""
    status = await db.execute(SQL["update_capabilities"], colony_name, name, executor_id,
                              capabilities.to_wire())
    return status.endswith(" 1")


async def report_allocations(db: Db, colony_name: str, name: str, executor_id: str,
                             allocations: Allocations) -> bool:
    """Replace the allocations of executor ``name`` if it is ``executor_id``; False otherwise."""
    status = await db.execute(SQL["report_allocations"], colony_name, name, executor_id,
                              allocations.to_wire())
    return status.endswith(" 1")


async def list_registered(db: Db, colony_name: str) -> list[Executor]:
    return [to_executor(row) for row in await db.fetch(SQL["list_registered"], colony_name)]
