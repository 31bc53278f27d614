"""Limits on what a client without a key can make the server hold (docs/limits.md).

Each test starts a real server with lowered limits and drives it with raw sockets, as an
attacker would: bodies held open, bodies that stall, headers sent a byte at a time, idle
connections and websockets, more connections than a peer may hold. Each asserts the server's own
bookkeeping (bytes in flight, open connections, open websockets) or that the server closed the
socket, and ends by checking the server still serves signed requests.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import time
from typing import Any

from pycolonies import Colonies, wire
from pycolonies.websocket import WebSocket
from server.app import PUBSUB, SERVICES
from server.limits import RequestBodies
from server.realtime.endpoint import PubSubEndpoint
from server.testing import ServerThread
from tests.conftest import make_colony
from tests.support import wait_until

MIB = 1024 * 1024
WAIT_S = 10.0  # upper bound for what the server should do within a fraction of it
LOOPBACK = "127.0.0.1"


# -- raw HTTP ----------------------------------------------------------------------------------------


def connect(server: ServerThread) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=WAIT_S)


def start_post(server: ServerThread, content_length: int, send: int) -> socket.socket:
    """POST /api declaring ``content_length`` body bytes and sending only the first ``send``."""
    sock = connect(server)
    head = (f"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\n\r\n")
    sock.sendall(head.encode() + b"x" * send)
    return sock


def start_chunked_post(server: ServerThread) -> socket.socket:
    sock = connect(server)
    sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    return sock


def send_chunk(sock: socket.socket, data: bytes) -> None:
    sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response: (status, lower-cased headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without a reply (got {data!r})"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of a reply"
        body += chunk
    return int(lines[0].split(" ", 2)[1]), headers, body[:length]


def read_error(sock: socket.socket, status: int, *fragments: str) -> str:
    """The next reply is a wire error envelope with ``status`` naming ``fragments``; its message."""
    code, headers, body = read_response(sock)
    assert code == status, (code, body)
    assert headers["content-type"].startswith("application/json")
    envelope = json.loads(body)
    assert envelope["error"] is True and envelope["payloadtype"] == "error", envelope
    payload = wire.decode_payload(envelope["payload"])
    assert payload["status"] == status, payload
    for fragment in fragments:
        assert fragment in payload["message"], payload["message"]
    return payload["message"]


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes the connection (reading and dropping anything it still sends)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def has_reply(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def bodies_of(server: ServerThread) -> RequestBodies:
    return server.app[SERVICES].bodies


def pubsub_of(server: ServerThread) -> PubSubEndpoint:
    return server.app[PUBSUB]


def still_serves(server: ServerThread) -> None:
    """A normal client still gets signed requests served (colony, executor and user added)."""
    with Colonies(server.host, server.port) as client:
        make_colony(client, server, "after")
        assert [colony["name"] for colony in client.list_colonies(server.server_prvkey)] == ["after"]


# -- request bodies ----------------------------------------------------------------------------------


def test_bodies_past_the_in_flight_cap_are_refused_unread(database: str) -> None:
    limits = {"max_body_bytes": MIB, "max_body_bytes_in_flight": 3 * MIB,
              "max_body_bytes_in_flight_per_peer": 0}
    with ServerThread(database, overrides=limits) as server:
        bodies = bodies_of(server)
        held = []
        for number in range(1, 4):  # three bodies of 1 MiB, each missing all but its first 64 KiB
            held.append(start_post(server, MIB, 64 * 1024))
            wait_until(lambda n=number: bodies.bytes_in_flight == n * MIB, WAIT_S, f"{number} MiB reserved")
        refused = [start_post(server, MIB, 64 * 1024) for _ in range(5)]
        for sock in refused:
            read_error(sock, 503, "Server busy", "COLONIES_MAX_BODY_BYTES_IN_FLIGHT", str(3 * MIB))
        assert bodies.bytes_in_flight == 3 * MIB  # nothing was taken on past the cap
        assert not any(has_reply(sock) for sock in held)  # those are still being read
        for sock in held + refused:
            sock.close()
        wait_until(lambda: bodies.bytes_in_flight == 0, WAIT_S, "the reservations to be released")
        still_serves(server)


def test_a_chunked_body_counts_as_it_arrives_against_the_peer_share(database: str) -> None:
    limits = {"max_body_bytes": MIB, "max_body_bytes_in_flight": 4 * MIB,
              "max_body_bytes_in_flight_per_peer": MIB}
    with ServerThread(database, overrides=limits) as server:
        budget = bodies_of(server).in_flight
        first = start_chunked_post(server)
        send_chunk(first, b"x" * 700 * 1024)
        wait_until(lambda: budget.held_by(LOOPBACK) == 700 * 1024, WAIT_S, "the first body's bytes counted")
        second = start_chunked_post(server)
        send_chunk(second, b"y" * 700 * 1024)  # together past the peer's 1 MiB
        read_error(second, 429, f"from {LOOPBACK}", "COLONIES_MAX_BODY_BYTES_IN_FLIGHT_PER_PEER")
        assert budget.held_by(LOOPBACK) == 700 * 1024
        first.sendall(b"0\r\n\r\n")  # the first body ends and is parsed (it is no envelope)
        read_error(first, 400, "not a valid RPC envelope")
        wait_until(lambda: budget.total == 0, WAIT_S, "the reservations to be released")
        first.close()
        second.close()
        still_serves(server)


def test_a_stalled_body_gets_408_and_its_connection_is_closed(database: str) -> None:
    with ServerThread(database, overrides={"body_timeout_s": 0.5, "drain_timeout_s": 0.2}) as server:
        sock = start_post(server, 1000, 10)
        read_error(sock, 408, "COLONIES_BODY_TIMEOUT", "10 bytes arrived of 1000")
        assert closed_by_server(sock)
        wait_until(lambda: bodies_of(server).bytes_in_flight == 0, WAIT_S, "the reservation to be released")
        still_serves(server)


# -- connections -------------------------------------------------------------------------------------


def test_slow_and_silent_headers_are_cut_off(database: str) -> None:
    with ServerThread(database, overrides={"header_timeout_s": 0.5}) as server:
        silent = [connect(server) for _ in range(10)]
        dripping = [connect(server) for _ in range(10)]
        for sock in dripping:
            sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\n")
        received: dict[socket.socket, bytes] = {sock: b"" for sock in silent + dripping}
        open_ = set(received)
        deadline = time.monotonic() + WAIT_S
        while open_ and time.monotonic() < deadline:  # keep dripping a byte until the server hangs up
            for sock in [s for s in dripping if s in open_]:
                try:
                    sock.send(b"X")
                except OSError:
                    open_.discard(sock)
            readable, _, _ = select.select(list(open_), [], [], 0.1)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                received[sock] += data
                if not data:
                    open_.discard(sock)
        assert not open_, f"{len(open_)} of {len(received)} slow connections are still open"
        assert all(received[sock] == b"" for sock in silent)  # nothing asked, nothing answered
        for sock in dripping:
            head = received[sock].split(b"\r\n", 1)[0]
            assert head in (b"HTTP/1.1 408 Request Timeout", b""), received[sock]
        assert any(received[sock].startswith(b"HTTP/1.1 408") for sock in dripping)
        assert b"COLONIES_HEADER_TIMEOUT" in base64.b64decode(
            json.loads(next(v for v in received.values() if v).split(b"\r\n\r\n", 1)[1])["payload"])
        wait_until(lambda: server.connections.open_connections == 0, WAIT_S, "the connections to be released")
        for sock in received:
            sock.close()
        still_serves(server)


def test_too_many_or_too_long_headers_are_refused_with_400(database: str) -> None:
    with ServerThread(database, overrides={"max_headers": 12, "max_header_field_bytes": 256}) as server:
        many = connect(server)
        many.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(16)))
        status, _, body = read_response(many)
        assert status == 400 and b"Too many headers" in body, body
        long = connect(server)
        long.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\nX-Long: " + b"y" * 300 + b"\r\n")
        status, _, body = read_response(long)
        assert status == 400 and b"256" in body, body
        assert closed_by_server(many) and closed_by_server(long)
        many.close()
        long.close()
        still_serves(server)


def test_an_idle_keep_alive_connection_is_closed(database: str) -> None:
    with ServerThread(database, overrides={"keepalive_timeout_s": 0.5}) as server:
        sock = connect(server)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock)
        assert status == 200 and headers.get("connection", "").lower() != "close"
        assert closed_by_server(sock)
        wait_until(lambda: server.connections.open_connections == 0, WAIT_S, "the connection to be released")
        sock.close()
        still_serves(server)


def test_connections_per_peer_are_capped(database: str) -> None:
    with ServerThread(database, overrides={"max_connections_per_peer": 4}) as server:
        held = [connect(server) for _ in range(4)]
        wait_until(lambda: server.connections.open_connections == 4, WAIT_S, "four connections admitted")
        extra = connect(server)
        read_error(extra, 429, f"from {LOOPBACK}", "COLONIES_MAX_CONNECTIONS_PER_PEER")
        assert closed_by_server(extra)
        assert server.connections.open_connections == 4
        held.pop().close()
        wait_until(lambda: server.connections.open_connections == 3, WAIT_S, "a connection to be released")
        again = connect(server)  # room again for one more
        again.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_response(again)[0] == 200
        for sock in [*held, extra, again]:
            sock.close()
        wait_until(lambda: server.connections.open_connections == 0, WAIT_S, "every connection released")
        still_serves(server)


def test_connections_past_the_total_cap_are_told_the_server_is_busy(database: str) -> None:
    with ServerThread(database, overrides={"max_connections": 3}) as server:
        held = [connect(server) for _ in range(3)]
        wait_until(lambda: server.connections.open_connections == 3, WAIT_S, "three connections admitted")
        extra = connect(server)
        read_error(extra, 503, "Server busy", "COLONIES_MAX_CONNECTIONS")
        for sock in [*held, extra]:
            sock.close()
        wait_until(lambda: server.connections.open_connections == 0, WAIT_S, "every connection released")
        still_serves(server)


# -- websockets --------------------------------------------------------------------------------------


def ws_connect(server: ServerThread) -> WebSocket:
    return WebSocket.connect(f"ws://{server.host}:{server.port}/pubsub", timeout=WAIT_S)


def ws_receive(ws: WebSocket) -> dict[str, Any] | None:
    text = ws.receive_text(WAIT_S)
    if text is None:
        return None
    envelope = json.loads(text)
    return {**envelope, "payload": wire.decode_payload(envelope["payload"])}


def test_a_websocket_without_a_subscription_is_closed_and_a_subscribed_one_is_not(database: str) -> None:
    with (ServerThread(database, overrides={"pubsub_subscribe_timeout_s": 0.5}) as server,
          Colonies(server.host, server.port) as client):
        env = make_colony(client, server)
        spec = {"funcname": "echo", "args": [], "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
                "conditions": {"colonyname": env.colonyname, "executortype": env.executortype}}
        process = env.client.submit_func_spec(spec, env.user_prvkey)
        endpoint = pubsub_of(server)
        with ws_connect(server) as subscribed:
            subscribed.send_text(json.dumps(wire.signed_request(
                {"msgtype": "subscribeprocessmsg", "processid": process.processid, "executortype": "",
                 "state": wire.RUNNING, "timeout": 30, "colonyname": ""}, env.user_prvkey)))
            wait_until(lambda: endpoint.listener.watching == 1, WAIT_S, "the subscription registered")
            with ws_connect(server) as idle:  # opened later, so its deadline passes later
                reply = ws_receive(idle)
                assert reply is not None and reply["error"] is True, reply
                assert reply["payload"]["status"] == 408
                assert "COLONIES_PUBSUB_SUBSCRIBE_TIMEOUT" in reply["payload"]["message"]
                assert ws_receive(idle) is None
            # The subscribed socket outlived the same deadline: it still gets its push.
            env.client.assign(env.colonyname, 5, env.executor_prvkey)
            pushed = ws_receive(subscribed)
            assert pushed is not None and pushed["payload"]["processid"] == process.processid
            assert pushed["payload"]["state"] == wire.RUNNING
        wait_until(lambda: endpoint.open_sockets == 0, WAIT_S, "the sockets to be released")


def test_websockets_per_peer_are_capped(database: str) -> None:
    with ServerThread(database, overrides={"max_websockets_per_peer": 2}) as server:
        endpoint = pubsub_of(server)
        first, second = ws_connect(server), ws_connect(server)
        wait_until(lambda: endpoint.open_sockets == 2, WAIT_S, "two websockets open")
        third = connect(server)
        key = base64.b64encode(os.urandom(16)).decode()
        third.sendall((f"GET /pubsub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        read_error(third, 429, f"from {LOOPBACK}", "COLONIES_MAX_WEBSOCKETS_PER_PEER")
        assert endpoint.sockets.total == 2
        first.close()
        wait_until(lambda: endpoint.sockets.total == 1, WAIT_S, "a websocket to be released")
        with ws_connect(server):  # room again for one more
            wait_until(lambda: endpoint.sockets.total == 2, WAIT_S, "the new websocket counted")
        second.close()
        third.close()
        wait_until(lambda: endpoint.sockets.total == 0, WAIT_S, "every websocket released")
        still_serves(server)
