"""Locations against a real server: the colony owner adds and removes them, members read them,
colony removal drops them; assign matches a process's location to the executor's, ignoring case."""

from __future__ import annotations

import asyncio

from pycolonies import AsyncColonies, crypto, func_spec
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused

LOCATION_KEYS = {"locationid", "name", "colonyname", "description", "long", "lat"}


def location(env: ColonyEnv, name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "colonyname": env.colonyname, "description": f"{name} site", "long": 18.07,
            "lat": 59.33, **extra}


def test_add_get_list_remove(colony: ColonyEnv) -> None:
    added = colony.client.add_location(location(colony, "stockholm"), colony.colony_prvkey)
    assert set(added) == LOCATION_KEYS
    assert len(added["locationid"]) == 64  # generated when the client leaves it empty
    assert (added["name"], added["long"], added["lat"]) == ("stockholm", 18.07, 59.33)
    given = "ab" * 32
    colony.client.add_location(location(colony, "lulea", locationid=given), colony.colony_prvkey)
    for reader in (colony.user_prvkey, colony.executor_prvkey):
        assert colony.client.get_location("dev", "stockholm", reader) == added
        names = [loc["name"] for loc in colony.client.get_locations("dev", reader)]
        assert names == ["lulea", "stockholm"]
    assert colony.client.get_location("dev", "lulea", colony.user_prvkey)["locationid"] == given
    assert colony.client.remove_location("dev", "stockholm", colony.colony_prvkey) == {}
    refused(lambda: colony.client.get_location("dev", "stockholm", colony.user_prvkey), 404, "stockholm")
    refused(lambda: colony.client.remove_location("dev", "stockholm", colony.colony_prvkey), 404, "stockholm")


def test_a_pending_executor_may_read_locations(colony: ColonyEnv) -> None:
    colony.client.add_location(location(colony, "x"), colony.colony_prvkey)
    pending = colony.add_executor("pending-1", approve=False)
    assert [loc["name"] for loc in colony.client.get_locations("dev", pending)] == ["x"]


def test_only_the_colony_owner_adds_and_removes(colony: ColonyEnv) -> None:
    for key in (colony.user_prvkey, colony.executor_prvkey, colony.server_prvkey):
        refused(lambda key=key: colony.client.add_location(location(colony, "x"), key), 403, "colony owner")
    colony.client.add_location(location(colony, "x"), colony.colony_prvkey)
    refused(lambda: colony.client.remove_location("dev", "x", colony.user_prvkey), 403, "colony owner")


def test_outsiders_cannot_read(colony: ColonyEnv) -> None:
    colony.client.add_location(location(colony, "x"), colony.colony_prvkey)
    other = make_colony(colony.client, colony.server, "other")
    refused(lambda: colony.client.get_locations("dev", other.user_prvkey), 403, "not a member")
    refused(lambda: colony.client.get_location("dev", "x", other.user_prvkey), 403, "not a member")
    refused(lambda: colony.client.get_locations("dev", colony.colony_prvkey), 403, "not a member")


def test_bad_input_is_refused_with_the_field(colony: ColonyEnv) -> None:
    add = colony.client.add_location
    key = colony.colony_prvkey
    refused(lambda: add(location(colony, ""), key), 400, "location.name")
    refused(lambda: add(location(colony, "x", locationid="nothex"), key), 400, "location.locationid")
    refused(lambda: add(location(colony, "x", long=181), key), 400, "location.long")
    refused(lambda: add(location(colony, "x", lat=-90.5), key), 400, "location.lat")
    refused(lambda: add(location(colony, "x", lat="north"), key), 400, "lat")
    refused(lambda: add(location(colony, "x", colonyname=""), key), 400, "Colony name")
    status, reply = rawrpc.call(colony.server.url, {"msgtype": "addlocationmsg"}, key)
    assert (status, "location is required" in reply["message"]) == (400, True)
    assert colony.client.get_locations("dev", colony.user_prvkey) == []


