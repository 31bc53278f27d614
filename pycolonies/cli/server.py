"""``colonies server``: the server as seen by a client (status, alive, version). ``server start`` is
the server's own command (``server.commands``, through the ``colonies.commands`` entry points)."""

from __future__ import annotations

import http.client
import ssl
from importlib import metadata
from typing import Annotated, Any

import typer

from pycolonies.cli import rotation
from pycolonies.cli.common import (
    EXIT_UNREACHABLE,
    JsonOption,
    Settings,
    fail,
    failures,
    format_time,
    print_details,
    print_json,
    session,
)
from pycolonies.errors import ColoniesServerError

app = typer.Typer(no_args_is_help=True, help="Run and inspect the colonies server.")


# -- the server as seen by a client -----------------------------------------------------------------


def cli_version() -> str:
    """This CLI's version (the installed ``colonies-py`` distribution)."""
    try:
        return metadata.version("colonies-py")
    except metadata.PackageNotFoundError:
        return "dev"


def _buildtime(value: Any) -> str:
    try:
        return format_time(value)
    except (TypeError, ValueError):
        return str(value)


@app.command("status")
def server_status(json_output: JsonOption = False) -> None:
    """Show the server's version and backends, and this client's configuration.

    No key is needed (getserverinfomsg is unsigned). The client configuration is
    COLONIES_SERVER_HOST, COLONIES_SERVER_PORT, COLONIES_TLS and COLONIES_COLONY_NAME."""
    with session() as (settings, client):
        try:
            server_info = client.server_info()
        except ColoniesServerError:  # a server without getserverinfomsg: its version only
            server_info = client.server_version()
    if json_output:
        print_json(server_info)
        return
    rows: list[tuple[str, Any]] = [
        ("Server version", server_info.get("buildversion")),
        ("Server buildtime", _buildtime(server_info.get("buildtime"))),
        ("CLI version", cli_version()),
        ("CLI buildtime", ""),
    ]
    backends = [b for b in server_info.get("backends") or [] if isinstance(b, dict)]
    if backends:
        rows += [("", ""), ("Server Backends", ", ".join(str(b.get("type", "")) for b in backends))]
        for backend in backends:
            if backend.get("type") == "http":
                rows += [("  HTTP Host", backend.get("host")), ("  HTTP Port", backend.get("port")),
                         ("  HTTP TLS", "true" if backend.get("tls") else "false")]
    rows += [
        ("", ""),
        ("Client Configuration", ""),
        ("  HTTP Host", settings.host),
        ("  HTTP Port", settings.port),
        ("  HTTP TLS", "true" if settings.tls else "false"),
        ("  Colony", settings.colonyname),
    ]
    print_details(rows)


@app.command("alive")
def server_alive(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer")] = 5.0,
) -> None:
    """Check that the server is up: print "alive" and exit 0, or exit 3.

    Alive means GET /health answers 200: the server runs and reaches its database."""
    with failures():
        settings = Settings.from_env()
    if settings.tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            settings.host, settings.port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(settings.host, settings.port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        reply = conn.getresponse()
        body = " ".join(reply.read(500).decode(errors="replace").split())  # one line, whatever it is
    except (OSError, http.client.HTTPException) as exc:  # refused, timeout, TLS failure, bad host
        fail(f"cannot reach the colonies server at {settings.where}: {exc} "
             "(check COLONIES_SERVER_HOST, COLONIES_SERVER_PORT and COLONIES_TLS)", EXIT_UNREACHABLE)
    finally:
        conn.close()
    if reply.status != 200:
        fail(f"the colonies server at {settings.where} is not healthy: HTTP {reply.status} {body}".rstrip(),
             EXIT_UNREACHABLE)
    typer.echo("alive")


@app.command("version")
def server_version(json_output: JsonOption = False) -> None:
    """Show this CLI's version and the server's (no key needed)."""
    with session() as (_, client):
        version = client.server_version()
    if json_output:
        print_json({"client": {"buildversion": cli_version(), "buildtime": ""}, "server": version})
        return
    print_details([
        ("CLI version", cli_version()),
        ("CLI buildtime", ""),
        ("Server version", version.get("buildversion")),
        ("Server buildtime", _buildtime(version.get("buildtime"))),
    ])


@app.command("chid")
def server_chid(
    serverid: Annotated[str | None, typer.Option(help="The new id (of the new server key, 64 hex)")] = None,
    prvkey_file: rotation.PrvkeyFileOption = None,
) -> None:
    """Change the server owner's id, i.e. the server key (COLONIES_SERVER_PRVKEY).

    Every replica honours the new id at once and after restarts (it overrides the configured
    COLONIES_SERVER_ID / COLONIES_SERVER_PRVKEY). The new id is --serverid, the id of the key in
    --prvkey-file (written there if the file does not exist), or of a new key printed once."""
    with session() as (settings, client):
        server_key = settings.server_key()
        identity = rotation.new_id(serverid, prvkey_file, "--serverid")
        client.change_server_id(identity.id, server_key)
    rotation.report(identity, "ServerId", "the server owner", "COLONIES_SERVER_PRVKEY")
