"""Run the server: pick or start the database, ensure a server identity, serve until signalled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from pycolonies import crypto
from server.app import create_app
from server.config import ServerConfig
from server.embedded import EmbeddedPostgres
from server.serving import start_serving

log = logging.getLogger(__name__)

SERVER_KEY_FILE = "server.prvkey"
T = TypeVar("T")


@dataclass
class Identity:
    server_id: str
    generated_key_path: Path | None = None


def ensure_server_identity(config: ServerConfig) -> Identity:
    """Use COLONIES_SERVER_ID / _PRVKEY if given; else load or create a key in the data dir."""
    if config.server_id:
        return Identity(config.server_id)
    key_path = config.data_dir / SERVER_KEY_FILE
    if key_path.exists():
        try:
            return Identity(crypto.derive_id(key_path.read_text().strip()))
        except ValueError as exc:
            raise ValueError(f"invalid server key in {key_path}: {exc}") from exc
    config.data_dir.mkdir(parents=True, exist_ok=True)
    prvkey = crypto.generate_private_key()
    key_path.touch(mode=0o600)
    key_path.write_text(prvkey + "\n")
    return Identity(crypto.derive_id(prvkey), key_path)


def _ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def install_fast_event_loop() -> None:
    """Use uvloop when it is installed (it is a dependency; this keeps the fallback explicit)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _run_site(config: ServerConfig, dsn: str) -> web.AppRunner:
    """This process's site, with the limits of ``config`` (each worker process applies its own)."""
    serving = await start_serving(create_app(config, dsn), config, ssl_context=_ssl_context(config))
    return serving.runner


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (instead of the default of dying on the spot)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """``work``'s result; None, with ``work`` cancelled, when ``stop`` is set first (a signal
    while the server waits for its database)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _until_signalled() -> None:
    await _stop_on_signals().wait()


def _worker_main(config: ServerConfig, dsn: str) -> None:
    """An extra worker process: the same app on the same port (SO_REUSEPORT), until signalled."""
    install_fast_event_loop()

    async def run() -> None:
        runner = await _run_site(config, dsn)
        try:
            await _until_signalled()
        finally:
            await runner.cleanup()

    asyncio.run(run())


def _start_workers(config: ServerConfig, dsn: str) -> list[multiprocessing.process.BaseProcess]:
    context = multiprocessing.get_context("spawn")
    workers = []
    for number in range(1, config.workers):
        worker = context.Process(target=_worker_main, args=(config, dsn), name=f"colonies-worker-{number}")
        worker.start()
        workers.append(worker)
    return workers


def _stop_workers(workers: list[multiprocessing.process.BaseProcess], timeout_s: float = 30) -> None:
    for worker in workers:
        if worker.is_alive() and worker.pid is not None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(timeout_s)
        if worker.is_alive():
            worker.kill()
            worker.join(5)


async def serve(config: ServerConfig, *, announce=print) -> None:
    """Serve until SIGINT/SIGTERM, starting (and afterwards stopping) an embedded PostgreSQL if needed.

    With ``config.workers > 1`` the first process migrates and binds, then starts the other
    worker processes on the same port; the kernel spreads connections across them.
    """
    # From here on a signal only sets ``stop``: one that arrives while PostgreSQL is being
    # initialised or the schema migrated lets that step end, then everything is stopped in order
    # (dying on the spot would leave the embedded PostgreSQL running).
    stop = _stop_on_signals()
    identity = ensure_server_identity(config)
    config.server_id = identity.server_id
    embedded: EmbeddedPostgres | None = None
    runner: web.AppRunner | None = None
    workers: list[multiprocessing.process.BaseProcess] = []
    try:
        dsn = config.db_url
        if not dsn:
            embedded = EmbeddedPostgres(config.data_dir / "postgres")
            await asyncio.to_thread(embedded.start)
            dsn = embedded.dsn
        if stop.is_set():
            return
        runner = await _unless_stopped(_run_site(config, dsn), stop)  # it may wait for the database
        if runner is None:
            return
        workers = _start_workers(config, dsn)
        scheme = "https" if config.tls else "http"
        announce(f"Colonies server listening on {scheme}://{config.host}:{config.port}"
                 + (f" ({config.workers} worker processes)" if config.workers > 1 else ""))
        announce(f"Server id: {identity.server_id}")
        if embedded is not None:
            announce(f"Embedded PostgreSQL: {embedded.dsn} (data in {embedded.data_dir})")
        if identity.generated_key_path is not None:
            announce(
                f"Generated the server owner key in {identity.generated_key_path}. To administer colonies:\n"
                f"  export COLONIES_SERVER_PRVKEY=$(cat {identity.generated_key_path})"
            )
        await stop.wait()
        announce("Shutting down")
    finally:
        if workers:
            await asyncio.to_thread(_stop_workers, workers)
        if runner is not None:
            await runner.cleanup()
        if embedded is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(embedded.stop)
