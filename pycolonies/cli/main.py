"""``colonies``: the command line. The client commands are the SDK's; ``server start``,
``database``, ``dev`` and ``executor start`` are contributed by the packages that own what they
start, through the ``colonies.commands`` entry-point group (:mod:`pycolonies.cli.plugins`), so the
SDK never imports the server or the executors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer vendors click since 0.2x
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - an older typer, on click
    from click.exceptions import UsageError  # type: ignore[no-redef]

from pycolonies import crypto
from pycolonies.cli import (
    attribute,
    blueprint,
    channel,
    cluster,
    colony,
    cron,
    executor,
    fs,
    function,
    generator,
    location,
    log,
    plugins,
    process,
    run,
    server,
    user,
    workflow,
)
from pycolonies.cli.common import EXIT_USAGE, fail


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """A usage error (unknown command or option, a missing or ill-typed value) as one ``Error:``
    line and exit 2, like every other error; a group run without a command still shows its help."""
    try:
        yield
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # as typer tells it apart (not in every version)
            raise
        message = " ".join(exc.format_message().split()).rstrip(".")
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        fail(f"{message}{hint}", EXIT_USAGE)


class CommandLine(TyperGroup):
    """The ``colonies`` command: every subcommand is parsed and run inside its ``invoke``, so this
    is the one place usage errors are shaped."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(cls=CommandLine, no_args_is_help=True,
                  help="Colonies: a ColonyOS-compatible colony server and CLI.")
security_app = typer.Typer(no_args_is_help=True, help="Private keys and ids.")
app.add_typer(server.app, name="server")
plugins.install(app, {"server": server.app, "executor": executor.app})  # server start, database, ...
app.add_typer(security_app, name="security")
app.add_typer(colony.app, name="colony")
app.add_typer(user.app, name="user")
app.add_typer(executor.app, name="executor")
app.add_typer(function.app, name="function")
app.add_typer(process.app, name="process")
app.add_typer(workflow.app, name="workflow")
app.add_typer(log.app, name="log")
app.add_typer(cron.app, name="cron")
app.add_typer(generator.app, name="generator")
app.add_typer(attribute.app, name="attribute")
app.add_typer(fs.app, name="fs")
app.add_typer(channel.app, name="channel")
app.add_typer(location.app, name="location")
app.add_typer(cluster.app, name="cluster")
app.add_typer(blueprint.app, name="blueprint")
app.command("run")(run.run_interactive)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


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


def main() -> None:
    """The ``colonies`` console entry (and ``python -m pycolonies.cli.main``)."""
    try:
        app()
    except BrokenPipeError:  # `colonies ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
