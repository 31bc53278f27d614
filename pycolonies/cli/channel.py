"""``colonies channel``: a process's channels (append, read, follow), as its submitter or its
assigned executor (COLONIES_PRVKEY)."""

from __future__ import annotations

import base64
import json
import sys
from typing import Annotated, Any

import typer

from pycolonies.cli.common import JsonOption, format_time, info, print_table, session

app = typer.Typer(no_args_is_help=True, help="Append to, read and follow a process's channels.")

ProcessIdOption = Annotated[str, typer.Option("--processid", "-p", help="Id of the process")]
NameOption = Annotated[str, typer.Option("--name", "-n", help="Channel name (one of the spec's channels)")]
AfterOption = Annotated[int, typer.Option("--after", min=0, help="Only entries after this sequence")]
PAYLOAD_TYPES = ("data", "end", "error")


def payload_text(payload: bytes) -> str:
    """A payload as printed: its text if it is UTF-8, else ``base64:<...>``."""
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(payload).decode()


def entry_json(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry for --json: the payload as text when it is UTF-8, else as ``base64:<...>``."""
    return {**entry, "payload": payload_text(entry["payload"])}


@app.command("append")
def channel_append(
    processid: ProcessIdOption,
    name: NameOption,
    payload: Annotated[str, typer.Option("--payload", "-m", help="The entry's text")],
    sequence: Annotated[int | None, typer.Option(
        min=1, help="The entry's sequence (default: one past the channel's last)")] = None,
    inreplyto: Annotated[int, typer.Option(min=0, help="Sequence of the entry this one answers")] = 0,
    payload_type: Annotated[str, typer.Option(
        "--type", help="Entry type: data, end or error (default none)")] = "",
) -> None:
    """Append an entry to a channel of a process."""
    if payload_type and payload_type not in PAYLOAD_TYPES:
        raise typer.BadParameter("must be data, end or error", param_hint="--type")
    with session() as (settings, client):
        prvkey = settings.key()
        if sequence is None:
            entries = client.channel_read(processid, name, 0, 0, prvkey)
            sequence = max((entry["sequence"] for entry in entries), default=0) + 1
        client.channel_append(processid, name, sequence, payload, prvkey, inreplyto=inreplyto,
                              payloadtype=payload_type)
        info(f"Appended entry {sequence} to channel {name} of process {processid}")


@app.command("read")
def channel_read(
    processid: ProcessIdOption,
    name: NameOption,
    after: AfterOption = 0,
    limit: Annotated[int, typer.Option(min=0, help="At most this many entries (0: all)")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List a channel's entries in sequence order."""
    with session() as (settings, client):
        entries = client.channel_read(processid, name, after, limit, settings.key())
    if as_json:
        typer.echo(json.dumps([entry_json(entry) for entry in entries], indent=2))
        return
    if not entries:
        info(f"No entries in channel {name}")
        return
    print_table(entries, [
        ("Sequence", lambda e: e["sequence"]),
        ("In reply to", lambda e: e.get("inreplyto") or ""),
        ("Type", lambda e: e.get("type") or ""),
        ("Sender", lambda e: (e.get("senderid") or "")[:12]),
        ("Time", lambda e: format_time(e.get("timestamp"))),
        ("Payload", lambda e: payload_text(e["payload"])),
    ])


@app.command("follow")
def channel_follow(
    processid: ProcessIdOption,
    name: NameOption,
    after: AfterOption = 0,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds to follow")] = 60,
    as_json: JsonOption = False,
) -> None:
    """Print a channel's entries as they are appended (those already there first), one a line,
    until --timeout passes or the process ends."""
    with session() as (settings, client):
        for entry in client.follow_channel(processid, name, settings.key(), afterseq=after, timeout=timeout):
            line = json.dumps(entry_json(entry)) if as_json else payload_text(entry["payload"])
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
