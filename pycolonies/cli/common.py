"""What every client-side command shares: settings from the environment, the client, errors and
output (rich tables, or ``--json`` for scripts).

Exit codes scripts can rely on:

====  ============================================================================
0     success
1     the server refused the request (unknown id, access denied, bad input...) or a
      local problem (a malformed setting such as a key that is not 64 hex characters, a bad
      flag value, an unreadable file)
2     usage error (unknown command or option, missing or ill-typed option value)
3     the server cannot be reached
4     a ``--wait`` ran out of time before the process or workflow finished
5     a required setting is missing (the message names the environment variable)
====  ============================================================================

Every error is one line on stderr, ``Error: ...``, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pycolonies import crypto, wire
from pycolonies.client import Colonies
from pycolonies.config import DEFAULT_HOST, DEFAULT_PORT, check_host, parse_port
from pycolonies.errors import ColoniesConnectionError, ColoniesServerError, ColoniesTimeout

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4
EXIT_MISSING_SETTING = 5

PIPED_WIDTH = 100_000  # "unlimited": tables take their natural width when stdout is not a terminal

JsonOption = Annotated[bool, typer.Option("--json", help="Print raw JSON (the RPC objects), not tables")]

STATE_NAMES = {wire.WAITING: "waiting", wire.RUNNING: "running", wire.SUCCESS: "successful",
               wire.FAILED: "failed", wire.CANCELLED: "cancelled"}
STATE_STYLES = {wire.WAITING: "yellow", wire.RUNNING: "blue", wire.SUCCESS: "green", wire.FAILED: "red",
                wire.CANCELLED: "magenta"}
EXECUTOR_STATES = {wire.PENDING: "pending", wire.APPROVED: "approved", wire.REJECTED: "rejected",
                   wire.UNREGISTERED: "unregistered"}


class CliError(Exception):
    """A user-facing failure: ``message`` goes to stderr as one line, ``code`` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# COLONIES_TLS / COLONIES_SERVER_TLS values; anything else is a mistake, not plain http.
TLS_WORDS = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Settings:
    """Client settings, from the reference CLI's environment variables.

    This is where a malformed setting becomes a one-line error naming its variable: the host,
    port and TLS flag when they are read, a key when a command asks for it (so a bad
    COLONIES_SERVER_PRVKEY does not stop a command that signs with COLONIES_PRVKEY)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls: bool = False
    colonyname: str = ""
    prvkey: str = ""
    colony_prvkey: str = ""
    server_prvkey: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        """The settings in the environment; CliError for a malformed host, port or TLS flag (an
        empty variable counts as unset)."""
        env = os.environ
        port_variable = next((name for name in ("COLONIES_SERVER_HTTP_PORT", "COLONIES_SERVER_PORT")
                              if env.get(name)), "")
        tls_variable = next((name for name in ("COLONIES_TLS", "COLONIES_SERVER_TLS") if env.get(name)), "")
        tls = TLS_WORDS.get(env[tls_variable].strip().lower()) if tls_variable else False
        if tls is None:
            raise CliError(f"{tls_variable} must be true or false, not {env[tls_variable]!r}")
        try:
            host = check_host(env.get("COLONIES_SERVER_HOST") or DEFAULT_HOST)
            port = parse_port(env[port_variable], port_variable) if port_variable else DEFAULT_PORT
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return cls(
            host=host,
            port=port,
            tls=tls,
            colonyname=env.get("COLONIES_COLONY_NAME", ""),
            prvkey=env.get("COLONIES_PRVKEY", ""),
            colony_prvkey=env.get("COLONIES_COLONY_PRVKEY", ""),
            server_prvkey=env.get("COLONIES_SERVER_PRVKEY", ""),
        )

    @property
    def where(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def colony(self, override: str | None = None) -> str:
        return _required(override or self.colonyname, "COLONIES_COLONY_NAME", "the colony name (or --colony)")

    def key(self) -> str:
        """The member's key (a user or an executor)."""
        return _private_key(self.prvkey, "COLONIES_PRVKEY", "a member's private key")

    def colony_key(self) -> str:
        return _private_key(self.colony_prvkey, "COLONIES_COLONY_PRVKEY", "the colony owner's private key")

    def server_key(self) -> str:
        return _private_key(self.server_prvkey, "COLONIES_SERVER_PRVKEY", "the server owner's private key")

    def client(self) -> Colonies:
        return Colonies(self.host, self.port, tls=self.tls)


