"""``subscribeprocessgraphmsg`` (ours): every state of a workflow's processes, then each change,
for the dashboard's live DAG."""

from __future__ import annotations

from typing import Any

from pycolonies import crypto, wire
from tests.conftest import ColonyEnv
from tests.integration.test_pubsub import connect, expect_error, receive, send, submit, wait_idle


def workflow(env: ColonyEnv) -> Any:
    def step(name: str, *parents: str) -> dict[str, Any]:
        return {"nodename": name, "funcname": "echo", "maxexectime": -1, "maxretries": 0,
                "conditions": {"colonyname": env.colonyname, "executortype": env.executortype,
                               "dependencies": list(parents)}}
    spec = {"colonyname": env.colonyname, "functionspecs": [step("a"), step("b", "a"), step("c", "a")]}
    return env.client.submit_workflow(spec, env.user_prvkey)


def subscribe(graph_id: str, timeout: float = 10) -> dict[str, Any]:
    return {"msgtype": "subscribeprocessgraphmsg", "processgraphid": graph_id, "timeout": timeout}


def states(reply: dict[str, Any] | None) -> dict[str, int]:
    assert reply is not None and reply["error"] is False, reply
    assert reply["payloadtype"] == "subscribeprocessgraphmsg"
    return reply["payload"]["states"]


def test_first_every_state_then_each_change(colony: ColonyEnv) -> None:
    graph = workflow(colony)
    other_key = colony.add_executor("other-executor", "other")
    ws = connect(colony.server)
    try:
        send(ws, subscribe(graph.processgraphid), colony.user_prvkey)
        first = states(receive(ws))
        assert sorted(first) == sorted(graph.processids)
        assert set(first.values()) == {wire.WAITING}
        # A process outside the graph comes and goes; nothing is sent for it, so the next frame
        # is the graph's root starting.
        outside = submit(colony, "other")
        colony.client.close(colony.client.assign(colony.colonyname, 10, other_key).processid, [], other_key)
        root = colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
        assert root.processgraphid == graph.processgraphid and outside.processid not in first
        assert states(receive(ws)) == {root.processid: wire.RUNNING}
        colony.client.close(root.processid, ["x"], colony.executor_prvkey)
        ended = states(receive(ws))  # with the children it released (ready, still WAITING)
        assert ended.pop(root.processid) == wire.SUCCESS
        assert set(ended) <= set(first) - {root.processid} and set(ended.values()) <= {wire.WAITING}
    finally:
        ws.close()
    wait_idle(colony.server)


def test_a_child_added_later_is_followed(colony: ColonyEnv) -> None:
    graph = workflow(colony)
    ws = connect(colony.server)
    try:
        send(ws, subscribe(graph.processgraphid), colony.user_prvkey)
        states(receive(ws))
        root = colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
        assert states(receive(ws)) == {root.processid: wire.RUNNING}
        child = colony.client.add_child(graph.processgraphid, root.processid, "",
                                        {"nodename": "d", "funcname": "echo", "conditions": {
                                            "colonyname": colony.colonyname,
                                            "executortype": colony.executortype}},
                                        "d", False, colony.executor_prvkey)
        # The child waits for its parent; it is sent once it is ready to run.
        colony.client.close(root.processid, [], colony.executor_prvkey)
        changed = states(receive(ws))
        assert changed[root.processid] == wire.SUCCESS and changed[child["processid"]] == wire.WAITING
    finally:
        ws.close()


def test_only_members_of_the_graphs_colony(colony: ColonyEnv) -> None:
    graph = workflow(colony)
    ws = connect(colony.server)
    send(ws, subscribe(graph.processgraphid), crypto.generate_private_key())
    expect_error(ws, 403, "not a member")


def test_an_unknown_graph_or_a_bad_id(colony: ColonyEnv) -> None:
    ws = connect(colony.server)
    send(ws, subscribe("a" * 64), colony.user_prvkey)
    expect_error(ws, 404, "not found")
    ws = connect(colony.server)
    send(ws, subscribe("nonsense"), colony.user_prvkey)
    expect_error(ws, 400, "processgraphid")
