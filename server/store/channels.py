"""Process channels in PostgreSQL: entries keyed by (process, channel, sequence), every replica
sees the same ones, and followers are told of each append with NOTIFY.

An append is one transaction: it holds the process (``FOR SHARE``, so a close waits for it and
an append waiting for a close finds the process closed), inserts the entry, which announces it
on ``CHANNEL`` with ``<processid>\\x1f<channel>\\x1f<sequence>`` when the transaction commits,
and counts it into the channel's size, refusing past a cap. Closing the process drops its
channels in the closing transaction (a trigger, migration 0007); removing it, by cascade.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from pycolonies.codec import WireDict
from server.store import Executor as Db
from server.store import queries
from server.store.rows import to_channel_entry

SQL = queries.load("channels")
CHANNEL = "colonies_channel"  # as notify_channel_entry sends it
_SEP = "\x1f"


@dataclass(frozen=True)
class Entry:
    sequence: int
    in_reply_to: int
    payload: bytes
    payload_type: str


@dataclass(frozen=True)
class EntryEvent:
    """Entry ``sequence`` was appended to channel ``channel`` of process ``process_id``."""

    process_id: str
    channel: str
    sequence: int


def parse_event(payload: str) -> EntryEvent | None:
    parts = payload.split(_SEP)
    if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
        return None
    return EntryEvent(parts[0], parts[1], int(parts[2]))


class Appended(Enum):
    APPENDED = "appended"
    REPEATED = "repeated"  # the same entry was already there (a retry): nothing changed
    TAKEN = "taken"  # another entry has this sequence
    CLOSED = "closed"  # the process is not open, or the sender may not append to it
    FULL = "full"  # the channel would pass a cap


class _Refused(Exception):
    """Rolls the append's transaction back."""


async def append(con: Any, process_id: str, channel: str, sender_id: str, entry: Entry, *,
                 max_entries: int, max_bytes: int) -> Appended:
    """Append ``entry`` by ``sender_id`` in one transaction on connection ``con``."""
    try:
        async with con.transaction():
            if await con.fetchrow(SQL["lock_open_process"], process_id, sender_id) is None:
                return Appended.CLOSED
            inserted = await con.fetchrow(SQL["insert_entry"], process_id, channel, entry.sequence,
                                          entry.in_reply_to, sender_id, entry.payload, entry.payload_type)
            if inserted is None:
                return _repeat_or_taken(await con.fetchrow(SQL["get_entry"], process_id, channel,
                                                           entry.sequence), sender_id, entry)
            if await con.fetchrow(SQL["count_entry"], process_id, channel, len(entry.payload),
                                  max_entries, max_bytes) is None:
                raise _Refused
    except _Refused:
        return Appended.FULL
    return Appended.APPENDED


def _repeat_or_taken(row: Any, sender_id: str, entry: Entry) -> Appended:
    if row is None:  # cannot happen while the process is held; say taken rather than guess
        return Appended.TAKEN
    same = (row["sender_id"], row["in_reply_to"], bytes(row["payload"]), row["payload_type"]) == (
        sender_id, entry.in_reply_to, entry.payload, entry.payload_type)
    return Appended.REPEATED if same else Appended.TAKEN


async def read(db: Db, process_id: str, channel: str, after_sequence: int, limit: int) -> list[WireDict]:
    """Up to ``limit`` entries after ``after_sequence``, in sequence order (wire MsgEntry)."""
    rows = await db.fetch(SQL["read"], process_id, channel, after_sequence, limit)
    return [to_channel_entry(row) for row in rows]


async def read_sequences(db: Db, process_id: str, channel: str, sequences: list[int]) -> list[WireDict]:
    """The entries with these sequences (those still there), in sequence order."""
    rows = await db.fetch(SQL["read_sequences"], process_id, channel, sequences)
    return [to_channel_entry(row) for row in rows]
