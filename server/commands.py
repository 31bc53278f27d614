"""The commands the server contributes to ``colonies`` (entry-point group ``colonies.commands``):
``server start`` and ``database migrate``. They need the ``server`` extra; without it, ``colonies``
lists them but says what to install instead of loading this module. The server itself is imported
only when a command runs, so every other ``colonies`` command starts fast."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from pycolonies.cli.common import fail

database_app = typer.Typer(no_args_is_help=True, help="Manage the server's PostgreSQL schema.")


def start(
    port: Annotated[int | None, typer.Option(help="Port (default COLONIES_SERVER_PORT or 50080)")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 0.0.0.0)")] = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate for HTTPS")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key for HTTPS")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default COLONIES_DATA_DIR)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes sharing the port (default COLONIES_SERVER_WORKERS, or auto: "
                          "one per CPU, half as many when PostgreSQL is on this machine)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start the server (on an embedded PostgreSQL unless COLONIES_DB_URL is set)."""
    from server.config import ServerConfig
    from server.main import install_fast_event_loop, serve

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ServerConfig.from_env()
    except ValueError as exc:
        fail(str(exc))
    if port is not None:
        config.port = port
    if host is not None:
        config.host = host
    if data_dir is not None:
        config.data_dir = data_dir.expanduser()
    if workers is not None:
        config.workers = workers
    if config.workers < 1:
        fail("--workers (COLONIES_SERVER_WORKERS) must be at least 1")
    if config.db_pool_size < 1:
        fail("COLONIES_DB_POOL_SIZE must be at least 1")
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            fail("--tls-cert and --tls-key must be given together")
        for path in (tls_cert, tls_key):
            if not Path(path).is_file():
                fail(f"TLS file not found: {path}")
        config.tls_cert, config.tls_key = tls_cert, tls_key
    install_fast_event_loop()
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except (OSError, ValueError) as exc:  # e.g. port in use, unreadable or corrupt server key
        fail(f"cannot start the server: {exc}")


@database_app.command("migrate")
def database_migrate(
    db_url: Annotated[str | None, typer.Option(help="PostgreSQL URL (default COLONIES_DB_URL)")] = None,
) -> None:
    """Apply pending schema migrations to the database in COLONIES_DB_URL."""
    import asyncpg

    from server import db

    url = db_url or os.environ.get("COLONIES_DB_URL", "")
    if not url:
        fail("no database given: set COLONIES_DB_URL or pass --db-url "
             "(the embedded database is migrated by 'colonies server start')")

    async def run() -> list[int]:
        con = await asyncpg.connect(db.primary_dsn(url))
        try:
            return await db.migrate(con)
        finally:
            await con.close()

    try:
        applied = asyncio.run(run())
    except (OSError, Exception) as exc:  # asyncpg raises many types; report them all plainly
        fail(f"migration failed: {exc}")
    if applied:
        typer.echo("Applied migrations: " + ", ".join(f"{v:04d}" for v in applied))
    else:
        typer.echo("Database schema is up to date")
