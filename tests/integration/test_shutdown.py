"""A server shutting down releases long-polling executors at once instead of holding them."""

from __future__ import annotations

import threading
import time

import pytest

from pycolonies import Colonies, ColoniesConnectionError, ColoniesServerError
from pycolonies.websocket import WebSocket, WebSocketError
from server.app import PUBSUB, SERVICES
from server.testing import ServerThread
from tests.conftest import make_colony
from tests.support import wait_until


def test_shutdown_releases_long_polls_with_503(database: str) -> None:
    server = ServerThread(database).start()
    outcome: dict[str, object] = {}
    try:
        with Colonies(server.host, server.port) as client:
            env = make_colony(client, server)

            def long_poll() -> None:
                # no retries: the 503 itself is what is tested (retried, it goes to another replica)
                with Colonies(server.host, server.port, retry_for=0) as poller:
                    try:
                        poller.assign(env.colonyname, 60, env.executor_prvkey)
                        outcome["result"] = "assigned"
                    except ColoniesServerError as exc:
                        outcome["status"] = exc.status
                        outcome["message"] = exc.message

            poller = threading.Thread(target=long_poll)
            poller.start()
            wakeups = server.app[SERVICES].wakeups
            wait_until(lambda: wakeups.waiting(env.colonyname, env.executortype) == 1, 20,
                       "the assign to reach its wait")
            assert poller.is_alive(), "the assign should be long-polling"
    finally:
        started = time.monotonic()
        server.stop()
        stop_seconds = time.monotonic() - started
    poller.join(30)
    assert not poller.is_alive()
    assert outcome.get("status") == 503, outcome
    assert "shutting down" in str(outcome.get("message"))
    assert stop_seconds < 30, f"shutdown waited {stop_seconds:.1f}s for a 60 s long-poll"


def test_a_shutting_down_server_refuses_new_subscriptions_retryably(database: str) -> None:
    """Once the sockets are closed for a shutdown, a websocket that arrives is refused with 503
    (its handshake may have been under way; one that got through is closed at once), and the SDK
    counts that as worth subscribing again, on another replica."""
    with ServerThread(database) as server, Colonies(server.host, server.port, retry_for=0) as client:
        env = make_colony(client, server)
        process = client.submit_func_spec({"funcname": "f", "conditions": {
            "colonyname": env.colonyname, "executortype": env.executortype}}, env.user_prvkey)
        server.run(server.app[PUBSUB].close_all())
        with pytest.raises(WebSocketError, match="refused the upgrade.*503"):
            WebSocket.connect(f"ws://{server.host}:{server.port}/pubsub", 10)
        with pytest.raises(ColoniesConnectionError) as info:
            client.wait(process, 5, env.user_prvkey)
        assert info.value.retryable, info.value
        assert server.app[PUBSUB].open_sockets == 0


@pytest.mark.parametrize("timeout", [-1])
def test_assign_after_restart_still_works(database: str, timeout: int) -> None:
    """State lives in PostgreSQL: a new server on the same database sees the old one's work."""
    first = ServerThread(database).start()
    with Colonies(first.host, first.port) as client:
        env = make_colony(client, first)
        spec = {"funcname": "f", "conditions": {"colonyname": env.colonyname,
                                                 "executortype": env.executortype}}
        submitted = client.submit_func_spec(spec, env.executor_prvkey)
    first.stop()
    second = ServerThread(database, server_prvkey=first.server_prvkey).start()
    try:
        with Colonies(second.host, second.port) as client:
            assigned = client.assign(env.colonyname, timeout, env.executor_prvkey)
            assert assigned.processid == submitted.processid
    finally:
        second.stop()
