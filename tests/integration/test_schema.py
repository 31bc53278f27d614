"""The SQL migrations: the schema they produce, idempotence, and the advisory lock.

Each test migrates its own *empty* database (not the migrated template the other tests copy).

The expected schema is the checked-in snapshot ``expected_schema.txt`` beside this file: a
normalised dump of tables, columns (type, nullability, default), indexes, constraints,
sequences, types, views and functions (a view's definition and a function's body by checksum),
read from pg_catalog. After an intended schema change (a new migration), regenerate it
and review the diff::

    UPDATE_SCHEMA_SNAPSHOT=1 pytest tests/integration/test_schema.py -k snapshot
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from server import db
from tests.conftest import _admin, _with_database

SNAPSHOT = Path(__file__).with_name("expected_schema.txt")


@pytest.fixture
def empty_database(admin_dsn: str) -> Iterator[str]:
    """A brand-new database with no colonies schema at all; dropped afterwards."""
    name = f"colonies_schema_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name}"))
    try:
        yield _with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _migrate_once(dsn: str) -> list[int]:
    con = await asyncpg.connect(dsn)
    try:
        return await db.migrate(con)
    finally:
        await con.close()


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    con = await asyncpg.connect(dsn)
    try:
        return await con.fetch(query)
    finally:
        await con.close()


_TABLES = """
    SELECT c.relname AS table_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY c.relname"""

_COLUMNS = """
    SELECT c.relname AS table_name, a.attname AS column_name,
           format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull AS not_null,
           pg_get_expr(d.adbin, d.adrelid) AS default_expr
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname, a.attnum"""

_INDEXES = """
    SELECT tablename, indexname, indexdef FROM pg_indexes
    WHERE schemaname = 'public'
    ORDER BY tablename, indexname"""

_CONSTRAINTS = """
    SELECT c.relname AS table_name, k.conname, k.contype::text AS contype,
           pg_get_constraintdef(k.oid) AS definition
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND k.contype <> 'n'  -- NOT NULL (PostgreSQL 18+): see the columns
    ORDER BY c.relname, k.conname"""

_SEQUENCES = """
    SELECT sequencename, data_type::text AS data_type, start_value, increment_by
    FROM pg_sequences WHERE schemaname = 'public'
    ORDER BY sequencename"""

_OTHER_OBJECTS = """
    SELECT c.relkind::text AS relkind,
           c.relname::text
           || CASE WHEN c.relkind = 'v' THEN ' definition md5 ' || md5(pg_get_viewdef(c.oid)) ELSE '' END
           AS relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind NOT IN ('r', 'p', 'i', 'S', 't')
    UNION ALL
    SELECT 'function', p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ') RETURNS '
           || pg_get_function_result(p.oid)
           || CASE p.provolatile WHEN 'i' THEN ' IMMUTABLE' WHEN 's' THEN ' STABLE' ELSE ' VOLATILE' END
           || ' body md5 ' || md5(p.prosrc)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public'
    UNION ALL
    SELECT 'trigger', c.relname::text || '.' || t.tgname::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND NOT t.tgisinternal
    UNION ALL
    SELECT 'type', t.typname::text
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    ORDER BY 1, 2"""


async def schema_dump(dsn: str) -> str:
    """A deterministic, human-readable description of the ``public`` schema."""
    con = await asyncpg.connect(dsn)
    try:
        lines: list[str] = []
        tables = [r["table_name"] for r in await con.fetch(_TABLES)]
        columns = await con.fetch(_COLUMNS)
        indexes = await con.fetch(_INDEXES)
        constraints = await con.fetch(_CONSTRAINTS)
        for table in tables:
            lines.append(f"TABLE {table}")
            for col in (c for c in columns if c["table_name"] == table):
                null = "NOT NULL" if col["not_null"] else "NULL"
                default = f" DEFAULT {col['default_expr']}" if col["default_expr"] is not None else ""
                lines.append(f"  COLUMN {col['column_name']} {col['data_type']} {null}{default}")
            for con_row in (c for c in constraints if c["table_name"] == table):
                lines.append(
                    f"  CONSTRAINT {con_row['conname']} [{con_row['contype']}] {con_row['definition']}"
                )
            for idx in (i for i in indexes if i["tablename"] == table):
                lines.append(f"  INDEX {idx['indexname']}: {idx['indexdef']}")
        for seq in await con.fetch(_SEQUENCES):
            lines.append(
                f"SEQUENCE {seq['sequencename']} {seq['data_type']} "
                f"START {seq['start_value']} INCREMENT {seq['increment_by']}"
            )
        for obj in await con.fetch(_OTHER_OBJECTS):
            lines.append(f"{obj['relkind'].upper()} {obj['relname']}")
        return "\n".join(lines) + "\n"
    finally:
        await con.close()


def test_migrations_from_zero_match_schema_snapshot(empty_database: str) -> None:
    applied = asyncio.run(_migrate_once(empty_database))
    assert applied == [m.version for m in db.load_migrations()]
    actual = asyncio.run(schema_dump(empty_database))
    if os.environ.get("UPDATE_SCHEMA_SNAPSHOT"):
        SNAPSHOT.write_text(actual)
        pytest.skip(f"UPDATE_SCHEMA_SNAPSHOT set: rewrote {SNAPSHOT.name}; review and commit it")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing; create it with UPDATE_SCHEMA_SNAPSHOT=1"
    expected = SNAPSHOT.read_text()
    assert actual == expected, (
        "The migrated schema differs from tests/integration/expected_schema.txt. If the change is "
        "intended, regenerate it with UPDATE_SCHEMA_SNAPSHOT=1 and review the diff."
    )


def test_schema_dump_sees_every_object_kind(empty_database: str) -> None:
    """Guard against a dump query that silently matches nothing."""
    asyncio.run(_migrate_once(empty_database))
    dump = asyncio.run(schema_dump(empty_database))
    for needle in (
        "TABLE processes",
        "COLUMN spec jsonb NOT NULL",
        "INDEX processes_ready",
        "WHERE ((state = 0) AND (NOT wait_for_parents))",
        "[f] FOREIGN KEY (colony_name) REFERENCES colonies(name) ON DELETE CASCADE",
        "[p] PRIMARY KEY (process_id)",
        "[u] UNIQUE (colony_id)",
        "SEQUENCE logs_log_id_seq bigint",
        "TABLE schema_migrations",
    ):
        assert needle in dump


ALL_VERSIONS = [m.version for m in db.load_migrations()]


def test_migrate_twice_applies_nothing_the_second_time(empty_database: str) -> None:
    first = asyncio.run(_migrate_once(empty_database))
    before = asyncio.run(schema_dump(empty_database))
    second = asyncio.run(_migrate_once(empty_database))
    assert first == ALL_VERSIONS
    assert second == []
    assert asyncio.run(schema_dump(empty_database)) == before
    rows = asyncio.run(_fetch(empty_database, "SELECT version FROM schema_migrations ORDER BY version"))
    assert [r["version"] for r in rows] == ALL_VERSIONS


def test_concurrent_migrations_apply_the_schema_once(empty_database: str) -> None:
    async def race() -> list[list[int]]:
        cons = [await asyncpg.connect(empty_database) for _ in range(2)]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*(db.migrate(c) for c in cons)), 60))
        finally:
            for con in cons:
                await con.close()

    results = asyncio.run(race())
    # Both succeed; exactly one of them applied the migrations, the other found them done.
    assert sorted(results) == [[], ALL_VERSIONS]
    rows = asyncio.run(_fetch(empty_database, "SELECT version FROM schema_migrations ORDER BY version"))
    assert [r["version"] for r in rows] == ALL_VERSIONS
    # The advisory lock was released by both: a third migrate neither blocks nor applies anything.
    assert asyncio.run(asyncio.wait_for(_migrate_once(empty_database), 30)) == []


def test_schema_migrations_lists_every_migration(empty_database: str) -> None:
    asyncio.run(_migrate_once(empty_database))
    rows = asyncio.run(
        _fetch(empty_database, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    )
    expected = [(m.version, m.name) for m in db.load_migrations()]
    assert [(r["version"], r["name"]) for r in rows] == expected
    assert all(r["applied_at"] is not None for r in rows)
    # Numbered from 1 without gaps, starting with the initial schema.
    assert expected[0] == (1, "initial")
    assert [version for version, _ in expected] == list(range(1, len(expected) + 1))
