"""Run a real colonies server for tests and for users' own test suites.

``ServerThread`` starts the aiohttp app on a loopback port in a background thread with its own
event loop, so blocking clients (the sync SDK, the CLI, other processes) can talk to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from pycolonies import crypto
from server.app import create_app
from server.config import ServerConfig
from server.embedded import free_port
from server.limits import ConnectionGuard
from server.serving import Serving, start_serving

T = TypeVar("T")


@dataclass
class ServerThread:
    dsn: str
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    server_prvkey: str = field(default_factory=crypto.generate_private_key)
    max_body_bytes: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.serving: Serving | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def server_id(self) -> str:
        return crypto.derive_id(self.server_prvkey)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> ServerConfig:
        config = ServerConfig(server_id=self.server_id, host=self.host, port=self.port, db_url=self.dsn)
        if self.max_body_bytes is not None:
            config.max_body_bytes = self.max_body_bytes
        for name, value in self.overrides.items():
            if not hasattr(config, name):
                raise AttributeError(f"ServerConfig has no setting {name!r}")
            setattr(config, name, value)
        return config

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._run, name=f"colonies-server-{self.port}", daemon=True)
        self._thread.start()
        self._started.wait(60)
        if self._error is not None:
            raise RuntimeError("test server failed to start") from self._error
        if not self._started.is_set():
            raise RuntimeError("test server did not start within 60 s")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.serving.stop())
        self._loop.close()

    async def _start(self) -> None:
        config = self.config()
        self.serving = await start_serving(create_app(config, self.dsn), config)

    @property
    def app(self) -> web.Application:
        """The running aiohttp application (its services, endpoints and limits' bookkeeping)."""
        if self.serving is None:
            raise RuntimeError("the test server is not running")
        return self.serving.runner.app

    @property
    def connections(self) -> ConnectionGuard:
        """The guard every connection passes through (connection counts, header watchdog)."""
        if self.serving is None:
            raise RuntimeError("the test server is not running")
        return self.serving.guard

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the server's event loop (from the test's thread) and return its result."""
        if self._loop is None:
            raise RuntimeError("the test server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
