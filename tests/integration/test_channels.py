"""Process channels: append and read through the SDK and raw HTTP, following over /pubsub (also
across two replicas), the caps, who may use them, and their end with the process."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import asyncpg
import pytest

from pycolonies import AsyncColonies, Colonies, crypto, wire
from pycolonies.errors import AccessDeniedError, ColoniesServerError, NotFoundError
from pycolonies.models import Process
from server.handlers import channels as channel_handlers
from server.realtime import feeds
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.integration.test_pubsub import connect, expect_error, pubsub_of, receive, run_in_thread, send
from tests.support import wait_until


def submit(env: ColonyEnv, channels: list[str] | None = None) -> Process:
    spec = {"funcname": "chat", "maxwaittime": -1, "maxexectime": -1, "channels": channels or ["chat"],
            "conditions": {"colonyname": env.colonyname, "executortype": env.executortype}}
    return env.client.submit_func_spec(spec, env.user_prvkey)


def running(env: ColonyEnv, channels: list[str] | None = None) -> Process:
    """A process of the colony's user, assigned to its executor."""
    process = submit(env, channels)
    assert env.client.assign(env.colonyname, -1, env.executor_prvkey).processid == process.processid
    return process


def append(env: ColonyEnv, processid: str, sequence: int, payload: Any, prvkey: str, name: str = "chat",
           **extra: Any) -> tuple[int, Any]:
    msg = {"msgtype": "channelappendmsg", "processid": processid, "name": name, "sequence": sequence,
           "payload": payload, **extra}
    return rawrpc.call(env.server.url, msg, prvkey)


def read(env: ColonyEnv, processid: str, prvkey: str, name: str = "chat", **extra: Any) -> tuple[int, Any]:
    msg = {"msgtype": "channelreadmsg", "processid": processid, "name": name, "afterseq": 0, "limit": 0,
           **extra}
    return rawrpc.call(env.server.url, msg, prvkey)


async def stored_entries(database: str, processid: str) -> int:
    con = await asyncpg.connect(database)
    try:
        return await con.fetchval(
            "SELECT (SELECT count(*) FROM channel_entries WHERE process_id = $1)"
            " + (SELECT count(*) FROM channels WHERE process_id = $1)", processid)
    finally:
        await con.close()


def test_request_and_response_between_submitter_and_executor(colony: ColonyEnv) -> None:
    client = colony.client
    process = running(colony)
    client.channel_append(process.processid, "chat", 1, "what is 6*7?", colony.user_prvkey)
    [question] = client.channel_read(process.processid, "chat", 0, 10, colony.executor_prvkey)
    assert question["payload"] == b"what is 6*7?"
    assert question["senderid"] == crypto.derive_id(colony.user_prvkey)
    assert (question["sequence"], question["inreplyto"], question["type"]) == (1, 0, "")
    client.channel_append(process.processid, "chat", 2, b"42", colony.executor_prvkey, inreplyto=1,
                          payloadtype="end")
    entries = client.channel_read(process.processid, "chat", 0, 0, colony.user_prvkey)
    assert [(e["sequence"], e["inreplyto"], e["payload"], e["type"]) for e in entries] == [
        (1, 0, b"what is 6*7?", ""), (2, 1, b"42", "end")]
    assert len({e["senderid"] for e in entries}) == 2
    assert client.channel_read(process.processid, "chat", 1, 0, colony.user_prvkey)[0]["sequence"] == 2
    assert len(client.channel_read(process.processid, "chat", 0, 1, colony.user_prvkey)) == 1


def test_the_submitter_may_write_before_the_process_is_assigned(colony: ColonyEnv) -> None:
    process = submit(colony)
    colony.client.channel_append(process.processid, "chat", 1, "early", colony.user_prvkey)
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    [entry] = colony.client.channel_read(process.processid, "chat", 0, 0, colony.executor_prvkey)
    assert entry["payload"] == b"early"


def test_raw_wire_shapes(colony: ColonyEnv) -> None:
    process = running(colony)
    # Go's []byte: a list of byte values is accepted as well as base64
    assert append(colony, process.processid, 1, list(b"hi"), colony.user_prvkey) == (200, {})
    assert append(colony, process.processid, 2, base64.b64encode(b"yo").decode(), colony.executor_prvkey,
                  inreplyto=1, payloadtype="data") == (200, {})
    status, entries = read(colony, process.processid, colony.user_prvkey)
    assert status == 200
    assert set(entries[0]) == {"sequence", "inreplyto", "timestamp", "senderid", "payload", "type"}
    assert [base64.b64decode(e["payload"]) for e in entries] == [b"hi", b"yo"]
    assert wire.parse_time(entries[0]["timestamp"]) is not None


