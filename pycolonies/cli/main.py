"""``colonies``: the command line. Server-side commands import the server lazily, so the SDK
itself never depends on it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from pycolonies import crypto

app = typer.Typer(no_args_is_help=True, help="Colonies: a ColonyOS-compatible colony server and CLI.")
server_app = typer.Typer(no_args_is_help=True, help="Run and inspect the colonies server.")
database_app = typer.Typer(no_args_is_help=True, help="Manage the server's PostgreSQL schema.")
security_app = typer.Typer(no_args_is_help=True, help="Private keys and ids.")
executor_app = typer.Typer(no_args_is_help=True, help="Run executors that take work from a colony.")
app.add_typer(server_app, name="server")
app.add_typer(database_app, name="database")
app.add_typer(security_app, name="security")
app.add_typer(executor_app, name="executor")


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@server_app.command("start")
def server_start(
    port: Annotated[int | None, typer.Option(help="Port (default COLONIES_SERVER_PORT or 50080)")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 0.0.0.0)")] = None,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="PEM certificate for HTTPS")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key for HTTPS")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default COLONIES_DATA_DIR)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes sharing the port (default COLONIES_SERVER_WORKERS or 1)"),
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
        _fail(str(exc))
    if port is not None:
        config.port = port
    if host is not None:
        config.host = host
    if data_dir is not None:
        config.data_dir = data_dir.expanduser()
    if workers is not None:
        config.workers = workers
    if config.workers < 1:
        _fail("--workers (COLONIES_SERVER_WORKERS) must be at least 1")
    if config.db_pool_size < 1:
        _fail("COLONIES_DB_POOL_SIZE must be at least 1")
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            _fail("--tls-cert and --tls-key must be given together")
        for path in (tls_cert, tls_key):
            if not Path(path).is_file():
                _fail(f"TLS file not found: {path}")
        config.tls_cert, config.tls_key = tls_cert, tls_key
    install_fast_event_loop()
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except (OSError, ValueError) as exc:  # e.g. port in use, unreadable or corrupt server key
        _fail(f"cannot start the server: {exc}")


@database_app.command("migrate")
def database_migrate(
    db_url: Annotated[str | None, typer.Option(help="PostgreSQL URL (default COLONIES_DB_URL)")] = None,
) -> None:
    """Apply pending schema migrations to the database in COLONIES_DB_URL."""
    from server import db

    url = db_url or os.environ.get("COLONIES_DB_URL", "")
    if not url:
        _fail("no database given: set COLONIES_DB_URL or pass --db-url "
              "(the embedded database is migrated by 'colonies server start')")

    async def run() -> list[int]:
        import asyncpg

        con = await asyncpg.connect(url)
        try:
            return await db.migrate(con)
        finally:
            await con.close()

    try:
        applied = asyncio.run(run())
    except (OSError, Exception) as exc:  # asyncpg raises many types; report them all plainly
        _fail(f"migration failed: {exc}")
    if applied:
        typer.echo("Applied migrations: " + ", ".join(f"{v:04d}" for v in applied))
    else:
        typer.echo("Database schema is up to date")


@security_app.command("generate")
def security_generate() -> None:
    """Generate a private key and print it with its id."""
    prvkey = crypto.generate_private_key()
    typer.echo(f"Id: {crypto.derive_id(prvkey)}")
    typer.echo(f"PrvKey: {prvkey}")


@security_app.command("id")
def security_id(prvkey: Annotated[str, typer.Option(help="Private key (64 hex characters)")]) -> None:
    """Print the id of a private key."""
    try:
        typer.echo(crypto.derive_id(prvkey))
    except ValueError as exc:
        _fail(str(exc))


@executor_app.command("start")
def executor_start(
    kind: Annotated[str, typer.Option("--type", help="Executor kind: python")] = "python",
    name: Annotated[str | None, typer.Option(
        help="Name of the new executor (default COLONIES_EXECUTOR_NAME or <type>-<8 hex>)")] = None,
    executor_type: Annotated[str | None, typer.Option(
        "--executor-type", help="Executor type (default COLONIES_EXECUTOR_TYPE or the kind's, "
        "python-executor for python)")] = None,
    concurrency: Annotated[int, typer.Option(help="Processes run at the same time")] = 1,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="python: an allowed function, pkg.mod.func or pkg.mod.* (repeatable)")] = None,
    no_code: Annotated[bool, typer.Option(
        "--no-code", help="python: refuse functions shipped as code; run only --allow functions")] = False,
    grace: Annotated[float, typer.Option(
        help="Seconds running processes may finish after SIGTERM/Ctrl-C before they are given back")] = 30.0,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats (0: none)")] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start an executor: register it (COLONIES_COLONY_PRVKEY) or use an approved one
    (COLONIES_PRVKEY), then run processes of its type until SIGTERM or Ctrl-C (which let running
    processes finish for --grace seconds, then give them back to the queue; a second signal skips
    the wait). Server and colony: COLONIES_SERVER_HOST, COLONIES_SERVER_PORT, COLONIES_TLS,
    COLONIES_COLONY_NAME."""
    from executors.base import ExecutorError
    from executors.config import ConfigError, ExecutorConfig
    from executors.kinds import load_kind

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    options: dict[str, object] = {}
    if allow:
        options["allowed"] = tuple(allow)
    if no_code:
        options["allow_code"] = False
    if options and kind != "python":
        _fail("--allow and --no-code are options of --type python")
    if no_code and not allow:
        _fail("--no-code without --allow leaves nothing to run: add --allow pkg.module.function")
    try:
        config = ExecutorConfig.from_env(
            executorname=name, executortype=executor_type, concurrency=concurrency, grace=grace,
            heartbeat_interval=heartbeat,
        ).checked()
        executor = load_kind(kind)(config, announce=lambda line: print(line, flush=True), **options)
        asyncio.run(executor.run())
    except (ConfigError, ExecutorError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C before the executor's own handler was installed
        raise typer.Exit(130) from None


def main() -> None:  # pragma: no cover - console entry for `python -m pycolonies.cli.main`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
