"""The SQL the store shares through migration 0005 (functions, a view, row types), and the named
queries of ``server/store/*.sql`` against the migrated schema."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from pycolonies import wire
from server.store import events, queries, wakeups

STORE_FILES = sorted(Path(queries.__file__).parent.glob("*.sql"))


async def test_every_named_query_prepares_against_the_schema(database: str) -> None:
    """Each statement parses and names only tables, columns and functions that exist, with
    parameter types PostgreSQL can infer."""
    con = await asyncpg.connect(database)
    try:
        problems = []
        count = 0
        for sql_file in STORE_FILES:
            for name, sql in queries.load(sql_file.stem).items():
                count += 1
                try:
                    await con.prepare(sql)
                except asyncpg.PostgresError as error:
                    problems.append(f"{sql_file.name} {name}: {error}")
        assert problems == []
        assert count > 80
    finally:
        await con.close()


async def test_the_state_functions_are_the_wire_numbers(database: str) -> None:
    con = await asyncpg.connect(database)
    try:
        names = {
            "state_waiting": wire.WAITING, "state_running": wire.RUNNING, "state_success": wire.SUCCESS,
            "state_failed": wire.FAILED, "state_cancelled": wire.CANCELLED,
            "executor_pending": wire.PENDING, "executor_approved": wire.APPROVED,
            "executor_rejected": wire.REJECTED, "executor_unregistered": wire.UNREGISTERED,
            "attribute_env": wire.ENV,
        }
        row = await con.fetchrow("SELECT " + ", ".join(f"{name}() AS {name}" for name in names))
        assert dict(row) == names
    finally:
        await con.close()


async def test_named_states_fold_into_constants_so_partial_indexes_still_serve(database: str) -> None:
    """``state = state_waiting()`` must plan like ``state = 0``: the assign hot path relies on the
    partial index ``processes_ready`` (WHERE state = 0 AND NOT wait_for_parents)."""
    con = await asyncpg.connect(database)
    try:
        await con.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in await con.fetch(
            """EXPLAIN SELECT process_id FROM processes
                WHERE colony_name = 'c' AND executor_type = 't' AND state = state_waiting()
                  AND NOT wait_for_parents
                ORDER BY priority_time LIMIT 1"""
        ))
        assert "processes_ready" in plan, plan
    finally:
        await con.close()


async def _notification(database: str, channel: str, statement: str) -> str:
    listener = await asyncpg.connect(database)
    sender = await asyncpg.connect(database)
    received: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener(channel, lambda *args: received.put_nowait(args[3]))
        await sender.execute(statement)
        return await asyncio.wait_for(received.get(), timeout=10)
    finally:
        await sender.close()
        await listener.close()


async def test_notify_ready_sends_the_topic_on_the_channel_the_wakeups_listen_to(database: str) -> None:
    payload = await _notification(database, wakeups.CHANNEL, "SELECT notify_ready('colony', 'type')")
    assert payload == wakeups.topic("colony", "type")


async def test_notify_process_changed_sends_an_event_the_listener_parses(database: str) -> None:
    payload = await _notification(
        database, events.CHANNEL, "SELECT notify_process_changed('p1', 2::smallint, 'colony', 'type')"
    )
    assert events.parse(payload) == events.ProcessEvent("p1", wire.SUCCESS, "colony", "type")


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], wire.SUCCESS),  # nothing left to do
        ([wire.WAITING, wire.WAITING], wire.WAITING),
        ([wire.SUCCESS, wire.WAITING], wire.RUNNING),
        ([wire.RUNNING, wire.WAITING], wire.RUNNING),
        ([wire.SUCCESS, wire.SUCCESS], wire.SUCCESS),
        ([wire.SUCCESS, wire.FAILED], wire.RUNNING),  # stored WAITING: the cascade has not run yet
    ],
)
async def test_graph_state_of_an_active_graph_follows_its_processes(
    database: str, states: list[int], expected: int
) -> None:
    con = await asyncpg.connect(database)
    try:
        await con.execute("INSERT INTO colonies (name, colony_id) VALUES ('c', 'cid')")
        await con.execute(
            """INSERT INTO processgraphs (processgraph_id, colony_name, initiator_id, initiator_name,
                                          root_process_ids, state, submission_time)
               VALUES ('g', 'c', 'i', 'n', '{}', 0, now())"""
        )
        for i, state in enumerate(states):
            await con.execute(
                """INSERT INTO processes (process_id, colony_name, executor_type, initiator_id,
                                          initiator_name, priority_time, submission_time, spec,
                                          processgraph_id, state)
                   VALUES ($1, 'c', 't', 'i', 'n', 0, now(), '{}', 'g', $2)""",
                f"p{i}", state,
            )
        assert await con.fetchval("SELECT state FROM graph_summaries WHERE processgraph_id = 'g'") == expected
        await con.execute("UPDATE processgraphs SET state = $1", wire.CANCELLED)
        assert await con.fetchval("SELECT graph_state('g', state) FROM processgraphs") == wire.CANCELLED
    finally:
        await con.close()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT d.* FROM processes p CROSS JOIN LATERAL process_details(p.process_id) d "
        "WHERE p.process_id = 'x'",
        "SELECT name FROM colony_member('c', 'x')",
    ],
)
async def test_the_table_functions_are_inlined_not_run_per_row(database: str, query: str) -> None:
    """process_details and colony_member are on the hot paths: they must stay inlinable (one SQL
    SELECT, STABLE, LANGUAGE sql), or each call becomes a separate plan (measured: +0.1 ms per
    assign, bench/README.md)."""
    con = await asyncpg.connect(database)
    try:
        plan = "\n".join(r[0] for r in await con.fetch("EXPLAIN " + query))
        assert "Function Scan" not in plan, plan
    finally:
        await con.close()
