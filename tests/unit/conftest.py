"""A tiny in-process stand-in for the /api endpoint, to test the client transports."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgpack
import pytest

from pycolonies import crypto, wire

# reply(msg) -> (status, payload, error)
Reply = Callable[[dict[str, Any]], tuple[int, Any, bool]]


def echo_reply(msg: dict[str, Any]) -> tuple[int, Any, bool]:
    return 200, {"echo": msg}, False


@dataclass
class Recorded:
    payloadtype: str
    msg: dict[str, Any]
    signer: str | None
    content_type: str
    connection: int
    freshness: dict[str, Any] = field(default_factory=dict)  # requestnonce / requesttime


@dataclass
class StubServer:
    host: str
    port: int
    reply: Reply = echo_reply
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0
    # behaviour switches
    drop_without_reply: bool = False  # close the socket instead of answering
    close_after_reply: bool = False  # answer, then silently close the keep-alive connection
    raw_body: bytes | None = None  # answer with these bytes instead of an envelope
    lock: threading.Lock = field(default_factory=threading.Lock)


def _make_handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with stub.lock:
                stub.connections += 1
                self.connection_number = stub.connections

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content_type = self.headers.get("Content-Type", "")
            is_msgpack = content_type == wire.MSGPACK_CONTENT_TYPE
            envelope = msgpack.unpackb(body) if is_msgpack else json.loads(body)
            msg = wire.decode_payload(envelope["payload"])
            freshness = {key: msg.pop(key) for key in ("requestnonce", "requesttime") if key in msg}
            signer = (
                crypto.recover_id(envelope["payload"], envelope["signature"])
                if envelope["signature"]
                else None
            )
            with stub.lock:
                stub.requests.append(
                    Recorded(envelope["payloadtype"], msg, signer, content_type, self.connection_number,
                             freshness)
                )
            if stub.drop_without_reply:
                self.close_connection = True
                return
            if stub.raw_body is not None:
                self._send(502, "text/html", stub.raw_body)
                return
            status, payload, error = stub.reply(msg)
            reply = {
                "payloadtype": wire.ERROR_PAYLOADTYPE if error else envelope["payloadtype"],
                "payload": wire.encode_payload(payload),
                "error": error,
            }
            if is_msgpack:
                self._send(status, wire.MSGPACK_CONTENT_TYPE, msgpack.packb(reply))
            else:
                self._send(status, "text/plain; charset=utf-8", json.dumps(reply).encode())
            if stub.close_after_reply:
                self.close_connection = True

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    stub = StubServer("127.0.0.1", 0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(stub))
    server.daemon_threads = True
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
