"""``addchildrenmsg`` (our extension, SDK ``add_children``): a map step adds many children in one
request and one transaction, with ``add_child``'s rules; and the SDK's fallback to one
``add_child`` per child on a server without it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pycolonies import Colonies, wire
from pycolonies.aio import AsyncColonies
from pycolonies.errors import AccessDeniedError, BadRequestError, ColoniesServerError
from server.handlers import graphs as graph_handlers
from server.testing import ServerThread
from tests.conftest import ColonyEnv, make_colony
from tests.integration.test_workflows import assign, node, nothing_to_assign, submit


def map_step(colony: ColonyEnv) -> tuple[str, str, str]:
    """A running ``map`` of a ``map -> reduce`` graph: (graph id, map's id, reduce's id)."""
    graph = submit(colony, node(colony, "map"), node(colony, "reduce", "map"))
    mapper = assign(colony)
    reduce_id = next(pid for pid in graph.processids if pid != mapper.processid)
    return graph.processgraphid, mapper.processid, reduce_id


def test_children_added_at_once_feed_reduce(colony: ColonyEnv) -> None:
    graph_id, map_id, reduce_id = map_step(colony)
    names = [f"gen_nums_{i}" for i in range(50)]
    children = colony.client.add_children(graph_id, map_id, reduce_id, [node(colony, "gen_nums")] * 50, names,
                                          True, colony.executor_prvkey)
    assert [c["spec"]["nodename"] for c in children] == names
    assert all(c["waitforparents"] and c["parents"] == [map_id] for c in children)
    nothing_to_assign(colony)  # they wait for the running map
    colony.client.close(map_id, [], colony.executor_prvkey)
    for _ in range(50):
        child = assign(colony)
        colony.client.close(child.processid, [1, 2], colony.executor_prvkey)
    reducer = assign(colony)
    assert reducer.spec.nodename == "reduce" and sum(reducer.input) == 150 and len(reducer.parents) == 50


def test_a_refused_batch_adds_none(colony: ColonyEnv) -> None:
    graph_id, map_id, reduce_id = map_step(colony)
    good, bad = node(colony, "g"), node(colony, "g", maxexectime=-5)
    with pytest.raises(BadRequestError, match=r"specs\[1\]"):
        colony.client.add_children(graph_id, map_id, reduce_id, [good, bad], ["a", "b"], True,
                                   colony.executor_prvkey)
    other = colony.add_executor("executor-2")
    with pytest.raises(AccessDeniedError, match="only the executor the parent process is assigned to"):
        colony.client.add_children(graph_id, map_id, reduce_id, [good, good], ["a", "b"], True, other)
    with pytest.raises(ValueError, match="1 nodenames for 2 function specs"):
        colony.client.add_children(graph_id, map_id, reduce_id, [good, good], ["a"], True,
                                   colony.executor_prvkey)
    with pytest.raises(ColoniesServerError, match="specs must hold 1 to"):
        colony.client.add_children(graph_id, map_id, reduce_id, [], [], True, colony.executor_prvkey)
    graph = colony.client.get_processgraph(graph_id, colony.user_prvkey)
    assert len(graph.processids) == 2  # nothing was added


@pytest.fixture
def reference_like(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ColonyEnv]:
    """A colony on a server that, like the reference server, has no ``addchildrenmsg``."""
    monkeypatch.delitem(graph_handlers.HANDLERS, "addchildrenmsg")
    with ServerThread(database) as server, Colonies(server.host, server.port) as client:
        yield make_colony(client, server)


def test_the_sdk_falls_back_to_one_add_child_each(reference_like: ColonyEnv) -> None:
    colony = reference_like
    graph_id, map_id, reduce_id = map_step(colony)
    children = colony.client.add_children(graph_id, map_id, reduce_id, [node(colony, "g")] * 3,
                                          ["a", "b", "c"], True, colony.executor_prvkey)

    async def one_more() -> list[dict]:
        async with AsyncColonies(colony.server.host, colony.server.port) as client:
            return await client.add_children(graph_id, map_id, reduce_id, [node(colony, "g")], ["d"], False,
                                             colony.executor_prvkey)

    children += asyncio.run(one_more())
    assert [c["spec"]["nodename"] for c in children] == ["a", "b", "c", "d"]
    graph = colony.client.get_processgraph(graph_id, colony.user_prvkey)
    assert len(graph.processids) == 6 and graph.state == wire.RUNNING