def _required(value: str, variable: str, what: str) -> str:
    if not value:
        raise CliError(f"{variable} is not set: export {variable}=<{what}>", EXIT_MISSING_SETTING)
    return value


def _private_key(value: str, variable: str, what: str) -> str:
    """The key in ``variable``, checked before anything is signed with it (the message never
    shows the key)."""
    key = _required(value, variable, what)
    try:
        crypto.derive_id(key)
    except ValueError as exc:
        raise CliError(f"{variable} is not a valid private key: {exc}") from None
    return key


@contextmanager
def failures(settings: Settings | None = None) -> Iterator[None]:
    """Turn every expected failure into a one-line error and its exit code."""
    try:
        yield
    except CliError as exc:
        fail(exc.message, exc.code)
    except ColoniesTimeout as exc:
        fail(str(exc), EXIT_TIMEOUT)
    except ColoniesServerError as exc:
        fail(f"{exc.message} (HTTP {exc.status})", EXIT_REFUSED)
    except ColoniesConnectionError as exc:
        where = f" at {settings.where}" if settings is not None else ""
        fail(f"cannot reach the colonies server{where}: {exc} "
             "(check COLONIES_SERVER_HOST, COLONIES_SERVER_PORT and COLONIES_TLS)", EXIT_UNREACHABLE)


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def session() -> Iterator[tuple[Settings, Colonies]]:
    """Settings and a connected client for one command, with its failures handled."""
    with failures():
        settings = Settings.from_env()
        client = settings.client()
    try:
        with failures(settings):
            yield settings, client
    finally:
        client.close()


# -- output ---------------------------------------------------------------------------------------


def console() -> Console:
    # Piped output (scripts, grep, awk) is never wrapped, so ids stay whole as the reference prints
    # them; a terminal (or COLUMNS) keeps rich's own width.
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, soft_wrap=False, width=PIPED_WIDTH if piped else None)


def table_box() -> box.Box:
    return box.ASCII if os.environ.get("COLONIES_CLI_ASCII", "").lower() == "true" else box.ROUNDED


def print_json(data: Any) -> None:
    """Raw JSON on stdout, for scripts (objects as the server sends them)."""
    typer.echo(json.dumps(wire_form(data), indent=2, sort_keys=False))


def wire_form(data: Any) -> Any:
    to_wire = getattr(data, "to_wire", None)
    if callable(to_wire):
        return to_wire()
    if isinstance(data, list):
        return [wire_form(item) for item in data]
    return data


Column = tuple[str, Callable[[Any], Any]]


def pick(key: str) -> Callable[[Any], Any]:
    """A column getter for ``key`` of a dict (the RPC objects as the SDK returns them)."""
    return lambda item: item.get(key)


def print_table(rows: Sequence[Any], columns: Sequence[Column], *, title: str | None = None) -> None:
    """A table with UPPER-CASE headers, one row per item; cells are produced by the getters."""
    table = Table(box=table_box(), title=title, header_style="bold")
    for header, _ in columns:
        table.add_column(header.upper(), overflow="fold")
    for row in rows:
        table.add_row(*(cell(getter(row)) for _, getter in columns))
    console().print(table)


def print_listing(rows: Sequence[Any], columns: Sequence[Column], *, json_output: bool, empty: str) -> None:
    """A list command's output: the rows as JSON (``--json``), ``empty`` when there are none, or a
    table."""
    if json_output:
        print_json(rows)
    elif not rows:
        info(empty)
    else:
        print_table(rows, columns)


