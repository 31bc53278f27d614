"""Crons (docs/scheduling-and-workflows.md: the reference's, flaws fixed) against a real server and
PostgreSQL.

Contract: a member adds a cron (a workflow spec as a JSON string, validated at add time) that runs
every ``interval`` seconds or, with interval -1, on a cron expression (6 fields with seconds first,
5 fields, ``@every 10s``, ``@daily`` ...). The server's single trigger leader fires due crons in one
transaction each; a cron that waits for its previous graph runs only once that graph has ended
(SUCCESS, FAILED or CANCELLED) or was removed, and the previous graph's leaf outputs become the
new roots' input. ``runcronmsg`` fires at once. A cron whose initiator left the colony does not
retry on every tick.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from pycolonies import Colonies, crypto, wire
from server.scheduler import triggers
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused
from tests.integration.test_workflows import node
from tests.support import wait_until

HEX64 = 64


def workflow(colony: ColonyEnv, *specs: dict[str, Any]) -> str:
    specs = specs or (node(colony, "tick"),)
    return json.dumps({"colonyname": colony.colonyname, "functionspecs": list(specs)})


def add(colony: ColonyEnv, name: str = "nightly", expression: str = "0 0 3 * * *", *, wait: bool = False,
        spec: str | None = None, interval: int = -1, random: bool = False, prvkey: str | None = None) -> Any:
    return colony.client.add_cron(name, expression, wait, spec or workflow(colony), colony.colonyname,
                                  prvkey or colony.user_prvkey, interval=interval, random=random)


def graphs(colony: ColonyEnv) -> list[Any]:
    """Every graph of the colony, oldest first."""
    found = [g for state in (wire.WAITING, wire.RUNNING, wire.SUCCESS, wire.FAILED, wire.CANCELLED)
             for g in colony.client.get_processgraphs(colony.colonyname, 100, colony.user_prvkey, state)]
    return sorted(found, key=lambda g: (wire.parse_time(g["submissiontime"]), g["processgraphid"]))


def trigger_pass(colony: ColonyEnv) -> dict[str, int]:
    """One pass of the trigger loop, run here (the server's own loop runs on as well)."""
    async def run() -> dict[str, int]:
        con = await asyncpg.connect(colony.server.dsn)
        try:
            return await triggers.run_due(con)
        finally:
            await con.close()

    return asyncio.run(run())


def roots(colony: ColonyEnv, graph_id: str) -> list[Any]:
    graph = colony.client.get_processgraph(graph_id, colony.user_prvkey)
    return [colony.client.get_process(pid, colony.user_prvkey) for pid in graph.rootprocessids]


def assert_once_per_period(created: list[Any], first_run: str, interval: float) -> None:
    """Each run falls in its own period of the cron's grid (runs are at most a tick or two late)."""
    anchor = wire.parse_time(first_run)
    offsets = [(wire.parse_time(g["submissiontime"]) - anchor).total_seconds() for g in created]
    slots = [int(offset // interval) for offset in offsets]
    assert all(offset >= 0 for offset in offsets), offsets
    assert len(set(slots)) == len(slots), offsets


def run_graph(colony: ColonyEnv, outputs: dict[str, list[Any]]) -> None:
    """Assign and close processes by node name until every name in ``outputs`` has run."""
    left = dict(outputs)
    while left:
        process = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
        colony.client.close(process.processid, left.pop(process.spec.nodename), colony.executor_prvkey)


# -- add, get, list, remove ------------------------------------------------------------------------


def test_add_get_list_remove(colony: ColonyEnv) -> None:
    spec = workflow(colony)
    before = datetime.now(UTC)
    cron = add(colony, spec=spec, wait=True)
    assert len(cron["cronid"]) == HEX64
    assert cron["name"] == "nightly" and cron["colonyname"] == colony.colonyname
    assert cron["initiatorid"] == crypto.derive_id(colony.user_prvkey) and cron["initiatorname"] == "alice"
    assert cron["cronexpression"] == "0 0 3 * * *" and cron["interval"] == -1 and cron["random"] is False
    assert cron["workflowspec"] == spec and cron["waitforprevprocessgraph"] is True
    assert cron["prevprocessgraphid"] == "" and cron["lastrun"] == wire.ZERO_TIME
    assert cron["checkerperiod"] == triggers.CHECKER_PERIOD_MS
    # the next run is computed when the cron is added: the next 03:00:00 UTC (seconds come first)
    next_run = wire.parse_time(cron["nextrun"])
    assert next_run is not None and next_run.hour == 3 and next_run.minute == 0 and next_run.second == 0
    assert before < next_run <= before + timedelta(days=1)

    assert colony.client.get_cron(cron["cronid"], colony.executor_prvkey) == cron
    other = add(colony, "hourly", "@hourly")
    names = [c["name"] for c in colony.client.get_crons(colony.colonyname, 10, colony.user_prvkey)]
    assert names == ["hourly", "nightly"]
    first = colony.client.get_crons(colony.colonyname, 1, colony.user_prvkey)
    assert [c["name"] for c in first] == ["hourly"]

    assert colony.client.del_cron(cron["cronid"], colony.executor_prvkey) == {}
    refused(lambda: colony.client.get_cron(cron["cronid"], colony.user_prvkey), 404, "not found")
    assert colony.client.get_crons(colony.colonyname, 10, colony.user_prvkey) == [colony.client.get_cron(
        other["cronid"], colony.user_prvkey)]
    assert graphs(colony) == []  # nothing ran


@pytest.mark.parametrize(
    ("expression", "interval", "first_gap"),
    [("@every 1m30s", -1, 90), ("*/10 * * * *", -1, None), ("", 45, 45), ("ignored", 3600, 3600)],
)
def test_schedules_accepted(colony: ColonyEnv, expression: str, interval: int, first_gap: int | None) -> None:
    before = datetime.now(UTC)
    cron = add(colony, expression=expression, interval=interval)
    next_run = wire.parse_time(cron["nextrun"])
    assert next_run is not None and next_run > before
    if first_gap is not None:
        assert abs((next_run - before).total_seconds() - first_gap) < 5
    else:
        assert next_run.minute % 10 == 0 and next_run.second == 0


def test_the_reference_sdks_misspelt_wait_flag_is_accepted(colony: ColonyEnv) -> None:
    msg = {"msgtype": "addcronmsg", "cron": {
        "name": "legacy", "colonyname": colony.colonyname, "interval": -1, "cronexpression": "0 0 3 * * *",
        "workflowspec": workflow(colony), "waitforprevprocessgrap": True}}
    status, reply = rawrpc.call(colony.server.url, msg, colony.user_prvkey)
    assert status == 200, reply
    assert reply["waitforprevprocessgraph"] is True


def test_refusals(colony: ColonyEnv) -> None:
    client, user = colony.client, colony.user_prvkey
    cases: list[tuple[Callable[[], Any], int, str]] = [
        (lambda: add(colony, interval=0), 400, "Invalid cron.interval: interval 0 is not allowed"),
        (lambda: add(colony, interval=-5), 400, "Invalid cron.interval"),
        (lambda: add(colony, random=True), 400, "Invalid cron.random: random needs an interval > 0"),
        (lambda: add(colony, expression="61 * * * * *"), 400, "Invalid cron.cronexpression: invalid cron"),
        (lambda: add(colony, expression="* * * *"), 400,
         "Invalid cron.cronexpression: cron expression '* * * *' has 4 fields"),
        (lambda: add(colony, expression="@every soon"), 400,
         "Invalid cron.cronexpression: invalid duration"),
        (lambda: add(colony, expression=""), 400,
         "Invalid cron.cronexpression: the cron expression is empty"),
        (lambda: add(colony, expression="0 0 0 30 2 *"), 400, "never matches"),
        (lambda: add(colony, name=""), 400, "Invalid cron.name: must not be empty"),
        (lambda: add(colony, spec="{not json"), 400, "Invalid cron.workflowspec: not valid JSON"),
        (lambda: add(colony, spec="[]"), 400, "cron.workflowspec must be an object"),
        (lambda: add(colony, spec=json.dumps({"colonyname": colony.colonyname, "functionspecs": []})), 400,
         "Invalid cron.workflowspec.functionspecs: a workflow needs at least one function spec"),
        (lambda: add(colony, spec=workflow(colony, node(colony, "a", "missing"))), 400,
         "<a> depends on <missing>, which is not a nodename of this workflow"),
        (lambda: add(colony, spec=workflow(colony, node(colony, "a", "b"), node(colony, "b", "a"))), 400,
         "the dependencies form a cycle"),
        (lambda: add(colony, spec=workflow(colony, node(colony, "a", conditions={"executortype": ""}))), 400,
         "Invalid cron.workflowspec.functionspecs[0].conditions.executortype"),
        (lambda: add(colony, spec=json.dumps({"colonyname": "elsewhere",
                                              "functionspecs": [node(colony, "a")]})),
         400, "the workflow is for colony <elsewhere>, not <dev>"),
        (lambda: add(colony, prvkey=colony.colony_prvkey), 403, "not a member of Colony with name <dev>"),
        (lambda: add(colony, prvkey=crypto.generate_private_key()), 403, "not a member"),
        (lambda: client.get_crons(colony.colonyname, 101, user), 400, "exceeds the maximum of 100"),
        (lambda: client.get_crons(colony.colonyname, 10, colony.colony_prvkey), 403, "not a member"),
        (lambda: client.get_cron("0" * 64, user), 404, f"Failed to get cron, cron <{'0' * 64}> not found"),
        (lambda: client.get_cron("", user), 400, "cronid is required"),
        (lambda: client.run_cron("0" * 64, user), 404, "Failed to run cron"),
        (lambda: client.del_cron("0" * 64, user), 404, "Failed to remove cron"),
    ]
    for call, status, fragment in cases:
        refused(call, status, fragment)
    cron = add(colony)
    refused(lambda: add(colony), 400, "Failed to add cron, colony <dev> already has a cron named <nightly>")
    for call in (lambda: client.get_cron(cron["cronid"], colony.colony_prvkey),
                 lambda: client.run_cron(cron["cronid"], colony.colony_prvkey),
                 lambda: client.del_cron(cron["cronid"], crypto.generate_private_key())):
        refused(call, 403, "not a member")
    status, reply = rawrpc.call(colony.server.url, {"msgtype": "removecronmsg", "cronid": cron["cronid"],
                                                    "all": True}, colony.user_prvkey)
    assert status == 400 and "all=true is not supported" in reply["message"]
    assert client.get_cron(cron["cronid"], user)["name"] == "nightly"
    assert graphs(colony) == []


def test_a_cron_in_another_colony_is_not_visible(colony: ColonyEnv) -> None:
    cron = add(colony)
    other = make_colony(colony.client, colony.server, "other")
    refused(lambda: colony.client.get_cron(cron["cronid"], other.user_prvkey), 403, "not a member")
    assert colony.client.get_crons("other", 10, other.user_prvkey) == []
    # the same name in another colony is fine
    assert add(other)["colonyname"] == "other"


# -- firing ----------------------------------------------------------------------------------------


def test_an_interval_cron_fires_repeatedly_once_per_period(colony: ColonyEnv) -> None:
    cron = add(colony, "every-second", interval=1)
    created = wait_until(lambda: len(graphs(colony)) >= 3 and graphs(colony), 10, "three runs")
    assert_once_per_period(created, cron["nextrun"], 1)
    assert all(g["initiatorname"] == "alice" for g in created)
    now = colony.client.get_cron(cron["cronid"], colony.user_prvkey)
    assert now["lastrun"] != wire.ZERO_TIME
    assert now["prevprocessgraphid"] in {g["processgraphid"] for g in graphs(colony)}
    assert wire.parse_time(now["nextrun"]) > wire.parse_time(now["lastrun"])


def test_an_every_descriptor_fires(colony: ColonyEnv) -> None:
    add(colony, "every", "@every 1s")
    wait_until(lambda: len(graphs(colony)) >= 2, 10, "two runs of @every 1s")


def test_a_six_field_expression_fires_every_second(colony: ColonyEnv) -> None:
    add(colony, "each-second", "* * * * * *")
    wait_until(lambda: len(graphs(colony)) >= 2, 10, "two runs of * * * * * *")


def test_run_cron_fires_now_and_keeps_the_schedule(colony: ColonyEnv) -> None:
    cron = add(colony)  # 03:00 every day: not due during the test
    ran = colony.client.run_cron(cron["cronid"], colony.executor_prvkey)
    assert ran["nextrun"] == cron["nextrun"]
    assert ran["lastrun"] != wire.ZERO_TIME
    [graph] = graphs(colony)
    assert ran["prevprocessgraphid"] == graph["processgraphid"]
    assert graph["initiatorname"] == "alice"  # the cron's initiator, not the caller
    [root] = roots(colony, graph["processgraphid"])
    assert root.spec.nodename == "tick" and root.input == []
    assert colony.client.get_cron(cron["cronid"], colony.user_prvkey) == ran


def test_leaf_outputs_become_the_next_roots_input(colony: ColonyEnv) -> None:
    spec = workflow(colony, node(colony, "split"), node(colony, "left", "split"),
                    node(colony, "right", "split"), node(colony, "tail", "right"))
    cron = add(colony, spec=spec, wait=True)
    first = colony.client.run_cron(cron["cronid"], colony.user_prvkey)["prevprocessgraphid"]
    run_graph(colony, {"split": ["s"], "left": ["l1", {"n": 2}], "right": ["r"], "tail": ["t1", "t2"]})
    assert colony.client.get_processgraph(first, colony.user_prvkey).state == wire.SUCCESS
    second = colony.client.run_cron(cron["cronid"], colony.user_prvkey)["prevprocessgraphid"]
    assert second != first
    [root] = roots(colony, second)
    # leaves (left, tail) in the graph's depth-first order; every root gets them
    assert root.spec.nodename == "split" and root.input == ["l1", {"n": 2}, "t1", "t2"]


def test_wait_for_previous_blocks_until_the_previous_graph_ends(colony: ColonyEnv) -> None:
    cron = add(colony, "waiting", interval=1, wait=True)
    [first] = wait_until(lambda: graphs(colony), 10, "the first run")
    # the cron is due again but its first graph is still waiting: nothing more runs
    due = wire.parse_time(colony.client.get_cron(cron["cronid"], colony.user_prvkey)["nextrun"])
    wait_until(lambda: datetime.now(UTC) > due, 10, "the cron to be due")
    assert trigger_pass(colony)["crons_fired"] == 0  # a pass while it is due fires nothing
    assert len(graphs(colony)) == 1
    refused(lambda: colony.client.run_cron(cron["cronid"], colony.user_prvkey), 400,
            f"waits for its previous process graph <{first['processgraphid']}>, which has not ended yet")

    # SUCCESS releases it, with the leaf's output as the next input
    run_graph(colony, {"tick": ["done"]})
    second = wait_until(lambda: len(graphs(colony)) == 2 and graphs(colony)[1], 10, "the run after success")
    [root] = roots(colony, second["processgraphid"])
    assert root.input == ["done"]

    # FAILED releases it
    process = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    colony.client.fail(process.processid, ["boom"], colony.executor_prvkey)
    third = wait_until(lambda: len(graphs(colony)) == 3 and graphs(colony)[2], 10, "the run after failure")
    assert roots(colony, third["processgraphid"])[0].input == []

    # CANCELLED releases it (the reference blocks forever here)
    colony.client.cancel_processgraph(third["processgraphid"], colony.user_prvkey)
    fourth = wait_until(lambda: len(graphs(colony)) == 4 and graphs(colony)[3], 10, "the run after cancel")

    # a removed previous graph does not block either
    colony.client.remove_processgraph(fourth["processgraphid"], colony.user_prvkey)
    wait_until(lambda: fourth["processgraphid"] not in [g["processgraphid"] for g in graphs(colony)]
               and len(graphs(colony)) == 4, 10, "the run after removal")


def test_without_wait_runs_overlap(colony: ColonyEnv) -> None:
    add(colony, "overlapping", interval=1, wait=False)
    wait_until(lambda: len(graphs(colony)) >= 2, 10, "two runs while the first is still waiting")
    assert all(g["state"] == wire.WAITING for g in graphs(colony))


def test_a_cron_whose_initiator_left_is_not_retried_every_tick(colony: ColonyEnv) -> None:
    cron = add(colony, "orphan", interval=3)
    first_due = wire.parse_time(cron["nextrun"])
    colony.client.remove_user(colony.colonyname, colony.username, colony.colony_prvkey)
    refused(lambda: colony.client.run_cron(cron["cronid"], colony.executor_prvkey), 400,
            "Failed to run cron, its initiator <alice> is no longer a member of colony <dev>")

    def advanced() -> Any:
        now = colony.client.get_cron(cron["cronid"], colony.executor_prvkey)
        return now if wire.parse_time(now["nextrun"]) > first_due else None

    after = wait_until(advanced, 10, "the next run to be advanced")
    # one schedule step later (not one tick), nothing ran, nothing recorded as run
    assert wire.parse_time(after["nextrun"]) == first_due + timedelta(seconds=3)
    assert after["lastrun"] == wire.ZERO_TIME and after["prevprocessgraphid"] == ""
    assert colony.client.get_processgraphs(colony.colonyname, 100, colony.executor_prvkey, wire.WAITING) == []


def test_a_random_interval_cron_schedules_within_the_interval(colony: ColonyEnv) -> None:
    before = datetime.now(UTC)
    cron = add(colony, "jitter", interval=60, random=True)
    assert cron["random"] is True
    next_run = wire.parse_time(cron["nextrun"])
    assert before <= next_run < before + timedelta(seconds=61)


def test_removing_the_colony_removes_its_crons(colony: ColonyEnv) -> None:
    add(colony, interval=1)
    colony.client.del_colony(colony.colonyname, colony.server_prvkey)
    count = _count_crons(colony.server.dsn)
    assert count == 0


def _count_crons(dsn: str) -> int:
    async def count() -> int:
        con = await asyncpg.connect(dsn)
        try:
            return await con.fetchval("SELECT count(*) FROM crons")
        finally:
            await con.close()

    return asyncio.run(count())


# -- replicas --------------------------------------------------------------------------------------


def test_two_replicas_fire_a_cron_once_per_period(colony: ColonyEnv) -> None:
    """Two servers on one database: one trigger leader, so an interval-1 cron runs about once a
    second (never twice in one period), and it goes on when the leader stops."""
    second = ServerThread(colony.server.dsn, server_prvkey=colony.server_prvkey).start()
    try:
        with Colonies(second.host, second.port) as other:
            env = ColonyEnv(**{**colony.__dict__, "client": other, "server": second})
            cron = add(env, "replicated", interval=1)
            created = wait_until(lambda: len(graphs(colony)) >= 4 and graphs(colony), 15, "four runs")
            assert_once_per_period(created, cron["nextrun"], 1)
            assert _trigger_lock_holders(colony.server.dsn) == 1
            colony.server.stop()  # whichever was the leader, the other one carries on
            count = len(graphs(env))
            wait_until(lambda: len(graphs(env)) >= count + 2, 15, "runs after one replica stopped")
    finally:
        second.stop()


def _trigger_lock_holders(dsn: str) -> int:
    key = triggers.TRIGGER_LOCK_ID

    async def holders() -> int:
        con = await asyncpg.connect(dsn)
        try:
            return await con.fetchval(
                """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                      AND classid = $1 AND objid = $2 AND objsubid = 1""",
                key >> 32, key & 0xFFFFFFFF,
            )
        finally:
            await con.close()

    return asyncio.run(holders())
