"""Bad settings and malformed arguments never give a traceback: every command prints one
``Error: ...`` line on stderr and exits non-zero.

The sweeps walk the command tree of ``pycolonies.cli.main.app``, so a new command is covered
without touching this file (a new required option needs a plausible value in ``by_flag``, or the
sweep fails and says so). They run the commands in process, in typer's ``CliRunner`` isolation,
through the same click command ``colonies`` runs (built once: building it is most of an
invocation's cost); an exception other than ``SystemExit`` escaping it is exactly what prints a
traceback in a real run. A few cases also run as real subprocesses, as do the long-running
starters (``server start``, ``dev``, ``executor start``), which check their settings before they
start anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pycolonies import crypto
from pycolonies.cli.main import app
from server.embedded import free_port
from tests.conftest import ColonyEnv

CLI = [sys.executable, "-m", "pycolonies.cli.main"]
CLI_TIMEOUT = 60.0
EXIT_USAGE = 2

CommandPath = tuple[str, ...]

WELL_FORMED_ID = "1" * 64  # 64 hex characters: an id of nothing
KEY_VARIABLES = ("COLONIES_PRVKEY", "COLONIES_COLONY_PRVKEY", "COLONIES_SERVER_PRVKEY")
ANY_KEY_VARIABLE = r"COLONIES_(COLONY_|SERVER_)?PRVKEY"

# Commands that run until stopped; tested as subprocesses below.
STARTERS: set[CommandPath] = {("server", "start"), ("dev",), ("executor", "start")}
# Commands that read no client settings (tested with bad arguments instead).
SETTINGS_FREE: set[CommandPath] = {("security", "generate"), ("security", "id"), ("database", "migrate")}
# Commands that sign nothing, so a bad key is no error for them.
KEYLESS: set[CommandPath] = {("server", "status"), ("server", "alive"), ("server", "version")}


# -- the command tree -----------------------------------------------------------------------------


ROOT = typer.main.get_command(app)


def leaf_commands() -> dict[CommandPath, Any]:
    """Every runnable command of the CLI by its path (``("process", "ps")``)."""
    found: dict[CommandPath, Any] = {}

    def walk(command: Any, path: CommandPath) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found[path] = command
            return
        for name, child in children.items():
            walk(child, (*path, name))

    walk(ROOT, ())
    return found


COMMANDS = leaf_commands()


def test_the_walk_finds_the_whole_command_tree() -> None:
    """The sweeps below are only as good as this walk."""
    assert len(COMMANDS) > 50, sorted(COMMANDS)
    for path in [("process", "ps"), ("workflow", "submit"), ("cron", "add"), ("attribute", "get"),
                 ("server", "alive"), ("run",), *STARTERS, *SETTINGS_FREE, *KEYLESS]:
        assert path in COMMANDS, path


@dataclass(frozen=True)
class Files:
    """Input files a command may need."""

    spec: Path  # one function spec
    workflow: Path  # a list of function specs
    blueprint: Path  # a blueprint (or definition): one object


@pytest.fixture
def files(tmp_path: Path) -> Files:
    spec = {"funcname": "echo", "conditions": {"executortype": "t"}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "workflow.json").write_text(json.dumps([{**spec, "nodename": "a"}]))
    (tmp_path / "blueprint.json").write_text(json.dumps({"kind": "K", "metadata": {"name": "x"},
                                                         "spec": {"replicas": 1}}))
    return Files(tmp_path / "spec.json", tmp_path / "workflow.json", tmp_path / "blueprint.json")


def by_flag(files: Files) -> dict[str, str]:
    """A plausible value for each required option (the sweeps fail on a missing one)."""
    return {
        "--name": "x", "--type": "t", "--func": "echo", "--executortype": "t", "--text": "x",
        "--key": "k", "--value": "v", "--prvkey": crypto.generate_private_key(),
        "--processid": WELL_FORMED_ID, "--processgraphid": WELL_FORMED_ID, "--cronid": WELL_FORMED_ID,
        "--attributeid": WELL_FORMED_ID, "--functionid": WELL_FORMED_ID, "--spec": str(files.workflow),
        "--file": str(files.spec), "--label": "/x", "--dir": str(files.spec.parent / "dir"),
        "--snapshotname": "s", "--generatorid": WELL_FORMED_ID, "--trigger": "2", "--arg": "a",
        "--payload": "p",
    }


# What the required options do not say: one of two options, an object spec, no confirmation.
EXTRA_ARGS: dict[CommandPath, list[str]] = {
    ("log", "get"): ["--processid", WELL_FORMED_ID],
    ("cron", "add"): ["--interval", "10"],
    ("fs", "info"): ["--fileid", WELL_FORMED_ID],
    ("fs", "get"): ["--fileid", WELL_FORMED_ID],
    ("fs", "remove"): ["--fileid", WELL_FORMED_ID],
    ("fs", "snapshot", "info"): ["--snapshotid", WELL_FORMED_ID],
    ("fs", "snapshot", "download"): ["--snapshotid", WELL_FORMED_ID],
    ("fs", "snapshot", "remove"): ["--snapshotid", WELL_FORMED_ID],
    ("executor", "add"): ["--name", "x", "--type", "t"],
    ("location", "add"): ["--desc", "d", "--long", "18.1", "--lat", "59.3"],
    ("user", "chid"): ["--userid", WELL_FORMED_ID],
    ("executor", "chid"): ["--executorid", WELL_FORMED_ID],
    ("colony", "chid"): ["--colonyid", WELL_FORMED_ID],
    ("server", "chid"): ["--serverid", WELL_FORMED_ID],
    ("executor", "ls"): ["--full"],
}


def plausible_args(path: CommandPath, files: Files) -> list[str]:
    """The command with a plausible value for every required option (and ``--yes``)."""
    values = by_flag(files)
    if path == ("function", "submit"):
        values["--spec"] = str(files.spec)
    if path[0] == "blueprint":
        values["--spec"] = str(files.blueprint)
    args = list(path)
    for param in COMMANDS[path].params:
        flag = param.opts[0]
        if param.required:
            assert flag in values, f"no plausible value for {flag} of '{' '.join(path)}': add one to BY_FLAG"
            args += [flag, values[flag]]
        elif param.name == "yes":
            args.append(flag)
    return args + EXTRA_ARGS.get(path, [])


# -- running a command ------------------------------------------------------------------------------


def clean_env(**settings: str) -> dict[str, str | None]:
    """For CliRunner: the test process's COLONIES_* variables unset, then ``settings``."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("COLONIES_")}
    env.update(settings)
    return env


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None  # what escaped the command: a traceback in a real run

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(args: list[str], env: Mapping[str, str | None], stdin: str = "") -> Outcome:
    """Run ``colonies <args>`` in process, as ``colonies`` runs it: ``ROOT.main()``."""
    exception: BaseException | None = None
    with CliRunner().isolation(input=stdin, env=env) as streams:
        try:
            ROOT.main(args=args, prog_name="colonies")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:
            code, exception = 1, exc
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = (stream.getvalue().decode(errors="replace") for stream in streams[:2])
    return Outcome(code, stdout, stderr, exception)


