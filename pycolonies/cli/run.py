"""``colonies run``: interactive mode (pick a registered function, enter inputs, submit, watch).

The menu and the questions go to stderr; stdout gets only the output (JSON), as with
``function exec --wait``. Answers come from the terminal, or, when stdin is not a terminal, one
per line from stdin, in this order:

1. the function: its number in the menu or its name (``scale`` finds ``pkg.mod.scale``);
2. for a function registered with argument names: one JSON value per name (an empty line leaves it
   out; ``*name`` takes a JSON list, ``**name`` a JSON object); otherwise the args (a JSON list)
   and then the kwargs (a JSON object). Instead of the first value, ``@file.json`` loads
   ``{"args": [...], "kwargs": {...}}`` (or just a list of args) from a file.

A bare word that is not JSON is taken as a string. On a terminal a bad answer is asked again;
piped, it is an error (exit 1), as is running out of answers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.table import Table
from rich.text import Text

from pycolonies.cli.common import CliError, info, session, table_box
from pycolonies.cli.function import load_json
from pycolonies.cli.progress import DEFAULT_TIMEOUT, follow, process_result, watch_process
from pycolonies.functions import func_spec
from pycolonies.models import Function, FunctionArg

JSON_STARTS = ("[", "{", '"')


@dataclass
class Answers:
    """Where answers come from: the terminal (``piped`` is None) or the lines piped on stdin."""

    console: Console
    piped: list[str] | None = None

    @classmethod
    def from_stdin(cls, console: Console) -> Answers:
        if sys.stdin.isatty():
            return cls(console)
        text = sys.stdin.read()
        if not text.strip():
            raise CliError("stdin is not a terminal and no answers were piped: run 'colonies run' in a "
                           "terminal, or pipe the answers one per line")
        return cls(console, text.splitlines())

    def ask(self, question: str, default: str = "") -> str:
        if self.piped is None:
            try:
                return Prompt.ask(question, console=self.console, default=default,
                                  show_default=bool(default)).strip()
            except EOFError:
                raise CliError("aborted: nothing was submitted") from None
            except KeyboardInterrupt:
                raise CliError("interrupted: nothing was submitted", 130) from None
        if not self.piped:
            raise CliError(f"ran out of piped answers at: {Text.from_markup(question).plain}")
        answer = self.piped.pop(0)
        self.console.print(f"{question}: {escape(answer)}")
        return answer.strip() or default

    def until_valid(self, question: str, parse: Callable[[str], Any], default: str = "") -> Any:
        """Ask until ``parse(answer)`` does not raise ValueError (piped: fail at once)."""
        while True:
            answer = self.ask(question, default)
            try:
                return parse(answer)
            except ValueError as exc:
                if self.piped is not None:
                    raise CliError(f"{exc}") from None
                self.console.print(f"[red]{escape(str(exc))}[/]")


# -- the menu ---------------------------------------------------------------------------------------


@dataclass
class Choice:
    """One function to offer: a (executor type, name) pair and the executors offering it."""

    funcname: str
    executortype: str
    args: list[FunctionArg] = field(default_factory=list)
    description: str = ""
    executors: int = 0


def choices(registered: list[dict[str, Any]]) -> list[Choice]:
    found: dict[tuple[str, str], Choice] = {}
    for function in (Function.from_wire(f) for f in registered):
        key = (function.executortype, function.funcname)
        choice = found.setdefault(key, Choice(function.funcname, function.executortype))
        choice.executors += 1
        choice.args = choice.args or function.args
        choice.description = choice.description or function.description
    return sorted(found.values(), key=lambda c: (c.funcname, c.executortype))


def show_menu(console: Console, offered: list[Choice]) -> None:
    table = Table(box=table_box(), title="Registered functions", header_style="bold")
    for header in ("#", "FUNCTION", "ARGS", "EXECUTOR TYPE", "EXECUTORS"):
        table.add_column(header, overflow="fold")
    for number, choice in enumerate(offered, 1):
        table.add_row(str(number), escape(choice.funcname), escape(", ".join(a.name for a in choice.args)),
                      escape(choice.executortype), str(choice.executors))
    console.print(table)


def pick(answer: str, offered: list[Choice]) -> Choice:
    """The function a menu answer names: its number, its name, or the unique one ending in ``.name``."""
    if answer.isdigit() and 1 <= int(answer) <= len(offered):
        return offered[int(answer) - 1]
    matches = [c for c in offered if c.funcname == answer] or [
        c for c in offered if c.funcname.rsplit(".", 1)[-1] == answer]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"{answer!r} is offered by several executor types: answer with its number")
    raise ValueError(f"no function {answer!r}: answer with a number from 1 to {len(offered)} or a name")


# -- the inputs -------------------------------------------------------------------------------------


def json_answer(text: str) -> Any:
    """A JSON value; a bare word that does not look like JSON is a string."""
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.startswith(JSON_STARTS):
            raise ValueError(f"not valid JSON: {text!r} ({exc})") from None
        return text


def typed(expected: type, what: str) -> Callable[[str], Any]:
    """A parser for a JSON list or object (empty: an empty one)."""
    def parse(text: str) -> Any:
        value = json_answer(text) if text else expected()
        if not isinstance(value, expected):
            kind = "list" if expected is list else "object"
            raise ValueError(f"{what} must be a JSON {kind}, not {text!r}")
        return value

    return parse


@dataclass(frozen=True)
class FromFile:
    """An ``@file.json`` answer."""

    path: Path


SKIP = object()  # an empty answer: leave the argument out


def inputs_file(source: FromFile) -> tuple[list[Any], dict[str, Any]]:
    data = load_json(source.path, "inputs file")
    if isinstance(data, list):
        return data, {}
    if (isinstance(data, dict) and set(data) <= {"args", "kwargs"}
            and isinstance(data.get("args", []), list) and isinstance(data.get("kwargs", {}), dict)):
        return list(data.get("args", [])), dict(data.get("kwargs", {}))
    raise CliError(f'the inputs file {source.path} must hold a JSON list of args or {{"args": [...], '
                   '"kwargs": {...}}')


def value_parser(parse: Callable[[str], Any], *, file_allowed: bool, required: bool = False
                 ) -> Callable[[str], Any]:
    """``parse`` for an answer, where ``@path`` may name an inputs file and empty means ``SKIP``."""
    def parser(text: str) -> Any:
        if file_allowed and text.startswith("@"):
            return FromFile(Path(text[1:]).expanduser())
        if not text:
            if required:
                raise ValueError("an answer is required")
            return SKIP
        return parse(text)

    return parser


def ask_inputs(answers: Answers, choice: Choice) -> tuple[list[Any], dict[str, Any]]:
    """The args and kwargs, one answer per registered argument (or a list and an object)."""
    answers.console.print("Enter each value as JSON (an empty answer leaves it out), "
                          "or @file.json to load the inputs from a file.")
    if not choice.args:
        args_parser = value_parser(typed(list, "args"), file_allowed=True)
        first = answers.until_valid("args (a JSON list)", args_parser)
        if isinstance(first, FromFile):
            return inputs_file(first)
        kwargs = answers.until_valid("kwargs (a JSON object)", typed(dict, "kwargs"))
        return ([] if first is SKIP else first), kwargs
    args: list[Any] = []
    kwargs = {}
    positional = True
    for index, arg in enumerate(choice.args):
        question, parse = _question(arg), json_answer
        if arg.name.startswith("**"):
            question, parse = question + " (a JSON object)", typed(dict, arg.name)
        elif arg.name.startswith("*"):
            question, parse = question + " (a JSON list)", typed(list, arg.name)
        value = answers.until_valid(question, value_parser(parse, file_allowed=index == 0,
                                                           required=arg.required))
        if isinstance(value, FromFile):
            return inputs_file(value)
        if arg.name.startswith("**"):
            kwargs.update({} if value is SKIP else value)
        elif arg.name.startswith("*"):
            args.extend([] if value is SKIP else value)
            positional = False  # what follows *args is keyword-only
        elif value is SKIP:
            positional = False  # later arguments go by name
        elif positional:
            args.append(value)
        else:
            kwargs[arg.name] = value
    return args, kwargs


def _question(arg: FunctionArg) -> str:
    details = ", ".join(part for part in (arg.type, "required" if arg.required else "") if part)
    text = f"[bold]{escape(arg.name)}[/]" + (f" ({escape(details)})" if details else "")
    return text + (f" - {escape(arg.description)}" if arg.description else "")


# -- the command ------------------------------------------------------------------------------------


def run_interactive(
    timeout: Annotated[float, typer.Option(
        min=0.1, help="Give up waiting after this many seconds (exit 4; the process is left as it is)")
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Interactive mode: pick a registered function, enter its inputs as JSON (or load them from a
    file), submit it, watch it run and print its output. Piped answers (one per line) work too."""
    with session() as (settings, client):
        colonyname, prvkey = settings.colony(), settings.key()
        stderr = Console(stderr=True, highlight=False)
        answers = Answers.from_stdin(stderr)
        offered = choices(client.get_functions_by_colony(colonyname, prvkey))
        if not offered:
            raise CliError(f"no functions are registered in colony {colonyname}: start an executor "
                           "(colonies executor start) or submit with 'colonies function exec'")
        show_menu(stderr, offered)
        default = "1" if len(offered) == 1 else ""
        choice = answers.until_valid("Function (number or name)", lambda text: pick(text, offered), default)
        args, kwargs = ask_inputs(answers, choice)
        spec = func_spec(func=choice.funcname, args=args, kwargs=kwargs, colonyname=colonyname,
                         executortype=choice.executortype)
        process = client.submit_func_spec(spec, prvkey)
        info(f"Submitted process {process.processid} ({choice.funcname} on {choice.executortype})")
        ended = follow(lambda: watch_process(client, process, prvkey, timeout),
                       f"process {process.processid}")
        process_result(ended, as_json=False)
