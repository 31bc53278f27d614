"""The asyncio client against a loopback stand-in for /api."""

from __future__ import annotations

import socket

import pytest

from pycolonies import (
    AsyncColonies,
    ColoniesConnectionError,
    ColoniesServerError,
    NotFoundError,
    Process,
    ProcessGraph,
)

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
KEY_ID = "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac"


async def test_signed_round_trip(stub_server) -> None:
    async with AsyncColonies(stub_server.host, stub_server.port) as client:
        assert client.url == f"http://{stub_server.host}:{stub_server.port}/api"
        reply = await client.get_colony("dev", KEY)
    assert reply == {"echo": {"msgtype": "getcolonymsg", "colonyname": "dev"}}
    assert stub_server.requests[0].signer == KEY_ID


async def test_typed_replies(stub_server) -> None:
    def reply(msg):
        if msg["msgtype"] == "getprocessmsg":
            return 200, {"processid": msg["processid"], "in": [{"x": 1}]}, False
        if msg["msgtype"] == "getprocessgraphmsg":
            return 200, {"processgraphid": msg["processgraphid"], "processids": ["a"]}, False
        return 200, None, False

    stub_server.reply = reply
    async with AsyncColonies(stub_server.host, stub_server.port) as client:
        process = await client.get_process("p1", KEY)
        graph = await client.get_processgraph("g1", KEY)
        executors = await client.list_executors("dev", KEY)
    assert isinstance(process, Process) and process.input == [{"x": 1}]
    assert isinstance(graph, ProcessGraph) and graph.processids == ["a"]
    assert executors == []


async def test_msgpack_transport(stub_server) -> None:
    async with AsyncColonies(stub_server.host, stub_server.port, use_msgpack=True) as client:
        reply = await client.add_log("p", "line\n", KEY)
    assert reply == {"echo": {"msgtype": "addlogmsg", "processid": "p", "message": "line\n"}}
    assert stub_server.requests[0].content_type == "application/msgpack"


async def test_error_envelope_raises_typed_error(stub_server) -> None:
    stub_server.reply = lambda msg: (
        404,
        {"status": 404, "message": "No process available for assignment"},
        True,
    )
    async with AsyncColonies(stub_server.host, stub_server.port) as client:
        with pytest.raises(NotFoundError) as info:
            await client.assign("dev", 1, KEY)
    assert isinstance(info.value, ColoniesConnectionError)
    assert info.value.status == 404
    assert str(info.value) == "No process available for assignment"


async def test_close_rpc_and_close_transport(stub_server) -> None:
    client = AsyncColonies(stub_server.host, stub_server.port)
    reply = await client.close("p", ["done"], KEY)
    assert reply["echo"] == {"msgtype": "closesuccessfulmsg", "processid": "p", "out": ["done"]}
    await client.close()
    assert client._session is None
    await client.close()  # idempotent


async def test_keep_alive_and_stale_connection_resend(stub_server) -> None:
    async with AsyncColonies(stub_server.host, stub_server.port) as client:
        for name in "ab":
            await client.get_colony(name, KEY)
        assert [r.connection for r in stub_server.requests] == [1, 1]
        stub_server.close_after_reply = True
        for name in "cde":
            assert (await client.get_colony(name, KEY))["echo"]["colonyname"] == name
    assert [r.msg["colonyname"] for r in stub_server.requests] == list("abcde")


async def test_without_retries_a_cut_call_on_a_fresh_connection_is_sent_once(stub_server) -> None:
    stub_server.drop_without_reply = True
    async with AsyncColonies(stub_server.host, stub_server.port, retry_for=0) as client:
        with pytest.raises(ColoniesConnectionError) as info:
            await client.get_colony("dev", KEY)
    assert not isinstance(info.value, ColoniesServerError)
    assert len(stub_server.requests) == 1


async def test_unreachable_server_names_host_and_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AsyncColonies("127.0.0.1", port) as client:
        with pytest.raises(ColoniesConnectionError) as info:
            await client.server_version()
    assert f"127.0.0.1:{port}" in str(info.value)


async def test_find_process(stub_server) -> None:
    names = {"p1": "map", "p2": "reduce"}
    stub_server.reply = lambda msg: (
        200,
        {"processid": msg["processid"], "spec": {"nodename": names[msg["processid"]]}},
        False,
    )
    async with AsyncColonies(stub_server.host, stub_server.port) as client:
        found = await client.find_process("reduce", ["p1", "p2"], KEY)
        missing = await client.find_process("gen", ["p1"], KEY)
    assert found is not None and found.processid == "p2"
    assert missing is None


async def test_without_retries_the_stale_connection_resend_happens_at_most_once(stub_server) -> None:
    async with AsyncColonies(stub_server.host, stub_server.port, retry_for=0) as client:
        await client.get_colony("warm", KEY)  # leaves a pooled keep-alive connection
        stub_server.drop_without_reply = True
        with pytest.raises(ColoniesConnectionError):
            await client.get_colony("dev", KEY)
    assert [r.msg["colonyname"] for r in stub_server.requests] == ["warm", "dev", "dev"]
