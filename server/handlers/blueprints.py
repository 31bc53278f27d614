"""Blueprint RPCs (the reference's declarative resources): definitions (colony owner), blueprints
(members or the owner), the reconciler's status report (members), history, and reconcile now.

Every change of a blueprint (add, update, remove, reconcile) is one transaction that also records
its history row and submits the reconcile process to the executor type of its definition, with
the old and the new blueprint in its kwargs (docs/blueprints.md); the server does nothing else.
"""

from __future__ import annotations

from typing import Any

from pycolonies import wire
from server import auth
from server.context import Call
from server.domain import blueprints as rules
from server.errors import BadRequest, Conflict, Forbidden, NotFound
from server.params import require_count
from server.store import blueprints as store
from server.store.processes import new_id
from server.store.rows import (
    BLUEPRINT_METADATA_KEYS,
    to_blueprint,
    to_blueprint_definition,
    to_blueprint_history,
)

HISTORY_DEFAULT = wire.MAX_COUNT
HISTORY_MAX = 1000


async def _member_or_owner(call: Call, colony_name: str) -> str:
    """The name the signer acts under in the colony ('' for the colony owner); 403 otherwise."""
    try:
        return (await auth.require_member(call.pool, colony_name, call.signer)).name
    except Forbidden:
        if await auth.is_colony_owner(call.pool, colony_name, call.signer):
            return ""
        raise


def _invalid(call: Call, exc: rules.BlueprintError) -> BadRequest:
    return BadRequest(f"Invalid {call.msg.payloadtype}: {exc}")


def _namespace(call: Call) -> str:
    """The request's colony: ``namespace`` (the reference's name) or ``colonyname``."""
    colony = call.msg.str("namespace") or call.msg.str("colonyname")
    if not colony:
        raise BadRequest(f"Invalid {call.msg.payloadtype}: namespace (the colony name) is required")
    return colony


def _definition(row: Any) -> rules.Definition:
    return rules.parse_definition(row["data"])


def _kwargs(kind: str, name: str, generation: int, action: str, old: Any, new: Any,
            force: bool = False) -> dict[str, Any]:
    """What a reconcile process carries: the blueprint's kind and name, its generation, and the
    reconciliation (the action and the blueprint before and after; absent when there is none)."""
    reconciliation: dict[str, Any] = {"action": action}
    if old is not None:
        reconciliation["old"] = old
    if new is not None:
        reconciliation["new"] = new
    kwargs = {"kind": kind, "blueprintName": name, "generation": generation, "reconciliation": reconciliation}
    if force:
        kwargs["force"] = True
    return kwargs


async def _submit(con: Any, call: Call, definition: rules.Definition, row: Any, *, process_id: str,
                  funcname: str, kwargs: dict[str, Any], initiator_name: str) -> Any:
    spec = store.reconcile_spec(
        colony_name=row["colony_name"],
        executor_type=rules.executor_type(definition, row["handler"]),
        executor_names=rules.executor_names(row["handler"]),
        location_name=row["location_name"],
        funcname=funcname,
        kwargs=kwargs,
    )
    return await store.insert_reconcile_process(con, spec, process_id=process_id, initiator_id=call.signer,
                                                initiator_name=initiator_name)


async def _shared_definition(con: Any, colony: str, kind: str) -> rules.Definition:
    row = await store.share_definition_for_kind(con, colony, kind)
    if row is None:
        raise BadRequest(
            f"Invalid blueprint.kind: colony <{colony}> has no BlueprintDefinition for kind <{kind}>"
        )
    return _definition(row)


def _checked_spec(call: Call, definition: rules.Definition, blueprint: rules.Blueprint) -> None:
    try:
        rules.validate_spec(blueprint.spec, definition.schema)
    except rules.BlueprintError as exc:
        raise _invalid(call, exc) from exc


def _client_metadata(blueprint: rules.Blueprint) -> dict[str, Any]:
    return {k: v for k, v in blueprint.metadata.items() if k not in BLUEPRINT_METADATA_KEYS}


# -- definitions ----------------------------------------------------------------------------------


async def add_definition(call: Call) -> Any:
    try:
        definition = rules.parse_definition(call.msg.data.get("blueprintdefinition"))
    except rules.BlueprintError as exc:
        raise _invalid(call, exc) from exc
    await auth.require_colony_owner(call.pool, definition.colony_name, call.signer)
    row = await store.insert_definition(call.pool, definition_id=new_id(), colony_name=definition.colony_name,
                                        name=definition.name, kind=definition.kind, data=definition.data)
    if row is None:
        clash = await store.definition_clash(call.pool, definition.colony_name, definition.name,
                                             definition.kind)
        what = (f"named <{definition.name}>" if clash is None or clash["name"] == definition.name
                else f"<{clash['name']}> for kind <{definition.kind}>")
        raise Conflict(f"Failed to add blueprint definition, colony <{definition.colony_name}> already has "
                       f"a definition {what}")
    return to_blueprint_definition(row)


