"""The sync client against a loopback stand-in for /api."""

from __future__ import annotations

import socket
import threading

import pytest

from pycolonies import (
    AccessDeniedError,
    Colonies,
    ColoniesConnectionError,
    ColoniesServerError,
    NotFoundError,
    Process,
)

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
KEY_ID = "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac"


def test_constructor_attributes() -> None:
    client = Colonies("example.org", "50080", tls=True)
    assert client.url == "https://example.org:50080/api"
    assert (client.host, client.port, client.tls) == ("example.org", 50080, True)
    assert Colonies("localhost", 1).url == "http://localhost:1/api"


def test_signed_round_trip(stub_server) -> None:
    with Colonies(stub_server.host, stub_server.port) as client:
        reply = client.get_colony("dev", KEY)
    assert reply == {"echo": {"msgtype": "getcolonymsg", "colonyname": "dev"}}
    (request,) = stub_server.requests
    assert request.payloadtype == "getcolonymsg"
    assert request.signer == KEY_ID
    assert request.content_type == "application/json"


def test_unsigned_version_call(stub_server) -> None:
    stub_server.reply = lambda msg: (200, {"buildversion": "1.2.3", "buildtime": "now"}, False)
    with Colonies(stub_server.host, stub_server.port) as client:
        assert client.server_version() == {"buildversion": "1.2.3", "buildtime": "now"}
    assert stub_server.requests[0].signer is None


def test_process_reply_is_parsed(stub_server) -> None:
    stub_server.reply = lambda msg: (200, {"processid": msg["processid"], "out": [1.5]}, False)
    with Colonies(stub_server.host, stub_server.port) as client:
        process = client.get_process("p1", KEY)
    assert isinstance(process, Process)
    assert (process.processid, process.output) == ("p1", [1.5])


def test_msgpack_transport(stub_server) -> None:
    with Colonies(stub_server.host, stub_server.port, use_msgpack=True) as client:
        reply = client.set_output("p", [{"a": 1}, 2.5], KEY)
    assert reply == {"echo": {"msgtype": "setoutputmsg", "processid": "p", "out": [{"a": 1}, 2.5]}}
    assert stub_server.requests[0].content_type == "application/msgpack"
    assert stub_server.requests[0].signer == KEY_ID


@pytest.mark.parametrize(
    ("status", "cls"), [(404, NotFoundError), (403, AccessDeniedError), (500, ColoniesServerError)]
)
def test_error_envelope_raises_typed_error(stub_server, status: int, cls: type) -> None:
    stub_server.reply = lambda msg: (status, {"status": status, "message": "No process available"}, True)
    with Colonies(stub_server.host, stub_server.port) as client, pytest.raises(cls) as info:
        client.assign("dev", 1, KEY)
    assert isinstance(info.value, ColoniesConnectionError)
    assert info.value.status == status
    assert str(info.value) == "No process available"


def test_keep_alive_reuses_one_connection(stub_server) -> None:
    with Colonies(stub_server.host, stub_server.port) as client:
        for _ in range(3):
            client.get_colony("dev", KEY)
    assert [r.connection for r in stub_server.requests] == [1, 1, 1]


def test_each_thread_gets_its_own_connection(stub_server) -> None:
    client = Colonies(stub_server.host, stub_server.port)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                client.get_colony("dev", KEY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert errors == []
    assert len(stub_server.requests) == 12
    assert len({r.connection for r in stub_server.requests}) == 4


def test_stale_keep_alive_connection_is_resent_once(stub_server) -> None:
    stub_server.close_after_reply = True  # the server drops every idle connection
    with Colonies(stub_server.host, stub_server.port) as client:
        assert client.get_colony("a", KEY)["echo"]["colonyname"] == "a"
        assert client.get_colony("b", KEY)["echo"]["colonyname"] == "b"
        assert client.get_colony("c", KEY)["echo"]["colonyname"] == "c"
    # each request handled exactly once, each on a new connection
    assert [r.msg["colonyname"] for r in stub_server.requests] == ["a", "b", "c"]
    assert [r.connection for r in stub_server.requests] == [1, 2, 3]


def test_without_retries_a_cut_call_on_a_fresh_connection_is_sent_once(stub_server) -> None:
    stub_server.drop_without_reply = True
    with (
        Colonies(stub_server.host, stub_server.port, retry_for=0) as client,
        pytest.raises(ColoniesConnectionError) as info,
    ):
        client.get_colony("dev", KEY)
    assert not isinstance(info.value, ColoniesServerError)
    assert len(stub_server.requests) == 1
    assert f"{stub_server.host}:{stub_server.port}" in str(info.value)


def test_without_retries_the_stale_connection_resend_happens_at_most_once(stub_server) -> None:
    with Colonies(stub_server.host, stub_server.port, retry_for=0) as client:
        client.get_colony("warm", KEY)  # leaves a reused keep-alive connection
        stub_server.drop_without_reply = True
        with pytest.raises(ColoniesConnectionError):
            client.get_colony("dev", KEY)
    assert [r.msg["colonyname"] for r in stub_server.requests] == ["warm", "dev", "dev"]


def test_non_envelope_reply(stub_server) -> None:
    stub_server.raw_body = b"<html>bad gateway</html>"
    with (
        Colonies(stub_server.host, stub_server.port, retry_for=0) as client,
        pytest.raises(ColoniesConnectionError) as info,
    ):
        client.get_colony("dev", KEY)
    assert info.value.status == 502
    assert "bad gateway" in str(info.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_names_host_and_port() -> None:
    port = _free_port()
    client = Colonies("127.0.0.1", port)
    with pytest.raises(ColoniesConnectionError) as info:
        client.list_colonies(KEY)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert info.value.status is None


def test_timeout_raises_connection_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the TCP connection but never answers
        port = listener.getsockname()[1]
        client = Colonies("127.0.0.1", port, timeout=0.2)
        with pytest.raises(ColoniesConnectionError, match="timed out"):
            client.get_colony("dev", KEY)
        client.close()


def test_close_releases_connections_and_client_stays_usable(stub_server) -> None:
    client = Colonies(stub_server.host, stub_server.port)
    client.get_colony("dev", KEY)
    client.close()
    client.get_colony("dev", KEY)  # reconnects
    client.close()
    assert [r.connection for r in stub_server.requests] == [1, 2]


def test_find_process(stub_server) -> None:
    names = {"p1": "gen_nums", "p2": "reduce", "p3": "reduce"}
    stub_server.reply = lambda msg: (
        200,
        {"processid": msg["processid"], "spec": {"nodename": names[msg["processid"]]}},
        False,
    )
    with Colonies(stub_server.host, stub_server.port) as client:
        found = client.find_process("reduce", ["p1", "p2", "p3"], KEY)
        assert found is not None and found.processid == "p2"
        assert client.find_process("map", ["p1"], KEY) is None
