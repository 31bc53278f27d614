"""PostgreSQL access: the connection pool and numbered SQL migrations."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg

from pycolonies import jsontext
from server.config import database_hosts

log = logging.getLogger(__name__)

# How long one connection attempt to one host may take (asyncpg's default is 60 s): a host that
# does not answer, such as a failed primary's address, is given up in time to try the next one.
CONNECT_TIMEOUT_S = 10.0

# The database cannot serve a request now, but may in a moment: the connection is lost or being
# re-opened, PostgreSQL is shutting down or starting, or the connection reached a server that
# is (now) a read-only standby, as during a failover. asyncpg's InternalClientError is its own
# state of a connection cut in the middle of a statement ("another operation is in progress",
# until it notices the loss), and also "none of the hosts is the primary"
# (TargetServerAttributeNotMatched) while a standby is being promoted.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,
    OSError,
)

# Arbitrary constant shared by every replica: only one of them migrates at a time.
MIGRATION_LOCK_ID = 0x636F6C6F6E696573  # "colonies"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The numbered ``NNNN_name.sql`` files of the ``migrations`` package, in order."""
    found: list[Migration] = []
    for entry in resources.files("migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        prefix, _, rest = name.partition("_")
        if not prefix.isdigit():
            raise RuntimeError(f"migration file {name!r} must start with a number, e.g. 0001_name.sql")
        found.append(Migration(int(prefix), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {versions}")
    return found


async def migrate(con: asyncpg.Connection) -> list[int]:
    """Apply pending migrations under an advisory lock; return the versions applied."""
    applied_now: list[int] = []
    await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await con.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await con.fetch("SELECT version FROM schema_migrations")}
        for migration in load_migrations():
            if migration.version in done:
                continue
            async with con.transaction():
                await con.execute(migration.sql)
                await con.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied_now.append(migration.version)
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


async def pending_migrations(con: asyncpg.Connection) -> list[int]:
    """The versions in ``migrations/`` that this database has not recorded as applied."""
    try:
        rows = await con.fetch("SELECT version FROM schema_migrations")
    except asyncpg.UndefinedTableError:
        rows = []
    done = {r["version"] for r in rows}
    return [m.version for m in load_migrations() if m.version not in done]


async def init_connection(con: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await con.set_type_codec(typename, encoder=jsontext.dumps, decoder=jsontext.loads,
                                 schema="pg_catalog")


async def _keep_session(con: asyncpg.Connection) -> None:
    """No reset on release: the server never leaves session state (locks, LISTENs, SETs, cursors)
    on a pooled connection, and asyncpg's default reset costs four statements per release."""


def primary_dsn(dsn: str, environ: dict[str, str] | None = None) -> str:
    """``dsn`` as the server connects with it. A URL naming several hosts
    (``postgresql://h1,h2/db``) gets ``target_session_attrs=read-write`` unless it (or
    ``PGTARGETSESSIONATTRS``) says otherwise: libpq's default, ``any``, may land on a standby.
    Every connection, re-opened after a failover too, then finds the current primary."""
    env = os.environ if environ is None else environ
    parts = urlsplit(dsn)
    if (len(database_hosts(dsn)) < 2 or "target_session_attrs" in parse_qs(parts.query)
            or env.get("PGTARGETSESSIONATTRS")):
        return dsn
    query = "&".join(filter(None, [parts.query, "target_session_attrs=read-write"]))
    return urlunsplit(parts._replace(query=query))


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20, **kwargs: Any) -> asyncpg.Pool:
    kwargs.setdefault("timeout", CONNECT_TIMEOUT_S)
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=init_connection, reset=_keep_session, **kwargs
    )


async def create_pool_when_ready(dsn: str, wait_s: float, **kwargs: Any) -> asyncpg.Pool:
    """:func:`create_pool`, waiting up to ``wait_s`` seconds for a database that cannot be
    reached yet (starting, being promoted, its address not up yet), as a replica started beside
    its database or during a failover must; other errors (a wrong password, no such database)
    are raised at once."""
    deadline = time.monotonic() + max(wait_s, 0.0)
    pause = 0.25
    waiting = False
    while True:
        try:
            pool = await create_pool(dsn, **kwargs)
        except UNAVAILABLE_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            if not waiting:
                log.warning("waiting up to %.0f s for the database (%s): %s", left,
                            ", ".join(database_hosts(dsn)) or "default host", exc)
                waiting = True
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 2.0)
            continue
        if waiting:
            log.info("the database answers")
        return pool
