"""GET /pubsub and the SDK's ``wait()``: a real server (or two), real clients, real PostgreSQL.

Raw subscriptions use the SDK's small blocking websocket client and hand-built envelopes. Where a
test needs a subscription to be registered before it changes a process (so that the event path,
not the first look, delivers the push), it waits for the server's listener to count the inbox.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from pycolonies import (
    AccessDeniedError,
    AsyncColonies,
    Colonies,
    ColoniesTimeout,
    NotFoundError,
    crypto,
    wire,
)
from pycolonies.models import Process
from pycolonies.websocket import WebSocket
from server.app import PUBSUB
from server.realtime.endpoint import MAX_SUBSCRIPTIONS, PubSubEndpoint
from server.realtime.listener import APPLICATION_NAME
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.support import wait_until

FRAME_TIMEOUT = 10.0


# -- helpers ---------------------------------------------------------------------------------------


def pubsub_of(server: ServerThread) -> PubSubEndpoint:
    runner = server.serving.runner  # the in-process server's aiohttp runner
    assert runner is not None
    return runner.app[PUBSUB]


def wait_watching(server: ServerThread, count: int) -> None:
    """Until ``count`` subscriptions are registered on this server and its listener LISTENs (so no
    event can be missed)."""
    endpoint = pubsub_of(server)
    wait_until(lambda: endpoint.listener.watching >= count and endpoint.listener.listening, 10,
               f"{count} registered subscriptions")


def wait_idle(server: ServerThread) -> None:
    """Until the server holds no socket and no subscription any more (nothing leaked)."""
    endpoint = pubsub_of(server)
    wait_until(lambda: endpoint.open_sockets == 0 and endpoint.listener.watching == 0, 10,
               "every socket and subscription to be released")


def connect(server: ServerThread) -> WebSocket:
    return WebSocket.connect(f"ws://{server.host}:{server.port}/pubsub", timeout=10)


def subscribe_process(processid: str, state: int, timeout: float = 10, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "subscribeprocessmsg", "processid": processid, "executortype": "", "state": state,
            "timeout": timeout, "colonyname": "", **extra}


def subscribe_processes(colonyname: str, executortype: str, state: int, timeout: float = 10) -> dict:
    return {"msgtype": "subscribeprocessesmsg", "colonyname": colonyname, "executortype": executortype,
            "state": state, "timeout": timeout}


def send(ws: WebSocket, msg: dict[str, Any], prvkey: str) -> None:
    ws.send_text(json.dumps(wire.signed_request(msg, prvkey)))


def receive(ws: WebSocket, timeout: float = FRAME_TIMEOUT) -> dict[str, Any] | None:
    """The next reply envelope with its payload decoded, or None once the server closed."""
    text = ws.receive_text(timeout)
    if text is None:
        return None
    envelope = json.loads(text)
    return {**envelope, "payload": wire.decode_payload(envelope["payload"])}


def push_of_its_assignment(colony: ColonyEnv, server: ServerThread, processid: str) -> dict | None:
    """Subscribe (as the user) to ``processid`` becoming RUNNING, assign it, and return the reply
    the server pushed (None if the socket closed first)."""
    with connect(server) as ws:
        send(ws, subscribe_process(processid, wire.RUNNING), colony.user_prvkey)
        wait_watching(server, 1)
        colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
        return receive(ws)


def expect_error(ws: WebSocket, status: int, *fragments: str) -> str:
    """The next frame is an error envelope with ``status``; the server then closes the socket."""
    reply = receive(ws)
    assert reply is not None, "expected an error envelope, the socket was closed"
    assert reply["error"] is True and reply["payloadtype"] == "error", reply
    assert reply["payload"]["status"] == status, reply["payload"]
    message = reply["payload"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    assert receive(ws) is None, "the socket should be closed after an error"
    return message


def submit(env: ColonyEnv, executortype: str | None = None, prvkey: str | None = None) -> Process:
    spec = {"funcname": "echo", "args": ["hi"], "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": env.colonyname, "executortype": executortype or env.executortype}}
    return env.client.submit_func_spec(spec, prvkey or env.user_prvkey)


def run_in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``work`` in a thread; the returned function joins it and returns (or raises) its result."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the joining test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(30)
        assert not thread.is_alive(), "the waiting thread did not finish"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return join


@pytest.fixture
def other_colony(client: Colonies, server: ServerThread) -> ColonyEnv:
    """A second colony, ``ops``, with the same executor type as ``dev``."""
    return make_colony(client, server, "ops")


# -- wait() ------------------------------------------------------------------------------------------


def test_wait_returns_the_successful_process_with_its_output(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    join = run_in_thread(lambda: colony.client.wait(process, 10, colony.user_prvkey))
    wait_watching(server, 3)  # SUCCESS, FAILED and CANCELLED
    assigned = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    colony.client.close(assigned.processid, ["done", 42], colony.executor_prvkey)
    finished = join()
    assert isinstance(finished, Process)
    assert finished.processid == process.processid
    assert finished.state == wire.SUCCESS
    assert finished.output == ["done", 42]
    wait_idle(server)


def test_wait_returns_a_failed_process(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    join = run_in_thread(lambda: colony.client.wait(process.processid, 10, colony.user_prvkey))
    wait_watching(server, 3)
    colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    colony.client.fail(process.processid, ["it broke"], colony.executor_prvkey)
    finished = join()
    assert (finished.state, finished.errors) == (wire.FAILED, ["it broke"])
    wait_idle(server)


def test_wait_on_a_finished_process_returns_at_once(colony: ColonyEnv) -> None:
    process = submit(colony)
    colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    colony.client.close(process.processid, ["early"], colony.executor_prvkey)
    started = time.monotonic()
    finished = colony.client.wait(process, 30, colony.user_prvkey)
    assert time.monotonic() - started < 5
    assert (finished.state, finished.output) == (wire.SUCCESS, ["early"])
    assert colony.client.wait(process, 0, colony.user_prvkey).state == wire.SUCCESS


def test_wait_times_out_with_colonies_timeout(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    started = time.monotonic()
    with pytest.raises(ColoniesTimeout, match=process.processid):
        colony.client.wait(process, 0.5, colony.user_prvkey)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5, elapsed
    with pytest.raises(ColoniesTimeout):
        colony.client.wait(process, 0, colony.user_prvkey)
    wait_idle(server)


def test_wait_by_a_non_member_is_refused(colony: ColonyEnv, other_colony: ColonyEnv) -> None:
    process = submit(colony)
    with pytest.raises(AccessDeniedError, match="not a member"):
        colony.client.wait(process, 5, other_colony.user_prvkey)


def test_wait_for_an_unknown_process_is_not_found(colony: ColonyEnv) -> None:
    unknown = "0" * 64
    with pytest.raises(NotFoundError, match=unknown):
        colony.client.wait(unknown, 5, colony.user_prvkey)


def test_sync_wait_works_inside_a_running_event_loop(colony: ColonyEnv) -> None:
    process = submit(colony)
    colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    colony.client.close(process.processid, [1], colony.executor_prvkey)

    async def inside_a_loop() -> Process:
        return colony.client.wait(process, 5, colony.user_prvkey)

    assert asyncio.run(inside_a_loop()).output == [1]


def test_async_wait_and_subscribe_processes(colony: ColonyEnv, server: ServerThread) -> None:
    async def scenario() -> tuple[Process, list[Process]]:
        async with AsyncColonies(server.host, server.port) as aio:
            process = await aio.submit_func_spec(
                {"funcname": "f", "conditions": {"colonyname": colony.colonyname,
                                                 "executortype": colony.executortype}},
                colony.user_prvkey,
            )
            waiter = asyncio.create_task(aio.wait(process, 10, colony.user_prvkey))

            async def collect() -> list[Process]:
                return [p async for p in aio.subscribe_processes(
                    colony.colonyname, colony.executortype, wire.RUNNING, 1.5, colony.user_prvkey)]

            running = asyncio.create_task(collect())
            await asyncio.to_thread(wait_watching, server, 4)
            await aio.assign(colony.colonyname, 5, colony.executor_prvkey)
            await aio.close(process.processid, ["async"], colony.executor_prvkey)
            return await waiter, await running

    finished, running = asyncio.run(scenario())
    assert (finished.state, finished.output) == (wire.SUCCESS, ["async"])
    assert [p.processid for p in running] == [finished.processid]
    wait_idle(server)


def test_sync_subscribe_processes_ends_at_its_timeout(colony: ColonyEnv, server: ServerThread) -> None:
    join = run_in_thread(lambda: list(colony.client.subscribe_processes(
        colony.colonyname, colony.executortype, wire.WAITING, 1.0, colony.user_prvkey)))
    wait_watching(server, 1)
    submitted = submit(colony)
    assert [p.processid for p in join()] == [submitted.processid]


def test_pubsub_url_follows_the_tls_setting() -> None:
    assert Colonies("example.org", 443, tls=True).pubsub_url == "wss://example.org:443/pubsub"
    assert Colonies("localhost", 50080).pubsub_url == "ws://localhost:50080/pubsub"


# -- subscribeprocessmsg on the wire -----------------------------------------------------------------


def test_push_is_a_reply_envelope_with_the_fresh_process(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    reply = push_of_its_assignment(colony, server, process.processid)
    assert reply is not None
    assert (reply["payloadtype"], reply["error"]) == ("subscribeprocessmsg", False)
    pushed = reply["payload"]
    assert pushed["processid"] == process.processid
    assert pushed["state"] == wire.RUNNING
    assert pushed["assignedexecutorid"] == crypto.derive_id(colony.executor_prvkey)
    # the process as getprocessmsg sends it (the wire JSON, not the SDK's model of it)
    _, fresh = rawrpc.call(server.url, {"msgtype": "getprocessmsg", "processid": process.processid},
                           colony.user_prvkey)
    assert pushed == fresh
    wait_idle(server)


def test_the_listener_listens_only_while_someone_subscribes(colony: ColonyEnv, server: ServerThread) -> None:
    """No subscriber, no LISTEN: a replica whose clients subscribe to nothing does not hear every
    state change. The first subscriber's LISTEN is in place before its pushes are needed, and
    after the last one leaves (and the linger) the LISTEN goes; a later subscriber still gets its
    push, through a new LISTEN."""
    listener = pubsub_of(server).listener
    listener.idle_unlisten_s = 0.2
    submit(colony)  # state changes with nobody subscribed
    colony.client.close(colony.client.assign(colony.colonyname, 5, colony.executor_prvkey).processid, [],
                        colony.executor_prvkey)
    assert not listener.listening, "the server LISTENs with no subscriber"
    for _ in range(2):
        process = submit(colony)
        reply = push_of_its_assignment(colony, server, process.processid)
        assert reply is not None and reply["payload"]["processid"] == process.processid
        wait_idle(server)
        wait_until(lambda: not listener.listening, 10, "the LISTEN to go once nobody subscribes")


def test_already_in_state_is_pushed_at_once_and_timeout_zero_then_closes(colony: ColonyEnv) -> None:
    process = submit(colony)
    with connect(colony.server) as ws:
        send(ws, subscribe_process(process.processid, wire.WAITING, timeout=0), colony.user_prvkey)
        reply = receive(ws)
        assert reply is not None and reply["payload"]["processid"] == process.processid
        assert receive(ws) is None


def test_socket_is_closed_after_the_timeout(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    with connect(server) as ws:
        started = time.monotonic()
        send(ws, subscribe_process(process.processid, wire.SUCCESS, timeout=0.5), colony.user_prvkey)
        assert receive(ws) is None
        assert 0.5 <= time.monotonic() - started < 5
    wait_idle(server)


def test_one_socket_carries_several_subscriptions(colony: ColonyEnv, server: ServerThread) -> None:
    first, second = submit(colony), submit(colony)
    with connect(server) as ws:
        send(ws, subscribe_process(first.processid, wire.RUNNING), colony.user_prvkey)
        send(ws, subscribe_process(second.processid, wire.RUNNING), colony.user_prvkey)
        wait_watching(server, 2)
        colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
        colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
        pushed = {receive(ws)["payload"]["processid"], receive(ws)["payload"]["processid"]}  # type: ignore[index]
    assert pushed == {first.processid, second.processid}


def test_non_member_subscription_is_refused_with_403(colony: ColonyEnv, other_colony: ColonyEnv) -> None:
    process = submit(colony)
    with connect(colony.server) as ws:
        send(ws, subscribe_process(process.processid, wire.SUCCESS), other_colony.executor_prvkey)
        expect_error(ws, 403, "not a member", f"<{colony.colonyname}>")


def test_unknown_process_is_a_404_naming_it(colony: ColonyEnv) -> None:
    unknown = "ab" * 32
    with connect(colony.server) as ws:
        send(ws, subscribe_process(unknown, wire.SUCCESS), colony.user_prvkey)
        expect_error(ws, 404, unknown)


def test_bad_signature_gets_an_error_envelope_then_close(colony: ColonyEnv) -> None:
    process = submit(colony)
    envelope = wire.signed_request(subscribe_process(process.processid, wire.SUCCESS), colony.user_prvkey)
    envelope["signature"] = envelope["signature"][:-4] + "0000"
    with connect(colony.server) as ws:
        ws.send_text(json.dumps(envelope))
        expect_error(ws, 403)
    with connect(colony.server) as ws:
        ws.send_text("{not json")
        expect_error(ws, 400, "not a valid RPC envelope")


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"state": 7}, "state must be 0 (WAITING)"),
        ({"state": "2"}, "state must be"),
        ({"timeout": "soon"}, "timeout must be a number"),
        ({"processid": ""}, "processid is required"),
        ({"executortype": "someone-else"}, "does not match"),
    ],
)
def test_invalid_fields_are_named(colony: ColonyEnv, overrides: dict[str, Any], fragment: str) -> None:
    process = submit(colony)
    with connect(colony.server) as ws:
        send(ws, {**subscribe_process(process.processid, wire.SUCCESS), **overrides}, colony.user_prvkey)
        expect_error(ws, 400, fragment)


def test_other_payload_types_are_refused(colony: ColonyEnv) -> None:
    with connect(colony.server) as ws:
        send(ws, {"msgtype": "getprocessmsg", "processid": "x"}, colony.user_prvkey)
        expect_error(ws, 403, "invalid rpcMsg.PayloadType: getprocessmsg")


def test_subscriptions_per_socket_are_capped(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    with connect(server) as ws:
        for _ in range(MAX_SUBSCRIPTIONS + 1):
            send(ws, subscribe_process(process.processid, wire.SUCCESS), colony.user_prvkey)
        expect_error(ws, 400, f"at most {MAX_SUBSCRIPTIONS} subscriptions")
    wait_idle(server)


def test_client_disconnect_releases_everything(colony: ColonyEnv, server: ServerThread) -> None:
    process = submit(colony)
    ws = connect(server)
    for state in (wire.SUCCESS, wire.FAILED):
        send(ws, subscribe_process(process.processid, state, timeout=600), colony.user_prvkey)
    wait_watching(server, 2)
    ws.close()
    wait_idle(server)


# -- subscribeprocessesmsg ---------------------------------------------------------------------------


def test_subscribe_processes_sees_its_colony_and_type_only(
    colony: ColonyEnv, other_colony: ColonyEnv, server: ServerThread
) -> None:
    with connect(server) as ws:
        msg = subscribe_processes(colony.colonyname, colony.executortype, wire.WAITING)
        send(ws, msg, colony.user_prvkey)
        wait_watching(server, 1)
        submit(other_colony)  # same type, other colony: not for us
        submit(colony, executortype="another-type")  # our colony, other type: not for us
        mine = submit(colony)
        reply = receive(ws)
    # Events arrive in commit order, so anything wrongly delivered would have come first.
    assert reply is not None and reply["payloadtype"] == "subscribeprocessmsg"
    assert reply["payload"]["processid"] == mine.processid
    assert reply["payload"]["state"] == wire.WAITING


def test_subscribe_processes_needs_membership_of_the_colony(
    colony: ColonyEnv, other_colony: ColonyEnv
) -> None:
    with connect(colony.server) as ws:
        send(ws, subscribe_processes(colony.colonyname, colony.executortype, wire.WAITING),
             other_colony.executor_prvkey)
        expect_error(ws, 403, "not a member")
    with connect(colony.server) as ws:
        send(ws, subscribe_processes(colony.colonyname, "", wire.WAITING), colony.user_prvkey)
        expect_error(ws, 400, "executortype is required")


# -- replicas, reconnection, shutdown ----------------------------------------------------------------


def test_subscriber_on_one_replica_sees_a_close_through_another(
    colony: ColonyEnv, server: ServerThread, database: str
) -> None:
    process = submit(colony)
    with ServerThread(database, server_prvkey=server.server_prvkey) as replica_b, \
            Colonies(replica_b.host, replica_b.port) as client_b:
        join = run_in_thread(lambda: colony.client.wait(process, 10, colony.user_prvkey))
        wait_watching(server, 3)
        client_b.assign(colony.colonyname, 5, colony.executor_prvkey)
        client_b.close(process.processid, ["from b"], colony.executor_prvkey)
        finished = join()
    assert (finished.state, finished.output) == (wire.SUCCESS, ["from b"])


def test_subscriptions_recheck_after_the_listener_reconnects(
    colony: ColonyEnv, server: ServerThread, database: str
) -> None:
    process = submit(colony)
    colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    with connect(server) as ws:
        send(ws, subscribe_process(process.processid, wire.SUCCESS, timeout=30), colony.user_prvkey)
        wait_watching(server, 1)
        # Drop the listener's connection, then close the process while it is (most likely) away:
        # whether or not the event is missed, the re-check after reconnecting must deliver it.
        asyncio.run(_terminate_listener(database))
        colony.client.close(process.processid, ["while away"], colony.executor_prvkey)
        reply = receive(ws, timeout=20)
    assert reply is not None and reply["payload"]["out"] == ["while away"]


async def _terminate_listener(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        killed = await con.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            APPLICATION_NAME,
        )
    finally:
        await con.close()
    assert killed == 1


def test_shutdown_closes_open_sockets_promptly(database: str) -> None:
    server = ServerThread(database).start()
    try:
        with Colonies(server.host, server.port) as client:
            env = make_colony(client, server)
            process = submit(env)
        ws = connect(server)
        send(ws, subscribe_process(process.processid, wire.SUCCESS, timeout=600), env.user_prvkey)
        wait_watching(server, 1)
    finally:
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
    with ws:
        assert receive(ws, timeout=5) is None
    assert stopped_in < 10, f"shutdown took {stopped_in:.1f} s with an open subscription"

