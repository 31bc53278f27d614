"""ID rotation against a real server: after a change the old key is refused and the new one
works (also on another replica), the new id is checked, and a captured rotation cannot be
replayed."""

from __future__ import annotations

import json

from pycolonies import Colonies, crypto, func_spec, wire
from pycolonies import rpc as client_rpc
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused


def new_key() -> tuple[str, str]:
    prvkey = crypto.generate_private_key()
    return prvkey, crypto.derive_id(prvkey)


def _send(url: str, envelope: dict[str, str]) -> tuple[int, dict]:
    status, reply = rawrpc.post(url, json.dumps(envelope).encode())
    return status, wire.decode_payload(reply["payload"])


def test_a_user_changes_its_own_id(colony: ColonyEnv) -> None:
    prvkey, userid = new_key()
    reply = colony.client.change_user_id("dev", userid, colony.user_prvkey)
    assert (reply["msgtype"], reply["colonyname"], reply["userid"]) == ("changeuseridmsg", "dev", userid)
    refused(lambda: colony.client.get_users("dev", colony.user_prvkey), 403, "not a member")
    assert colony.client.get_user("dev", "alice", prvkey)["userid"] == userid


def test_what_a_user_initiated_follows_its_new_id(colony: ColonyEnv) -> None:
    process = colony.client.submit_func_spec(func_spec("f", [], "dev", colony.executortype),
                                             colony.user_prvkey)
    workflow = {"colonyname": "dev", "functionspecs": [
        {**func_spec("f", [], "dev", colony.executortype).to_wire(), "nodename": "a"}]}
    cron = colony.client.add_cron("c", "0 0 0 1 1 *", False, workflow, "dev", colony.user_prvkey)
    prvkey, userid = new_key()
    colony.client.change_user_id("dev", userid, colony.user_prvkey)
    assert colony.client.get_process(process.processid, prvkey).initiatorid == userid
    # The cron submits in the user's name, so it must still find its initiator a member.
    assert colony.client.get_cron(cron["cronid"], prvkey)["initiatorid"] == userid


def test_an_executor_changes_its_own_id_and_keeps_its_running_process(colony: ColonyEnv) -> None:
    process = colony.client.submit_func_spec(func_spec("f", [], "dev", colony.executortype),
                                             colony.user_prvkey)
    assert colony.client.assign("dev", 1, colony.executor_prvkey).processid == process.processid
    prvkey, executorid = new_key()
    reply = colony.client.change_executor_id("dev", executorid, colony.executor_prvkey)
    assert reply["executorid"] == executorid
    refused(lambda: colony.client.close(process.processid, ["x"], colony.executor_prvkey), 403)
    colony.client.close(process.processid, ["done"], prvkey)
    assert colony.client.get_process(process.processid, prvkey).state == wire.SUCCESS
    assert colony.client.get_executor("dev", "executor-1", prvkey)["executorid"] == executorid


def test_the_colony_owner_changes_the_colony_id(colony: ColonyEnv) -> None:
    prvkey, colonyid = new_key()
    colony.client.change_colony_id("dev", colonyid, colony.colony_prvkey)
    refused(lambda: colony.client.add_location({"name": "x", "colonyname": "dev"}, colony.colony_prvkey),
            403, "colony owner")
    colony.client.add_location({"name": "x", "colonyname": "dev"}, prvkey)
    assert [c["colonyid"] for c in colony.client.list_colonies(colony.server_prvkey)] == [colonyid]


def test_the_server_owner_changes_the_server_id_on_every_replica_and_across_restarts(
        colony: ColonyEnv, database: str) -> None:
    prvkey, serverid = new_key()
    with ServerThread(database, server_prvkey=colony.server_prvkey) as other, \
            Colonies(other.host, other.port) as other_client:
        assert other_client.list_colonies(colony.server_prvkey)
        reply = colony.client.change_server_id(serverid, colony.server_prvkey)
        assert reply["serverid"] == serverid
        for client in (colony.client, other_client):
            refused(lambda client=client: client.list_colonies(colony.server_prvkey), 403, "not server owner")
            assert [c["name"] for c in client.list_colonies(prvkey)] == ["dev"]
    # A restart with the old configured key keeps honouring the rotated id.
    with ServerThread(database, server_prvkey=colony.server_prvkey) as restarted, \
            Colonies(restarted.host, restarted.port) as client:
        refused(lambda: client.list_colonies(colony.server_prvkey), 403, "not server owner")
        assert client.server_statistics(prvkey)["colonies"] == 1
        # Rotating back to the configured key is allowed (it is no identity any more).
        client.change_server_id(crypto.derive_id(colony.server_prvkey), prvkey)
        assert client.list_colonies(colony.server_prvkey)