def test_a_repeated_append_is_a_retry_and_a_taken_sequence_a_conflict(colony: ColonyEnv) -> None:
    process = running(colony)
    assert append(colony, process.processid, 1, list(b"a"), colony.user_prvkey) == (200, {})
    assert append(colony, process.processid, 1, list(b"a"), colony.user_prvkey) == (200, {})  # a retry
    status, reply = append(colony, process.processid, 1, list(b"b"), colony.user_prvkey)
    assert status == 409 and "sequence 1" in reply["message"] and "taken" in reply["message"]
    status, reply = append(colony, process.processid, 1, list(b"a"), colony.executor_prvkey)
    assert status == 409
    with pytest.raises(ColoniesServerError, match="taken"):
        colony.client.channel_append(process.processid, "chat", 1, "a", colony.user_prvkey, inreplyto=5)
    assert len(read(colony, process.processid, colony.user_prvkey)[1]) == 1


def test_only_the_submitter_and_the_assigned_executor_have_access(
    colony: ColonyEnv, client: Colonies, server: ServerThread
) -> None:
    process = running(colony)
    other_user = colony.add_executor("executor-2")  # a member of the colony, but not this process's
    for prvkey in (other_user, colony.colony_prvkey, colony.server_prvkey):
        status, reply = append(colony, process.processid, 1, list(b"x"), prvkey)
        assert status == 403, reply
        status, reply = read(colony, process.processid, prvkey)
        assert status == 403, reply
    status, reply = append(colony, process.processid, 1, list(b"x"), other_user)
    assert "submitter or its assigned executor" in reply["message"]
    ops = make_colony(client, server, "ops")
    status, reply = read(colony, process.processid, ops.user_prvkey)
    assert (status, reply["message"]) == (403, "Access denied, not a member of Colony with name <dev>")
    with pytest.raises(AccessDeniedError):
        colony.client.channel_read(process.processid, "chat", 0, 0, other_user)


def test_only_channels_the_spec_names_exist(colony: ColonyEnv) -> None:
    process = running(colony)
    status, reply = append(colony, process.processid, 1, list(b"x"), colony.user_prvkey, name="other")
    assert status == 404 and "spec.channels does not name it" in reply["message"]
    status, reply = read(colony, "f" * 64, colony.user_prvkey)
    assert status == 404 and "not found" in reply["message"]
    with pytest.raises(NotFoundError):
        colony.client.channel_read(process.processid, "other", 0, 0, colony.user_prvkey)


@pytest.mark.parametrize("end", ["close", "fail", "cancel", "remove"])
def test_channels_are_dropped_when_the_process_ends(colony: ColonyEnv, database: str, end: str) -> None:
    process = running(colony) if end != "remove" else submit(colony)
    colony.client.channel_append(process.processid, "chat", 1, "bye", colony.user_prvkey)
    assert asyncio.run(stored_entries(database, process.processid)) == 2  # the entry and the channel
    if end == "close":
        colony.client.close(process.processid, [], colony.executor_prvkey)
    elif end == "fail":
        colony.client.fail(process.processid, ["no"], colony.executor_prvkey)
    elif end == "cancel":
        colony.client.cancel_process(process.processid, colony.user_prvkey)
    else:
        colony.client.remove_process(process.processid, colony.user_prvkey)
    assert asyncio.run(stored_entries(database, process.processid)) == 0
    status, reply = read(colony, process.processid, colony.user_prvkey)
    assert status == 404
    status, reply = append(colony, process.processid, 2, list(b"x"), colony.user_prvkey)
    assert status == 404


