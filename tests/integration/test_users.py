"""User RPCs against a real server: add, get, get by id, list, remove (roles: docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from pycolonies import crypto, func_spec, wire
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused

USER_KEYS = {"colonyname", "userid", "name", "email", "phone"}


def new_user(env: ColonyEnv, name: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    prvkey = crypto.generate_private_key()
    user = {"colonyname": env.colonyname, "userid": crypto.derive_id(prvkey), "name": name,
            "email": f"{name}@example.com", "phone": "+46 70 000 00 00", **extra}
    return prvkey, user


def user_names(env: ColonyEnv, prvkey: str | None = None) -> list[str]:
    return sorted(u["name"] for u in env.client.get_users(env.colonyname, prvkey or env.executor_prvkey))


def get_by_id(env: ColonyEnv, userid: str, prvkey: str) -> tuple[int, Any]:
    msg = {"msgtype": "getuserbyidmsg", "colonyname": env.colonyname, "userid": userid}
    return rawrpc.call(env.server.url, msg, prvkey)


def submit(env: ColonyEnv, prvkey: str) -> str:
    spec = func_spec("echo", [1], env.colonyname, env.executortype)
    return env.client.submit_func_spec(spec, prvkey).processid


# -- add / get / list ------------------------------------------------------------------------------


def test_add_returns_the_user_with_every_field(colony: ColonyEnv) -> None:
    prvkey, user = new_user(colony, "bob")
    reply = colony.client.add_user(user, colony.colony_prvkey)
    assert reply == user
    assert set(reply) == USER_KEYS
    assert colony.client.get_user("dev", "bob", colony.executor_prvkey) == user
    assert colony.client.get_user("dev", "bob", prvkey) == user


def test_add_without_optional_fields(colony: ColonyEnv) -> None:
    prvkey = crypto.generate_private_key()
    user = {"colonyname": "dev", "userid": crypto.derive_id(prvkey), "name": "carol"}
    reply = colony.client.add_user(user, colony.colony_prvkey)
    assert reply == {**user, "email": "", "phone": ""}


def test_list_users(colony: ColonyEnv) -> None:
    _, bob = new_user(colony, "bob")
    colony.client.add_user(bob, colony.colony_prvkey)
    users = colony.client.get_users("dev", colony.user_prvkey)
    assert sorted(users, key=lambda u: u["name"]) == [
        {"colonyname": "dev", "userid": crypto.derive_id(colony.user_prvkey), "name": "alice",
         "email": "alice@example.com", "phone": ""},
        bob,
    ]


def test_users_are_listed_per_colony(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    _, bob = new_user(other, "bob")
    colony.client.add_user(bob, other.colony_prvkey)
    assert user_names(colony) == ["alice"]
    assert user_names(other) == ["alice", "bob"]


def test_get_by_id(colony: ColonyEnv) -> None:
    status, user = get_by_id(colony, crypto.derive_id(colony.user_prvkey), colony.executor_prvkey)
    assert status == 200
    assert user == colony.client.get_user("dev", "alice", colony.executor_prvkey)
    assert user["name"] == "alice"
    status, payload = get_by_id(colony, "0" * 64, colony.executor_prvkey)
    assert status == 404, payload


def test_get_unknown_user_is_not_found(colony: ColonyEnv) -> None:
    refused(lambda: colony.client.get_user("dev", "nobody", colony.executor_prvkey), 404, "nobody")


def test_reading_users_requires_membership(colony: ColonyEnv) -> None:
    userid = crypto.derive_id(colony.user_prvkey)
    for prvkey in (colony.colony_prvkey, colony.server_prvkey, crypto.generate_private_key()):
        refused(lambda k=prvkey: colony.client.get_users("dev", k), 403)
        refused(lambda k=prvkey: colony.client.get_user("dev", "alice", k), 403)
        status, _ = get_by_id(colony, userid, prvkey)
        assert status == 403


# -- owner only ------------------------------------------------------------------------------------


def test_only_the_colony_owner_may_add_and_remove(colony: ColonyEnv) -> None:
    _, bob = new_user(colony, "bob")
    for prvkey in (colony.executor_prvkey, colony.user_prvkey, colony.server_prvkey,
                   crypto.generate_private_key()):
        refused(lambda k=prvkey: colony.client.add_user(bob, k), 403, "Access denied")
        refused(lambda k=prvkey: colony.client.remove_user("dev", "alice", k), 403, "Access denied")
    assert user_names(colony) == ["alice"]


def test_owner_of_another_colony_cannot_add_here(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    _, bob = new_user(colony, "bob")
    refused(lambda: colony.client.add_user(bob, other.colony_prvkey), 403)
    refused(lambda: colony.client.remove_user("dev", "alice", other.colony_prvkey), 403)
    assert user_names(colony) == ["alice"]


# -- validation ------------------------------------------------------------------------------------


def test_duplicate_name_is_refused_and_nothing_changes(colony: ColonyEnv) -> None:
    before = colony.client.get_user("dev", "alice", colony.executor_prvkey)
    _, impostor = new_user(colony, "alice", email="evil@example.com")
    refused(lambda: colony.client.add_user(impostor, colony.colony_prvkey), 400, "already exists")
    assert colony.client.get_user("dev", "alice", colony.executor_prvkey) == before
    assert user_names(colony) == ["alice"]


def test_duplicate_userid_in_the_colony_is_refused(colony: ColonyEnv) -> None:
    twin = {"colonyname": "dev", "userid": crypto.derive_id(colony.user_prvkey), "name": "twin"}
    refused(lambda: colony.client.add_user(twin, colony.colony_prvkey), 400, "already exists")
    assert user_names(colony) == ["alice"]


def test_same_key_may_be_a_user_of_two_colonies(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    user = {"colonyname": "other", "userid": crypto.derive_id(colony.user_prvkey), "name": "alice2"}
    colony.client.add_user(user, other.colony_prvkey)
    assert colony.client.get_colony("other", colony.user_prvkey)["name"] == "other"
    assert colony.client.get_colony("dev", colony.user_prvkey)["name"] == "dev"


def test_invalid_user_is_refused(colony: ColonyEnv) -> None:
    for change in ({"userid": "abc"}, {"userid": "Q" * 64}, {"name": ""}):
        user = new_user(colony, "bob")[1] | change
        refused(lambda u=user: colony.client.add_user(u, colony.colony_prvkey), 400)
    assert user_names(colony) == ["alice"]


def test_add_without_user_is_refused(colony: ColonyEnv) -> None:
    status, _ = rawrpc.call(colony.server.url, {"msgtype": "addusermsg"}, colony.colony_prvkey)
    assert status == 400


def test_add_to_unknown_colony_is_refused(colony: ColonyEnv) -> None:
    _, user = new_user(colony, "bob", colonyname="nope")
    refused(lambda: colony.client.add_user(user, colony.colony_prvkey), 403)


# -- what a user may do ----------------------------------------------------------------------------


def test_user_is_a_member_but_not_an_executor(colony: ColonyEnv) -> None:
    client = colony.client
    process_id = submit(colony, colony.user_prvkey)
    process = client.get_process(process_id, colony.user_prvkey)
    assert process.initiatorid == crypto.derive_id(colony.user_prvkey)
    assert process.initiatorname == "alice"
    assert process.state == wire.WAITING
    listed = client.list_processes("dev", 10, wire.WAITING, colony.user_prvkey)
    assert [p["processid"] for p in listed] == [process_id]
    assert client.stats("dev", colony.user_prvkey)["waitingprocesses"] == 1

    refused(lambda: client.assign("dev", -1, colony.user_prvkey), 403)
    # The process was not taken by the refused assign.
    assert client.get_process(process_id, colony.user_prvkey).state == wire.WAITING

    # An executor runs it; the user can neither close nor fail it.
    client.assign("dev", -1, colony.executor_prvkey)
    refused(lambda: client.close(process_id, ["x"], colony.user_prvkey), 403)
    refused(lambda: client.fail(process_id, ["x"], colony.user_prvkey), 403)
    client.close(process_id, ["done"], colony.executor_prvkey)
    finished = client.get_process(process_id, colony.user_prvkey)
    assert finished.state == wire.SUCCESS
    assert finished.output == ["done"]


def test_user_of_another_colony_has_no_access(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    process_id = submit(colony, colony.user_prvkey)
    refused(lambda: submit(colony, other.user_prvkey), 403)
    refused(lambda: colony.client.get_process(process_id, other.user_prvkey), 403)
    refused(lambda: colony.client.get_users("dev", other.user_prvkey), 403)


# -- remove ----------------------------------------------------------------------------------------


def test_remove_user(colony: ColonyEnv) -> None:
    _, bob = new_user(colony, "bob")
    colony.client.add_user(bob, colony.colony_prvkey)
    assert colony.client.remove_user("dev", "bob", colony.colony_prvkey) == {}
    assert user_names(colony) == ["alice"]
    refused(lambda: colony.client.get_user("dev", "bob", colony.executor_prvkey), 404)
    status, _ = get_by_id(colony, bob["userid"], colony.executor_prvkey)
    assert status == 404


def test_remove_unknown_user_is_refused(colony: ColonyEnv) -> None:
    refused(lambda: colony.client.remove_user("dev", "nobody", colony.colony_prvkey), 400, "nobody")
    assert user_names(colony) == ["alice"]


def test_removed_user_loses_access(colony: ColonyEnv) -> None:
    client = colony.client
    process_id = submit(colony, colony.user_prvkey)
    client.remove_user("dev", "alice", colony.colony_prvkey)
    refused(lambda: submit(colony, colony.user_prvkey), 403, "not a member")
    refused(lambda: client.get_process(process_id, colony.user_prvkey), 403)
    refused(lambda: client.get_users("dev", colony.user_prvkey), 403)
    refused(lambda: client.get_colony("dev", colony.user_prvkey), 403)
    refused(lambda: client.stats("dev", colony.user_prvkey), 403)
    # Its process stays, and the name can be given to a new user.
    assert client.get_process(process_id, colony.executor_prvkey).initiatorname == "alice"
    new_key, alice = new_user(colony, "alice")
    client.add_user(alice, colony.colony_prvkey)
    assert client.get_user("dev", "alice", new_key)["userid"] == crypto.derive_id(new_key)
    refused(lambda: client.get_users("dev", colony.user_prvkey), 403)
