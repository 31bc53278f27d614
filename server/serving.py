"""Serve an app on its TCP port behind the connection limits (one way for main and testing)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from server.config import ServerConfig
from server.limits import ConnectionGuard, ConnectionLimits


@dataclass
class Serving:
    """A running site: aiohttp's runner and the guard every connection passes through."""

    runner: web.AppRunner
    guard: ConnectionGuard

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_serving(app: web.Application, config: ServerConfig, *,
                        ssl_context: ssl.SSLContext | None = None) -> Serving:
    """Start ``app`` on ``config.host:port`` (SO_REUSEPORT when there are several workers)."""
    config.check_limits()
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=config.keepalive_timeout_s,
        lingering_time=config.drain_timeout_s,
        max_headers=config.max_headers,
        max_field_size=config.max_header_field_bytes,
        max_line_size=config.max_header_field_bytes,
        logger=ClientErrorsQuiet(logging.getLogger("aiohttp.server")),
    )
    await runner.setup()
    try:
        assert runner.server is not None
        guard = ConnectionGuard(runner.server, ConnectionLimits.from_config(config))
        site = _GuardedSite(runner, guard, config.host, config.port, ssl_context=ssl_context,
                            reuse_port=config.workers > 1)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return Serving(runner, guard)


class ClientErrorsQuiet(logging.LoggerAdapter):
    """aiohttp's protocol logger, except that a request the client got wrong (malformed HTTP,
    which aiohttp answers with a 400) is one debug line instead of an error with a traceback:
    keyless clients must not be able to fill the log. Other errors are logged as before."""

    def log(self, level: int, msg: object, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            text = msg % args if args else msg
            reason = " ".join(str(exc_info.message or exc_info).split())  # one line
            super().log(logging.DEBUG, "%s: %s (HTTP %s)", text, reason, exc_info.code)
            return
        super().log(level, msg, *args, exc_info=exc_info, **kwargs)


class _GuardedSite(web.BaseSite):
    """aiohttp's TCPSite, except that connections are made by the guard rather than by aiohttp."""

    def __init__(self, runner: web.AppRunner, guard: ConnectionGuard, host: str, port: int, *,
                 ssl_context: ssl.SSLContext | None, reuse_port: bool) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._guard = guard
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