def one_line_problem(result: Outcome, needle: str = "") -> str | None:
    """Why ``result`` is not a one-line error (None if it is one, matching ``needle``)."""
    exc = result.exception
    if exc is not None:
        return f"raised {type(exc).__name__}: {exc} (a traceback in a real run)"
    if result.exit_code == 0:
        return f"exit 0: {result.output!r}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if len(lines) != 1 or not lines[0].startswith("Error: "):
        return f"exit {result.exit_code}, stderr not one 'Error: ' line: {result.stderr!r}"
    if "Traceback" in result.output:
        return f"a traceback: {result.output!r}"
    if needle and not re.search(needle, lines[0]):
        return f"the error does not match {needle!r}: {lines[0]!r}"
    return None


def assert_all_one_line(problems: dict[str, str | None]) -> None:
    bad = {what: problem for what, problem in problems.items() if problem is not None}
    assert not bad, "\n".join(f"{what}: {problem}" for what, problem in bad.items())


# -- bad settings, every command --------------------------------------------------------------------


@dataclass(frozen=True)
class BadSetting:
    name: str
    env: dict[str, str]
    needle: str  # the variable the error must name
    keys_only: bool = False  # only commands that sign are concerned


BAD_SETTINGS = [
    BadSetting("key not hex", dict.fromkeys(KEY_VARIABLES, "zz"), ANY_KEY_VARIABLE, keys_only=True),
    BadSetting("key too short", dict.fromkeys(KEY_VARIABLES, "ab" * 31), ANY_KEY_VARIABLE, keys_only=True),
    BadSetting("key out of range", dict.fromkeys(KEY_VARIABLES, "ff" * 32), ANY_KEY_VARIABLE, keys_only=True),
    BadSetting("key zero", dict.fromkeys(KEY_VARIABLES, "00" * 32), ANY_KEY_VARIABLE, keys_only=True),
    BadSetting("host with a space", {"COLONIES_SERVER_HOST": "bad host"}, "COLONIES_SERVER_HOST"),
    BadSetting("host is a URL", {"COLONIES_SERVER_HOST": "http://localhost"}, "COLONIES_SERVER_HOST"),
    BadSetting("host label too long", {"COLONIES_SERVER_HOST": "a" * 64 + ".example"},
               "COLONIES_SERVER_HOST"),
    BadSetting("port not a number", {"COLONIES_SERVER_PORT": "http"}, "COLONIES_SERVER_PORT"),
    BadSetting("port zero", {"COLONIES_SERVER_PORT": "0"}, "COLONIES_SERVER_PORT"),
    BadSetting("port too big", {"COLONIES_SERVER_PORT": "99999"}, "COLONIES_SERVER_PORT"),
    BadSetting("port negative", {"COLONIES_SERVER_PORT": "-1"}, "COLONIES_SERVER_PORT"),
    BadSetting("TLS flag", {"COLONIES_TLS": "maybe"}, "COLONIES_TLS"),
    BadSetting("server TLS flag", {"COLONIES_TLS": "", "COLONIES_SERVER_TLS": "sometimes"},  # "": unset
               "COLONIES_SERVER_TLS"),
]


