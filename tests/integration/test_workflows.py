"""Workflows (process graphs): submit, data passing, graph state, failure propagation, add_child,
cancellation and removal, against a real server and PostgreSQL.

Contract (issue 4; docs/scheduling-and-workflows.md, "Workflows": the reference's, flaws fixed): a
workflow submit is one transaction and refuses bad shapes without writing anything; a child becomes
ready when all its parents succeed, with their outputs concatenated in dependency order as its
input; a process that fails for good fails the graph and its pending descendants (naming the failed
ancestor) while finished processes keep their state; cancellation is a durable state that refuses
later closes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pycolonies import Colonies, wire
from pycolonies.models import Process
from tests.conftest import ColonyEnv
from tests.expect import refused
from tests.support import wait_until


def node(colony: ColonyEnv, name: str, *deps: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodename": name,
        "funcname": name,
        "args": [],
        "maxwaittime": -1,
        "maxexectime": -1,
        "maxretries": 0,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype,
                       "dependencies": list(deps)},
    }
    spec.update(overrides)
    return spec


def submit(colony: ColonyEnv, *specs: dict[str, Any], prvkey: str | None = None) -> Any:
    workflow = {"colonyname": colony.colonyname, "functionspecs": list(specs)}
    return colony.client.submit_workflow(workflow, prvkey or colony.user_prvkey)


def assign(colony: ColonyEnv, prvkey: str | None = None, timeout: int = -1) -> Process:
    return colony.client.assign(colony.colonyname, timeout, prvkey or colony.executor_prvkey)


def run(colony: ColonyEnv, expected: str, output: list[Any], prvkey: str | None = None) -> Process:
    """Assign the next process, check it is ``expected``, close it with ``output``."""
    process = assign(colony, prvkey)
    assert process.spec.nodename == expected, f"expected {expected}, got {process.spec.nodename}"
    colony.client.close(process.processid, output, prvkey or colony.executor_prvkey)
    return process


def by_name(colony: ColonyEnv, graph: Any) -> dict[str, Process]:
    graph = colony.client.get_processgraph(graph.processgraphid, colony.user_prvkey)
    processes = [colony.client.get_process(pid, colony.user_prvkey) for pid in graph.processids]
    return {p.spec.nodename: p for p in processes}


def graph_state(colony: ColonyEnv, graph: Any) -> int:
    return colony.client.get_processgraph(graph.processgraphid, colony.user_prvkey).state


def nothing_to_assign(colony: ColonyEnv) -> None:
    refused(lambda: assign(colony), 404, "No process available")


# -- submit and data passing ----------------------------------------------------------------------


def test_two_step_workflow_passes_parent_output_to_child(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "gen_nums"), node(colony, "sum_nums", "gen_nums"))
    assert graph.state == wire.WAITING and len(graph.processids) == 2 and len(graph.rootprocessids) == 1
    assert graph.initiatorname == colony.username
    names = by_name(colony, graph)
    assert names["sum_nums"].waitforparents and names["sum_nums"].parents == [names["gen_nums"].processid]
    assert names["gen_nums"].children == [names["sum_nums"].processid]

    gen = assign(colony)
    assert gen.spec.nodename == "gen_nums"
    nothing_to_assign(colony)  # the child waits for its parent
    assert graph_state(colony, graph) == wire.RUNNING
    colony.client.close(gen.processid, [1, 2], colony.executor_prvkey)

    child = assign(colony)
    assert child.spec.nodename == "sum_nums" and child.input == [1, 2]
    colony.client.close(child.processid, [3], colony.executor_prvkey)
    final = colony.client.get_processgraph(graph.processgraphid, colony.user_prvkey)
    assert final.state == wire.SUCCESS
    assert final.starttime is not None and final.endtime is not None


def test_inputs_follow_the_dependency_order_and_carry_any_json(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "fetch_a"), node(colony, "fetch_b"),
                   node(colony, "merge", "fetch_a", "fetch_b"))
    first, second = assign(colony), assign(colony)
    outputs = {"fetch_a": {"source": "A", "value": 10}, "fetch_b": {"source": "B", "value": 20}}
    # close b before a: the input order still follows merge's dependency list
    for process in sorted((first, second), key=lambda p: p.spec.nodename, reverse=True):
        colony.client.close(process.processid, [outputs[process.spec.nodename]], colony.executor_prvkey)
    merge = assign(colony)
    assert merge.input == [outputs["fetch_a"], outputs["fetch_b"]]
    colony.client.close(merge.processid, [30], colony.executor_prvkey)
    assert graph_state(colony, graph) == wire.SUCCESS


def test_concurrent_parent_closes_release_the_child_exactly_once(colony: ColonyEnv) -> None:
    """Many parents closed at the same time from different executors: the fan-in child becomes
    ready (no lost resolution) and gets every output in dependency order."""
    parents = [f"p{i}" for i in range(8)]
    submit(colony, *[node(colony, p) for p in parents], node(colony, "join", *parents))
    keys = [colony.add_executor(f"worker-{i}") for i in range(8)]
    held = [assign(colony, key) for key in keys]
    barrier = threading.Barrier(len(held))
    errors: list[BaseException] = []

    def close(process: Process, key: str) -> None:
        try:
            with Colonies("127.0.0.1", colony.server.port) as own:
                barrier.wait()
                own.close(process.processid, [process.spec.nodename], key)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=close, args=(p, k)) for p, k in zip(held, keys, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    join = assign(colony)
    assert join.spec.nodename == "join" and join.input == parents


def test_roots_of_a_workflow_get_the_priority_and_env_of_their_spec(colony: ColonyEnv) -> None:
    submit(colony, node(colony, "low", priority=0), node(colony, "high", priority=5, env={"MODE": "fast"}))
    high = assign(colony)
    assert high.spec.nodename == "high" and high.spec.env == {"MODE": "fast"}
    assert high.spec.conditions.colonyname == colony.colonyname


@pytest.mark.parametrize(
    ("specs", "fragment"),
    [
        (lambda c: [node(c, "a"), node(c, "a")], "duplicate nodename <a>"),
        (lambda c: [node(c, "a"), node(c, "b", "nope")], "depends on <nope>"),
        (lambda c: [node(c, "a", "c"), node(c, "b", "a"), node(c, "c", "b")], "cycle"),
        (lambda c: [node(c, "a", "a")], "depends on itself"),
        (lambda c: [node(c, "")], "needs a nodename"),
        (lambda c: [], "at least one function spec"),
        (lambda c: [node(c, "a"), node(c, "b", priority=999999)], "functionspecs[1].priority"),
        (lambda c: [node(c, "a", conditions={"colonyname": c.colonyname})], "executortype"),
    ],
    ids=["duplicate", "unknown-dependency", "cycle", "self", "no-nodename", "empty", "priority", "no-type"],
)
def test_bad_workflows_are_refused_and_nothing_is_written(
    colony: ColonyEnv, specs: Any, fragment: str
) -> None:
    refused(lambda: submit(colony, *specs(colony)), 400, fragment)
    for state in (wire.WAITING, wire.RUNNING):
        assert colony.client.get_processgraphs(colony.colonyname, 100, colony.user_prvkey, state) == []
    assert colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey) == []


def test_only_members_submit_and_read_workflows(colony: ColonyEnv) -> None:
    from pycolonies import crypto

    stranger = crypto.generate_private_key()
    refused(lambda: submit(colony, node(colony, "a"), prvkey=stranger), 403, "not a member")
    graph = submit(colony, node(colony, "a"))
    refused(lambda: colony.client.get_processgraph(graph.processgraphid, stranger), 403)
    refused(lambda: colony.client.cancel_processgraph(graph.processgraphid, stranger), 403)
    refused(lambda: colony.client.remove_processgraph(graph.processgraphid, stranger), 403)
    refused(lambda: colony.client.get_processgraph("0" * 64, colony.user_prvkey), 404, "not found")


# -- failure propagation --------------------------------------------------------------------------


def test_a_failure_fails_pending_descendants_but_keeps_finished_work(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "a"), node(colony, "b", "a"), node(colony, "c", "b"),
                   node(colony, "side"))
    a = assign(colony)
    assert a.spec.nodename in ("a", "side")
    if a.spec.nodename == "side":
        side, a = a, assign(colony)
    else:
        side = assign(colony)
    colony.client.close(a.processid, ["ok"], colony.executor_prvkey)
    b = assign(colony)
    assert b.spec.nodename == "b"
    colony.client.fail(b.processid, ["boom"], colony.executor_prvkey)

    names = by_name(colony, graph)
    assert names["a"].state == wire.SUCCESS and names["a"].output == ["ok"]
    assert names["b"].state == wire.FAILED and names["b"].errors == ["boom"]
    assert names["c"].state == wire.FAILED
    assert "<b>" in names["c"].errors[0] and names["b"].processid in names["c"].errors[0]
    assert names["side"].state == wire.RUNNING  # an independent branch is not touched
    assert graph_state(colony, graph) == wire.FAILED
    colony.client.close(side.processid, ["done"], colony.executor_prvkey)
    assert graph_state(colony, graph) == wire.FAILED
    nothing_to_assign(colony)


def test_a_failure_reaches_every_generation_below_it(colony: ColonyEnv) -> None:
    """The cascade follows the graph down, not just one step: a -> b -> c -> d, a fails, and the
    grandchildren fail too (each naming a), so nothing is left waiting forever."""
    graph = submit(colony, node(colony, "a"), node(colony, "b", "a"), node(colony, "c", "b"),
                   node(colony, "d", "c"))
    a = assign(colony)
    assert a.spec.nodename == "a"
    colony.client.fail(a.processid, ["boom"], colony.executor_prvkey)

    names = by_name(colony, graph)
    assert names["a"].state == wire.FAILED and names["a"].errors == ["boom"]
    for below in ("b", "c", "d"):
        assert names[below].state == wire.FAILED, (below, names[below].state)
        assert len(names[below].errors) == 1, (below, names[below].errors)
        assert "<a>" in names[below].errors[0] and a.processid in names[below].errors[0], names[below].errors
    assert graph_state(colony, graph) == wire.FAILED
    nothing_to_assign(colony)


def test_an_exhausted_execution_deadline_fails_the_graph(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "slow", maxexectime=1, maxretries=0), node(colony, "after", "slow"))
    assign(colony)
    wait_until(lambda: graph_state(colony, graph) == wire.FAILED, 10, "the sweeper to fail the graph")
    after = by_name(colony, graph)["after"]
    assert after.state == wire.FAILED and "<slow>" in after.errors[0]


def test_maxwaittime_of_a_child_starts_when_it_becomes_ready(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "first"), node(colony, "second", "first", maxwaittime=1))
    first = assign(colony)
    time.sleep(1.6)  # longer than the child's maxwaittime, while it waits for its parent
    colony.client.close(first.processid, [], colony.executor_prvkey)
    second = assign(colony)
    assert second.spec.nodename == "second"
    colony.client.close(second.processid, [], colony.executor_prvkey)
    assert graph_state(colony, graph) == wire.SUCCESS


# -- add_child ------------------------------------------------------------------------------------


def test_map_adds_children_that_feed_reduce(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "map"), node(colony, "reduce", "map"))
    mapper = assign(colony)
    reduce_process = colony.client.find_process("reduce", graph.processids, colony.executor_prvkey)
    assert reduce_process is not None
    insert = True
    for i in range(5):
        child = colony.client.add_child(graph.processgraphid, mapper.processid, reduce_process.processid,
                                        node(colony, "gen_nums"), f"gen_nums_{i}", insert,
                                        colony.executor_prvkey)
        assert child["waitforparents"] and child["parents"] == [mapper.processid]
        assert child["initiatorname"] == colony.executorname
        insert = False
    nothing_to_assign(colony)  # children wait for the running map
    colony.client.close(mapper.processid, [], colony.executor_prvkey)
    for _ in range(5):
        process = assign(colony)
        assert process.spec.nodename.startswith("gen_nums_")
        colony.client.close(process.processid, [1, 2], colony.executor_prvkey)
    reducer = assign(colony)
    assert reducer.spec.nodename == "reduce" and sum(reducer.input) == 15
    assert len(reducer.parents) == 5
    colony.client.close(reducer.processid, [sum(reducer.input)], colony.executor_prvkey)
    final = colony.client.get_processgraph(graph.processgraphid, colony.user_prvkey)
    assert final.state == wire.SUCCESS and len(final.processids) == 7


def test_concurrent_add_child_calls_all_reach_the_reduce_step(colony: ColonyEnv) -> None:
    """Adds from several connections at once (they share locks) all land, in a stable order."""
    graph = submit(colony, node(colony, "map"), node(colony, "reduce", "map"))
    mapper = assign(colony)
    reduce_id = next(pid for pid in graph.processids if pid != mapper.processid)
    colony.client.add_child(graph.processgraphid, mapper.processid, reduce_id, node(colony, "first"),
                            "first", True, colony.executor_prvkey)
    errors: list[BaseException] = []

    def add(lane: int) -> None:
        try:
            with Colonies("127.0.0.1", colony.server.port) as own:
                for i in range(10):
                    own.add_child(graph.processgraphid, mapper.processid, reduce_id, node(colony, "g"),
                                  f"g{lane}_{i}", False, colony.executor_prvkey)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(lane,)) for lane in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    colony.client.close(mapper.processid, [], colony.executor_prvkey)
    for _ in range(61):
        process = assign(colony)
        colony.client.close(process.processid, [process.spec.nodename], colony.executor_prvkey)
    reducer = assign(colony)
    assert reducer.spec.nodename == "reduce" and len(reducer.input) == 61
    assert reducer.input == [colony.client.get_process(pid, colony.user_prvkey).spec.nodename
                             for pid in reducer.parents]


def test_add_child_refusals(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "map"), node(colony, "reduce", "map"))
    other = colony.add_executor("other")
    mapper = assign(colony)
    spec = node(colony, "x")
    refused(lambda: colony.client.add_child(graph.processgraphid, mapper.processid, "", spec, "x", False,
                                            other), 403, "assigned")
    loose = colony.client.submit_func_spec(node(colony, "loose"), colony.user_prvkey)
    refused(lambda: colony.client.add_child(graph.processgraphid, loose.processid, "", spec, "x", False,
                                            colony.executor_prvkey), 400, "not part of process graph")
    refused(lambda: colony.client.add_child("0" * 64, mapper.processid, "", spec, "x", False,
                                            colony.executor_prvkey), 404, "not found")
    colony.client.close(mapper.processid, [], colony.executor_prvkey)
    reducer = assign(colony)
    colony.client.close(reducer.processid, [], colony.executor_prvkey)
    assert graph_state(colony, graph) == wire.SUCCESS
    refused(lambda: colony.client.add_child(graph.processgraphid, reducer.processid, "", spec, "x", False,
                                            colony.executor_prvkey), 400, "already ended")


# -- cancellation and removal ---------------------------------------------------------------------


def test_cancelling_a_graph_is_durable(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "a"), node(colony, "b"), node(colony, "c", "a"))
    running = assign(colony)
    colony.client.cancel_processgraph(graph.processgraphid, colony.user_prvkey)
    nothing_to_assign(colony)
    refused(lambda: colony.client.close(running.processid, ["late"], colony.executor_prvkey), 400,
            "cancelled")
    names = by_name(colony, graph)
    assert {p.state for p in names.values()} == {wire.CANCELLED}
    assert colony.client.get_process(running.processid, colony.user_prvkey).state == wire.CANCELLED
    assert graph_state(colony, graph) == wire.CANCELLED
    refused(lambda: colony.client.cancel_processgraph(graph.processgraphid, colony.user_prvkey), 400,
            "already ended")


def _race_cancel_against_closes(colony: ColonyEnv, keys: list[str]) -> tuple[Any, list[str]]:
    from pycolonies import ColoniesServerError

    roots = [f"r{i}" for i in range(len(keys))]
    graph = submit(colony, *[node(colony, r) for r in roots], node(colony, "join", *roots))
    held = [assign(colony, key) for key in keys]
    barrier = threading.Barrier(len(held) + 1)
    outcomes: list[str] = []

    def close(process: Process, key: str) -> None:
        with Colonies("127.0.0.1", colony.server.port) as own:
            barrier.wait()
            try:
                own.close(process.processid, [1], key)
                outcomes.append("closed")
            except ColoniesServerError as exc:
                outcomes.append("cancelled" if exc.status == 400 and "cancelled" in exc.message
                                else f"error {exc.status}: {exc.message}")

    def cancel() -> None:
        with Colonies("127.0.0.1", colony.server.port) as own:
            barrier.wait()
            own.cancel_processgraph(graph.processgraphid, colony.user_prvkey)
            outcomes.append("cancel ok")

    threads = [threading.Thread(target=close, args=(p, k)) for p, k in zip(held, keys, strict=True)]
    threads.append(threading.Thread(target=cancel))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return graph, outcomes


def test_cancel_racing_closes_never_deadlocks(colony: ColonyEnv) -> None:
    """Closes (which release children) and a graph cancel at the same moment: every close either
    lands or is refused as cancelled, the cancel lands, and nothing fails with a server error."""
    keys = [colony.add_executor(f"racer-{i}") for i in range(6)]
    for _ in range(3):
        graph, outcomes = _race_cancel_against_closes(colony, keys)
        assert "cancel ok" in outcomes
        assert set(outcomes) <= {"closed", "cancelled", "cancel ok"}, outcomes
        assert graph_state(colony, graph) == wire.CANCELLED
        assert by_name(colony, graph)["join"].state == wire.CANCELLED


def test_cancelling_one_process(colony: ColonyEnv) -> None:
    waiting = colony.client.submit_func_spec(node(colony, "w"), colony.user_prvkey)
    colony.client.cancel_process(waiting.processid, colony.user_prvkey)
    assert colony.client.get_process(waiting.processid, colony.user_prvkey).state == wire.CANCELLED
    nothing_to_assign(colony)
    refused(lambda: colony.client.cancel_process(waiting.processid, colony.user_prvkey), 400,
            "already cancelled")

    graph = submit(colony, node(colony, "a"), node(colony, "b", "a"), node(colony, "side"))
    a = assign(colony)
    colony.client.cancel_process(a.processid, colony.user_prvkey)
    names = by_name(colony, graph)
    assert names[a.spec.nodename].state == wire.CANCELLED
    if a.spec.nodename == "a":
        assert names["b"].state == wire.CANCELLED and "<a>" in names["b"].errors[0]
    assert graph_state(colony, graph) == wire.CANCELLED


def test_cancelling_a_process_cancels_every_generation_below_it(colony: ColonyEnv) -> None:
    graph = submit(colony, node(colony, "a"), node(colony, "b", "a"), node(colony, "c", "b"))
    a = by_name(colony, graph)["a"]
    colony.client.cancel_process(a.processid, colony.user_prvkey)

    names = by_name(colony, graph)
    assert {name: p.state for name, p in names.items()} == dict.fromkeys("abc", wire.CANCELLED)
    for below in ("b", "c"):
        assert "<a>" in names[below].errors[0] and a.processid in names[below].errors[0], names[below].errors
    assert graph_state(colony, graph) == wire.CANCELLED
    nothing_to_assign(colony)


def test_list_get_layout_remove_and_statistics(colony: ColonyEnv) -> None:
    done = submit(colony, node(colony, "only"))
    run(colony, "only", [1])
    waiting = submit(colony, node(colony, "a"), node(colony, "b", "a"))
    listed = colony.client.get_processgraphs(colony.colonyname, 100, colony.user_prvkey, wire.SUCCESS)
    assert [g["processgraphid"] for g in listed] == [done.processgraphid]
    listed = colony.client.get_processgraphs(colony.colonyname, 100, colony.user_prvkey, wire.WAITING)
    assert [g["processgraphid"] for g in listed] == [waiting.processgraphid]
    assert listed[0]["nodes"] == [] and len(listed[0]["processids"]) == 2

    full = colony.client.get_processgraph(waiting.processgraphid, colony.user_prvkey)
    assert [n.type for n in full.nodes] == ["input", "output"]
    assert full.nodes[1].position.y > full.nodes[0].position.y
    assert len(full.edges) == 1 and full.edges[0].source == full.nodes[0].id

    stats = colony.client.stats(colony.colonyname, colony.user_prvkey)
    assert stats["successfulworkflows"] == 1 and stats["waitingworkflows"] == 1

    running = assign(colony)
    refused(lambda: colony.client.remove_processgraph(waiting.processgraphid, colony.user_prvkey), 400,
            "running")
    colony.client.close(running.processid, [], colony.executor_prvkey)
    colony.client.remove_processgraph(waiting.processgraphid, colony.user_prvkey)
    refused(lambda: colony.client.get_processgraph(waiting.processgraphid, colony.user_prvkey), 404)
    refused(lambda: colony.client.get_process(running.processid, colony.user_prvkey), 404)

    refused(lambda: colony.client.remove_all_processgraphs(colony.colonyname, colony.user_prvkey, -1), 403)
    colony.client.remove_all_processgraphs(colony.colonyname, colony.colony_prvkey, -1)
    assert colony.client.get_processgraphs(colony.colonyname, 100, colony.user_prvkey, wire.SUCCESS) == []
