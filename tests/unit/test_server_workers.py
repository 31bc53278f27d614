"""COLONIES_SERVER_WORKERS: an integer, or auto (the default) from the cores and where the database is."""

from __future__ import annotations

import pytest

from server.config import ServerConfig, database_is_local, default_workers


@pytest.mark.parametrize("url", [
    "",  # the embedded PostgreSQL
    "postgresql://colonies:secret@127.0.0.1:5432/colonies",
    "postgresql://colonies@localhost/colonies",
    "postgresql://colonies@[::1]:5432/colonies",
    "postgresql://postgres@/colonies?host=/tmp/pgdata&port=5432",
    "postgresql://%2Fvar%2Frun%2Fpostgresql/colonies",
])
def test_a_database_on_this_machine_is_local(url: str) -> None:
    assert database_is_local(url)


@pytest.mark.parametrize("url", [
    "postgresql://colonies@db.internal:5432/colonies",
    "postgresql://colonies@10.0.0.5/colonies",
    "postgresql://colonies@127.0.0.1:5432,db2.internal:5432/colonies?target_session_attrs=read-write",
])
def test_a_database_elsewhere_is_not(url: str) -> None:
    assert not database_is_local(url)


def test_auto_leaves_half_the_cores_to_a_local_database_and_stays_in_bounds() -> None:
    remote = "postgresql://colonies@db.internal/colonies"
    assert [default_workers("", cpus) for cpus in (1, 2, 4, 8, 64)] == [1, 1, 2, 4, 8]
    assert [default_workers(remote, cpus) for cpus in (1, 2, 4, 8, 64)] == [1, 2, 4, 8, 8]


def test_the_variable_takes_an_integer_or_auto() -> None:
    assert ServerConfig.from_env({"COLONIES_SERVER_WORKERS": "3"}).workers == 3
    auto = ServerConfig.from_env({"COLONIES_SERVER_WORKERS": "auto"}).workers
    assert auto == ServerConfig.from_env({}).workers == default_workers("")
    with pytest.raises(ValueError, match="COLONIES_SERVER_WORKERS must be an integer or auto"):
        ServerConfig.from_env({"COLONIES_SERVER_WORKERS": "many"})
