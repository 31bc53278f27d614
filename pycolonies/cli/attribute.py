"""``colonies attribute``: key/value attributes of processes (add, get)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pycolonies import wire
from pycolonies.cli.common import JsonOption, info, pick, print_json, print_table, session

app = typer.Typer(no_args_is_help=True, help="Manage process attributes.")

ATTRIBUTE_TYPES = {wire.IN: "In", wire.OUT: "Out", wire.ERR: "Err", wire.ENV: "Env"}


def type_label(attributetype: Any) -> str:
    return ATTRIBUTE_TYPES.get(attributetype, "Unknown")


@app.command("add")
def attribute_add(
    processid: Annotated[str, typer.Option("--processid", "-p", help="Id of a running process")],
    key: Annotated[str, typer.Option(help="Attribute key")],
    value: Annotated[str, typer.Option(help="Attribute value")],
) -> None:
    """Attach an attribute to a running process (COLONIES_PRVKEY of its executor).

    Only the executor the process is assigned to may do so; the attribute's type is Out."""
    with session() as (settings, client):
        attribute = client.add_attribute(processid, key, value, settings.key())
    typer.echo(f"AttributeId: {attribute.get('attributeid', '')}")
    info(f"Attribute {key} added to process {processid}")


@app.command("get")
def attribute_get(
    attributeid: Annotated[str, typer.Option(help="Attribute id")],
    json_output: JsonOption = False,
) -> None:
    """Show an attribute (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        attribute = client.get_attribute(attributeid, settings.key())
    if json_output:
        print_json(attribute)
        return
    print_table([attribute], [
        ("AttributeId", pick("attributeid")),
        ("TargetId", pick("targetid")),
        ("Key", pick("key")),
        ("Value", pick("value")),
        ("Type", lambda a: type_label(a.get("attributetype"))),
    ])
