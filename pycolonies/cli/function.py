"""``colonies function``: registered functions (ls, remove) and submitting them (submit, exec).

``submit`` and ``exec`` print the new process id at once (the reference's default); with
``--wait`` they show its progress on stderr until it ends and print its output as JSON (see
:mod:`pycolonies.cli.progress` for the exit codes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pycolonies import wire
from pycolonies.cli.common import (
    CliError,
    JsonOption,
    info,
    print_json,
    session,
    shorten,
)
from pycolonies.cli.log import follow_log
from pycolonies.cli.progress import DEFAULT_TIMEOUT, safe_table, submitted_process
from pycolonies.client import Colonies
from pycolonies.functions import func_spec
from pycolonies.models import FieldError, FuncSpec, Function, Process

app = typer.Typer(no_args_is_help=True, help="List, submit and run functions.")

WaitOption = Annotated[bool, typer.Option(
    "--wait/--no-wait", help="Wait for the process to end and print its output (default: print its id)")]
TimeoutOption = Annotated[float, typer.Option(
    min=0.1, help="With --wait: give up after this many seconds (exit 4; the process is left as it is)")]
OutOption = Annotated[bool, typer.Option(
    "--out", help="With --wait or --follow: print the output values space-joined, not as JSON")]
FollowOption = Annotated[bool, typer.Option(
    "--follow", help="Print the process's log as it runs, until it ends (exit 1 if it fails)")]


def _check_result_options(*, wait: bool, out: bool, follow: bool) -> None:
    """Before anything is submitted: --out prints a result, so something must wait for it."""
    if out and not (wait or follow):
        raise CliError("--out needs --wait or --follow")
    if wait and follow:
        raise CliError("give --wait or --follow, not both (--follow waits too)")


def _after_submit(client: Colonies, process: Process, prvkey: str, colonyname: str, *, wait: bool,
                  timeout: float, as_json: bool, out: bool, follow: bool) -> None:
    def follow_logs() -> None:
        try:
            follow_log(client, colonyname, process.processid, None, wire.MAX_LOG_COUNT, 0, prvkey)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    submitted_process(client, process, prvkey, wait=wait, timeout=timeout, as_json=as_json, out=out,
                      follow_logs=follow_logs if follow else None)


# -- JSON input (shared with process, workflow and run) ----------------------------------------------


def parse_value(text: str) -> Any:
    """A command-line value: JSON if it parses (``42``, ``"a b"``, ``[1, 2]``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_args(values: list[str] | None) -> list[Any]:
    """``--args`` values: each one argument (JSON, or else a string); a value that is not JSON but
    has commas is split on them, as the reference CLI's ``--args a,b``."""
    args: list[Any] = []
    for text in values or []:
        try:
            args.append(json.loads(text))
        except ValueError:
            args.extend(parse_value(part) for part in text.split(","))
    return args


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs``: a JSON object, or the reference CLI's ``k:v,k2:v2`` (values JSON or strings)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
        pairs = [part.partition(":") for part in text.split(",")]
        if all(sep and key for key, sep, _ in pairs):
            value = {key.strip(): parse_value(val) for key, _, val in pairs}
    if not isinstance(value, dict):
        raise CliError(f"--kwargs must be a JSON object or k:v,k2:v2 pairs, not {text!r}")
    return value


def load_json(path: Path, what: str) -> Any:
    """A JSON file's content; a missing or invalid file is a one-line error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"the {what} {path} is not valid JSON: {exc}") from None


def spec_from_json(data: Any, colonyname: str, where: str) -> FuncSpec:
    """A function spec from a JSON object; an empty ``conditions.colonyname`` becomes the colony."""
    if not isinstance(data, dict):
        raise CliError(f"{where} must be a JSON object (a function spec), not {type(data).__name__}")
    try:
        spec = FuncSpec.from_wire(data)
    except FieldError as exc:
        raise CliError(f"{where}: {exc}") from None
    if not spec.conditions.colonyname:
        spec.conditions.colonyname = colonyname
    if not spec.nodename:
        spec.nodename = spec.funcname
    return spec


# -- commands ------------------------------------------------------------------------------------------


def _timing(minimum: float, average: float, maximum: float, counter: int) -> str:
    if not counter:
        return ""
    return f"{minimum:.3f} / {average:.3f} / {maximum:.3f}"


def _arg_names(function: Function) -> str:
    return ", ".join(arg.name for arg in function.args)


@app.command("ls")
def function_ls(
    ids: Annotated[bool, typer.Option("--ids", "-i", help="Show the FUNCTIONID column")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the functions registered by the colony's executors, with call counts and wait/exec
    times in seconds (min / avg / max)."""
    with session() as (settings, client):
        colonyname = settings.colony()
        functions = client.get_functions_by_colony(colonyname, settings.key())
        if as_json:
            print_json(functions)
            return
        if not functions:
            info(f"No functions found in colony {colonyname}")
            return
        rows = sorted((Function.from_wire(f) for f in functions),
                      key=lambda f: (f.executortype, f.funcname, f.executorname))
        columns = [("Funcname", lambda f: f.funcname), ("Args", lambda f: shorten(_arg_names(f), 40)),
                   ("Executor type", lambda f: f.executortype), ("Executor name", lambda f: f.executorname),
                   ("Calls", lambda f: f.counter),
                   ("Wait s (min/avg/max)", lambda f: _timing(f.minwaittime, f.avgwaittime, f.maxwaittime,
                                                              f.counter)),
                   ("Exec s (min/avg/max)", lambda f: _timing(f.minexectime, f.avgexectime, f.maxexectime,
                                                              f.counter))]
        if ids:
            columns.insert(0, ("Functionid", lambda f: f.functionid))
        safe_table(rows, columns)


@app.command("remove")
def function_remove(
    functionid: Annotated[str, typer.Option("--functionid", help="Id of the function (function ls -i)")],
) -> None:
    """Remove a registered function (signed by the executor that registered it, COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.remove_function(functionid, settings.key())
        info(f"Function {functionid} removed")


@app.command("submit")
def function_submit(
    spec_file: Annotated[Path, typer.Option("--spec", help="A function spec (JSON object)")],
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    out: OutOption = False,
    follow: FollowOption = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a function spec from a JSON file (its empty conditions.colonyname becomes
    COLONIES_COLONY_NAME); print the process id, with --wait its output, or with --follow its log
    as it runs."""
    _check_result_options(wait=wait, out=out, follow=follow)
    with session() as (settings, client):
        data = load_json(spec_file, "spec file")
        if isinstance(data, list):
            raise CliError(f"{spec_file} holds a list of specs: submit it with 'colonies workflow submit'")
        spec = spec_from_json(data, settings.colony(), str(spec_file))
        prvkey = settings.key()
        process = client.submit_func_spec(spec, prvkey)
        _after_submit(client, process, prvkey, spec.conditions.colonyname, wait=wait, timeout=timeout,
                      as_json=as_json, out=out, follow=follow)


@app.command("exec")
def function_exec(
    func: Annotated[str, typer.Option("--func", help="Function name")],
    executortype: Annotated[str, typer.Option(
        "--executortype", "--targettype", help="Executor type that runs it")],
    args: Annotated[list[str] | None, typer.Option(
        "--args", help="An argument, as JSON (else a string; a,b gives two); repeatable")] = None,
    kwargs: Annotated[str | None, typer.Option(
        "--kwargs", help='Keyword arguments: a JSON object ({"k": 1}) or k:v,k2:v2')] = None,
    maxexectime: Annotated[int, typer.Option(help="Seconds it may run (-1: no limit)")] = -1,
    maxwaittime: Annotated[int, typer.Option(help="Seconds it may wait for an executor (-1: no limit)")] = -1,
    maxretries: Annotated[int, typer.Option(help="Retries after a timeout (-1: no limit)")] = -1,
    priority: Annotated[int, typer.Option(help="Priority (higher runs first)")] = 1,
    label: Annotated[str, typer.Option(help="A label for the process")] = "",
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="An environment entry KEY=VALUE for the executor; repeatable")] = None,
    code: Annotated[Path | None, typer.Option(
        help="A Python source file defining the function, shipped for code-running executors")] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    out: OutOption = False,
    follow: FollowOption = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a function call built from flags; print the process id, with --wait its output, or
    with --follow its log as it runs."""
    _check_result_options(wait=wait, out=out, follow=follow)
    with session() as (settings, client):
        source = _read_code(code) if code is not None else None
        spec = func_spec(func=func, args=parse_args(args), colonyname=settings.colony(),
                         executortype=executortype, priority=priority, maxexectime=maxexectime,
                         maxretries=maxretries, maxwaittime=maxwaittime, code=source,
                         kwargs=parse_kwargs(kwargs))
        spec.label = label
        spec.env.update(_env_entries(env))
        prvkey = settings.key()
        process = client.submit_func_spec(spec, prvkey)
        _after_submit(client, process, prvkey, settings.colony(), wait=wait, timeout=timeout,
                      as_json=as_json, out=out, follow=follow)


def _read_code(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read the code file {path}: {exc.strerror or exc}") from None


def _env_entries(entries: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise CliError(f"--env takes KEY=VALUE, not {entry!r}")
        env[key] = value
    return env
