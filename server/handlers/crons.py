"""Cron RPCs: add, get, list, remove, and run now. The trigger loop (``scheduler/triggers``) fires
them on schedule; see ``server/domain/cron_schedule`` for the schedule syntax."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from pycolonies import wire
from pycolonies.codec import FieldError, coerce, from_wire
from pycolonies.models import Cron, Workflow
from server import auth
from server.context import Call
from server.domain import cron_schedule
from server.errors import BadRequest, NotFound
from server.handlers.common import member_row
from server.handlers.graphs import validate_workflow
from server.params import require_count, require_name
from server.payload import JsonRejected, load_json
from server.scheduler import triggers
from server.store import crons as store
from server.store import processes as process_store
from server.store.rows import to_cron

# The reference SDK (pycolonies) sends this misspelling of ``waitforprevprocessgraph``.
MISSPELT_WAIT_FOR_PREV = "waitforprevprocessgrap"


def validate_workflow_spec(text: str, colony_name: str, path: str) -> None:
    """A cron's or generator's workflow spec (a JSON string) must be a workflow of its colony that
    could run; BadRequest naming the problem otherwise."""
    if not text.strip():
        raise BadRequest(f"Invalid {path}: a workflow spec (JSON string) is required")
    try:
        data = load_json(text)
    except JsonRejected as exc:
        raise BadRequest(f"Invalid {path}: {exc}") from exc
    except ValueError as exc:
        raise BadRequest(f"Invalid {path}: not valid JSON ({exc})") from exc
    try:
        workflow = from_wire(Workflow, data, path)
    except FieldError as exc:
        raise BadRequest(f"Invalid {exc}") from exc
    if not workflow.colonyname:
        workflow.colonyname = colony_name
    elif workflow.colonyname != colony_name:
        raise BadRequest(
            f"Invalid {path}.colonyname: the workflow is for colony <{workflow.colonyname}>, "
            f"not <{colony_name}>"
        )
    validate_workflow(workflow, path)


def _reply(row: Any) -> Any:
    return to_cron(row, triggers.CHECKER_PERIOD_MS)


async def add_cron(call: Call) -> Any:
    cron = call.msg.model("cron", Cron)
    raw = call.msg.data.get("cron") or {}
    wait = cron.waitforprevprocessgraph
    if raw.get(MISSPELT_WAIT_FOR_PREV) is not None:
        try:
            wait = wait or coerce(bool, raw[MISSPELT_WAIT_FOR_PREV], f"cron.{MISSPELT_WAIT_FOR_PREV}")
        except FieldError as exc:
            raise BadRequest(f"Invalid addcronmsg: {exc}") from exc
    colony = cron.colonyname
    member = await auth.require_member(call.pool, colony, call.signer)
    require_name(cron.name, "cron.name")
    try:
        cron_schedule.validate(interval=cron.interval, random=cron.random, expression=cron.cronexpression)
        next_run = cron_schedule.next_run(interval=cron.interval, random=cron.random,
                                          expression=cron.cronexpression, now=datetime.now(UTC),
                                          rng=random.Random())
    except cron_schedule.ScheduleError as exc:
        raise BadRequest(f"Invalid cron.{exc.field}: {exc}") from exc
    validate_workflow_spec(cron.workflowspec, colony, "cron.workflowspec")
    row = await store.insert(
        call.pool,
        cron_id=process_store.new_id(),
        colony_name=colony,
        name=cron.name,
        cron_expression=cron.cronexpression,
        interval_s=cron.interval,
        random=cron.random,
        next_run=next_run,
        workflow_spec=cron.workflowspec,
        wait_for_prev=wait,
        initiator_id=call.signer,
        initiator_name=member.name,
    )
    if row is None:
        raise BadRequest(f"Failed to add cron, colony <{colony}> already has a cron named <{cron.name}>")
    return _reply(row)


async def _member_cron(call: Call, action: str) -> Any:
    row, _ = await member_row(call, call.msg.str("cronid"), field="cronid", kind="cron", action=action,
                              load=store.get_row)
    return row


async def get_cron(call: Call) -> Any:
    return _reply(await _member_cron(call, "get cron"))


async def get_crons(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    count = require_count(call.msg.int("count"), "count", wire.MAX_COUNT)
    return [_reply(row) for row in await store.list_for_colony(call.pool, colony, count)]


async def remove_cron(call: Call) -> Any:
    if call.msg.bool("all"):
        raise BadRequest(
            "Failed to remove cron, all=true is not supported: remove crons one at a time by cronid"
        )
    row = await _member_cron(call, "remove cron")
    if not await store.remove(call.pool, row["cron_id"]):
        raise NotFound(f"Failed to remove cron, cron <{row['cron_id']}> not found")
    return {}


async def run_cron(call: Call) -> Any:
    """Fire the cron now (its schedule is kept), unless it waits for a previous graph that is
    still active; the cron as it is after the run."""
    cron_id = (await _member_cron(call, "run cron"))["cron_id"]
    async with call.pool.acquire() as con, con.transaction():
        row = await store.lock(con, cron_id, skip_locked=False)
        if row is None:
            raise NotFound(f"Failed to run cron, cron <{cron_id}> not found")
        firing = await triggers.fire_cron(con, row, manual=True, rng=random.Random())
        if firing.blocked:
            raise BadRequest(
                "Failed to run cron, it waits for its previous process graph "
                f"<{row['prev_processgraph_id']}>, which has not ended yet"
            )
        if firing.problem:
            raise BadRequest(f"Failed to run cron, {firing.problem}")
    return _reply(firing.cron)


HANDLERS = {
    "addcronmsg": add_cron,
    "getcronmsg": get_cron,
    "getcronsmsg": get_crons,
    "removecronmsg": remove_cron,
    "runcronmsg": run_cron,
}
