"""``closeassignmsg`` (our extension): close a process and take the next in one round trip; and the
executor base using it, falling back to separate calls on a server without it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from executors.config import ExecutorConfig
from pycolonies import Colonies, wire
from pycolonies.errors import AccessDeniedError, BadRequestError, unsupported
from server.handlers import processes as process_handlers
from server.testing import ServerThread
from tests.conftest import ColonyEnv, make_colony
from tests.executors.harness import wait_state
from tests.executors.toy_executor import ToyExecutor
from tests.support import wait_until


def submit(colony: ColonyEnv, *args: Any) -> str:
    spec = {"funcname": "echo", "args": list(args), "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype}}
    return colony.client.submit_func_spec(spec, colony.user_prvkey).processid


def test_closes_and_assigns_the_next_ready_process(colony: ColonyEnv) -> None:
    client, key = colony.client, colony.executor_prvkey
    first, second = submit(colony, 1), submit(colony, 2)
    running = client.assign(colony.colonyname, 10, key)
    assert running.processid == first
    taken = client.close_and_assign(first, ["one"], colony.colonyname, key)
    assert taken is not None and taken.processid == second and taken.state == wire.RUNNING
    assert client.get_process(first, key).output == ["one"]
    assert client.close_and_assign(second, [], colony.colonyname, key) is None  # nothing left
    assert client.get_process(second, key).state == wire.SUCCESS


def test_a_refused_close_assigns_nothing(colony: ColonyEnv) -> None:
    client = colony.client
    ready = submit(colony, "stays")
    with pytest.raises(AccessDeniedError, match="process is not assigned"):
        client.close_and_assign(ready, [], colony.colonyname, colony.executor_prvkey)
    assert client.get_process(ready, colony.user_prvkey).state == wire.WAITING
    other = colony.add_executor("executor-2")
    client.assign(colony.colonyname, 10, other)
    with pytest.raises(AccessDeniedError, match="assigned to another executor"):
        client.close_and_assign(ready, [], colony.colonyname, colony.executor_prvkey)
    with pytest.raises(BadRequestError, match="colonyname is required"):
        client.close_and_assign(ready, [], "", other)


def test_with_a_timeout_it_waits_for_the_next(colony: ColonyEnv) -> None:
    client, key = colony.client, colony.executor_prvkey
    first = submit(colony, 1)
    client.assign(colony.colonyname, 10, key)
    answer: dict[str, Any] = {}

    def close() -> None:
        with Colonies(colony.server.host, colony.server.port) as own:
            answer["next"] = own.close_and_assign(first, [], colony.colonyname, key, timeout=20)

    closer = threading.Thread(target=close)
    closer.start()
    wait_until(lambda: client.get_process(first, key).state == wire.SUCCESS, 10, "the close")
    later = submit(colony, 2)
    closer.join(20)
    assert answer["next"] is not None and answer["next"].processid == later


def counted(calls: list[str]) -> Callable[..., Any]:
    handler = process_handlers.HANDLERS["closeassignmsg"]

    async def counting(call: Any) -> Any:
        calls.append(call.msg.str("processid"))
        return await handler(call)

    counting.records_replay = True  # type: ignore[attr-defined]
    return counting


@pytest.fixture(params=["extension", "reference"])
def toy_colony(request: pytest.FixtureRequest, database: str, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[tuple[ColonyEnv, list[str], str]]:
    """A colony on a server with ``closeassignmsg`` (counting its calls), or without it as the
    reference server is."""
    calls: list[str] = []
    if request.param == "extension":
        monkeypatch.setitem(process_handlers.HANDLERS, "closeassignmsg", counted(calls))
    else:
        monkeypatch.delitem(process_handlers.HANDLERS, "closeassignmsg")
    with ServerThread(database) as server, Colonies(server.host, server.port) as client:
        yield make_colony(client, server), calls, request.param


def test_the_executor_takes_the_next_process_with_the_close_or_falls_back(
    toy_colony: tuple[ColonyEnv, list[str], str],
) -> None:
    colony, calls, server_kind = toy_colony
    config = ExecutorConfig(host=colony.server.host, port=colony.server.port, colonyname=colony.colonyname,
                            colony_prvkey=colony.colony_prvkey, executortype="toy", heartbeat_interval=0)
    spec = {"funcname": "echo", "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": colony.colonyname, "executortype": "toy"}}
    processids = [colony.client.submit_func_spec({**spec, "args": [n]}, colony.user_prvkey).processid
                  for n in range(5)]
    toy = ToyExecutor(config, announce=lambda line: None)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(toy.run(),), daemon=True)
    thread.start()
    try:
        done = [wait_state(colony.client, pid, colony.user_prvkey) for pid in processids]
    finally:
        loop.call_soon_threadsafe(toy.stop)
        thread.join(30)
        loop.close()
    assert [(p.state, p.output) for p in done] == [(wire.SUCCESS, [n]) for n in range(5)]
    if server_kind == "extension":
        assert len(calls) == 5  # every close went with an assign
    else:
        assert calls == []


def test_unsupported_tells_a_reference_servers_refusal() -> None:
    assert unsupported(AccessDeniedError("invalid rpcMsg.PayloadType: closeassignmsg", 403))
    assert not unsupported(AccessDeniedError("Access denied", 403))
    assert not unsupported(BadRequestError("invalid rpcMsg.PayloadType: x", 400))