def test_roles_are_checked(colony: ColonyEnv) -> None:
    _, fresh = new_key()
    c = colony.client
    refused(lambda: c.change_user_id("dev", fresh, colony.executor_prvkey), 403, "not a user")
    refused(lambda: c.change_user_id("dev", fresh, colony.colony_prvkey), 403, "not a member")
    refused(lambda: c.change_executor_id("dev", fresh, colony.user_prvkey), 403, "not an executor")
    refused(lambda: c.change_colony_id("dev", fresh, colony.user_prvkey), 403, "colony owner")
    refused(lambda: c.change_server_id(fresh, colony.colony_prvkey), 403, "server owner")
    other = make_colony(c, colony.server, "other")
    refused(lambda: c.change_user_id("dev", fresh, other.user_prvkey), 403, "not a member")


def test_a_pending_executor_may_rotate(colony: ColonyEnv) -> None:
    pending = colony.add_executor("pending-1", approve=False)
    prvkey, fresh = new_key()
    colony.client.change_executor_id("dev", fresh, pending)
    assert colony.client.get_executor("dev", "pending-1", colony.user_prvkey)["executorid"] == fresh


def test_the_new_id_must_be_64_hex_and_no_identitys(colony: ColonyEnv) -> None:
    c = colony.client
    for bad in ("", "abc", "G" * 64, "AB" * 32):
        refused(lambda bad=bad: c.change_user_id("dev", bad, colony.user_prvkey), 400, "userid")
    taken = [crypto.derive_id(k) for k in (colony.executor_prvkey, colony.colony_prvkey, colony.server_prvkey,
                                            colony.user_prvkey)]
    other = make_colony(c, colony.server, "other")
    taken.append(crypto.derive_id(other.user_prvkey))
    for used in taken:
        refused(lambda used=used: c.change_user_id("dev", used, colony.user_prvkey), 400, "already in use")
        refused(lambda used=used: c.change_colony_id("dev", used, colony.colony_prvkey), 400,
                "already in use")
        refused(lambda used=used: c.change_executor_id("dev", used, colony.executor_prvkey), 400,
                "already in use")
    refused(lambda: c.change_server_id(taken[0], colony.server_prvkey), 400, "already in use")
    assert c.get_user("dev", "alice", colony.user_prvkey)["userid"] == taken[3]  # nothing changed


def test_a_captured_rotation_cannot_be_replayed(colony: ColonyEnv) -> None:
    first_key, first_id = new_key()
    rotate = client_rpc.request_envelope({"msgtype": "changeuseridmsg", "colonyname": "dev",
                                          "userid": first_id}, colony.user_prvkey)
    assert _send(colony.server.url, rotate)[0] == 200
    colony.client.change_user_id("dev", crypto.derive_id(colony.user_prvkey), first_key)  # back again
    status, error = _send(colony.server.url, rotate)
    assert (status, "Replayed request refused" in error["message"]) == (403, True)
    assert colony.client.get_user("dev", "alice", colony.user_prvkey)["userid"] == crypto.derive_id(
        colony.user_prvkey)


def test_a_reference_client_rotation_cannot_be_replayed(colony: ColonyEnv) -> None:
    """The reference clients sign deterministically and send no request time."""
    import base64
    first_key, first_id = new_key()
    msg = {"colonyname": "dev", "colonyid": first_id, "msgtype": "changecolonyidmsg"}
    payload = base64.b64encode(json.dumps(msg).encode()).decode()
    rotate = {"payloadtype": "changecolonyidmsg", "payload": payload,
              "signature": crypto.sign(payload, colony.colony_prvkey)}
    status, echo = _send(colony.server.url, rotate)
    assert (status, echo) == (200, msg)
    colony.client.change_colony_id("dev", crypto.derive_id(colony.colony_prvkey), first_key)
    assert _send(colony.server.url, rotate)[0] == 403
    assert colony.client.list_colonies(colony.server_prvkey)[0]["colonyid"] == crypto.derive_id(
        colony.colony_prvkey)


def test_a_refused_rotation_can_be_retried(colony: ColonyEnv) -> None:
    _, taken = new_key()
    colony.client.add_user({"colonyname": "dev", "userid": taken, "name": "bob"}, colony.colony_prvkey)
    rotate = client_rpc.request_envelope({"msgtype": "changeuseridmsg", "colonyname": "dev",
                                          "userid": taken}, colony.user_prvkey)
    assert _send(colony.server.url, rotate)[0] == 400
    colony.client.remove_user("dev", "bob", colony.colony_prvkey)
    assert _send(colony.server.url, rotate)[0] == 200
