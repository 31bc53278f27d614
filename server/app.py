"""The aiohttp application: routes, startup (database, migrations, wake-ups, pubsub) and shutdown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from pycolonies import wire
from server import dashboard, db
from server.blobs import BlobEndpoint
from server.config import ServerConfig
from server.context import Services
from server.health import add_routes as add_operator_routes
from server.realtime import ProcessListener, PubSubEndpoint
from server.replay import ReplayGuard
from server.rpc import RpcEndpoint
from server.scheduler.cluster import ClusterMembership
from server.scheduler.deadlines import DeadlineSweeper
from server.scheduler.triggers import TriggerLoop
from server.scheduler.wakeups import Wakeups

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
ENDPOINT = web.AppKey("endpoint", RpcEndpoint)
PUBSUB = web.AppKey("pubsub", PubSubEndpoint)
BLOBS = web.AppKey("blobs", BlobEndpoint)


def create_app(config: ServerConfig, dsn: str) -> web.Application:
    """An app that connects to ``dsn``, migrates it, and serves /api, /health, /pubsub, /blobs (and
    /metrics, /healthz, /readyz for operators)."""
    app = web.Application(client_max_size=config.max_body_bytes)
    dsn = db.primary_dsn(dsn)  # several hosts: the primary among them, found again after a failover

    async def lifecycle(app: web.Application):
        pool = await db.create_pool_when_ready(dsn, config.db_wait_s, min_size=min(2, config.db_pool_size),
                                               max_size=config.db_pool_size)
        relaxed_pool = await db.create_pool(
            dsn, min_size=1, max_size=4, server_settings={"synchronous_commit": "off"}
        )
        async with pool.acquire() as con:
            await db.migrate(con)
        wakeups = Wakeups(dsn)
        await wakeups.start()
        listener = ProcessListener(dsn)
        await listener.start()
        replay = ReplayGuard(config.replay_window_s, config.require_request_time,
                             config.replay_future_skew_s)
        sweeper = DeadlineSweeper(dsn, replay_retention_s=replay.retention_s)
        sweeper.start()
        triggers = TriggerLoop(dsn)
        triggers.start()
        membership = ClusterMembership(pool, host=config.host, port=config.port, name=config.server_name,
                                       interval_s=config.cluster_heartbeat_s,
                                       sweeper_backend=lambda: sweeper.backend_pid)
        await membership.start()
        services = Services(
            pool=pool,
            relaxed_pool=relaxed_pool,
            wakeups=wakeups,
            config=config,
            replay=replay,
            started_at=wire.format_time(datetime.now(UTC)),
        )
        services.metrics.watch(pools={"main": pool, "relaxed": relaxed_pool}, sweeper=sweeper,
                               triggers=triggers)
        app[SERVICES] = services
        app[ENDPOINT] = RpcEndpoint(services)
        app[PUBSUB] = PubSubEndpoint(services, listener)
        app[BLOBS] = BlobEndpoint(services)
        yield
        await membership.stop()
        await triggers.stop()
        await sweeper.stop()
        await listener.stop()
        await wakeups.stop()
        await relaxed_pool.close()
        await pool.close()

    async def health(request: web.Request) -> web.Response:
        services = request.app.get(SERVICES)
        if services is None:
            return web.Response(status=503, text="starting")
        try:
            async with services.pool.acquire(timeout=5) as con:
                await con.fetchval("SELECT 1")
        except Exception:
            return web.Response(status=503, text="database unreachable")
        return web.Response(status=200)

    async def api(request: web.Request) -> web.StreamResponse:
        return await request.app[ENDPOINT].handle(request)

    async def pubsub(request: web.Request) -> web.StreamResponse:
        return await request.app[PUBSUB].handle(request)

    async def put_blob(request: web.Request) -> web.StreamResponse:
        return await request.app[BLOBS].put(request)

    async def get_blob(request: web.Request) -> web.StreamResponse:
        return await request.app[BLOBS].get(request)

    async def release_long_polls(app: web.Application) -> None:
        services = app.get(SERVICES)
        if services is not None:
            services.wakeups.begin_shutdown()
        endpoint = app.get(PUBSUB)
        if endpoint is not None:
            await endpoint.close_all()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(release_long_polls)
    app.router.add_get("/health", health)
    add_operator_routes(app.router, lambda app: app.get(SERVICES))  # /metrics, /healthz, /readyz
    async def api_wrong_method(request: web.Request) -> web.Response:
        return web.json_response(
            wire.error_envelope(405, f"{request.method} /api is not supported, send RPCs with POST /api"),
            status=405,
        )

    app.router.add_post("/api", api)
    app.router.add_get("/pubsub", pubsub)
    app.router.add_put("/blobs/{colony}/{object}", put_blob)
    app.router.add_get("/blobs/{colony}/{object}", get_blob)
    app.router.add_route("*", "/api", api_wrong_method)
    dashboard.add_routes(app)
    return app
