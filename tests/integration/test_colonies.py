"""Colony RPCs against a real server: addcolonymsg, getcoloniesmsg, getcolonymsg, removecolonymsg,
getcolonystatsmsg (who may sign each: docs/protocol.md, "Roles")."""

from __future__ import annotations

import asyncio

import asyncpg

from pycolonies import Colonies, crypto, func_spec
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused

STATS_KEYS = {
    "colonies", "executors", "activeexecutors", "unregisteredexecutors",
    "waitingprocesses", "runningprocesses", "successfulprocesses", "failedprocesses", "cancelledprocesses",
    "waitingworkflows", "runningworkflows", "successfulworkflows", "failedworkflows", "cancelledworkflows",
}


def colony_names(env: ColonyEnv) -> list[str]:
    return sorted(c["name"] for c in env.client.list_colonies(env.server_prvkey))


def submit(env: ColonyEnv, prvkey: str | None = None, funcname: str = "echo") -> str:
    spec = func_spec(funcname, ["x"], env.colonyname, env.executortype)
    return env.client.submit_func_spec(spec, prvkey or env.user_prvkey).processid


def count_rows(dsn: str, table: str, colony: str) -> int:
    async def run() -> int:
        con = await asyncpg.connect(dsn)
        try:
            return await con.fetchval(f"SELECT count(*) FROM {table} WHERE colony_name = $1", colony)
        finally:
            await con.close()

    return asyncio.run(run())


# -- add / get / list ------------------------------------------------------------------------------


def test_add_colony_returns_the_colony_and_it_can_be_read(client: Colonies, server: ServerThread) -> None:
    prvkey = crypto.generate_private_key()
    colonyid = crypto.derive_id(prvkey)
    reply = client.add_colony({"colonyid": colonyid, "name": "lab"}, server.server_prvkey)
    assert reply == {"colonyid": colonyid, "name": "lab"}

    colonies = client.list_colonies(server.server_prvkey)
    assert colonies == [{"colonyid": colonyid, "name": "lab"}]

    # A member (an approved executor) reads it with getcolonymsg.
    executor_key = crypto.generate_private_key()
    client.add_executor(
        {"executorid": crypto.derive_id(executor_key), "executorname": "e", "executortype": "t",
         "colonyname": "lab"},
        prvkey,
    )
    client.approve_executor("lab", "e", prvkey)
    assert client.get_colony("lab", executor_key) == {"colonyid": colonyid, "name": "lab"}


def test_list_colonies_returns_every_colony(client: Colonies, server: ServerThread) -> None:
    assert client.list_colonies(server.server_prvkey) == []
    a = make_colony(client, server, "alpha")
    b = make_colony(client, server, "beta")
    colonies = client.list_colonies(server.server_prvkey)
    assert sorted(colonies, key=lambda c: c["name"]) == [
        {"colonyid": crypto.derive_id(a.colony_prvkey), "name": "alpha"},
        {"colonyid": crypto.derive_id(b.colony_prvkey), "name": "beta"},
    ]


def test_user_and_executor_can_get_their_colony(colony: ColonyEnv) -> None:
    expected = {"colonyid": crypto.derive_id(colony.colony_prvkey), "name": "dev"}
    assert colony.client.get_colony("dev", colony.user_prvkey) == expected
    assert colony.client.get_colony("dev", colony.executor_prvkey) == expected


def test_duplicate_name_is_refused_and_nothing_changes(colony: ColonyEnv) -> None:
    other_id = crypto.derive_id(crypto.generate_private_key())
    error = refused(
        lambda: colony.client.add_colony({"colonyid": other_id, "name": "dev"}, colony.server_prvkey), 400
    )
    assert "already exists" in error.message
    assert colony.client.list_colonies(colony.server_prvkey) == [
        {"colonyid": crypto.derive_id(colony.colony_prvkey), "name": "dev"}
    ]


def test_duplicate_colonyid_is_refused_and_nothing_changes(colony: ColonyEnv) -> None:
    same_id = crypto.derive_id(colony.colony_prvkey)
    error = refused(
        lambda: colony.client.add_colony({"colonyid": same_id, "name": "other"}, colony.server_prvkey), 400
    )
    assert "already exists" in error.message
    assert colony_names(colony) == ["dev"]


