"""Process channels: ``channelappendmsg`` and ``channelreadmsg`` (``subscribechannelmsg`` is
served on /pubsub, ``server.realtime.feeds``).

A channel is a message log of one process, between its submitter and its assigned executor: it
exists while the process is open (waiting or running) if its ``spec.channels`` names it, and is
dropped when the process ends. Access: a member of the process's colony who is its submitter
(initiator) or its assigned executor. Entries are numbered by the clients, one sequence space per
channel: repeating an append exactly (same sender, payload, type and inreplyto) is a harmless
retry, another entry with a taken sequence is refused (409). Caps: ``MAX_ENTRY_BYTES`` per
payload, ``MAX_CHANNEL_ENTRIES`` entries and ``MAX_CHANNEL_BYTES`` payload bytes per channel
(413 past them).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pycolonies import wire
from server import auth
from server.context import Call
from server.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from server.store import Executor as Db
from server.store import channels as store
from server.store import processes as process_store

MAX_ENTRY_BYTES = 1024 * 1024
MAX_CHANNEL_ENTRIES = 10_000
MAX_CHANNEL_BYTES = 8 * 1024 * 1024
PAYLOAD_TYPES = ("", "data", "end", "error")
_OPEN = (wire.WAITING, wire.RUNNING)


async def open_channel(db: Db, signer: str, payloadtype: str, process_id: str, name: str, action: str
                       ) -> Any:
    """The process row of channel ``name`` of ``process_id`` that ``signer`` may use, or the
    error that says why not (400 bad field, 404 no such process or channel, 403 no access)."""
    if not process_id:
        raise BadRequest(f"Invalid {payloadtype}: processid is required")
    if not name:
        raise BadRequest(f"Invalid {payloadtype}: name (the channel's name) is required")
    row = await process_store.get_row(db, process_id)
    if row is None:
        raise NotFound(f"Failed to {action}, process <{process_id}> not found")
    await auth.require_member(db, row["colony_name"], signer)
    if signer not in (row["initiator_id"], row["assigned_executor_id"]):
        raise Forbidden(
            f"Failed to {action}, access denied: only the process's submitter or its assigned executor "
            "may use its channels"
        )
    if name not in (row["spec"].get("channels") or []):
        raise NotFound(f"Failed to {action}, channel <{name}> not found: the process's spec.channels does "
                       "not name it")
    if row["state"] not in _OPEN:
        raise NotFound(f"Failed to {action}, channel <{name}> not found: the process has ended and its "
                       "channels are dropped")
    return row


async def append(call: Call) -> Any:
    msg = call.msg
    process_id, name = msg.str("processid"), msg.str("name")
    sequence, in_reply_to = msg.int("sequence"), msg.int("inreplyto")
    payload_type = msg.str("payloadtype")
    payload = _payload(msg.payloadtype, msg.data.get("payload"))
    if sequence <= 0:
        raise BadRequest(f"Invalid channelappendmsg: sequence must be a positive number, got {sequence}")
    if in_reply_to < 0:
        raise BadRequest(f"Invalid channelappendmsg: inreplyto must not be negative, got {in_reply_to}")
    if payload_type not in PAYLOAD_TYPES:
        raise BadRequest(
            f"Invalid channelappendmsg: payloadtype must be empty, data, end or error, got <{payload_type}>"
        )
    if len(payload) > MAX_ENTRY_BYTES:
        raise PayloadTooLarge(
            f"Invalid channelappendmsg: payload is {len(payload)} bytes, more than the {MAX_ENTRY_BYTES} "
            "bytes an entry may hold"
        )
    action = "append to channel"
    await open_channel(call.pool, call.signer, msg.payloadtype, process_id, name, action)
    async with call.pool.acquire() as con:
        appended = await store.append(
            con, process_id, name, call.signer, store.Entry(sequence, in_reply_to, payload, payload_type),
            max_entries=MAX_CHANNEL_ENTRIES, max_bytes=MAX_CHANNEL_BYTES,
        )
    if appended is store.Appended.TAKEN:
        raise Conflict(f"Failed to {action}, sequence {sequence} of channel <{name}> is taken by another "
                       "entry (read the channel and use the next sequence)")
    if appended is store.Appended.FULL:
        raise PayloadTooLarge(
            f"Failed to {action}, channel <{name}> is full: it may hold {MAX_CHANNEL_ENTRIES} entries and "
            f"{MAX_CHANNEL_BYTES} payload bytes"
        )
    if appended is store.Appended.CLOSED:  # it ended, or was handed to another executor, meanwhile
        await open_channel(call.pool, call.signer, msg.payloadtype, process_id, name, action)
        raise NotFound(f"Failed to {action}, channel <{name}> not found: the process has ended")
    return {}


async def read(call: Call) -> Any:
    msg = call.msg
    process_id, name = msg.str("processid"), msg.str("name")
    after, limit = msg.int("afterseq"), msg.int("limit")
    if after < 0:
        raise BadRequest(f"Invalid channelreadmsg: afterseq must not be negative, got {after}")
    if limit < 0:
        raise BadRequest(f"Invalid channelreadmsg: limit must not be negative (0: all), got {limit}")
    await open_channel(call.pool, call.signer, msg.payloadtype, process_id, name, "read channel")
    return await store.read(call.pool, process_id, name, after, limit or MAX_CHANNEL_ENTRIES)


def _payload(payloadtype: str, value: Any) -> bytes:
    """A payload as Go decodes a []byte: a base64 string, or a list of byte values (or none)."""
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"Invalid {payloadtype}: payload is not valid base64") from exc
    if isinstance(value, list):
        if all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value):
            return bytes(value)
        raise BadRequest(f"Invalid {payloadtype}: payload must be a list of byte values (0 to 255)")
    raise BadRequest(f"Invalid {payloadtype}: payload must be a base64 string or a list of byte values")


HANDLERS = {
    "channelappendmsg": append,
    "channelreadmsg": read,
}
