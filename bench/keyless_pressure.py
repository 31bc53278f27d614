#!/usr/bin/env python3
"""What clients without a key can make the server hold: its memory and its sockets.

Run from the repository root with the project installed::

    python bench/keyless_pressure.py                      # 40 x 15 MB bodies, 200 slow headers
    python bench/keyless_pressure.py --peers 1            # every connection from 127.0.0.1
    python bench/keyless_pressure.py --source /tmp/old    # the server of another checkout
    python bench/keyless_pressure.py --set COLONIES_MAX_BODY_BYTES_IN_FLIGHT=67108864

It starts an embedded PostgreSQL and the server (``python -m pycolonies.cli.main server start``) in a
temporary directory, then, sampling the server's resident memory (``VmRSS``) all along:

  bodies   ``--bodies`` connections POST /api with ``Content-Length: --body-mb`` MB and send all of
           the body but its last byte, then hold it for ``--hold`` s. Connections come from
           ``--peers`` loopback source addresses (127.0.0.2, 127.0.0.3, ...: all of 127/8 is
           loopback on Linux), so per-peer caps and the total cap can both be seen at work.
  headers  ``--slow-headers`` connections send ``POST /api HTTP/1.1\\r\\nHost: x\\r\\n`` and then one
           more header byte every ``--drip`` s, for at most ``--headers-for`` s; how many the server
           closed, and when.
  fat      ``--fat-headers`` connections send a request line and ``--fat-count`` headers of
           ``--fat-bytes`` bytes (by default just within COLONIES_MAX_HEADERS and
           COLONIES_MAX_HEADER_FIELD_BYTES) without ending the headers, then hold for a second;
           the RSS they cost (until the header timeout closes them).
  after    a signed request (add a colony as the server owner) still gets served.

Linux only (``/proc``). Not part of the test suite; it reports figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from pycolonies import Colonies, crypto

MB = 1_000_000
DB = "keyless_pressure"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The server's RSS every 50 ms in a thread; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> float:
        self.peak = rss_mb(self.pid)
        return self.peak

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_mb(self.pid))


@dataclass
class Server:
    source: Path
    settings: dict[str, str]
    tempdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="keyless-")))
    port: int = field(default_factory=free_port)
    prvkey: str = field(default_factory=crypto.generate_private_key)

    def start(self) -> None:
        from server.embedded import EmbeddedPostgres

        self.postgres = EmbeddedPostgres(self.tempdir / "pgdata")
        self.postgres.start()

        async def create() -> None:
            con = await asyncpg.connect(self.postgres.dsn)
            try:
                await con.execute(f"CREATE DATABASE {DB}")
            finally:
                await con.close()

        asyncio.run(create())
        env = {name: value for name, value in os.environ.items() if not name.startswith("COLONIES_")}
        env.update({
            "COLONIES_DB_URL": urlunsplit(urlsplit(self.postgres.dsn)._replace(path=f"/{DB}")),
            "COLONIES_SERVER_PRVKEY": self.prvkey,
            "COLONIES_DATA_DIR": str(self.tempdir / "server-data"),
            "PYTHONPATH": str(self.source),
            **self.settings,
        })
        self.log = open(self.tempdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pycolonies.cli.main", "server", "start", "--host", "0.0.0.0",
             "--port", str(self.port)],
            cwd=self.source, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.tempdir / "server.log").read_text()[-3000:])
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                return
            time.sleep(0.2)
        raise RuntimeError("the server did not become healthy")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        subprocess.run(["rm", "-rf", str(self.tempdir)], check=False)


@dataclass
class BodyOutcome:
    status: int | None = None  # the reply's HTTP status, None if none came
    reply_after_s: float | None = None
    sent: int = 0
    error: str = ""


def hold_a_body(port: int, source: str, size: int, hold_until: float, outcome: BodyOutcome) -> None:
    """Send all of a ``size``-byte body but its last byte, watching for an early reply; then hold."""
    started = time.monotonic()
    try:
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except OSError as exc:
        outcome.error = f"connect: {exc}"
        return
    sock.setblocking(False)
    data = (f"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    data = memoryview(data + b"x" * (size - 1))
    reply = b""
    try:
        while time.monotonic() < hold_until:
            want_write = [sock] if outcome.sent < len(data) else []
            readable, writable, _ = select.select([sock], want_write, [], 0.2)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if outcome.status is None and b"\r\n" in reply:
                    outcome.status = int(reply.split(b" ", 2)[1])
                    outcome.reply_after_s = time.monotonic() - started
                    break
            if writable:
                outcome.sent += sock.send(data[outcome.sent:outcome.sent + 256 * 1024])
    except OSError as exc:
        outcome.error = type(exc).__name__
    finally:
        sock.close()


def source_address(i: int, peers: int) -> str:
    return f"127.0.0.{2 + i % peers}" if peers > 1 else "127.0.0.1"


def bodies_phase(server: Server, rss: RssSampler, args: argparse.Namespace) -> dict[str, object]:
    before = rss.reset()
    hold_until = time.monotonic() + args.hold
    outcomes = [BodyOutcome() for _ in range(args.bodies)]
    threads = [
        threading.Thread(target=hold_a_body, daemon=True,
                         args=(server.port, source_address(i, args.peers), int(args.body_mb * MB), hold_until,
                               outcomes[i]))
        for i in range(args.bodies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = rss.peak
    time.sleep(1)
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.status) if outcome.status is not None else ("held" if not outcome.error
                                                                      else f"no reply ({outcome.error})")
        statuses[key] = statuses.get(key, 0) + 1
    replied = sorted(o.reply_after_s for o in outcomes if o.reply_after_s is not None)
    return {
        "bodies": args.bodies, "body_mb": args.body_mb, "peers": args.peers,
        "rss_before_mb": round(before), "rss_peak_mb": round(peak), "rss_after_mb": round(rss_mb(rss.pid)),
        "outcomes": statuses,
        "slowest_refusal_s": round(replied[-1], 2) if replied else None,
        "body_mb_held_by_clients": round(sum(o.sent for o in outcomes if o.status is None) / MB),
    }


def headers_phase(server: Server, rss: RssSampler, args: argparse.Namespace) -> dict[str, object]:
    before = rss.reset()
    socks = []
    for i in range(args.slow_headers):
        sock = socket.socket()
        sock.bind((source_address(i, args.peers), 0))
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\n")
        socks.append(sock)
    started = time.monotonic()
    closed_after: dict[socket.socket, float] = {}
    next_drip = started + args.drip
    while len(closed_after) < len(socks) and time.monotonic() - started < args.headers_for:
        open_ = [s for s in socks if s not in closed_after]
        readable, _, _ = select.select(open_, [], [], 0.2)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                closed_after[sock] = time.monotonic() - started
        if time.monotonic() >= next_drip:
            next_drip += args.drip
            for sock in open_:
                try:
                    sock.send(b"X")
                except OSError:
                    closed_after.setdefault(sock, time.monotonic() - started)
    peak = rss.peak
    for sock in socks:
        sock.close()
    times = sorted(closed_after.values())
    return {
        "slow_header_connections": len(socks), "closed_by_server": len(times),
        "still_open_after_s": {round(args.headers_for): len(socks) - len(times)},
        "closed_between_s": [round(times[0], 2), round(times[-1], 2)] if times else None,
        "rss_before_mb": round(before), "rss_peak_mb": round(peak),
    }


def fat_headers_phase(server: Server, rss: RssSampler, args: argparse.Namespace) -> dict[str, object]:
    before = rss.reset()
    header = b"X-Fat: " + b"f" * (args.fat_bytes - 9) + b"\r\n"
    socks = []
    for i in range(args.fat_headers):
        sock = socket.socket()
        sock.bind((source_address(i, args.peers), 0))
        sock.connect(("127.0.0.1", server.port))
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            sock.sendall(b"POST /api HTTP/1.1\r\nHost: x\r\n" + header * args.fat_count)
        socks.append(sock)
    time.sleep(1)
    peak = rss.peak
    for sock in socks:
        sock.close()
    return {"fat_header_connections": len(socks), "header_bytes_each": len(header) * args.fat_count,
            "rss_before_mb": round(before), "rss_peak_mb": round(peak)}


def after_phase(server: Server) -> dict[str, object]:
    prvkey = crypto.generate_private_key()
    with Colonies("127.0.0.1", server.port) as client:
        client.add_colony({"colonyid": crypto.derive_id(prvkey), "name": "after"}, server.prvkey)
        names = [colony["name"] for colony in client.list_colonies(server.prvkey)]
    return {"signed_request_served": names == ["after"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="checkout whose server runs (default: this one)")
    parser.add_argument("--bodies", type=int, default=40)
    parser.add_argument("--body-mb", type=float, default=15)
    parser.add_argument("--peers", type=int, default=40, help="loopback source addresses (1: 127.0.0.1 only)")
    parser.add_argument("--hold", type=float, default=8, help="seconds the bodies are held")
    parser.add_argument("--slow-headers", type=int, default=200)
    parser.add_argument("--drip", type=float, default=2, help="seconds between header bytes")
    parser.add_argument("--headers-for", type=float, default=20,
                        help="seconds the header phase lasts at most")
    parser.add_argument("--fat-headers", type=int, default=200)
    parser.add_argument("--fat-count", type=int, default=31, help="headers per fat-header connection")
    parser.add_argument("--fat-bytes", type=int, default=8190, help="bytes per fat header line")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a COLONIES_* setting for the server (repeatable)")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    server = Server(args.source.resolve(), settings)
    server.start()
    try:
        with RssSampler(server.process.pid) as rss:
            report = {"source": str(server.source), "settings": settings,
                      "bodies": bodies_phase(server, rss, args),
                      "headers": headers_phase(server, rss, args),
                      "fat_headers": fat_headers_phase(server, rss, args),
                      "after": after_phase(server)}
        print(json.dumps(report, indent=2))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