async def get_definition(call: Call) -> Any:
    colony, name = _namespace(call), call.msg.required_str("name")
    await _member_or_owner(call, colony)
    row = await store.get_definition(call.pool, colony, name)
    if row is None:
        raise NotFound(f"Failed to get blueprint definition, <{name}> not found in colony <{colony}>")
    return to_blueprint_definition(row)


async def get_definitions(call: Call) -> Any:
    colony = _namespace(call)
    await _member_or_owner(call, colony)
    return [to_blueprint_definition(row) for row in await store.list_definitions(call.pool, colony)]


async def remove_definition(call: Call) -> Any:
    colony, name = _namespace(call), call.msg.required_str("name")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    async with call.pool.acquire() as con, con.transaction():
        row = await store.lock_definition(con, colony, name)
        if row is None:
            raise NotFound(f"Failed to remove blueprint definition, <{name}> not found in colony <{colony}>")
        count = await store.count_of_kind(con, colony, row["kind"])
        if count:
            raise Conflict(f"Failed to remove blueprint definition <{name}>, {count} blueprint(s) of kind "
                           f"<{row['kind']}> still exist; remove them first")
        await store.remove_definition(con, row["definition_id"])
    return {}


# -- blueprints -----------------------------------------------------------------------------------


def _parsed_blueprint(call: Call) -> rules.Blueprint:
    try:
        return rules.parse_blueprint(call.msg.data.get("blueprint"))
    except rules.BlueprintError as exc:
        raise _invalid(call, exc) from exc


async def add_blueprint(call: Call) -> Any:
    blueprint = _parsed_blueprint(call)
    initiator = await _member_or_owner(call, blueprint.colony_name)
    process_id = new_id()
    async with call.pool.acquire() as con, con.transaction():
        definition = await _shared_definition(con, blueprint.colony_name, blueprint.kind)
        _checked_spec(call, definition, blueprint)
        row = await store.insert_blueprint(
            con, blueprint_id=new_id(), colony_name=blueprint.colony_name, name=blueprint.name,
            kind=blueprint.kind, location_name=blueprint.location_name,
            metadata=_client_metadata(blueprint), handler=blueprint.handler, spec=blueprint.spec,
            process_id=process_id,
        )
        if row is None:
            raise Conflict(f"Failed to add blueprint, colony <{blueprint.colony_name}> already has a "
                           f"blueprint named <{blueprint.name}>")
        reply = to_blueprint(row)
        kwargs = _kwargs(row["kind"], row["name"], row["generation"], rules.CREATE, None, reply)
        await _submit(con, call, definition, row, process_id=process_id, funcname=definition.function_name,
                      kwargs=kwargs, initiator_name=initiator)
        await store.record_history(con, row, changed_by=call.signer, change_type="create",
                                   process_id=process_id)
    return reply


async def update_blueprint(call: Call) -> Any:
    blueprint = _parsed_blueprint(call)
    force = call.msg.bool("forcegeneration")
    initiator = await _member_or_owner(call, blueprint.colony_name)
    process_id = new_id()
    async with call.pool.acquire() as con, con.transaction():
        old = await store.lock_blueprint(con, blueprint.colony_name, blueprint.name)
        if old is None:
            raise NotFound(f"Failed to update blueprint, <{blueprint.name}> not found in colony "
                           f"<{blueprint.colony_name}>")
        if old["kind"] != blueprint.kind:
            raise BadRequest(f"Invalid updateblueprintmsg: blueprint.kind <{blueprint.kind}> differs from "
                             f"the blueprint's kind <{old['kind']}> (remove it and add it anew)")
        definition = await _shared_definition(con, blueprint.colony_name, blueprint.kind)
        _checked_spec(call, definition, blueprint)
        generation = rules.next_generation(old["generation"], old["spec"], blueprint.spec, force=force)
        row = await store.update_blueprint(
            con, old["blueprint_id"], generation=generation, location_name=blueprint.location_name,
            metadata=_client_metadata(blueprint), handler=blueprint.handler, spec=blueprint.spec,
            process_id=process_id,
        )
        before, reply = to_blueprint(old), to_blueprint(row)
        action = rules.UPDATE if force else rules.action(before, reply)
        kwargs = _kwargs(row["kind"], row["name"], generation, action, before, reply, force)
        await _submit(con, call, definition, row, process_id=process_id, funcname=definition.function_name,
                      kwargs=kwargs, initiator_name=initiator)
        await store.record_history(con, row, changed_by=call.signer, change_type="update",
                                   process_id=process_id)
    return reply


