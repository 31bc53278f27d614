"""``colonies blueprint``: declarative resources and their reconcilers (add, get, ls, update, set,
remove, reconcile, history, log, and ``definition add|get|ls|remove``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pycolonies.cli.common import (
    CliError,
    ColonyOption,
    JsonOption,
    format_time,
    info,
    pick,
    print_details,
    print_json,
    print_listing,
    session,
)

app = typer.Typer(no_args_is_help=True,
                  help="Manage blueprints (declarative resources and their reconcilers).")
definition_app = typer.Typer(no_args_is_help=True, help="Manage blueprint definitions (kinds, colony owner).")
app.add_typer(definition_app, name="definition")

NameOption = Annotated[str, typer.Option("--name", help="Blueprint name")]
DefinitionNameOption = Annotated[str, typer.Option("--name", help="Blueprint definition name")]
SpecOption = Annotated[Path, typer.Option("--spec", help="JSON file with the object")]


def load_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; CliError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object")
    return data


def _in_colony(obj: dict[str, Any], colonyname: str) -> dict[str, Any]:
    """``obj`` with ``metadata.colonyname`` defaulting to the configured colony."""
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise CliError("metadata must be a JSON object")
    metadata = dict(metadata or {})
    if not metadata.get("colonyname") and not metadata.get("namespace"):
        metadata["colonyname"] = colonyname
    return {**obj, "metadata": metadata}


def _meta(key: str) -> Any:
    return lambda bp: (bp.get("metadata") or {}).get(key, "")


def _spec(key: str) -> Any:
    return lambda bp: (bp.get("spec") or {}).get(key, "")


def parse_value(value: str) -> Any:
    """A ``set --value``: JSON when it parses (numbers, booleans, objects ...), else the text."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def set_path(spec: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``spec`` with ``key`` (``a.b.c``, optionally starting with ``spec.``) set."""
    parts = key.removeprefix("spec.").split(".")
    if not all(parts):
        raise CliError(f"--key {key!r} is not a dotted path such as replicas or template.image")
    result = json.loads(json.dumps(spec))
    node = result
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise CliError(f"--key {key!r}: {part} is not an object in the spec")
        node = child
    node[parts[-1]] = value
    return result


# -- definitions ----------------------------------------------------------------------------------


@definition_app.command("add")
def definition_add(spec: SpecOption, colony: ColonyOption = None) -> None:
    """Add a blueprint definition: a kind, its JSON Schema and its reconciler (COLONIES_COLONY_PRVKEY)."""
    with session() as (settings, client):
        definition = _in_colony(load_object(spec), settings.colony(colony))
        added = client.add_blueprint_definition(definition, settings.colony_key())
    typer.echo(f"BlueprintDefinitionId: {added.get('blueprintdefinitionid', '')}")
    info(f"Blueprint definition {added['metadata']['name']} added")


@definition_app.command("get")
def definition_get(name: DefinitionNameOption, colony: ColonyOption = None, json_output: JsonOption = False
                   ) -> None:
    """Show a blueprint definition (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        definition = client.get_blueprint_definition(settings.colony(colony), name, settings.key())
    if json_output:
        print_json(definition)
        return
    spec = definition.get("spec") or {}
    handler = spec.get("handler") or {}
    print_details([
        ("Id", definition.get("blueprintdefinitionid")),
        ("Name", definition["metadata"].get("name")),
        ("Colony", definition["metadata"].get("colonyname")),
        ("Kind", (spec.get("names") or {}).get("kind")),
        ("Executor Type", handler.get("executorType")),
        ("Function", handler.get("functionName")),
    ], title="Blueprint definition")
    typer.echo(json.dumps(spec.get("schema"), indent=2))


@definition_app.command("ls")
def definition_ls(colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """List the colony's blueprint definitions (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        definitions = client.get_blueprint_definitions(settings.colony(colony), settings.key())
    print_listing(definitions, [
        ("Name", _meta("name")),
        ("Kind", lambda d: ((d.get("spec") or {}).get("names") or {}).get("kind", "")),
        ("Executor Type", lambda d: ((d.get("spec") or {}).get("handler") or {}).get("executorType", "")),
        ("FunctionName", lambda d: ((d.get("spec") or {}).get("handler") or {}).get("functionName", "")),
    ], json_output=json_output, empty="No blueprint definitions found")


@definition_app.command("remove")
def definition_remove(name: DefinitionNameOption, colony: ColonyOption = None) -> None:
    """Remove a blueprint definition that no blueprint uses (COLONIES_COLONY_PRVKEY)."""
    with session() as (settings, client):
        client.remove_blueprint_definition(settings.colony(colony), name, settings.colony_key())
    info(f"Blueprint definition {name} removed")


# -- blueprints -----------------------------------------------------------------------------------


@app.command("add")
def blueprint_add(spec: SpecOption, colony: ColonyOption = None) -> None:
    """Add a blueprint; its reconciler is asked to bring it about (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        blueprint = _in_colony(load_object(spec), settings.colony(colony))
        added = client.add_blueprint(blueprint, settings.key())
    typer.echo(f"BlueprintId: {added.get('blueprintid', '')}")
    info(f"Blueprint added: {added['metadata']['name']} (generation {added['metadata']['generation']})")


@app.command("update")
def blueprint_update(
    spec: SpecOption,
    force: Annotated[bool, typer.Option("--force", help="A new generation even if the spec is unchanged")]
    = False,
    colony: ColonyOption = None,
) -> None:
    """Replace a blueprint's spec (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        blueprint = _in_colony(load_object(spec), settings.colony(colony))
        updated = client.update_blueprint(blueprint, settings.key(), force_generation=force)
    info(f"Blueprint updated: {updated['metadata']['name']} (generation {updated['metadata']['generation']})")


