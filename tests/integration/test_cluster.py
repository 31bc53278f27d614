"""getclustermsg: every live server process sharing the database, with a heartbeat, and the
leader (the holder of the deadline sweeper's lock); two replicas as subprocesses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pycolonies import crypto
from server.embedded import free_port
from tests import rawrpc
from tests.conftest import ColonyEnv
from tests.expect import refused
from tests.integration.replicas import HOST, Replica
from tests.support import wait_until

NODE_KEYS = {"name", "host", "port", "peerport", "relayport", "apiport", "pid", "started", "lastheartbeat"}
HEARTBEAT_S = "0.2"


def test_a_server_lists_itself_as_the_leader(colony: ColonyEnv) -> None:
    def listed() -> dict[str, Any]:
        return colony.client.get_cluster(colony.server_prvkey)

    wait_until(lambda: listed()["leader"], 30, "the sweeper to lead and the heartbeat to say so")
    cluster = listed()
    assert len(cluster["nodes"]) == 1
    node = cluster["nodes"][0]
    assert set(node) == NODE_KEYS
    assert (node["pid"], node["host"], node["port"], node["apiport"]) == (
        os.getpid(), colony.server.host, colony.server.port, colony.server.port)
    assert (node["peerport"], node["relayport"]) == (0, 0)
    assert cluster["leader"] == {**node, "lastheartbeat": cluster["leader"]["lastheartbeat"]}
    status, raw = rawrpc.call(colony.server.url, {"msgtype": "getclustermsg"}, colony.server_prvkey)
    assert status == 200 and [n["pid"] for n in raw["nodes"]] == [os.getpid()]


def test_only_the_server_owner_reads_the_cluster(colony: ColonyEnv) -> None:
    for key in (colony.colony_prvkey, colony.user_prvkey, colony.executor_prvkey):
        refused(lambda key=key: colony.client.get_cluster(key), 403, "not server owner")


@pytest.fixture
def start_replica(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    started: list[Replica] = []

    def start(dsn: str, server_prvkey: str, name: str) -> Replica:
        replica = Replica(dsn, server_prvkey, tmp_path / "replicas", free_port(HOST), name,
                          env={"COLONIES_CLUSTER_HEARTBEAT": HEARTBEAT_S, "COLONIES_SERVER_NAME": name})
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def _recorded_pids(dsn: str) -> set[int]:
    async def query() -> set[int]:
        con = await asyncpg.connect(dsn)
        try:
            return {row["pid"] for row in await con.fetch("SELECT pid FROM server_nodes")}
        finally:
            await con.close()

    return asyncio.run(query())


def test_two_replicas_list_each_other_and_one_leader(database: str,
                                                     start_replica: Callable[..., Replica]) -> None:
    server_prvkey = crypto.generate_private_key()
    first = start_replica(database, server_prvkey, "first")
    second = start_replica(database, server_prvkey, "second")
    first.wait_healthy()
    second.wait_healthy()
    clients = [first.client(), second.client()]
    pids = {first.proc.pid, second.proc.pid}

    def cluster(client: Any) -> dict[str, Any]:
        return client.get_cluster(server_prvkey)

    def settled(client: Any) -> bool:
        found = cluster(client)
        return {n["pid"] for n in found["nodes"]} == pids and found["leader"].get("pid") in pids

    for client in clients:
        wait_until(lambda client=client: settled(client), 30, "both replicas listed with a leader")
    views = [cluster(client) for client in clients]
    assert [sorted(n["name"] for n in view["nodes"]) for view in views] == [["first", "second"]] * 2
    assert views[0]["leader"]["pid"] == views[1]["leader"]["pid"]
    assert {n["apiport"] for n in views[0]["nodes"]} == {first.port, second.port}

    # A clean shutdown removes the record at once, and leadership moves to the survivor.
    leader = first if views[0]["leader"]["pid"] == first.proc.pid else second
    survivor = second if leader is first else first
    survivor_client = clients[1] if leader is first else clients[0]
    leader.stop()
    assert _recorded_pids(database) == {survivor.proc.pid}
    wait_until(lambda: cluster(survivor_client)["leader"].get("pid") == survivor.proc.pid, 30,
               "the survivor to lead")
    assert [n["pid"] for n in cluster(survivor_client)["nodes"]] == [survivor.proc.pid]

    # A killed replica leaves its record behind; without a heartbeat it is no longer listed.
    killed = start_replica(database, server_prvkey, "killed")
    killed.wait_healthy()
    wait_until(lambda: killed.proc.pid in {n["pid"] for n in cluster(survivor_client)["nodes"]}, 30,
               "the new replica listed")
    killed.kill()
    assert killed.proc.pid in _recorded_pids(database)
    wait_until(lambda: killed.proc.pid not in {n["pid"] for n in cluster(survivor_client)["nodes"]}, 30,
               "the killed replica's record to go stale")
    for client in clients:
        client.close()