def good_settings() -> dict[str, str]:
    """Settings that would work, but for the server: nothing listens on the port."""
    return {"COLONIES_SERVER_HOST": "127.0.0.1", "COLONIES_SERVER_PORT": str(free_port()),
            "COLONIES_TLS": "false", "COLONIES_COLONY_NAME": "dev",
            **{name: crypto.generate_private_key() for name in KEY_VARIABLES}}


@pytest.mark.parametrize("bad", BAD_SETTINGS, ids=[bad.name for bad in BAD_SETTINGS])
def test_every_command_reports_a_bad_setting_in_one_line(bad: BadSetting, files: Files) -> None:
    env = clean_env(**{**good_settings(), **bad.env})
    problems: dict[str, str | None] = {}
    for path in COMMANDS:
        if path in STARTERS or path in SETTINGS_FREE or (bad.keys_only and path in KEYLESS):
            continue
        args = plausible_args(path, files)
        problems[" ".join(args)] = one_line_problem(invoke(args, env), bad.needle)
    assert len(problems) > 40
    assert_all_one_line(problems)


def test_a_server_that_cannot_be_reached_is_one_line_exit_3(files: Files) -> None:
    env = clean_env(**good_settings())
    problems: dict[str, str | None] = {}
    for path in COMMANDS:
        if path in STARTERS or path in SETTINGS_FREE:
            continue
        args = plausible_args(path, files)
        result = invoke(args, env, stdin="1\n")  # an answer for `colonies run`
        problems[" ".join(args)] = one_line_problem(result, "cannot reach the colonies server") or (
            None if result.exit_code == 3 else f"exit {result.exit_code}, not 3")
    assert_all_one_line(problems)


# -- malformed ids and arguments, against a real server ---------------------------------------------

MALFORMED_IDS = ["zz", "", "a" * 65, "A" * 64, "../" + "a" * 61, "1" * 63 + "\u00e9"]


def colony_settings(colony: ColonyEnv) -> dict[str, str | None]:
    return clean_env(COLONIES_SERVER_HOST=colony.server.host, COLONIES_SERVER_PORT=str(colony.server.port),
                     COLONIES_TLS="false", COLONIES_COLONY_NAME=colony.colonyname,
                     COLONIES_PRVKEY=colony.user_prvkey, COLONIES_COLONY_PRVKEY=colony.colony_prvkey,
                     COLONIES_SERVER_PRVKEY=colony.server_prvkey)


