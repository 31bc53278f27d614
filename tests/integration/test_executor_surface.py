"""An executor's own capabilities, allocations and log, the process history, and the nodes the
server derives from the executors, against a real server (SDK and raw HTTP)."""

from __future__ import annotations

import time

from pycolonies import crypto, func_spec, wire
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony
from tests.expect import refused

HARDWARE = {"model": "epyc", "nodes": 1, "cpu": "64000m", "cores": 0, "mem": "256Gi", "storage": "1Ti",
            "gpu": {"name": "a100", "mem": "80Gi", "count": 4, "nodecount": 0}, "platform": "linux",
            "architecture": "amd64", "network": ["10.0.0.5"]}
CAPABILITIES = {"hardware": [HARDWARE, {"cores": 8, "mem": "16Gi", "platform": "linux"}],
                "software": [{"name": "docker", "type": "container", "version": "27"}]}
ALLOCATIONS = {"projects": {"proj": {"allocatedcpu": 10, "usedcpu": 2, "allocatedgpu": 1, "usedgpu": 0,
                                     "allocatedstorage": 100, "usedstorage": 5}}}


def test_an_executor_replaces_its_own_capabilities(colony: ColonyEnv) -> None:
    assert colony.client.update_executor("dev", "executor-1", CAPABILITIES, colony.executor_prvkey) == {}
    executor = colony.client.get_executor("dev", "executor-1", colony.user_prvkey)
    assert executor["capabilities"] == CAPABILITIES
    colony.client.update_executor("dev", "executor-1", {"hardware": None, "software": None},
                                  colony.executor_prvkey)
    executor = colony.client.get_executor("dev", "executor-1", colony.user_prvkey)
    assert executor["capabilities"] == {"hardware": None, "software": None}


def test_an_executor_reports_its_own_allocations(colony: ColonyEnv) -> None:
    assert colony.client.report_allocations("dev", "executor-1", ALLOCATIONS, colony.executor_prvkey) == {}
    assert colony.client.get_executor("dev", "executor-1", colony.user_prvkey)["allocations"] == ALLOCATIONS


def test_a_pending_executor_may_update_itself(colony: ColonyEnv) -> None:
    pending = colony.add_executor("pending-1", approve=False)
    colony.client.update_executor("dev", "pending-1", CAPABILITIES, pending)
    colony.client.report_allocations("dev", "pending-1", ALLOCATIONS, pending)
    executor = colony.client.get_executor("dev", "pending-1", colony.user_prvkey)
    assert (executor["capabilities"], executor["allocations"]) == (CAPABILITIES, ALLOCATIONS)


def test_only_the_executor_itself_changes_its_capabilities_and_allocations(colony: ColonyEnv) -> None:
    other = colony.add_executor("executor-2")
    for change, value in ((colony.client.update_executor, CAPABILITIES),
                          (colony.client.report_allocations, ALLOCATIONS)):
        refused(lambda change=change, value=value: change("dev", "executor-1", value, other), 403, "itself")
        refused(lambda change=change, value=value: change("dev", "executor-1", value, colony.user_prvkey),
                403, "itself")
        refused(lambda change=change, value=value: change("dev", "executor-1", value, colony.colony_prvkey),
                403, "not a member")
        refused(lambda change=change, value=value: change("dev", "nobody", value, other), 404, "nobody")
    executor = colony.client.get_executor("dev", "executor-1", colony.user_prvkey)
    assert executor["capabilities"] == {"hardware": None, "software": None}


def test_bad_capabilities_and_allocations_are_refused(colony: ColonyEnv) -> None:
    url, key = colony.server.url, colony.executor_prvkey
    base = {"colonyname": "dev", "executorname": "executor-1"}
    for msg, field in (({"msgtype": "updateexecutormsg", **base}, "capabilities"),
                       ({"msgtype": "updateexecutormsg", **base, "capabilities": {"hardware": "x"}},
                        "hardware"),
                       ({"msgtype": "reportallocationmsg", **base, "allocations": [1]}, "allocations"),
                       ({"msgtype": "reportallocationmsg", "colonyname": "dev", "allocations": {}},
                        "executorname")):
        status, reply = rawrpc.call(url, msg, key)
        assert status == 400 and field in reply["message"], (msg, reply)


# -- executor logs ---------------------------------------------------------------------------------


def test_an_executor_logs_in_its_own_name(colony: ColonyEnv) -> None:
    before = time.time_ns()
    colony.client.add_executor_log("dev", "executor-1", "starting up\n", colony.executor_prvkey)
    colony.client.add_executor_log("dev", "executor-1", "ready\n", colony.executor_prvkey)
    logs = colony.client.get_executor_log("dev", "executor-1", 10, 0, colony.user_prvkey)
    assert [entry["message"] for entry in logs] == ["starting up\n", "ready\n"]
    assert all(entry["processid"] == "" and entry["executorname"] == "executor-1" and
               entry["colonyname"] == "dev" and entry["timestamp"] > before for entry in logs)
    latest = colony.client.get_executor_log("dev", "executor-1", 1, 0, colony.user_prvkey, latest=True)
    assert [entry["message"] for entry in latest] == ["ready\n"]


def test_only_the_approved_executor_itself_adds_executor_logs(colony: ColonyEnv) -> None:
    other = colony.add_executor("executor-2")
    pending = colony.add_executor("pending-1", approve=False)
    add = colony.client.add_executor_log
    refused(lambda: add("dev", "executor-1", "x", other), 403, "itself")
    refused(lambda: add("dev", "executor-1", "x", colony.user_prvkey), 403, "user")
    refused(lambda: add("dev", "pending-1", "x", pending), 403, "not a member")
    refused(lambda: add("dev", "executor-1", "x" * (1024 * 1024 + 1), colony.executor_prvkey), 400, "exceeds")
    assert colony.client.get_executor_log("dev", "executor-1", 10, 0, colony.user_prvkey) == []


