"""The live server processes (replicas) sharing this database, each kept by its heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.store import Executor as Db
from server.store import queries

SQL = queries.load("cluster")


@dataclass(frozen=True)
class ServerNode:
    node_id: str
    name: str
    host: str
    port: int
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    leader: bool


async def join(db: Db, node_id: str, name: str, host: str, port: int, pid: int) -> None:
    await db.execute(SQL["join"], node_id, name, host, port, pid)


async def heartbeat(db: Db, node_id: str, sweeper_backend_pid: int | None) -> bool:
    """Stamp the record; False if it is gone (deleted as stale), so the process must join again."""
    return (await db.execute(SQL["heartbeat"], node_id, sweeper_backend_pid)).endswith(" 1")


async def forget_stale(db: Db, older_than_s: float) -> int:
    return int((await db.execute(SQL["forget_stale"], older_than_s)).split()[-1])


async def leave(db: Db, node_id: str) -> None:
    await db.execute(SQL["leave"], node_id)


async def live(db: Db, fresh_within_s: float, leader_lock_id: int) -> list[ServerNode]:
    rows = await db.fetch(SQL["live"], fresh_within_s, leader_lock_id)
    return [_node(row) for row in rows]


def _node(row: Any) -> ServerNode:
    return ServerNode(row["node_id"], row["name"], row["host"], row["port"], row["pid"], row["started_at"],
                      row["heartbeat_at"], row["leader"])
