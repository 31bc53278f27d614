"""``colonies location``, the ``chid`` rotations, ``executor ls --full``, ``executor add --spec``,
``log get --executor`` and ``cluster info`` as real subprocesses against a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pycolonies import crypto
from tests.conftest import ColonyEnv
from tests.e2e.test_cli_admin import as_json, colony_env, details, fails, field, headers, ok, run
from tests.support import wait_until

EXIT_REFUSED, EXIT_MISSING = 1, 5


def test_location_commands(colony: ColonyEnv) -> None:
    env = colony_env(colony)
    out = ok(env, "location", "add", "--name", "lulea", "--desc", "north", "--long", "22.15",
             "--lat", "65.58")
    assert len(field(out, "LocationId")) == 64
    table = ok(env, "location", "ls")
    assert headers(table) == ["NAME", "DESCRIPTION", "LONG", "LAT"] and "lulea" in table
    rows = details(ok(env, "location", "get", "--name", "lulea"))
    assert (rows["Name"], rows["Description"], rows["Longitude"], rows["Latitude"]) == (
        "lulea", "north", "22.15", "65.58")
    assert as_json(env, "location", "get", "--name", "lulea")["colonyname"] == "dev"
    fails(run(env, "location", "add", "--name", "x", "--lat", "99"), EXIT_REFUSED, "location.lat")
    fails(run(colony_env(colony, COLONIES_COLONY_PRVKEY=None), "location", "add", "--name", "y"),
          EXIT_MISSING, "COLONIES_COLONY_PRVKEY")
    declined = run(env, "location", "remove", "--name", "lulea", stdin="no\n")
    assert declined.returncode == EXIT_REFUSED and "aborted" in declined.stderr
    assert [loc["name"] for loc in as_json(env, "location", "ls")] == ["lulea"]
    ok(env, "location", "remove", "--name", "lulea", "--yes")
    assert as_json(env, "location", "ls") == []
    fails(run(env, "location", "get", "--name", "lulea"), EXIT_REFUSED, "lulea")


def test_user_and_executor_chid(colony: ColonyEnv, tmp_path: Path) -> None:
    env = colony_env(colony)
    out = ok(env, "user", "chid")  # a new key, printed once
    new_user_key, new_user_id = field(out, "PrvKey"), field(out, "UserId")
    assert crypto.derive_id(new_user_key) == new_user_id
    fails(run(env, "user", "ls"), EXIT_REFUSED, "not a member")
    ok(colony_env(colony, COLONIES_PRVKEY=new_user_key), "user", "ls")

    key_file = tmp_path / "executor.key"
    executor_env = colony_env(colony, COLONIES_PRVKEY=colony.executor_prvkey)
    out = ok(executor_env, "executor", "chid", "--prvkey-file", str(key_file))
    new_executor_key = key_file.read_text().strip()
    assert field(out, "ExecutorId") == crypto.derive_id(new_executor_key)
    got = as_json(colony_env(colony, COLONIES_PRVKEY=new_user_key), "executor", "get", "--name", "executor-1")
    assert got["executorid"] == crypto.derive_id(new_executor_key)
    fails(run(env, "user", "chid", "--userid", "zz"), EXIT_REFUSED, "--userid")


def test_colony_and_server_chid(colony: ColonyEnv) -> None:
    env = colony_env(colony)
    colony_key = crypto.generate_private_key()
    out = ok(env, "colony", "chid", "--colonyid", crypto.derive_id(colony_key))
    assert field(out, "ColonyId") == crypto.derive_id(colony_key) and "PrvKey" not in out
    fails(run(env, "location", "add", "--name", "x"), EXIT_REFUSED, "colony owner")
    ok(colony_env(colony, COLONIES_COLONY_PRVKEY=colony_key), "location", "add", "--name", "x")

    server_key = crypto.generate_private_key()
    ok(env, "server", "chid", "--serverid", crypto.derive_id(server_key))
    fails(run(env, "colony", "ls"), EXIT_REFUSED, "not server owner")
    assert as_json(colony_env(colony, COLONIES_SERVER_PRVKEY=server_key), "colony", "ls")[0]["name"] == "dev"


def test_executor_add_spec_and_ls_full(colony: ColonyEnv, tmp_path: Path) -> None:
    env = colony_env(colony)
    spec = tmp_path / "executor.json"
    spec.write_text(json.dumps({
        "executorname": "gpu-box", "executortype": "gpu", "locationname": "lulea",
        "capabilities": {"hardware": [{"model": "epyc", "cores": 64, "mem": "256Gi",
                                       "gpu": {"name": "a100", "count": 4}}],
                         "software": [{"name": "docker", "type": "container", "version": "27"}]}}))
    out = ok(env, "executor", "add", "--spec", str(spec), "--approve")
    executorid = field(out, "ExecutorId")
    got = as_json(env, "executor", "get", "--name", "gpu-box")
    assert (got["executorid"], got["executortype"], got["locationname"], got["state"]) == (
        executorid, "gpu", "lulea", 1)
    assert got["capabilities"]["hardware"][0]["model"] == "epyc"
    full = ok(env, "executor", "ls", "--full")
    assert "Hardware [0]" in full and "Software [0]" in full and "a100" in full and "docker" in full
    assert "executor-1" in full and "gpu-box" in full
    assert {e["executorname"] for e in as_json(env, "executor", "ls", "--full")} == {"executor-1", "gpu-box"}
    spec.write_text("[]")
    fails(run(env, "executor", "add", "--spec", str(spec)), EXIT_REFUSED, "JSON object")
    fails(run(env, "executor", "add", "--name", "x"), EXIT_REFUSED, "--type")


def test_log_get_by_executor_name(colony: ColonyEnv) -> None:
    colony.client.add_executor_log("dev", "executor-1", "booted\n", colony.executor_prvkey)
    out = ok(colony_env(colony), "log", "get", "--executor", "executor-1")
    assert out == "booted\n"


def test_cluster_info(colony: ColonyEnv) -> None:
    env = colony_env(colony)
    wait_until(lambda: colony.client.get_cluster(colony.server_prvkey)["leader"], 30, "a leader")
    table = ok(env, "cluster", "info")
    assert headers(table) == ["NAME", "HOST", "APIPORT", "PID", "STARTED", "LAST HEARTBEAT", "LEADER"]
    assert str(os.getpid()) in table and "True" in table
    assert as_json(env, "cluster", "info")["leader"]["pid"] == os.getpid()
    fails(run(colony_env(colony, COLONIES_SERVER_PRVKEY=colony.user_prvkey), "cluster", "info"), EXIT_REFUSED,
          "not server owner")