def test_executor_logs_over_raw_http(colony: ColonyEnv) -> None:
    msg = {"msgtype": "addexecutorlogmsg", "colonyname": "dev", "executorname": "executor-1", "message": "hi"}
    assert rawrpc.call(colony.server.url, msg, colony.executor_prvkey) == (200, {})
    status, logs = rawrpc.call(colony.server.url, {"msgtype": "getlogsmsg", "colonyname": "dev",
                                                   "executorname": "executor-1", "count": 10},
                               colony.user_prvkey)
    assert status == 200 and [entry["message"] for entry in logs] == ["hi"]


# -- process history -------------------------------------------------------------------------------


def test_process_history_by_state_age_and_executor(colony: ColonyEnv) -> None:
    submit = colony.client.submit_func_spec
    first = submit(func_spec("f", [1], "dev", colony.executortype), colony.user_prvkey)
    second = submit(func_spec("f", [2], "dev", colony.executortype), colony.user_prvkey)
    other = colony.add_executor("executor-2")
    assert colony.client.assign("dev", 1, colony.executor_prvkey).processid == first.processid
    hist = colony.client.get_process_history
    assert [p.processid for p in hist("dev", wire.WAITING, 60, colony.user_prvkey)] == [second.processid]
    assert [p.processid for p in hist("dev", wire.RUNNING, 60, colony.user_prvkey)] == [first.processid]
    mine_id = crypto.derive_id(colony.executor_prvkey)
    mine = hist("dev", wire.RUNNING, 60, colony.user_prvkey, executorid=mine_id)
    assert [p.processid for p in mine] == [first.processid]
    assert hist("dev", wire.RUNNING, 60, colony.user_prvkey, executorid=crypto.derive_id(other)) == []
    assert colony.client.assign("dev", 1, other).processid == second.processid
    both = hist("dev", wire.RUNNING, 60, colony.user_prvkey)
    assert [p.processid for p in both] == [first.processid, second.processid]  # oldest first
    assert hist("dev", wire.RUNNING, 0, colony.user_prvkey) == []


def test_process_history_is_for_members_and_checks_its_fields(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    hist = colony.client.get_process_history
    refused(lambda: hist("dev", wire.WAITING, 60, other.user_prvkey), 403, "not a member")
    refused(lambda: hist("dev", 7, 60, colony.user_prvkey), 400, "State")
    refused(lambda: hist("dev", wire.WAITING, -1, colony.user_prvkey), 400, "seconds")
    status, reply = rawrpc.call(colony.server.url, {"msgtype": "getprocesshistmsg", "colonyname": "dev",
                                                    "seconds": "ten", "state": 0}, colony.user_prvkey)
    assert status == 400 and "seconds" in reply["message"]


# -- nodes -----------------------------------------------------------------------------------------


def located(env: ColonyEnv, name: str, locationname: str, approve: bool = True) -> str:
    prvkey = crypto.generate_private_key()
    env.client.add_executor({"executorid": crypto.derive_id(prvkey), "executorname": name,
                             "executortype": "t", "colonyname": "dev", "locationname": locationname},
                            env.colony_prvkey)
    if approve:
        env.client.approve_executor("dev", name, env.colony_prvkey)
    return prvkey


def test_nodes_come_from_the_executors_hardware_and_locations(colony: ColonyEnv) -> None:
    gpu_box = located(colony, "gpu-box", "Lulea")
    located(colony, "idle", "stockholm", approve=False)
    colony.client.update_executor("dev", "gpu-box", CAPABILITIES, gpu_box)
    nodes = {node["name"]: node for node in colony.client.get_nodes("dev", colony.user_prvkey)}
    assert sorted(nodes) == ["executor-1", "gpu-box", "gpu-box-1", "idle"]
    first = nodes["gpu-box"]
    assert (first["colonyname"], first["location"], first["platform"], first["architecture"]) == (
        "dev", "Lulea", "linux", "amd64")
    assert (first["cpu"], first["memory"], first["gpu"]) == (64, 256 * 1024, 4)
    assert first["capabilities"] == ["docker"]
    assert first["labels"] == {"executorname": "gpu-box", "executortype": "t", "model": "epyc"}
    assert first["state"] == "ready" and len(first["id"]) == 64
    assert (nodes["gpu-box-1"]["cpu"], nodes["gpu-box-1"]["memory"]) == (8, 16 * 1024)
    assert nodes["idle"]["state"] == "not-ready"
    assert colony.client.get_node("dev", "gpu-box-1", colony.user_prvkey) == nodes["gpu-box-1"]
    by_location = colony.client.get_nodes_by_location("dev", "lulea", colony.user_prvkey)
    assert sorted(node["name"] for node in by_location) == ["gpu-box", "gpu-box-1"]
    refused(lambda: colony.client.get_node("dev", "nothing", colony.user_prvkey), 404, "nothing")


def test_removed_executors_have_no_nodes_and_outsiders_see_none(colony: ColonyEnv) -> None:
    colony.client.remove_executor("dev", "executor-1", colony.colony_prvkey)
    assert colony.client.get_nodes("dev", colony.user_prvkey) == []
    other = make_colony(colony.client, colony.server, "other")
    refused(lambda: colony.client.get_nodes("dev", other.user_prvkey), 403, "not a member")
    status, reply = rawrpc.call(colony.server.url, {"msgtype": "getnodesbylocationmsg", "colonyname": "dev",
                                                    "location": "x"}, colony.user_prvkey)
    assert (status, reply) == (200, [])