def test_caps(colony: ColonyEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_handlers, "MAX_ENTRY_BYTES", 8)
    monkeypatch.setattr(channel_handlers, "MAX_CHANNEL_ENTRIES", 3)
    monkeypatch.setattr(channel_handlers, "MAX_CHANNEL_BYTES", 12)
    process = running(colony)
    status, reply = append(colony, process.processid, 1, list(b"123456789"), colony.user_prvkey)
    assert status == 413 and "9 bytes" in reply["message"] and "payload" in reply["message"]
    for sequence in (1, 2, 3):
        assert append(colony, process.processid, sequence, list(b"abc"), colony.user_prvkey)[0] == 200
    status, reply = append(colony, process.processid, 4, list(b"a"), colony.user_prvkey)
    assert status == 413 and "is full" in reply["message"] and "3 entries" in reply["message"]
    other = running(colony, ["big"])
    assert append(colony, other.processid, 1, list(b"12345678"), colony.user_prvkey, name="big")[0] == 200
    status, reply = append(colony, other.processid, 2, list(b"12345"), colony.user_prvkey, name="big")
    assert status == 413 and "12 payload bytes" in reply["message"]
    assert append(colony, other.processid, 2, list(b"1234"), colony.user_prvkey, name="big")[0] == 200
    # a refused append leaves nothing behind
    assert [e["sequence"] for e in read(colony, other.processid, colony.user_prvkey, name="big")[1]] == [1, 2]


@pytest.mark.parametrize(("fields", "status", "fragment"), [
    ({"sequence": 0}, 400, "sequence must be a positive number"),
    ({"sequence": -3}, 400, "sequence must be a positive number"),
    ({"sequence": "1"}, 400, "sequence"),
    ({"inreplyto": -1}, 400, "inreplyto must not be negative"),
    ({"payloadtype": "bogus"}, 400, "payloadtype must be"),
    ({"payload": "not base64!"}, 400, "payload is not valid base64"),
    ({"payload": [300]}, 400, "byte values"),
    ({"payload": [True]}, 400, "byte values"),
    ({"payload": {"a": 1}}, 400, "payload must be"),
    ({"processid": ""}, 400, "processid is required"),
    ({"name": ""}, 400, "name (the channel's name) is required"),
    ({"name": 5}, 400, "name"),
])
def test_bad_appends(colony: ColonyEnv, fields: dict[str, Any], status: int, fragment: str) -> None:
    process = running(colony)
    msg = {"msgtype": "channelappendmsg", "processid": process.processid, "name": "chat", "sequence": 1,
           "payload": "", **fields}
    got, reply = rawrpc.call(colony.server.url, msg, colony.user_prvkey)
    assert got == status and fragment in reply["message"], reply


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"afterseq": -1}, "afterseq must not be negative"),
    ({"limit": -1}, "limit must not be negative"),
    ({"limit": "x"}, "limit"),
])
def test_bad_reads(colony: ColonyEnv, fields: dict[str, Any], fragment: str) -> None:
    process = running(colony)
    status, reply = read(colony, process.processid, colony.user_prvkey, **fields)
    assert status == 400 and fragment in reply["message"], reply


# -- following over /pubsub ------------------------------------------------------------------------


def subscribe_channel(processid: str, afterseq: int = 0, timeout: float = 10, name: str = "chat") -> dict:
    return {"msgtype": "subscribechannelmsg", "processid": processid, "name": name, "afterseq": afterseq,
            "timeout": timeout}


def test_a_subscription_sends_what_is_there_then_each_append_then_ends_with_an_empty_frame(
    colony: ColonyEnv, server: ServerThread
) -> None:
    process = running(colony)
    for sequence in (1, 2, 3):
        colony.client.channel_append(process.processid, "chat", sequence, f"m{sequence}", colony.user_prvkey)
    ws = connect(server)
    with ws:
        send(ws, subscribe_channel(process.processid, afterseq=1, timeout=600), colony.executor_prvkey)
        first = receive(ws)
        assert first is not None and first["payloadtype"] == "subscribechannelmsg"
        assert [e["sequence"] for e in first["payload"]] == [2, 3]
        colony.client.channel_append(process.processid, "chat", 4, "m4", colony.executor_prvkey)
        pushed = receive(ws)
        assert pushed is not None
        assert [(e["sequence"], base64.b64decode(e["payload"])) for e in pushed["payload"]] == [(4, b"m4")]
        colony.client.close(process.processid, [], colony.executor_prvkey)
        last = receive(ws)
        assert last is not None and last["payload"] == []  # the process ended: its channels are gone
        assert receive(ws) is None


