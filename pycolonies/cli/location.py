"""``colonies location``: a colony's locations (add, ls, get, remove)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pycolonies.cli.common import (
    ColonyOption,
    JsonOption,
    confirm_destructive,
    info,
    pick,
    print_details,
    print_json,
    print_listing,
    session,
)

app = typer.Typer(no_args_is_help=True, help="Manage a colony's locations.")

NameOption = Annotated[str, typer.Option("--name", help="Location name")]


@app.command("add")
def location_add(
    name: NameOption,
    description: Annotated[str, typer.Option("--desc", "--description", help="Description")] = "",
    longitude: Annotated[float, typer.Option("--long", help="Longitude (-180 to 180)")] = 0.0,
    latitude: Annotated[float, typer.Option("--lat", help="Latitude (-90 to 90)")] = 0.0,
    colony: ColonyOption = None,
) -> None:
    """Add a location to the colony (COLONIES_COLONY_PRVKEY)."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        location = {"name": name, "colonyname": colonyname, "description": description,
                    "long": longitude, "lat": latitude}
        added = client.add_location(location, settings.colony_key())
    typer.echo(f"LocationId: {added.get('locationid')}")
    info(f"Location {name} added to colony {colonyname}")


@app.command("ls")
def location_ls(colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """List the colony's locations (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        locations = client.get_locations(settings.colony(colony), settings.key())
    print_listing(locations, [("Name", pick("name")), ("Description", pick("description")),
                              ("Long", pick("long")), ("Lat", pick("lat"))],
                  json_output=json_output, empty="No locations found")


def location_rows(location: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("Name", location.get("name")), ("LocationID", location.get("locationid")),
            ("Colony", location.get("colonyname")), ("Description", location.get("description")),
            ("Longitude", location.get("long")), ("Latitude", location.get("lat"))]


@app.command("get")
def location_get(name: NameOption, colony: ColonyOption = None, json_output: JsonOption = False) -> None:
    """Show a location (COLONIES_PRVKEY)."""
    with session() as (settings, client):
        location = client.get_location(settings.colony(colony), name, settings.key())
    if json_output:
        print_json(location)
    else:
        print_details(location_rows(location))


@app.command("remove")
def location_remove(
    name: NameOption,
    colony: ColonyOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Remove a location from the colony (COLONIES_COLONY_PRVKEY).

    Executors and processes that name it keep the name. Asks for YES unless --yes."""
    with session() as (settings, client):
        colonyname = settings.colony(colony)
        colony_key = settings.colony_key()
        confirm_destructive(f"remove location {name} from colony {colonyname}", yes)
        client.remove_location(colonyname, name, colony_key)
    info(f"Location {name} removed from colony {colonyname}")