def test_bad_colonyid_is_refused(client: Colonies, server: ServerThread) -> None:
    for colonyid in ("", "abc", "a" * 63, "a" * 65, "g" * 64, " " + "a" * 63):
        colony = {"colonyid": colonyid, "name": "bad"}
        refused(lambda c=colony: client.add_colony(c, server.server_prvkey), 400)
    assert client.list_colonies(server.server_prvkey) == []


def test_missing_colony_or_empty_name_is_refused(client: Colonies, server: ServerThread) -> None:
    status, payload = rawrpc.call(server.url, {"msgtype": "addcolonymsg"}, server.server_prvkey)
    assert status == 400, payload
    msg = {"msgtype": "addcolonymsg", "colony": None}
    status, payload = rawrpc.call(server.url, msg, server.server_prvkey)
    assert status == 400, payload
    colonyid = crypto.derive_id(crypto.generate_private_key())
    refused(lambda: client.add_colony({"colonyid": colonyid, "name": ""}, server.server_prvkey), 400)
    assert client.list_colonies(server.server_prvkey) == []


# -- authorization ---------------------------------------------------------------------------------


def test_only_the_server_owner_may_add_list_and_remove(colony: ColonyEnv) -> None:
    denied = "Access denied, not server owner"
    new = {"colonyid": crypto.derive_id(crypto.generate_private_key()), "name": "new"}
    for prvkey in (colony.colony_prvkey, colony.executor_prvkey, colony.user_prvkey,
                   crypto.generate_private_key()):
        refused(lambda k=prvkey: colony.client.add_colony(new, k), 403, denied)
        refused(lambda k=prvkey: colony.client.list_colonies(k), 403, denied)
        refused(lambda k=prvkey: colony.client.del_colony("dev", k), 403, denied)
    # Nothing was added or removed, and the colony still works for its members.
    assert colony_names(colony) == ["dev"]
    assert colony.client.get_colony("dev", colony.user_prvkey)["name"] == "dev"


def test_colony_owner_is_not_a_member(colony: ColonyEnv) -> None:
    not_member = "Access denied, not a member of Colony with name <dev>"
    refused(lambda: colony.client.get_colony("dev", colony.colony_prvkey), 403, not_member)
    refused(lambda: colony.client.stats("dev", colony.colony_prvkey), 403, not_member)


def test_server_owner_and_strangers_are_not_members(colony: ColonyEnv) -> None:
    for prvkey in (colony.server_prvkey, crypto.generate_private_key()):
        refused(lambda k=prvkey: colony.client.get_colony("dev", k), 403)
        refused(lambda k=prvkey: colony.client.stats("dev", k), 403)


