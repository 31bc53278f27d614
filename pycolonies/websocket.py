"""A small blocking websocket client (RFC 6455) on the standard library, for the sync client.

Enough for ``/pubsub``: the opening handshake over plain TCP or TLS, masked text frames out, text
frames in (fragmented or not), pings answered, and the closing handshake. No extensions.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
import time
from types import TracebackType
from urllib.parse import urlsplit

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_MAX_HEADER_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class WebSocketError(OSError):
    """The handshake failed or the peer broke the protocol."""


class WebSocket:
    """``with WebSocket.connect("ws://host:port/path", timeout) as ws: ws.send_text(...)``."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self._sock = sock
        self._buffer = bytearray(buffered)
        self._closed = False

    @classmethod
    def connect(cls, url: str, timeout: float | None = None) -> WebSocket:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        try:
            if parts.scheme == "wss":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            sock.sendall(request.encode())
            rest = _read_handshake(sock, key)
        except BaseException:
            sock.close()
            raise
        return cls(sock, rest)

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send_text(self, text: str) -> None:
        self._send_frame(_TEXT, text.encode())

    def receive_text(self, timeout: float | None = None) -> str | None:
        """The next text message, or None once the peer has closed the connection.

        Raises ``TimeoutError`` if nothing complete arrives within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        message = bytearray()
        message_opcode: int | None = None
        while True:
            if self._closed:
                return None
            fin, opcode, payload = self._read_frame(deadline)
            if opcode == _CLOSE:
                self._reply_close(payload)
                return None
            if opcode == _PING:
                self._send_frame(_PONG, payload)
                continue
            if opcode == _PONG:
                continue
            if opcode in (_TEXT, _BINARY):
                if message_opcode is not None:
                    raise WebSocketError("websocket: new message before the previous one ended")
                message_opcode = opcode
            elif opcode != _CONT or message_opcode is None:
                raise WebSocketError(f"websocket: unexpected opcode {opcode}")
            message += payload
            if len(message) > MAX_MESSAGE_BYTES:
                raise WebSocketError("websocket: message too large")
            if fin:
                if message_opcode == _TEXT:
                    return message.decode()
                message, message_opcode = bytearray(), None  # binary messages are not for us

    def close(self) -> None:
        """Send a close frame (if still open) and release the socket."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self._send_frame(_CLOSE, struct.pack("!H", 1000), force=True)
        self._sock.close()

    # -- frames ---------------------------------------------------------------------------------

    def _reply_close(self, payload: bytes) -> None:
        code = payload[:2] if len(payload) >= 2 else struct.pack("!H", 1000)
        with contextlib.suppress(OSError):
            self._send_frame(_CLOSE, code)
        self._closed = True

    def _send_frame(self, opcode: int, payload: bytes, force: bool = False) -> None:
        if self._closed and not force:
            raise WebSocketError("websocket: connection is closed")
        length = len(payload)
        header = bytearray([0x80 | opcode])
        if length < 126:
            header.append(0x80 | length)
        elif length < 1 << 16:
            header += struct.pack("!BH", 0x80 | 126, length)
        else:
            header += struct.pack("!BQ", 0x80 | 127, length)
        mask = os.urandom(4)
        self._sock.sendall(bytes(header) + mask + _masked(payload, mask))

    def _read_frame(self, deadline: float | None) -> tuple[bool, int, bytes]:
        first, second = self._read_exact(2, deadline)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8, deadline))
        if length > MAX_MESSAGE_BYTES:
            raise WebSocketError("websocket: frame too large")
        mask = self._read_exact(4, deadline) if second & 0x80 else b""
        payload = self._read_exact(length, deadline)
        return bool(first & 0x80), first & 0x0F, _masked(payload, mask) if mask else payload

    def _read_exact(self, count: int, deadline: float | None) -> bytes:
        while len(self._buffer) < count:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("websocket: timed out waiting for a message")
                self._sock.settimeout(remaining)
            else:
                self._sock.settimeout(None)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("websocket: timed out waiting for a message") from None
            if not chunk:
                self._closed = True
                raise WebSocketError("websocket: connection closed without a close frame")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


def _masked(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return b""
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


def _read_handshake(sock: socket.socket, key: str) -> bytes:
    """Read the server's 101 reply; return any bytes received after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise WebSocketError("websocket: the server closed the connection during the handshake")
        data += chunk
        if len(data) > _MAX_HEADER_BYTES:
            raise WebSocketError("websocket: handshake reply too large")
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        raise WebSocketError(f"websocket: the server refused the upgrade: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != expected:
        raise WebSocketError("websocket: bad Sec-WebSocket-Accept in the server's handshake")
    return rest
