"""The SDK's standard-library websocket client against aiohttp's websocket server (no database)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import WSMsgType, web

from pycolonies.websocket import WebSocket, WebSocketError
from server.embedded import free_port


async def _echo(request: web.Request) -> web.WebSocketResponse:
    """Echo each text message; ``ping`` is answered after a ping, ``close`` closes with 4000."""
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    async for frame in ws:
        if frame.type is not WSMsgType.TEXT:
            continue
        if frame.data == "close":
            await ws.close(code=4000)
        elif frame.data == "ping":
            await ws.ping(b"are you there")
            await ws.send_str("after ping")
        else:
            await ws.send_str(frame.data)
    return ws


@pytest.fixture
def ws_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/ws", _echo)
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536, 200_000])
def test_text_messages_of_every_length_encoding(ws_url: str, size: int) -> None:
    text = ("héllo-" * (size // 6 + 1))[:size]
    with WebSocket.connect(ws_url, timeout=5) as ws:
        ws.send_text(text)
        assert ws.receive_text(5) == text


def test_pings_are_answered_and_skipped(ws_url: str) -> None:
    with WebSocket.connect(ws_url, timeout=5) as ws:
        ws.send_text("ping")
        assert ws.receive_text(5) == "after ping"
        ws.send_text("still open")
        assert ws.receive_text(5) == "still open"


def test_server_close_ends_receiving(ws_url: str) -> None:
    with WebSocket.connect(ws_url, timeout=5) as ws:
        ws.send_text("close")
        assert ws.receive_text(5) is None
        assert ws.receive_text(5) is None
        with pytest.raises(WebSocketError):
            ws.send_text("too late")


def test_receive_times_out(ws_url: str) -> None:
    with WebSocket.connect(ws_url, timeout=5) as ws, pytest.raises(TimeoutError):
        ws.receive_text(0.2)


def test_a_plain_http_endpoint_refuses_the_upgrade(ws_url: str) -> None:
    with pytest.raises(WebSocketError, match="refused the upgrade"):
        WebSocket.connect(ws_url.replace("/ws", "/nothing"), timeout=5)


def test_fragmented_message_with_a_ping_in_between() -> None:
    """aiohttp never fragments, so a raw server sends "ab" + ping + "c", then a close frame."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key"))
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            conn.sendall(b"\x01\x02ab" + b"\x89\x01p" + b"\x80\x01c" + b"\x88\x02\x03\xe8")
            conn.settimeout(5)
            while len(b"".join(received)) < 7 + 8:  # a masked pong (1 byte payload), a masked close (2)
                chunk = conn.recv(4096)
                if not chunk:
                    break
                received.append(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with WebSocket.connect(f"ws://127.0.0.1:{port}/x", timeout=5) as ws:
            assert ws.receive_text(5) == "abc"
            assert ws.receive_text(5) is None
        thread.join(5)
    finally:
        listener.close()
    replies = b"".join(received)
    assert replies[0] == 0x8A and replies[1] == 0x81  # a masked pong carrying the ping's byte
    assert replies[7] == 0x88  # then the close reply
