"""Log RPCs: the assigned executor appends to its running process's log; members read logs."""

from __future__ import annotations

import time
from typing import Any

from pycolonies import wire
from pycolonies.models import Log
from server import auth
from server.context import Call
from server.errors import BadRequest, Forbidden, NotFound
from server.params import require_count
from server.store import logs as store
from server.store import processes as process_store

MAX_LOG_MESSAGE_BYTES = 1024 * 1024


async def add_log(call: Call) -> Any:
    process_id = call.msg.str("processid")
    message = call.msg.str("message")
    if len(message.encode()) > MAX_LOG_MESSAGE_BYTES:
        raise BadRequest(f"Failed to add log, message exceeds {MAX_LOG_MESSAGE_BYTES} bytes")
    row = await process_store.get_row(call.pool, process_id) if process_id else None
    if row is None:
        raise NotFound(f"Failed to add log, process <{process_id}> not found")
    member = await auth.require_member(call.pool, row["colony_name"], call.signer)
    if row["state"] != wire.RUNNING or row["assigned_executor_id"] != call.signer:
        raise Forbidden("Failed to add log, only the assigned executor can add logs to a running process")
    await store.add(
        call.pool,
        Log(
            processid=process_id,
            colonyname=row["colony_name"],
            executorname=member.name,
            message=message,
            timestamp=time.time_ns(),
        ),
    )
    return {}


async def add_executor_log(call: Call) -> Any:
    """An approved executor logs in its own name, outside any process (stored with processid "")."""
    colony, name = call.msg.str("colonyname"), call.msg.required_str("executorname")
    message = call.msg.str("message")
    if len(message.encode()) > MAX_LOG_MESSAGE_BYTES:
        raise BadRequest(f"Failed to add log, message exceeds {MAX_LOG_MESSAGE_BYTES} bytes")
    member = await auth.require_executor(call.pool, colony, call.signer)
    if member.name != name:
        raise Forbidden(f"Access denied, only executor <{name}> itself may add executor logs in its name")
    await store.add(call.pool, Log(processid="", colonyname=colony, executorname=name, message=message,
                                   timestamp=time.time_ns()))
    return {}


async def get_logs(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    process_id = call.msg.str("processid")
    executor_name = call.msg.str("executorname")
    count = require_count(call.msg.int("count"), "count", wire.MAX_LOG_COUNT)
    since = call.msg.int("since")
    if not 0 <= since < 2**63:
        raise BadRequest("Invalid getlogsmsg: since must be a Unix time in nanoseconds (0 for all)")
    latest = call.msg.bool("latest")
    await auth.require_member(call.pool, colony, call.signer)
    if not executor_name:
        row = await process_store.get_row(call.pool, process_id) if process_id else None
        if row is None or row["colony_name"] != colony:
            raise NotFound(f"Failed to get logs, process <{process_id}> not found in Colony <{colony}>")
    return await store.query(
        call.pool,
        colony,
        process_id=process_id,
        executor_name=executor_name,
        count=count,
        since=since,
        latest=latest,
    )


MAX_SEARCH_DAYS = 30


async def search_logs(call: Call) -> Any:
    """The colony's log entries of the last ``days`` days containing ``text`` (newest first)."""
    colony = call.msg.str("colonyname")
    text = call.msg.str("text")
    days = call.msg.int("days")
    count = require_count(call.msg.int("count"), "count", wire.MAX_COUNT)
    await auth.require_member(call.pool, colony, call.signer)
    if not text:
        raise BadRequest("Invalid searchlogsmsg: text is required")
    if not 1 <= days <= MAX_SEARCH_DAYS:
        raise BadRequest(f"Invalid searchlogsmsg: days must be between 1 and {MAX_SEARCH_DAYS}")
    since = time.time_ns() - days * 86_400 * 1_000_000_000
    return await store.search(call.pool, colony, text, since, count)


HANDLERS = {
    "addlogmsg": add_log,
    "addexecutorlogmsg": add_executor_log,
    "getlogsmsg": get_logs,
    "searchlogsmsg": search_logs,
}