def test_member_of_another_colony_cannot_read_this_one(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    refused(lambda: colony.client.get_colony("dev", other.executor_prvkey), 403)
    refused(lambda: colony.client.get_colony("dev", other.user_prvkey), 403)
    refused(lambda: colony.client.stats("dev", other.user_prvkey), 403)
    assert colony.client.get_colony("other", other.user_prvkey)["name"] == "other"


def test_get_unknown_colony_is_refused(colony: ColonyEnv) -> None:
    refused(lambda: colony.client.get_colony("nope", colony.user_prvkey), 403)
    status, payload = rawrpc.call(colony.server.url, {"msgtype": "getcolonymsg"}, colony.user_prvkey)
    assert status == 400, payload


# -- remove ----------------------------------------------------------------------------------------


def test_remove_unknown_colony_is_refused(colony: ColonyEnv) -> None:
    refused(lambda: colony.client.del_colony("nope", colony.server_prvkey), 400, "nope")
    assert colony_names(colony) == ["dev"]


def test_remove_colony(colony: ColonyEnv) -> None:
    assert colony.client.del_colony("dev", colony.server_prvkey) == {}
    assert colony.client.list_colonies(colony.server_prvkey) == []
    refused(lambda: colony.client.get_colony("dev", colony.user_prvkey), 403)
    # Removing it again: it no longer exists.
    refused(lambda: colony.client.del_colony("dev", colony.server_prvkey), 400)


def test_remove_cascades_to_executors_users_processes_and_leaves_other_colonies(colony: ColonyEnv) -> None:
    client, server = colony.client, colony.server
    other = make_colony(client, server, "other")
    for env in (colony, other):
        client.add_function(env.colonyname, env.executorname, "echo", env.executor_prvkey)
        submit(env)
        submit(env)
        client.assign(env.colonyname, -1, env.executor_prvkey)
        client.add_log(
            client.list_processes(env.colonyname, 10, client.RUNNING, env.user_prvkey)[0]["processid"],
            "hello", env.executor_prvkey,
        )
    dev_process = client.list_processes("dev", 10, client.WAITING, colony.user_prvkey)[0]["processid"]
    tables = ("executors", "users", "processes", "functions", "logs")
    for table in tables:
        assert count_rows(server.dsn, table, "dev") > 0, table

    client.del_colony("dev", server.server_prvkey)

    for table in tables:
        assert count_rows(server.dsn, table, "dev") == 0, table
    assert colony_names(colony) == ["other"]
    # The old members of dev are nobody now.
    refused(lambda: client.list_executors("dev", colony.executor_prvkey), 403)
    refused(lambda: client.get_users("dev", colony.user_prvkey), 403)
    refused(lambda: client.get_process(dev_process, colony.user_prvkey), 404)

    # The other colony is untouched.
    assert [e["executorname"] for e in client.list_executors("other", other.user_prvkey)] == ["executor-1"]
    assert [u["name"] for u in client.get_users("other", other.user_prvkey)] == ["alice"]
    stats = client.stats("other", other.user_prvkey)
    assert (stats["waitingprocesses"], stats["runningprocesses"]) == (1, 1)
    assert len(client.get_functions_by_colony("other", other.executor_prvkey)) == 1

    # A new colony with the old name starts empty.
    again = make_colony(client, server, "dev")
    assert [e["executorid"] for e in client.list_executors("dev", again.user_prvkey)] == [
        crypto.derive_id(again.executor_prvkey)
    ]
    assert client.list_processes("dev", 10, client.WAITING, again.user_prvkey) == []
    assert client.get_functions_by_colony("dev", again.executor_prvkey) == []


# -- statistics ------------------------------------------------------------------------------------


def test_stats_of_a_fresh_colony(colony: ColonyEnv) -> None:
    stats = colony.client.stats("dev", colony.user_prvkey)
    assert set(stats) == STATS_KEYS
    assert stats == {key: 0 for key in STATS_KEYS} | {"colonies": 1, "executors": 1, "activeexecutors": 1}


def test_stats_count_processes_by_state(colony: ColonyEnv) -> None:
    client = colony.client
    other = make_colony(client, colony.server, "other")
    submit(other)  # another colony's process is not counted

    colony.add_executor("pending", approve=False)
    colony.add_executor("removed")
    client.remove_executor("dev", "removed", colony.colony_prvkey)
    second_key = colony.add_executor("executor-2")

    for _ in range(10):
        submit(colony)
    running = [client.assign("dev", -1, colony.executor_prvkey) for _ in range(3)]
    running += [client.assign("dev", -1, second_key) for _ in range(3)]
    for process in running[:2]:
        client.close(process.processid, ["done"], colony.executor_prvkey)
    client.close(running[3].processid, ["done"], second_key)
    client.fail(running[4].processid, ["boom"], second_key)

    stats = client.stats("dev", colony.executor_prvkey)
    assert set(stats) == STATS_KEYS
    assert stats == {key: 0 for key in STATS_KEYS} | {
        "colonies": 1,
        "executors": 4,
        "activeexecutors": 2,
        "unregisteredexecutors": 1,
        "waitingprocesses": 4,
        "runningprocesses": 2,
        "successfulprocesses": 3,
        "failedprocesses": 1,
    }
    assert client.stats("other", other.user_prvkey)["waitingprocesses"] == 1