def test_a_subscription_ends_at_its_timeout_with_an_empty_frame(
    colony: ColonyEnv, server: ServerThread
) -> None:
    process = running(colony)
    ws = connect(server)
    with ws:
        send(ws, subscribe_channel(process.processid, timeout=0.5), colony.user_prvkey)
        last = receive(ws)
        assert last is not None and (last["payloadtype"], last["payload"]) == ("subscribechannelmsg", [])
        assert receive(ws) is None


def test_a_subscription_by_another_member_is_refused(colony: ColonyEnv, server: ServerThread) -> None:
    process = running(colony)
    other = colony.add_executor("executor-2")
    ws = connect(server)
    with ws:
        send(ws, subscribe_channel(process.processid), other)
        expect_error(ws, 403, "submitter or its assigned executor")
    ws = connect(server)
    with ws:
        send(ws, subscribe_channel(process.processid, name="nope"), colony.user_prvkey)
        expect_error(ws, 404, "spec.channels")
    ws = connect(server)
    with ws:
        send(ws, subscribe_channel(process.processid, afterseq=-1), colony.user_prvkey)
        expect_error(ws, 400, "afterseq")


def test_streaming_followed_live_across_two_replicas(
    colony: ColonyEnv, server: ServerThread, database: str
) -> None:
    """The executor streams many entries through replica A; the submitter follows on replica B
    with the async SDK and gets every one, live and in order; the follow ends when the process
    closes."""
    count = 200
    process = running(colony)
    got: list[dict[str, Any]] = []
    with ServerThread(database, server_prvkey=server.server_prvkey) as replica_b:

        async def follow() -> None:
            async with AsyncColonies(replica_b.host, replica_b.port) as client_b:
                async for entry in client_b.follow_channel(process.processid, "chat", colony.user_prvkey,
                                                           timeout=600):
                    got.append(entry)

        join = run_in_thread(lambda: asyncio.run(follow()))
        listener = pubsub_of(replica_b).listener
        wait_until(lambda: listener.watching >= 2, 10, "the follower on B to subscribe")
        for sequence in range(1, count + 1):
            colony.client.channel_append(process.processid, "chat", sequence, f"token {sequence}",
                                         colony.executor_prvkey)
        wait_until(lambda: len(got) >= count, 30, f"the follower to get {count} entries")
        colony.client.close(process.processid, [], colony.executor_prvkey)  # ends the follow
        join()
    assert [entry["sequence"] for entry in got] == list(range(1, count + 1))
    assert [entry["payload"] for entry in got] == [f"token {n}".encode() for n in range(1, count + 1)]
    assert {entry["senderid"] for entry in got} == {crypto.derive_id(colony.executor_prvkey)}


def test_sync_follow_channel(colony: ColonyEnv, server: ServerThread) -> None:
    process = running(colony)
    colony.client.channel_append(process.processid, "chat", 1, "one", colony.user_prvkey)
    got: list[dict[str, Any]] = []
    with Colonies(server.host, server.port) as follower:

        def follow() -> None:
            for entry in follower.follow_channel(process.processid, "chat", colony.executor_prvkey,
                                                 timeout=600):
                got.append(entry)

        join = run_in_thread(follow)
        wait_until(lambda: len(got) == 1, 10, "the entry already there")
        colony.client.channel_append(process.processid, "chat", 2, "two", colony.user_prvkey)
        wait_until(lambda: len(got) == 2, 10, "the new entry")
        colony.client.fail(process.processid, ["done"], colony.executor_prvkey)
        join()  # the process ended: the follow ends
    assert [entry["payload"] for entry in got] == [b"one", b"two"]


def test_a_large_backlog_comes_in_frames_clients_take(
    colony: ColonyEnv, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "MAX_FRAME_PAYLOAD", 10)
    process = running(colony)
    for sequence in range(1, 6):
        colony.client.channel_append(process.processid, "chat", sequence, "abcd", colony.user_prvkey)
    ws = connect(server)
    with ws:
        send(ws, subscribe_channel(process.processid, timeout=600), colony.user_prvkey)
        frames = [receive(ws) for _ in range(5)]
    # "YWJjZA==" is 8 characters: one entry per frame
    sequences = [[e["sequence"] for e in frame["payload"]] for frame in frames if frame]
    assert sequences == [[1], [2], [3], [4], [5]]
