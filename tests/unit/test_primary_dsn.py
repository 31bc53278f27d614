"""Which database URLs the server turns into "the primary among these hosts", and which errors
of the database it answers with a retryable 503."""

from __future__ import annotations

import asyncpg
import pytest

from server.db import primary_dsn
from server.envelope import error_reply

MULTI = "postgresql://colonies@db1:5432,db2:5432/colonies"


def test_several_hosts_get_the_read_write_target() -> None:
    assert primary_dsn(MULTI, {}) == MULTI + "?target_session_attrs=read-write"
    with_query = MULTI + "?sslmode=require"
    assert primary_dsn(with_query, {}) == with_query + "&target_session_attrs=read-write"
    hosts_in_query = "postgresql:///colonies?host=/run/a,/run/b"
    assert primary_dsn(hosts_in_query, {}).endswith("&target_session_attrs=read-write")


@pytest.mark.parametrize("dsn", [
    "postgresql://colonies@db1:5432/colonies",  # one host: nothing to choose
    "postgresql://colonies@db1,db2/colonies?target_session_attrs=any",  # the user chose
    "postgresql://colonies@db1,db2/colonies?target_session_attrs=primary",
])
def test_a_single_host_or_a_chosen_target_is_left_alone(dsn: str) -> None:
    assert primary_dsn(dsn, {}) == dsn


def test_the_environment_variable_counts_as_a_choice() -> None:
    assert primary_dsn(MULTI, {"PGTARGETSESSIONATTRS": "prefer-standby"}) == MULTI


@pytest.mark.parametrize("exc", [
    asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.TargetServerAttributeNotMatched("none of the hosts is read-write"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ConnectionRefusedError(111, "Connection refused"),
])
def test_a_database_between_primaries_is_a_retryable_503(exc: Exception) -> None:
    body, status = error_reply(exc)
    assert status == 503
    assert body["error"] is True


def test_other_database_errors_stay_500() -> None:
    _, status = error_reply(asyncpg.UniqueViolationError("duplicate key"))
    assert status == 500