def test_duplicates_are_refused(colony: ColonyEnv) -> None:
    first = colony.client.add_location(location(colony, "x"), colony.colony_prvkey)
    refused(lambda: colony.client.add_location(location(colony, "x"), colony.colony_prvkey), 400,
            "already exists")
    refused(lambda: colony.client.add_location(location(colony, "y", locationid=first["locationid"]),
                                               colony.colony_prvkey), 400, "already exists")


def test_colony_removal_drops_its_locations(colony: ColonyEnv) -> None:
    colony.client.add_location(location(colony, "x"), colony.colony_prvkey)
    colony.client.del_colony("dev", colony.server_prvkey)
    again = make_colony(colony.client, colony.server, "dev")
    assert again.client.get_locations("dev", again.user_prvkey) == []
    again.client.add_location(location(again, "x"), again.colony_prvkey)  # the name is free again


def test_raw_http_shapes(colony: ColonyEnv) -> None:
    add = {"msgtype": "addlocationmsg", "location": location(colony, "raw")}
    status, added = rawrpc.call(colony.server.url, add, colony.colony_prvkey)
    assert status == 200 and set(added) == LOCATION_KEYS
    status, listed = rawrpc.call(colony.server.url, {"msgtype": "getlocationsmsg", "colonyname": "dev"},
                                 colony.user_prvkey)
    assert (status, listed) == (200, [added])
    status, removed = rawrpc.call(colony.server.url, {"msgtype": "removelocationmsg", "colonyname": "dev",
                                                      "name": "raw"}, colony.colony_prvkey)
    assert (status, removed) == (200, {})


# -- the executor's location in assign ---------------------------------------------------------------


def located_executor(env: ColonyEnv, name: str, locationname: str) -> str:
    prvkey = crypto.generate_private_key()
    env.client.add_executor({"executorid": crypto.derive_id(prvkey), "executorname": name,
                             "executortype": "located", "colonyname": env.colonyname,
                             "locationname": locationname}, env.colony_prvkey)
    env.client.approve_executor(env.colonyname, name, env.colony_prvkey)
    return prvkey


def test_assign_matches_the_location_ignoring_case(colony: ColonyEnv) -> None:
    in_stockholm = located_executor(colony, "sthlm-1", "Stockholm")
    in_lulea = located_executor(colony, "lulea-1", "lulea")
    assert colony.client.get_executor("dev", "sthlm-1", colony.user_prvkey)["locationname"] == "Stockholm"
    spec = func_spec("echo", [], "dev", "located")
    spec.conditions.locationname = "STOCKHOLM"
    process = colony.client.submit_func_spec(spec, colony.user_prvkey)
    refused(lambda: colony.client.assign("dev", 1, in_lulea), 404, "No process available")
    assert colony.client.assign("dev", 1, in_stockholm).processid == process.processid


def test_a_process_without_a_location_goes_to_any_executor(colony: ColonyEnv) -> None:
    in_lulea = located_executor(colony, "lulea-1", "lulea")
    process = colony.client.submit_func_spec(func_spec("echo", [], "dev", "located"), colony.user_prvkey)
    assert colony.client.assign("dev", 1, in_lulea).processid == process.processid


def test_the_async_client(colony: ColonyEnv) -> None:
    async def scenario() -> tuple[list[str], list[object], dict[str, object]]:
        async with AsyncColonies(colony.server.host, colony.server.port) as client:
            await client.add_location(location(colony, "async"), colony.colony_prvkey)
            names = [loc["name"] for loc in await client.get_locations("dev", colony.user_prvkey)]
            history = await client.get_process_history("dev", 0, 60, colony.user_prvkey)
            nodes = await client.get_nodes("dev", colony.user_prvkey)
            return names, history, nodes[0]

    names, history, node = asyncio.run(scenario())
    assert (names, history, node["name"]) == (["async"], [], "executor-1")
