"""Both clients send a call again, unchanged, when the server could not answer it (a 503 while a
replica shuts down or the database fails over, a connection cut before the reply), for up to
``retry_for`` seconds; a refused connection or any other reply is raised at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from pycolonies import (
    AccessDeniedError,
    AlreadyApplied,
    AsyncColonies,
    BadRequestError,
    Colonies,
    ColoniesConnectionError,
    ColoniesServerError,
)
from pycolonies.retrying import Attempts, worth_retrying

KEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
REPLAYED = "Replayed request refused: this exact signed request was already accepted"


def scripted(*replies: tuple[int, str]) -> Callable[[dict[str, Any]], tuple[int, Any, bool]]:
    """A stub reply that answers each (status, message) error in turn, then echoes."""
    queue = list(replies)

    def reply(msg: dict[str, Any]) -> tuple[int, Any, bool]:
        if queue:
            status, message = queue.pop(0)
            return status, {"status": status, "message": message}, True
        return 200, {"echo": msg}, False

    return reply


def sync_call(stub, retry_for: float) -> Any:  # noqa: ANN001 - the stub_server fixture
    with Colonies(stub.host, stub.port, retry_for=retry_for) as client:
        return client.get_colony("dev", KEY)


async def async_call(stub, retry_for: float) -> Any:  # noqa: ANN001
    async with AsyncColonies(stub.host, stub.port, retry_for=retry_for) as client:
        return await client.get_colony("dev", KEY)


async def call(kind: str, stub, retry_for: float = 10.0) -> Any:  # noqa: ANN001
    return sync_call(stub, retry_for) if kind == "sync" else await async_call(stub, retry_for)


CLIENTS = pytest.mark.parametrize("kind", ["sync", "async"])


@CLIENTS
async def test_a_503_is_retried_with_the_identical_signed_request(stub_server, kind: str) -> None:
    stub_server.reply = scripted((503, "Database unavailable, try again"),
                                 (503, "Server is shutting down, retry on another replica"))
    reply = await call(kind, stub_server)
    assert reply["echo"]["colonyname"] == "dev"
    assert len(stub_server.requests) == 3
    # the same nonce and time each time: the server's replay protection sees one request
    assert len({tuple(sorted(r.freshness.items())) for r in stub_server.requests}) == 1


@CLIENTS
async def test_a_retry_refused_as_a_replay_is_already_applied(stub_server, kind: str) -> None:
    stub_server.reply = scripted((503, "Database unavailable, try again"), (403, REPLAYED))
    with pytest.raises(AlreadyApplied) as info:
        await call(kind, stub_server)
    assert isinstance(info.value, AccessDeniedError) and info.value.status == 403
    assert "first attempt took effect" in str(info.value)


@CLIENTS
async def test_a_first_attempt_refused_as_a_replay_stays_an_access_error(stub_server, kind: str) -> None:
    stub_server.reply = scripted((403, REPLAYED))
    with pytest.raises(AccessDeniedError) as info:
        await call(kind, stub_server)
    assert not isinstance(info.value, AlreadyApplied)
    assert len(stub_server.requests) == 1


@CLIENTS
async def test_other_errors_are_not_retried(stub_server, kind: str) -> None:
    stub_server.reply = scripted((400, "Invalid colony name"))
    with pytest.raises(BadRequestError):
        await call(kind, stub_server)
    stub_server.reply = scripted((500, "Internal server error"))
    with pytest.raises(ColoniesServerError) as info:
        await call(kind, stub_server)
    assert info.value.status == 500
    assert len(stub_server.requests) == 2


@CLIENTS
async def test_a_cut_connection_is_retried_until_retry_for_runs_out(stub_server, kind: str) -> None:
    stub_server.drop_without_reply = True  # every attempt: the connection closes before a reply
    started = time.monotonic()
    with pytest.raises(ColoniesConnectionError) as info:
        await call(kind, stub_server, retry_for=0.5)
    assert not isinstance(info.value, ColoniesServerError)
    assert info.value.retryable
    assert time.monotonic() - started >= 0.5
    assert len(stub_server.requests) >= 3
    assert len({tuple(sorted(r.freshness.items())) for r in stub_server.requests}) == 1


@CLIENTS
async def test_a_proxy_502_page_is_retried(stub_server, kind: str) -> None:
    stub_server.raw_body = b"<html>bad gateway</html>"
    with pytest.raises(ColoniesConnectionError) as info:
        await call(kind, stub_server, retry_for=0.3)
    assert info.value.status == 502
    assert len(stub_server.requests) >= 2


@CLIENTS
async def test_a_refused_connection_is_not_retried(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused

        started = time.monotonic()
        with pytest.raises(ColoniesConnectionError) as info:
            stub = type("Stub", (), {"host": "127.0.0.1", "port": port})
            await call(kind, stub, retry_for=30)
    assert not info.value.retryable
    assert time.monotonic() - started < 5  # not the 30 s of retries


def test_attempts_pause_double_up_to_a_second_and_stop_at_the_deadline() -> None:
    now = [0.0]
    attempts = Attempts(3.0, clock=lambda: now[0])
    unavailable = ColoniesServerError("Database unavailable, try again", 503)
    pauses = []
    while (pause := attempts.pause_after(unavailable)) is not None:
        pauses.append(pause)
        now[0] += pause
    assert 0.025 <= pauses[0] <= 0.05
    grown = pauses[:-1]  # the last one is cut to the deadline
    assert all(later >= earlier * 0.5 for earlier, later in zip(grown, grown[1:], strict=False))
    assert max(pauses) <= 1.0
    assert now[0] == pytest.approx(3.0)  # the last pause ends at the deadline, not past it
    assert Attempts(0).pause_after(unavailable) is None


def test_which_errors_are_worth_retrying() -> None:
    assert worth_retrying(ColoniesServerError("x", 503))
    assert worth_retrying(ColoniesServerError("x", 504))
    assert not worth_retrying(ColoniesServerError("x", 500))
    assert not worth_retrying(AccessDeniedError("x", 403))
    assert worth_retrying(ColoniesConnectionError("cut", retryable=True))
    assert not worth_retrying(ColoniesConnectionError("refused"))
    assert worth_retrying(ColoniesConnectionError("a proxy's page", 502))


@pytest.mark.parametrize("retry_for", [-1, float("nan")])
def test_a_negative_retry_for_is_refused_by_name(retry_for: float) -> None:
    for client in (Colonies, AsyncColonies):
        with pytest.raises(ValueError, match="retry_for"):
            client("127.0.0.1", 50080, retry_for=retry_for)
