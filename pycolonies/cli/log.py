"""``colonies log``: process and executor logs (get, search)."""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from pycolonies import wire
from pycolonies.cli.common import (
    ColonyOption,
    JsonOption,
    fail,
    format_time,
    info,
    print_details,
    print_json,
    session,
)
from pycolonies.client import Colonies
from pycolonies.pubsub import FINAL_STATES

app = typer.Typer(no_args_is_help=True, help="Read process and executor logs.")

FOLLOW_POLL_SECONDS = 0.5
NS_PER_DAY = 86_400 * 10**9

# A message in logrus's text format, which executors written in Go produce.
_LOGRUS = re.compile(r'^time="([^"]+)"\s+level=(\w+)\s+msg="(.*)"$')

ProcessIdOption = Annotated[str | None, typer.Option("--processid", "-p", help="Process id")]
ExecutorOption = Annotated[str | None, typer.Option(
    "--executor", "--executorname", "-e", help="Executor name (its logs from all its processes)")]


def format_message(message: str) -> str:
    """A log message as printed: logrus lines become ``[time] LEVEL   msg``, others are unchanged."""
    match = _LOGRUS.match(message.rstrip("\n"))
    if match is None:
        return message
    stamp, level, text = match.groups()
    return f"[{stamp}] {level.upper():<7} {text}\n"


def log_time(entry: dict[str, Any]) -> str:
    return format_time(datetime.fromtimestamp(int(entry.get("timestamp") or 0) / 1e9, UTC))


def _write(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        sys.stdout.write(format_message(str(entry.get("message", ""))))
    sys.stdout.flush()


def _by_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda entry: int(entry.get("timestamp") or 0))


@app.command("get")
def log_get(
    processid: ProcessIdOption = None,
    executor: ExecutorOption = None,
    count: Annotated[int, typer.Option(help="Number of messages to fetch (at most 500)")] = 100,
    since: Annotated[int, typer.Option(help="Only messages after this Unix time in nanoseconds")] = 0,
    latest: Annotated[bool, typer.Option(
        "--latest", "-l", help="The most recent --count messages (the default)")] = True,
    first: Annotated[bool, typer.Option("--first", "-f", help="The first --count messages")] = False,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Keep printing new messages until the process ends (Ctrl-C to stop)")] = False,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a process's or an executor's log messages (COLONIES_PRVKEY).

    Messages are printed raw, oldest first: the latest --count by default, the first --count with
    --first, or those after --since. --follow keeps printing new ones until the process ends."""
    if bool(processid) == bool(executor):
        fail("give either --processid or --executor")
    if count < 1:
        fail("--count must be at least 1")
    if follow and json_output:
        fail("--follow prints messages as they come; it cannot be combined with --json")
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        if follow:
            try:
                follow_log(client, colonyname, processid, executor, min(count, wire.MAX_LOG_COUNT), since,
                           key)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            return
        use_latest = latest and not first and since == 0
        if processid:
            logs = client.get_process_log(colonyname, processid, count, since, key, latest=use_latest)
        else:
            logs = client.get_executor_log(colonyname, executor or "", count, since, key, latest=use_latest)
    logs = _by_time(logs)
    if json_output:
        print_json(logs)
    elif not logs:
        info("No logs found")
    else:
        _write(logs)


def follow_log(client: Colonies, colonyname: str, processid: str | None, executor: str | None,
               page_size: int, since: int, key: str) -> None:
    """Print messages as they arrive; for a process, stop once it has ended and all is printed."""
    last = since
    while True:
        ended = bool(processid) and client.get_process(processid or "", key).state in FINAL_STATES
        while True:
            if processid:
                page = client.get_process_log(colonyname, processid, page_size, last, key)
            else:
                page = client.get_executor_log(colonyname, executor or "", page_size, last, key)
            page = _by_time(page)
            _write(page)
            if page:
                last = int(page[-1].get("timestamp") or last)
            if len(page) < page_size:
                break
        if ended:
            return
        time.sleep(FOLLOW_POLL_SECONDS)


@app.command("search")
def log_search(
    text: Annotated[str, typer.Option("--text", "-t", help="Text to look for (case-insensitive)")],
    days: Annotated[int, typer.Option("--days", "-d", help="How many days back to search")] = 1,
    count: Annotated[int, typer.Option(help="Number of results (the most recent)")] = 10,
    print_logs: Annotated[bool, typer.Option(
        "--print", help="Print each result's process log around it instead of the result")] = False,
    seconds: Annotated[int, typer.Option(
        help="With --print: seconds of log before the result to include")] = 1,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Find log messages containing a text (COLONIES_PRVKEY).

    Searches (on the server) what was logged in the colony in the last --days days,
    case-insensitively, and shows the most recent --count matches, newest first."""
    if not text:
        fail("--text must not be empty")
    if not 1 <= days <= 30 or not 1 <= count <= wire.MAX_COUNT:
        fail(f"--days must be between 1 and 30 and --count between 1 and {wire.MAX_COUNT}")
    with session() as (settings, client):
        colonyname, key = settings.colony(colony), settings.key()
        matches = client.search_logs(colonyname, text, days, count, key)
        if json_output:
            print_json(matches)
            return
        if not matches:
            info("No logs found")
            return
        for match in matches:
            if print_logs:
                _print_context(client, colonyname, match, seconds, key)
            else:
                print_details([("Timestamp", log_time(match)), ("ExecutorName", match.get("executorname")),
                               ("ProcessID", match.get("processid")),
                               ("Text", str(match.get("message", "")).rstrip("\n"))])


def _print_context(client: Colonies, colonyname: str, match: dict[str, Any], seconds: int, key: str) -> None:
    """The result's process log from ``seconds`` before it (up to 100 messages), between markers."""
    start = max(int(match.get("timestamp") or 0) - seconds * 10**9, 0)
    context = client.get_process_log(colonyname, str(match.get("processid", "")), 100, start, key)
    typer.echo(f"Timestamp: {log_time(match)}")
    typer.echo(f"ProcessID: {match.get('processid', '')}")
    typer.echo(f"ExecutorName: {match.get('executorname', '')}")
    typer.echo("=================== LOGS ====================")
    _write(_by_time(context))
    typer.echo("================= END LOGS ==================")
    typer.echo()