def print_details(pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    """A key/value table without a header row (the reference's detail tables)."""
    table = Table(box=table_box(), title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        table.add_row(key, cell(value))
    console().print(table)


class Markup(str):
    """Cell text that is rich markup on purpose (e.g. a coloured state): shown as markup."""


def cell(value: Any) -> str:
    """A table cell for ``value``. Everything but ``Markup`` is escaped, so text from the server
    such as ``[Errno 2]`` or ``[/x]`` is shown as it is (rich would eat it or fail on it)."""
    if isinstance(value, Markup):
        return value
    return escape(text(value))


def text(value: Any) -> str:
    """``value`` as plain text: times in the CLI's layout, JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def format_time(value: datetime | str | None) -> str:
    """``2006-01-02 15:04:05`` in UTC (the reference CLI's layout); empty for the zero time."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if value.startswith("0001-01-01"):
            return ""
        value = wire.parse_time(value)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def shorten(value: Any, width: int = 20) -> str:
    plain = text(value)
    return plain if len(plain) <= width else plain[:width] + "…"


def state_name(state: int) -> str:
    return STATE_NAMES.get(state, str(state))


def info(message: str) -> None:
    """An informational line on stderr (e.g. "No running processes found"), so stdout stays data."""
    typer.echo(message, err=True)


def confirm_destructive(what: str, yes: bool) -> None:
    """Ask before a destructive command unless ``--yes``; anything but ``YES`` aborts (exit 1)."""
    if yes:
        return
    try:
        answer = typer.prompt(f"WARNING!!! Are you sure you want to {what}? (YES,no)", default="no",
                              show_default=False, err=True)
    except typer.Abort:  # end of input (nothing piped in) or Ctrl-C: the same one-line refusal
        typer.echo(err=True)
        answer = ""
    if answer != "YES":
        raise CliError("aborted: nothing was changed (answer YES, or pass --yes)")


# -- shared options and new identities (colony/user/executor add) ---------------------------------

ColonyOption = Annotated[
    str | None, typer.Option("--colony", help="Colony name (default COLONIES_COLONY_NAME)")
]

_HEX_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class NewIdentity:
    """The id of a colony, user or executor being added; ``generated`` is a key made here that
    must be shown once (unless it was written to ``written_to``)."""

    id: str
    generated: str = ""
    written_to: Path | None = None


def checked_id(value: str, flag: str) -> str:
    """An id option's value, or CliError: ids are 64 lower-case hex characters."""
    if not _HEX_ID.fullmatch(value):
        raise CliError(f"{flag} must be 64 lower-case hex characters")
    return value


def new_identity(given_id: str | None, *, prvkey: str | None = None, prvkey_file: Path | None = None,
                 id_flag: str = "--id", prvkey_flag: str = "--prvkey") -> NewIdentity:
    """The id from ``--<x>id``, from a private key (given, or read from ``prvkey_file``), or from a
    freshly generated key (written to ``prvkey_file`` when that file does not exist yet)."""
    sources = [name for name, value in ((id_flag, given_id), (prvkey_flag, prvkey),
                                        ("--prvkey-file", prvkey_file)) if value is not None]
    if len(sources) > 1:
        raise CliError(f"give only one of {' and '.join(sources)}")
    if given_id is not None:
        return NewIdentity(checked_id(given_id, id_flag))
    if prvkey is not None:
        return NewIdentity(_derive_id(prvkey, prvkey_flag))
    if prvkey_file is not None and prvkey_file.exists():
        try:
            text = prvkey_file.read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read {prvkey_file}: {exc.strerror or exc}") from None
        return NewIdentity(_derive_id(text, str(prvkey_file)))
    generated = crypto.generate_private_key()
    if prvkey_file is not None:
        try:
            fd = os.open(prvkey_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(generated + "\n")
        except OSError as exc:
            raise CliError(f"cannot write {prvkey_file}: {exc.strerror or exc}") from None
        return NewIdentity(crypto.derive_id(generated), generated, prvkey_file)
    return NewIdentity(crypto.derive_id(generated), generated)


def _derive_id(prvkey: str, where: str) -> str:
    try:
        return crypto.derive_id(prvkey)
    except ValueError as exc:
        raise CliError(f"{where} is not a valid private key: {exc}") from None


def show_new_key(identity: NewIdentity, env_var: str) -> None:
    """Tell the user about a key generated by an add command: printed once on stdout as
    ``PrvKey: ...`` (or where it was written), with how to use it on stderr."""
    if not identity.generated:
        return
    if identity.written_to is not None:
        info(f"Generated a private key, stored in {identity.written_to}; to use it: "
             f"export {env_var}=$(cat {identity.written_to})")
        return
    typer.echo(f"PrvKey: {identity.generated}")
    info(f"Generated a private key: it is not stored anywhere, keep it now (export {env_var}=<PrvKey>)")
