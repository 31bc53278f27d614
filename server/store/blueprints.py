"""Blueprints: definitions, blueprints, their history, and the reconcile process of a change.

A change of a blueprint is one transaction (the caller's): lock the row (or insert it), write it,
record a history row and insert the reconcile process, so a committed change always has its
reconcile request and a failed one leaves nothing behind. Definitions are share-locked while a
blueprint of their kind is written, so a definition cannot be removed under a new blueprint.
"""

from __future__ import annotations

import time
from typing import Any

from pycolonies.codec import WireDict
from pycolonies.models import Conditions, FuncSpec
from server.store import Executor as Db
from server.store import queries
from server.store.processes import new_id, new_process, stored_spec
from server.store.rows import to_process

SQL = queries.load("blueprints")


# -- definitions ----------------------------------------------------------------------------------


async def insert_definition(db: Db, *, definition_id: str, colony_name: str, name: str, kind: str,
                            data: dict[str, Any]) -> Any:
    """The new definition's row, or None if the colony has one of this name or kind."""
    return await db.fetchrow(SQL["insert_definition"], definition_id, colony_name, name, kind, data)


async def definition_clash(db: Db, colony_name: str, name: str, kind: str) -> Any:
    return await db.fetchrow(SQL["definition_clash"], colony_name, name, kind)


async def get_definition(db: Db, colony_name: str, name: str) -> Any:
    return await db.fetchrow(SQL["get_definition"], colony_name, name)


async def list_definitions(db: Db, colony_name: str) -> list[Any]:
    return await db.fetch(SQL["list_definitions"], colony_name)


async def share_definition_for_kind(db: Db, colony_name: str, kind: str) -> Any:
    """The colony's definition of ``kind``, share-locked for the transaction (None if none)."""
    return await db.fetchrow(SQL["share_definition_for_kind"], colony_name, kind)


async def lock_definition(db: Db, colony_name: str, name: str) -> Any:
    return await db.fetchrow(SQL["lock_definition"], colony_name, name)


async def count_of_kind(db: Db, colony_name: str, kind: str) -> int:
    return int(await db.fetchval(SQL["count_of_kind"], colony_name, kind))


async def remove_definition(db: Db, definition_id: str) -> bool:
    return await db.fetchval(SQL["remove_definition"], definition_id) is not None


# -- blueprints -----------------------------------------------------------------------------------


async def insert_blueprint(db: Db, *, blueprint_id: str, colony_name: str, name: str, kind: str,
                           location_name: str, metadata: dict[str, Any], handler: dict[str, Any] | None,
                           spec: dict[str, Any], process_id: str) -> Any:
    """The new blueprint's row, or None if the colony has one of this name."""
    return await db.fetchrow(SQL["insert_blueprint"], blueprint_id, colony_name, name, kind, location_name,
                             metadata, handler, spec, process_id)


async def get_blueprint(db: Db, colony_name: str, name: str) -> Any:
    return await db.fetchrow(SQL["get_blueprint"], colony_name, name)


async def get_blueprint_by_id(db: Db, blueprint_id: str) -> Any:
    return await db.fetchrow(SQL["get_blueprint_by_id"], blueprint_id)


async def lock_blueprint(db: Db, colony_name: str, name: str) -> Any:
    """The blueprint, locked for a change for the rest of the transaction (None if none)."""
    return await db.fetchrow(SQL["lock_blueprint"], colony_name, name)


async def list_blueprints(db: Db, colony_name: str, kind: str = "", location_name: str = "") -> list[Any]:
    return await db.fetch(SQL["list_blueprints"], colony_name, kind, location_name)


async def update_blueprint(db: Db, blueprint_id: str, *, generation: int, location_name: str,
                           metadata: dict[str, Any], handler: dict[str, Any] | None, spec: dict[str, Any],
                           process_id: str) -> Any:
    return await db.fetchrow(SQL["update_blueprint"], blueprint_id, generation, location_name, metadata,
                             handler, spec, process_id)


async def record_reconcile(db: Db, blueprint_id: str, process_id: str, generation: int) -> Any:
    return await db.fetchrow(SQL["record_reconcile"], blueprint_id, process_id, generation)


async def remove_blueprint(db: Db, blueprint_id: str) -> bool:
    return await db.fetchval(SQL["remove_blueprint"], blueprint_id) is not None


async def update_status(db: Db, colony_name: str, name: str, status: dict[str, Any]) -> Any:
    """The blueprint with its new status (one statement), or None if there is no such blueprint."""
    return await db.fetchrow(SQL["update_status"], colony_name, name, status)


# -- history --------------------------------------------------------------------------------------


async def record_history(db: Db, row: Any, *, changed_by: str, change_type: str, process_id: str) -> None:
    """A history row of the blueprint ``row`` as it is after the change."""
    await db.execute(SQL["insert_history"], new_id(), row["blueprint_id"], row["colony_name"], row["name"],
                     row["kind"], row["generation"], row["spec"], row["status"], changed_by, change_type,
                     process_id)


async def history(db: Db, blueprint_id: str, limit: int) -> list[Any]:
    return await db.fetch(SQL["history"], blueprint_id, limit)


async def history_colony(db: Db, blueprint_id: str) -> str | None:
    return await db.fetchval(SQL["history_colony"], blueprint_id)


# -- reconcile processes --------------------------------------------------------------------------


def reconcile_spec(*, colony_name: str, executor_type: str, executor_names: list[str], location_name: str,
                   funcname: str, kwargs: dict[str, Any]) -> FuncSpec:
    """The function spec of a reconcile (or cleanup) process: no deadlines, no retries."""
    return FuncSpec(
        nodename=funcname,
        funcname=funcname,
        kwargs=kwargs,
        maxwaittime=-1,
        maxexectime=-1,
        maxretries=0,
        conditions=Conditions(colonyname=colony_name, executortype=executor_type,
                              executornames=executor_names or None, locationname=location_name),
    )


async def insert_reconcile_process(db: Db, spec: FuncSpec, *, process_id: str, initiator_id: str,
                                   initiator_name: str) -> WireDict:
    """Insert the WAITING process ``process_id`` of ``spec``; its queue is woken on commit."""
    stored, _ = stored_spec(spec)
    new = new_process(spec, process_id=process_id, initiator_id=initiator_id, initiator_name=initiator_name,
                      submitted_ns=time.time_ns(), cpu_millis=0, memory_bytes=0, stored=stored)
    row = await db.fetchrow(SQL["insert_reconcile_process"], new)
    return to_process(row, [])