@app.command("set")
def blueprint_set(
    name: NameOption,
    key: Annotated[str, typer.Option("--key", help="Spec field to set, a dotted path (replicas, a.b.c)")],
    value: Annotated[str, typer.Option("--value", help="New value (JSON, or else text)")],
    colony: ColonyOption = None,
) -> None:
    """Set one field of a blueprint's spec (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        colonyname, prvkey = settings.colony(colony), settings.key()
        blueprint = client.get_blueprint(colonyname, name, prvkey)
        blueprint["spec"] = set_path(blueprint.get("spec") or {}, key, parse_value(value))
        updated = client.update_blueprint(blueprint, prvkey)
    info(f"Blueprint updated: {name} (generation {updated['metadata']['generation']})")


@app.command("get")
def blueprint_get(name: NameOption, colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """Show a blueprint: metadata, spec and the status its reconciler reported (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        blueprint = client.get_blueprint(settings.colony(colony), name, settings.key())
    if json_output:
        print_json(blueprint)
        return
    metadata = blueprint.get("metadata") or {}
    print_details([
        ("Id", blueprint.get("blueprintid")),
        ("Name", metadata.get("name")),
        ("Kind", blueprint.get("kind")),
        ("Colony", metadata.get("colonyname")),
        ("Location", metadata.get("locationname")),
        ("Generation", metadata.get("generation")),
        ("Created", format_time(metadata.get("createdAt"))),
        ("Updated", format_time(metadata.get("updatedAt"))),
        ("Last Reconciliation", metadata.get("lastReconciliationProcess")),
        ("Last Reconciled", format_time(metadata.get("lastReconciliationTime"))),
    ], title="Blueprint")
    typer.echo("Spec:")
    typer.echo(json.dumps(blueprint.get("spec") or {}, indent=2))
    typer.echo("Status:")
    typer.echo(json.dumps(blueprint.get("status") or {}, indent=2))


@app.command("ls")
def blueprint_ls(
    kind: Annotated[str, typer.Option("--kind", help="Only blueprints of this kind")] = "",
    location: Annotated[str, typer.Option("--location", help="Only blueprints at this location")] = "",
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the colony's blueprints (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        blueprints = client.get_blueprints(settings.colony(colony), settings.key(), kind=kind or None,
                                           location=location or None)
    print_listing(blueprints, [
        ("Name", _meta("name")), ("Kind", pick("kind")), ("Location", _meta("locationname")),
        ("Replicas", _spec("replicas")),
        ("Ready", lambda bp: (bp.get("status") or {}).get("ready", "")),
        ("Gen", _meta("generation")),
    ], json_output=json_output, empty="No blueprints found")


@app.command("remove")
def blueprint_remove(name: NameOption, colony: ColonyOption = None) -> None:
    """Remove a blueprint; its reconciler is asked to clean up (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        client.remove_blueprint(settings.colony(colony), name, settings.key())
    info(f"Blueprint {name} removed")


@app.command("reconcile")
def blueprint_reconcile(
    name: NameOption,
    force: Annotated[bool, typer.Option("--force", "-f", help="As a new generation")] = False,
    colony: ColonyOption = None,
) -> None:
    """Ask the blueprint's reconciler to reconcile it now (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        process = client.reconcile_blueprint(settings.colony(colony), name, settings.key(), force=force)
    typer.echo(f"ProcessId: {process.get('processid', '')}")
    info(f"Reconciliation of {name} submitted")


@app.command("history")
def blueprint_history(
    name: NameOption,
    generation: Annotated[int, typer.Option("--generation", "-g", help="Only this generation (-1: all)")]
    = -1,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=1000, help="At most this many changes")]
    = 10,
    colony: ColonyOption = None,
    json_output: JsonOption = False,
) -> None:
    """The blueprint's changes, latest first (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        prvkey = settings.key()
        blueprint = client.get_blueprint(settings.colony(colony), name, prvkey)
        changes = client.get_blueprint_history(blueprint["blueprintid"], prvkey, limit=limit)
    if generation >= 0:
        changes = [c for c in changes if c.get("generation") == generation]
    print_listing(changes, [
        ("Generation", pick("generation")), ("Timestamp", lambda c: format_time(c.get("timestamp"))),
        ("Change Type", pick("changetype")), ("Changed By", pick("changedby")),
    ], json_output=json_output, empty="No history found")


@app.command("log")
def blueprint_log(
    name: NameOption,
    count: Annotated[int, typer.Option("--count", "-c", min=1, max=500, help="At most this many lines")]
    = 100,
    colony: ColonyOption = None,
) -> None:
    """The log of the blueprint's latest reconcile process (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        colonyname, prvkey = settings.colony(colony), settings.key()
        blueprint = client.get_blueprint(colonyname, name, prvkey)
        process_id = (blueprint.get("metadata") or {}).get("lastReconciliationProcess", "")
        logs = client.get_process_log(colonyname, process_id, count, 0, prvkey) if process_id else []
    if not logs:
        info("No reconciler logs found")
    for entry in logs:
        typer.echo(entry.get("message", ""), nl=False)