async def remove_blueprint(call: Call) -> Any:
    colony, name = _namespace(call), call.msg.required_str("name")
    initiator = await _member_or_owner(call, colony)
    process_id = new_id()
    async with call.pool.acquire() as con, con.transaction():
        row = await store.lock_blueprint(con, colony, name)
        if row is None:
            raise NotFound(f"Failed to remove blueprint, <{name}> not found in colony <{colony}>")
        definition = await _shared_definition(con, colony, row["kind"])
        await store.remove_blueprint(con, row["blueprint_id"])
        kwargs = _kwargs(row["kind"], name, row["generation"], rules.DELETE, to_blueprint(row), None)
        await _submit(con, call, definition, row, process_id=process_id, funcname=rules.CLEANUP_FUNCTION,
                      kwargs=kwargs, initiator_name=initiator)
        await store.record_history(con, row, changed_by=call.signer, change_type="delete",
                                   process_id=process_id)
    return {}


async def reconcile_blueprint(call: Call) -> Any:
    """Submit a reconcile process for the blueprint as it is (``force``: as a new generation);
    the process."""
    colony, name = _namespace(call), call.msg.required_str("name")
    force = call.msg.bool("force")
    initiator = await _member_or_owner(call, colony)
    process_id = new_id()
    async with call.pool.acquire() as con, con.transaction():
        old = await store.lock_blueprint(con, colony, name)
        if old is None:
            raise NotFound(f"Failed to reconcile blueprint, <{name}> not found in colony <{colony}>")
        definition = await _shared_definition(con, colony, old["kind"])
        generation = old["generation"] + 1 if force else old["generation"]
        row = await store.record_reconcile(con, old["blueprint_id"], process_id, generation)
        current = to_blueprint(row)
        kwargs = _kwargs(row["kind"], name, generation, rules.RECONCILE, to_blueprint(old), current, force)
        process = await _submit(con, call, definition, row, process_id=process_id,
                                funcname=definition.function_name, kwargs=kwargs, initiator_name=initiator)
        if force:
            await store.record_history(con, row, changed_by=call.signer, change_type="reconcile",
                                       process_id=process_id)
    return process


async def get_blueprint(call: Call) -> Any:
    colony, name = _namespace(call), call.msg.required_str("name")
    await _member_or_owner(call, colony)
    row = await store.get_blueprint(call.pool, colony, name)
    if row is None:
        raise NotFound(f"Failed to get blueprint, <{name}> not found in colony <{colony}>")
    return to_blueprint(row)


async def get_blueprints(call: Call) -> Any:
    colony = _namespace(call)
    await _member_or_owner(call, colony)
    rows = await store.list_blueprints(call.pool, colony, call.msg.str("kind"), call.msg.str("locationname"))
    return [to_blueprint(row) for row in rows]


async def get_history(call: Call) -> Any:
    blueprint_id = call.msg.required_str("blueprintid")
    limit = require_count(call.msg.int("limit"), "limit", HISTORY_MAX) or HISTORY_DEFAULT
    row = await store.get_blueprint_by_id(call.pool, blueprint_id)
    colony = row["colony_name"] if row is not None else await store.history_colony(call.pool, blueprint_id)
    if colony is None:
        raise NotFound(f"Failed to get blueprint history, blueprint <{blueprint_id}> not found")
    await _member_or_owner(call, colony)
    return [to_blueprint_history(r) for r in await store.history(call.pool, blueprint_id, limit)]


async def update_status(call: Call) -> Any:
    """The reconciler's report (members only): the blueprint's status, replaced as a whole."""
    colony, name = call.msg.required_str("colonyname"), call.msg.required_str("blueprintname")
    status = call.msg.data.get("status")
    if status is None:
        status = {}
    if not isinstance(status, dict):
        raise BadRequest("Invalid updateblueprintstatusmsg: status must be an object")
    await auth.require_member(call.pool, colony, call.signer)
    if await store.update_status(call.pool, colony, name, status) is None:
        raise NotFound(f"Failed to update blueprint status, <{name}> not found in colony <{colony}>")
    return {}


HANDLERS = {
    "addblueprintdefinitionmsg": add_definition,
    "getblueprintdefinitionmsg": get_definition,
    "getblueprintdefinitionsmsg": get_definitions,
    "removeblueprintdefinitionmsg": remove_definition,
    "addblueprintmsg": add_blueprint,
    "getblueprintmsg": get_blueprint,
    "getblueprintsmsg": get_blueprints,
    "updateblueprintmsg": update_blueprint,
    "removeblueprintmsg": remove_blueprint,
    "getblueprinthistorymsg": get_history,
    "updateblueprintstatusmsg": update_status,
    "reconcileblueprintmsg": reconcile_blueprint,
}