def with_option(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with ``flag`` set to ``value`` (replaced if there, else added)."""
    if flag in args:
        changed = list(args)
        changed[args.index(flag) + 1] = value
        return changed
    return [*args, flag, value]


def test_every_id_option_refuses_malformed_ids_in_one_line(colony: ColonyEnv, files: Files) -> None:
    env = colony_settings(colony)
    problems: dict[str, str | None] = {}
    for path, command in COMMANDS.items():
        if path in STARTERS:
            continue
        for param in command.params:
            if not (param.name or "").endswith("id"):
                continue
            for value in MALFORMED_IDS:
                args = with_option(plausible_args(path, files), param.opts[0], value)
                problems[repr(args)] = one_line_problem(invoke(args, env))
    assert len(problems) > 80
    assert_all_one_line(problems)


def test_a_missing_required_option_is_one_line_exit_2() -> None:
    problems: dict[str, str | None] = {}
    for path, command in COMMANDS.items():
        if any(param.required for param in command.params):
            result = invoke(list(path), clean_env())
            problems[" ".join(path)] = one_line_problem(result, r"Missing option '--\w+'.*--help") or (
                None if result.exit_code == EXIT_USAGE else f"exit {result.exit_code}, not 2")
    assert len(problems) > 25
    assert_all_one_line(problems)


def test_a_group_without_a_command_still_shows_its_help() -> None:
    result = invoke(["process"], clean_env())
    assert "Usage:" in result.output and "ps" in result.output, result.output
    assert "Error" not in result.output


def bad_file(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def malformed_arguments(tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """(command, what its one error line must say) for values a user may get wrong."""
    missing = str(tmp_path / "missing.json")
    not_json = bad_file(tmp_path, "not.json", "{nope")
    number = bad_file(tmp_path, "number.json", "42")
    bad_field = bad_file(tmp_path, "field.json", json.dumps({"funcname": "f", "maxexectime": "soon"}))
    bad_nodes = bad_file(tmp_path, "nodes.json", json.dumps([1, 2]))
    for command in (["function", "submit"], ["workflow", "submit"], ["cron", "add", "--name", "c",
                                                                     "--interval", "10"]):
        for spec in (missing, not_json, number, bad_nodes):
            yield [*command, "--spec", spec], "Error: "
    yield ["function", "submit", "--spec", bad_field], "maxexectime"
    yield ["workflow", "submit", "--spec", bad_file(tmp_path, "wf.json", json.dumps([
        {"funcname": "f", "nodename": "a", "maxexectime": "soon"}]))], "maxexectime"
    exec_ = ["function", "exec", "--func", "f", "--executortype", "t"]
    yield [*exec_, "--kwargs", "nope"], "--kwargs"
    yield [*exec_, "--env", "NOEQUALS"], "--env"
    yield [*exec_, "--code", missing], "code file"
    yield [*exec_, "--priority", "high"], "--priority"
    yield [*exec_, "--timeout", "0", "--wait"], "--timeout"
    yield ["process", "ps", "--count", "0"], "--count"
    yield ["process", "ps", "--count", "many"], "--count"
    yield ["process", "assign", "--timeout", "0"], "--timeout"
    yield ["process", "get"], "--processid"
    yield ["channel", "append", "--processid", WELL_FORMED_ID, "--name", "c", "--payload", "p",
           "--sequence", "0"], "--sequence"
    yield ["channel", "append", "--processid", WELL_FORMED_ID, "--name", "c", "--payload", "p",
           "--type", "bogus"], "--type"
    yield ["channel", "read", "--processid", WELL_FORMED_ID], "--name"
    yield ["channel", "follow", "--processid", WELL_FORMED_ID, "--name", "c", "--timeout", "0"], "--timeout"
    yield ["process", "removeall", "--waiting", "--failed", "--yes"], "at most one"
    yield ["log", "get", "--executor", "x", "--count", "0"], "--count"
    yield ["log", "search", "--text", ""], "--text"
    yield ["location", "add", "--name", "x", "--long", "east"], "--long"
    yield ["location", "get"], "--name"
    yield ["user", "chid", "--userid", "zz"], "--userid"
    yield ["colony", "chid", "--colonyid", "AB" * 32], "--colonyid"
    yield ["server", "chid", "--serverid", "1", "--prvkey-file", missing], "give only one"
    yield ["executor", "chid", "--prvkey-file", bad_file(tmp_path, "ek", "zz")], "not a valid"
    yield ["executor", "add", "--spec", missing], "cannot read"
    yield ["executor", "add", "--spec", number], "JSON object"
    yield ["executor", "add", "--name", "x"], "--type"
    yield ["log", "search", "--text", "x", "--days", "99"], "--days"
    yield ["cron", "add", "--name", "c", "--spec", missing], "--cron or"
    yield ["cron", "add", "--name", "c", "--spec", bad_file(tmp_path, "c.json", json.dumps(
        [{"funcname": "f", "nodename": "a"}])), "--cron", "not a cron"], "Error: "
    for command in (["blueprint", "add"], ["blueprint", "update"], ["blueprint", "definition", "add"]):
        yield [*command, "--spec", missing], "cannot read"
        yield [*command, "--spec", not_json], "not valid JSON"
        yield [*command, "--spec", bad_nodes], "must hold a JSON object"
        yield [*command, "--spec", bad_file(tmp_path, "meta.json", json.dumps({"metadata": 1}))], "metadata"
    yield ["blueprint", "add", "--spec", bad_file(tmp_path, "nokind.json", json.dumps(
        {"metadata": {"name": "b"}}))], "blueprint.kind: is required"
    yield ["blueprint", "get", "--name", "nope"], "not found"
    yield ["blueprint", "history", "--name", "x", "--limit", "0"], "--limit"
    yield ["blueprint", "log", "--name", "x", "--count", "many"], "--count"
    yield ["blueprint", "set", "--name", "nope", "--key", "replicas", "--value", "1"], "not found"
    yield ["blueprint", "definition", "add", "--spec", bad_file(tmp_path, "schema.json", json.dumps(
        {"metadata": {"name": "d"}, "spec": {"names": {"kind": "K"}, "schema": {"type": 5},
                                             "handler": {"executorType": "t"}}}))], "not a valid JSON Schema"
    yield ["user", "add", "--name", "u", "--prvkey-file", str(tmp_path)], "cannot read"
    yield ["user", "add", "--name", "u", "--prvkey-file", bad_file(tmp_path, "k", "zz")], "not a valid"
    yield ["colony", "add", "--name", "c", "--colonyprvkey", "zz"], "--colonyprvkey"
    yield ["security", "id", "--prvkey", "zz"], "64 hex"
    yield ["security", "id", "--prvkey", "ff" * 32], "out of range"
    yield ["database", "migrate", "--db-url", "postgresql://bad host/x"], "migration failed"
    yield ["nosuchcommand"], "nosuchcommand"
    yield ["process", "ps", "--nosuchoption"], "--nosuchoption"


def test_malformed_arguments_are_one_line(colony: ColonyEnv, tmp_path: Path) -> None:
    env = colony_settings(colony)
    problems = {" ".join(args): one_line_problem(invoke(args, env), re.escape(needle))
                for args, needle in malformed_arguments(tmp_path)}
    assert_all_one_line(problems)


# -- real subprocesses ------------------------------------------------------------------------------


def run(env: Mapping[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    full.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run([*CLI, *args], env=full, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          check=False, stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess[str], code: int | None, needle: str) -> str:
    """The single ``Error: ...`` stderr line of a failed run (exit ``code`` if given)."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode != 0 and (code is None or result.returncode == code), (
        result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert re.search(needle, lines[0]), lines[0]
    return lines[0]


def test_the_issue_case_as_a_real_command() -> None:
    """``COLONIES_PRVKEY=zz colonies process ps`` (issue 10) and its kin, as the user runs them."""
    env = good_settings()
    line = one_line(run({**env, "COLONIES_PRVKEY": "zz"}, "process", "ps"), 1, "COLONIES_PRVKEY")
    assert "zz" not in line, "a key is never echoed"
    one_line(run({**env, "COLONIES_SERVER_HOST": "bad host"}, "colony", "ls"), 1, "COLONIES_SERVER_HOST")
    one_line(run({**env, "COLONIES_SERVER_PORT": "99999"}, "server", "alive"), 1, "COLONIES_SERVER_PORT")
    one_line(run(env, "process", "get"), EXIT_USAGE, "Missing option")


def test_unresolvable_host_and_tls_mismatch_are_unreachable(colony: ColonyEnv) -> None:
    env = colony_settings(colony)
    one_line(run({**env, "COLONIES_SERVER_HOST": "no-such-host.invalid"}, "process", "ps"), 3,
             "cannot reach.*no-such-host.invalid")
    # https to a plain-http server: the TLS handshake fails.
    one_line(run({**env, "COLONIES_TLS": "true"}, "process", "ps"), 3, "cannot reach.*https://")
    one_line(run({**env, "COLONIES_TLS": "true"}, "server", "alive"), 3, "cannot reach.*https://")


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["server", "start"], {"COLONIES_SERVER_PORT": "http"}, "COLONIES_SERVER_PORT"),
    (["dev"], {"COLONIES_SERVER_PORT": "http"}, "COLONIES_SERVER_PORT"),
    (["dev", "--port", "0"], {}, "--port"),
    (["executor", "start"], {"COLONIES_PRVKEY": "zz"}, "COLONIES_PRVKEY"),
    (["executor", "start"], {"COLONIES_SERVER_PORT": "0"}, "COLONIES_SERVER_PORT"),
    (["executor", "start"], {"COLONIES_SERVER_HOST": "bad host"}, "COLONIES_SERVER_HOST"),
    (["executor", "start"], {"COLONIES_PRVKEY": "ff" * 32}, "COLONIES_PRVKEY"),
], ids=["server-port", "dev-port-env", "dev-port-flag", "executor-key", "executor-port", "executor-host",
        "executor-key-range"])
def test_the_starters_check_their_settings_first(args: list[str], env: dict[str, str], needle: str,
                                                 tmp_path: Path) -> None:
    settings = {**good_settings(), "COLONIES_DATA_DIR": str(tmp_path), **env}
    one_line(run(settings, *args), None, needle)
