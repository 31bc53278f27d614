"""Generators (docs/scheduling-and-workflows.md: the reference's, flaws fixed) against a real server and
PostgreSQL.

Contract: a member adds a generator (a workflow spec as a JSON string, validated at add time, and
``trigger`` >= 1). Members pack string args; when ``trigger`` are queued the pack itself submits
``floor(queued / trigger)`` workflows, each with ``trigger`` args in pack order as the roots'
``args`` (the spec's kwargs are kept); when fewer are queued and the oldest has waited ``timeout``
seconds, the trigger loop submits one workflow with all of them. The args used are removed in the
same transaction as the submission.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from pycolonies import crypto, wire
from server.scheduler import triggers
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused
from tests.integration.test_crons import graphs, node, roots, trigger_pass
from tests.support import wait_until

KWARGS = {"mode": "fast", "retries": 2}


def spec(colony: ColonyEnv) -> str:
    """A root ``batch`` (with args and kwargs of its own) and a child ``after``."""
    return json.dumps({"colonyname": colony.colonyname, "functionspecs": [
        node(colony, "batch", args=["from-spec"], kwargs=KWARGS),
        node(colony, "after", "batch", args=["child-arg"], kwargs={"k": "v"}),
    ]})


def add(colony: ColonyEnv, name: str = "batcher", *, trigger: int = 3, timeout: int = -1,
        workflowspec: str | None = None, prvkey: str | None = None) -> Any:
    generator = {"colonyname": colony.colonyname, "name": name, "workflowspec": workflowspec or spec(colony),
                 "trigger": trigger, "timeout": timeout}
    return colony.client.add_generator(generator, prvkey or colony.user_prvkey)


def pack(colony: ColonyEnv, generator: Any, *args: str) -> None:
    for arg in args:
        assert colony.client.pack_generator(generator["generatorid"], arg, colony.executor_prvkey) == {}


def batches(colony: ColonyEnv) -> list[list[Any]]:
    """The root args of every graph, oldest graph first."""
    found = []
    for graph in graphs(colony):
        [root] = roots(colony, graph["processgraphid"])
        assert root.spec.nodename == "batch"
        assert root.spec.kwargs == KWARGS  # the reference wipes them
        found.append(root.spec.args)
    return found


def get(colony: ColonyEnv, generator: Any) -> Any:
    return colony.client.get_generator(generator["generatorid"], colony.user_prvkey)


# -- add, get, resolve, list, remove --------------------------------------------------------------


def test_add_get_resolve_list_remove(colony: ColonyEnv) -> None:
    workflowspec = spec(colony)
    generator = add(colony, workflowspec=workflowspec, trigger=10, timeout=60)
    assert len(generator["generatorid"]) == 64
    assert generator["name"] == "batcher" and generator["colonyname"] == colony.colonyname
    assert generator["initiatorid"] == crypto.derive_id(colony.user_prvkey)
    assert generator["initiatorname"] == "alice"
    assert generator["workflowspec"] == workflowspec
    assert (generator["trigger"], generator["timeout"], generator["queuesize"]) == (10, 60, 0)
    assert generator["firstpack"] == wire.ZERO_TIME and generator["lastrun"] == wire.ZERO_TIME
    assert generator["checkerperiod"] == triggers.CHECKER_PERIOD_MS

    assert colony.client.get_generator(generator["generatorid"], colony.executor_prvkey) == generator
    assert colony.client.resolve_generator(colony.colonyname, "batcher", colony.executor_prvkey) == generator
    add(colony, "another")
    names = [g["name"] for g in colony.client.get_generators(colony.colonyname, colony.user_prvkey)]
    assert names == ["another", "batcher"]
    assert len(colony.client.get_generators(colony.colonyname, colony.user_prvkey, 1)) == 1

    before = datetime.now(UTC) - timedelta(seconds=1)
    pack(colony, generator, "a", "b")
    packed = get(colony, generator)
    assert packed["queuesize"] == 2 and packed["lastrun"] == wire.ZERO_TIME
    assert wire.parse_time(packed["firstpack"]) >= before

    assert colony.client.remove_generator(generator["generatorid"], colony.executor_prvkey) == {}
    refused(lambda: get(colony, generator), 404, "not found")
    refused(lambda: colony.client.resolve_generator(colony.colonyname, "batcher", colony.user_prvkey), 404,
            "Failed to resolve generator, colony <dev> has no generator named <batcher>")
    assert _count(colony, "SELECT count(*) FROM generator_args") == 0  # its queued args went with it
    assert graphs(colony) == []


def test_refusals(colony: ColonyEnv) -> None:
    client, user = colony.client, colony.user_prvkey
    unknown = "0" * 64
    other_colony = json.dumps({"colonyname": "elsewhere", "functionspecs": [node(colony, "a")]})
    cases: list[tuple[Callable[[], Any], int, str]] = [
        (lambda: add(colony, trigger=0), 400, "Invalid generator.trigger: 0"),
        (lambda: add(colony, trigger=-3), 400, "must be at least 1"),
        (lambda: add(colony, timeout=-2), 400, "Invalid generator.timeout: -2"),
        (lambda: add(colony, name=""), 400, "Invalid generator.name: must not be empty"),
        (lambda: add(colony, workflowspec="nope"), 400, "Invalid generator.workflowspec: not valid JSON"),
        (lambda: add(colony, workflowspec=json.dumps({"colonyname": colony.colonyname, "functionspecs": [
            node(colony, "a"), node(colony, "a")]})), 400, "duplicate nodename <a>"),
        (lambda: add(colony, workflowspec=other_colony), 400, "the workflow is for colony <elsewhere>"),
        (lambda: add(colony, prvkey=colony.colony_prvkey), 403, "not a member of Colony with name <dev>"),
        (lambda: client.get_generator(unknown, user), 404, f"Failed to get generator, generator <{unknown}>"),
        (lambda: client.get_generator("", user), 400, "generatorid is required"),
        (lambda: client.pack_generator(unknown, "x", user), 404, "Failed to pack generator"),
        (lambda: client.remove_generator(unknown, user), 404, "Failed to remove generator"),
        (lambda: client.resolve_generator(colony.colonyname, "missing", user), 404, "no generator named"),
        (lambda: client.resolve_generator(colony.colonyname, "", user), 400, "generatorname is required"),
        (lambda: client.resolve_generator(colony.colonyname, "x", colony.colony_prvkey), 403, "not a member"),
        (lambda: client.get_generators(colony.colonyname, user, 101), 400, "exceeds the maximum of 100"),
        (lambda: client.get_generators(colony.colonyname, crypto.generate_private_key()), 403,
         "not a member"),
    ]
    for call, status, fragment in cases:
        refused(call, status, fragment)
    generator = add(colony)
    refused(lambda: add(colony), 400,
            "Failed to add generator, colony <dev> already has a generator named <batcher>")
    for call in (lambda: client.get_generator(generator["generatorid"], colony.colony_prvkey),
                 lambda: client.pack_generator(generator["generatorid"], "x", colony.colony_prvkey),
                 lambda: client.remove_generator(generator["generatorid"], crypto.generate_private_key())):
        refused(call, 403, "not a member")
    other = make_colony(colony.client, colony.server, "other")
    refused(lambda: client.pack_generator(generator["generatorid"], "x", other.user_prvkey), 403,
            "not a member")
    assert get(colony, generator)["queuesize"] == 0


# -- submitting -----------------------------------------------------------------------------------


def test_trigger_submits_at_once_with_the_args_in_pack_order(colony: ColonyEnv) -> None:
    generator = add(colony, trigger=3)
    pack(colony, generator, "a", "b")
    assert graphs(colony) == [] and get(colony, generator)["queuesize"] == 2
    pack(colony, generator, "c")  # the third pack submits, in its own transaction
    assert batches(colony) == [["a", "b", "c"]]
    after = get(colony, generator)
    assert after["queuesize"] == 0 and after["lastrun"] != wire.ZERO_TIME

    pack(colony, generator, *"defghij")
    assert batches(colony) == [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    assert get(colony, generator)["queuesize"] == 1

    # only the roots get the packed args; the child keeps its own, and gets the root's output as input
    graph = graphs(colony)[0]
    process = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    assert process.processgraphid == graph["processgraphid"] and process.spec.args == ["a", "b", "c"]
    colony.client.close(process.processid, ["abc"], colony.executor_prvkey)
    child = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    assert child.spec.nodename == "after" and child.spec.args == ["child-arg"] and child.input == ["abc"]
    assert child.spec.kwargs == {"k": "v"}


def test_a_backlog_is_submitted_in_full_batches(colony: ColonyEnv) -> None:
    """Args queued beyond the trigger (here put there directly) go out as floor(n / trigger)
    workflows of ``trigger`` args each, in pack order, at the next pack."""
    generator = add(colony, trigger=3)
    _execute(colony, "INSERT INTO generator_args (generator_id, arg) "
                     "SELECT $1, 'q' || i FROM generate_series(1, 7) i ORDER BY i", generator["generatorid"])
    pack(colony, generator, "last")  # 8 queued: two workflows, two args left
    assert batches(colony) == [["q1", "q2", "q3"], ["q4", "q5", "q6"]]
    assert get(colony, generator)["queuesize"] == 2


def test_timeout_submits_what_is_queued(colony: ColonyEnv) -> None:
    generator = add(colony, trigger=10, timeout=1)
    packed_at = datetime.now(UTC)
    pack(colony, generator, "x", "y")
    [batch] = wait_until(lambda: batches(colony), 10, "the timeout to submit the partial batch")
    assert batch == ["x", "y"]
    [graph] = graphs(colony)
    assert wire.parse_time(graph["submissiontime"]) >= packed_at + timedelta(seconds=0.9)
    assert get(colony, generator)["queuesize"] == 0

    # after an idle spell the timeout counts from the oldest queued arg, not from the last run
    time.sleep(1.2)
    packed_at = datetime.now(UTC)
    pack(colony, generator, "z")
    assert len(graphs(colony)) == 1
    wait_until(lambda: len(graphs(colony)) == 2, 10, "the second partial batch")
    assert batches(colony)[1] == ["z"]
    assert wire.parse_time(graphs(colony)[1]["submissiontime"]) >= packed_at + timedelta(seconds=0.9)


def test_no_timeout_waits_for_the_trigger(colony: ColonyEnv) -> None:
    generator = add(colony, trigger=2, timeout=0)
    pack(colony, generator, "only")
    for _ in range(3):  # passes of the trigger loop, run here: none submits the lone arg
        assert trigger_pass(colony)["generator_workflows"] == 0
    assert graphs(colony) == [] and get(colony, generator)["queuesize"] == 1


def test_concurrent_packs_lose_and_duplicate_nothing(colony: ColonyEnv) -> None:
    generator = add(colony, trigger=4)
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def packer(i: int) -> None:
        try:
            barrier.wait()
            colony.client.pack_generator(generator["generatorid"], f"arg-{i}", colony.executor_prvkey)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=packer, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    found = batches(colony)
    assert [len(b) for b in found] == [4, 4, 4]
    assert sorted(a for b in found for a in b) == sorted(f"arg-{i}" for i in range(12))
    assert get(colony, generator)["queuesize"] == 0


def test_a_generator_whose_initiator_left_refuses_packs(colony: ColonyEnv) -> None:
    generator = add(colony, trigger=1)
    colony.client.remove_user(colony.colonyname, colony.username, colony.colony_prvkey)
    refused(lambda: pack(colony, generator, "x"), 400,
            "Failed to pack generator, its initiator <alice> is no longer a member of colony <dev>")
    assert colony.client.get_generator(generator["generatorid"], colony.executor_prvkey)["queuesize"] == 0



def test_a_timed_out_batch_whose_initiator_left_is_kept(colony: ColonyEnv) -> None:
    """The loop cannot submit it: the args stay queued (nothing half-done) and it is retried only
    after a hold-off, not on every tick."""
    generator = add(colony, trigger=10, timeout=1)
    pack(colony, generator, "x")
    colony.client.remove_user(colony.colonyname, colony.username, colony.colony_prvkey)
    time.sleep(1 + 3 * triggers.TRIGGER_PERIOD_S)
    assert colony.client.get_generator(generator["generatorid"], colony.executor_prvkey)["queuesize"] == 1
    assert _count(colony, "SELECT count(*) FROM processgraphs") == 0


# -- helpers ---------------------------------------------------------------------------------------


def _execute(colony: ColonyEnv, sql: str, *args: Any) -> None:
    async def run() -> None:
        con = await asyncpg.connect(colony.server.dsn)
        try:
            await con.execute(sql, *args)
        finally:
            await con.close()

    asyncio.run(run())


def _count(colony: ColonyEnv, sql: str) -> int:
    async def run() -> int:
        con = await asyncpg.connect(colony.server.dsn)
        try:
            return int(await con.fetchval(sql))
        finally:
            await con.close()

    return asyncio.run(run())
