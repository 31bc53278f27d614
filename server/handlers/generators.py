"""Generator RPCs: add, get, resolve by name, list, pack an argument, remove.

A pack that completes a batch of ``trigger`` args submits the workflow(s) in the pack's own
transaction; the trigger loop (``scheduler/triggers``) submits partial batches after ``timeout``.
"""

from __future__ import annotations

from typing import Any

from pycolonies import wire
from pycolonies.models import Generator
from server import auth
from server.context import Call
from server.errors import BadRequest, NotFound
from server.handlers.common import member_row
from server.handlers.crons import validate_workflow_spec
from server.params import require_count, require_name
from server.scheduler import triggers
from server.store import generators as store
from server.store import processes as process_store
from server.store.rows import to_generator

MAX_INT32 = 2**31 - 1


def _reply(row: Any) -> Any:
    return to_generator(row, triggers.CHECKER_PERIOD_MS)


async def add_generator(call: Call) -> Any:
    generator = call.msg.model("generator", Generator)
    colony = generator.colonyname
    member = await auth.require_member(call.pool, colony, call.signer)
    require_name(generator.name, "generator.name")
    if not 1 <= generator.trigger <= MAX_INT32:
        raise BadRequest(
            f"Invalid generator.trigger: {generator.trigger}; it is the number of packed args that submits a "
            "workflow and must be at least 1"
        )
    if not -1 <= generator.timeout <= MAX_INT32:
        raise BadRequest(
            f"Invalid generator.timeout: {generator.timeout}; use seconds after the oldest packed arg "
            "(> 0), or 0 / -1 for none"
        )
    validate_workflow_spec(generator.workflowspec, colony, "generator.workflowspec")
    row = await store.insert(
        call.pool,
        generator_id=process_store.new_id(),
        colony_name=colony,
        name=generator.name,
        workflow_spec=generator.workflowspec,
        trigger=generator.trigger,
        timeout_s=generator.timeout,
        initiator_id=call.signer,
        initiator_name=member.name,
    )
    if row is None:
        raise BadRequest(
            f"Failed to add generator, colony <{colony}> already has a generator named <{generator.name}>"
        )
    return _reply(row)


async def _member_generator(call: Call, action: str) -> Any:
    row, _ = await member_row(call, call.msg.str("generatorid"), field="generatorid", kind="generator",
                              action=action, load=store.get_row)
    return row


async def get_generator(call: Call) -> Any:
    return _reply(await _member_generator(call, "get generator"))


async def resolve_generator(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    name = call.msg.str("generatorname")
    await auth.require_member(call.pool, colony, call.signer)
    if not name:
        raise BadRequest("Failed to resolve generator, generatorname is required")
    row = await store.get_row_by_name(call.pool, colony, name)
    if row is None:
        raise NotFound(f"Failed to resolve generator, colony <{colony}> has no generator named <{name}>")
    return _reply(row)


async def get_generators(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    count = require_count(call.msg.int("count"), "count", wire.MAX_COUNT)
    return [_reply(row) for row in await store.list_for_colony(call.pool, colony, count)]


async def pack_generator(call: Call) -> Any:
    """Queue one arg; when ``trigger`` are queued, submit the workflow(s) in this transaction."""
    generator_id = (await _member_generator(call, "pack generator"))["generator_id"]
    arg = call.msg.str("arg")
    async with call.pool.acquire() as con, con.transaction():
        row = await store.lock(con, generator_id, skip_locked=False)
        if row is None:
            raise NotFound(f"Failed to pack generator, generator <{generator_id}> not found")
        if not await triggers.initiator_is_member(con, row):
            raise BadRequest(
                f"Failed to pack generator, its initiator <{row['initiator_name']}> is no longer a member of "
                f"colony <{row['colony_name']}>, so it cannot submit workflows; add the generator again"
            )
        await store.add_arg(con, generator_id, arg)
        try:
            await triggers.fire_generator(con, row)
        except triggers.FireError as exc:
            raise BadRequest(f"Failed to pack generator, {exc}") from exc
    return {}


async def remove_generator(call: Call) -> Any:
    if call.msg.bool("all"):
        raise BadRequest(
            "Failed to remove generator, all=true is not supported: remove generators one at a time by "
            "generatorid"
        )
    row = await _member_generator(call, "remove generator")
    if not await store.remove(call.pool, row["generator_id"]):
        raise NotFound(f"Failed to remove generator, generator <{row['generator_id']}> not found")
    return {}


HANDLERS = {
    "addgeneratormsg": add_generator,
    "getgeneratormsg": get_generator,
    "resolvegeneratormsg": resolve_generator,
    "getgeneratorsmsg": get_generators,
    "packgeneratormsg": pack_generator,
    "removegeneratormsg": remove_generator,
}
