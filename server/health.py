"""The operators' endpoints: ``GET /metrics`` (Prometheus), ``/healthz`` (alive), ``/readyz`` (ready).

None is signed, as Prometheus and orchestrators expect; see docs/metrics.md for what they say and
what to keep behind the network boundary. ``/health`` (what clients use) stays in ``app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from server import db
from server.context import Services
from server.metrics import CONTENT_TYPE

READY_TIMEOUT_S = 5.0


def add_routes(router: web.UrlDispatcher, services_of: Callable[[web.Application], Services | None]) -> None:
    """Serve the endpoints, with ``services_of(app)`` giving the running app's services."""

    async def metrics(request: web.Request) -> web.Response:
        services = services_of(request.app)
        if services is None:
            return web.Response(status=503, text="starting")
        body = await services.metrics.render(services.pool)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="alive")  # the process answers: nothing else is asked

    async def readyz(request: web.Request) -> web.Response:
        services = services_of(request.app)
        if services is None:
            return web.Response(status=503, text="not ready: the server is starting")
        try:
            async with asyncio.timeout(READY_TIMEOUT_S), services.pool.acquire() as con:
                pending = await db.pending_migrations(con)
        except Exception as exc:
            reason = f"not ready: the database is not reachable ({type(exc).__name__})"
            return web.Response(status=503, text=reason)
        if pending:
            versions = ", ".join(f"{v:04d}" for v in pending)
            return web.Response(status=503, text=f"not ready: migrations not applied: {versions}")
        return web.Response(text="ready")

    router.add_get("/metrics", metrics)
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
