"""The messages the dashboard needs beyond the reference protocol (ours): ``getidentitymsg``,
``getcolonyoverviewmsg`` and paged ``findprocessesmsg``."""

from __future__ import annotations

from typing import Any

import pytest

from pycolonies import crypto, wire
from tests import rawrpc
from tests.conftest import ColonyEnv


def url(colony: ColonyEnv) -> str:
    return f"http://{colony.server.host}:{colony.server.port}"


def call(colony: ColonyEnv, msg: dict[str, Any], prvkey: str) -> tuple[int, Any]:
    return rawrpc.call(url(colony), msg, prvkey)


def submit(colony: ColonyEnv, executortype: str | None = None, label: str = "", priority: int = 0) -> str:
    conditions = {"colonyname": colony.colonyname, "executortype": executortype or colony.executortype}
    spec = {"funcname": "f", "label": label, "priority": priority, "maxexectime": -1,
            "conditions": conditions}
    return colony.client.submit_func_spec(spec, colony.user_prvkey).processid


def test_identity_names_each_role_of_the_signer(colony: ColonyEnv) -> None:
    msg = {"msgtype": "getidentitymsg", "colonyname": colony.colonyname}
    status, user = call(colony, msg, colony.user_prvkey)
    assert status == 200
    assert user["id"] == crypto.derive_id(colony.user_prvkey)
    assert user["roles"] == [{"role": "user", "name": colony.username, "state": wire.APPROVED}]
    _, executor = call(colony, msg, colony.executor_prvkey)
    assert executor["roles"] == [{"role": "executor", "name": colony.executorname, "state": wire.APPROVED}]
    _, owner = call(colony, msg, colony.colony_prvkey)
    assert owner["roles"] == [{"role": "colonyowner", "name": colony.colonyname}]
    _, server_owner = call(colony, msg, colony.server_prvkey)
    assert server_owner["roles"] == [{"role": "serverowner", "name": ""}]
    _, stranger = call(colony, msg, crypto.generate_private_key())
    assert stranger["roles"] == []
    _, elsewhere = call(colony, {**msg, "colonyname": "no-such-colony"}, colony.user_prvkey)
    assert elsewhere["roles"] == []


def test_identity_needs_a_colony_name(colony: ColonyEnv) -> None:
    status, reply = call(colony, {"msgtype": "getidentitymsg"}, colony.user_prvkey)
    assert status == 400 and "colonyname" in reply["message"]


def test_overview_counts_by_type_and_state_and_names_the_oldest_waiting(colony: ColonyEnv) -> None:
    first = submit(colony)
    submit(colony)
    submit(colony, "gpu")
    assert colony.client.assign(colony.colonyname, 10, colony.executor_prvkey).processid == first
    last = submit(colony)
    colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)  # the second, left running
    colony.client.close(first, ["ok"], colony.executor_prvkey)
    assert colony.client.assign(colony.colonyname, 10, colony.executor_prvkey).processid == last
    colony.client.fail(last, ["boom"], colony.executor_prvkey)
    status, overview = call(colony, {"msgtype": "getcolonyoverviewmsg", "colonyname": colony.colonyname},
                            colony.user_prvkey)
    assert status == 200
    by_type = {entry["executortype"]: entry for entry in overview["executortypes"]}
    assert {k: by_type[colony.executortype][k] for k in ("waiting", "running", "successful", "failed")} == {
        "waiting": 0, "running": 1, "successful": 1, "failed": 1}
    assert by_type["gpu"]["waiting"] == 1 and by_type["gpu"]["oldestwaitingtime"]
    assert by_type[colony.executortype]["oldestwaitingtime"] == ""
    assert overview["oldestwaiting"]["spec"]["conditions"]["executortype"] == "gpu"
    series = overview["throughput"]
    assert len(series["successful"]) == len(series["failed"]) == 60
    assert series["successful"][-1] + series["successful"][-2] == 1  # this minute (or the one before)
    assert sum(series["failed"]) == 1


def test_overview_is_for_members_only(colony: ColonyEnv) -> None:
    for key in (colony.colony_prvkey, crypto.generate_private_key()):
        msg = {"msgtype": "getcolonyoverviewmsg", "colonyname": colony.colonyname}
        status, reply = call(colony, msg, key)
        assert status == 403 and "not a member" in reply["message"]


def test_an_empty_colony_has_an_empty_overview(colony: ColonyEnv) -> None:
    _, overview = call(colony, {"msgtype": "getcolonyoverviewmsg", "colonyname": colony.colonyname},
                       colony.user_prvkey)
    assert overview["executortypes"] == [] and overview["oldestwaiting"] is None
    assert sum(overview["throughput"]["successful"]) == 0


def find(colony: ColonyEnv, **fields: Any) -> tuple[int, Any]:
    return call(colony, {"msgtype": "findprocessesmsg", "colonyname": colony.colonyname, **fields},
                colony.user_prvkey)


def pages(colony: ColonyEnv, count: int, **fields: Any) -> list[list[str]]:
    seen: list[list[str]] = []
    after = ""
    while True:
        status, page = find(colony, count=count, after=after, **fields)
        assert status == 200, page
        seen.append([p["processid"] for p in page["processes"]])
        after = page["next"]
        if not after:
            return seen


def test_pages_of_waiting_processes_cover_each_once_in_queue_order(colony: ColonyEnv) -> None:
    ids = [submit(colony, priority=p) for p in (0, 5, 0, 5, 0, 0, 5)]
    expected = [p["processid"] for p in colony.client.list_processes(colony.colonyname, 100, wire.WAITING,
                                                                      colony.user_prvkey)]
    assert sorted(expected) == sorted(ids)
    got = pages(colony, 3, state=wire.WAITING)
    assert [len(page) for page in got] == [3, 3, 1]
    assert sum(got, []) == expected


def test_pages_of_ended_processes_go_latest_first_without_gaps(colony: ColonyEnv) -> None:
    ids = [submit(colony) for _ in range(5)]
    for _ in ids:
        process = colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
        colony.client.close(process.processid, [], colony.executor_prvkey)
    got = pages(colony, 2, state=wire.SUCCESS)
    assert sorted(sum(got, [])) == sorted(ids) and len(sum(got, [])) == 5
    _, first = find(colony, state=wire.SUCCESS, count=5)
    ends = [p["endtime"] for p in first["processes"]]
    assert ends == sorted(ends, reverse=True)
    assert sum(got, []) == [p["processid"] for p in first["processes"]]


def test_pages_of_running_processes(colony: ColonyEnv) -> None:
    for _ in range(3):
        submit(colony)
        colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
    assert [len(p) for p in pages(colony, 2, state=wire.RUNNING)] == [2, 1]


def test_filters_apply_together(colony: ColonyEnv) -> None:
    wanted = submit(colony, "gpu", label="nightly")
    submit(colony, "gpu", label="adhoc")
    submit(colony, label="nightly")
    _, page = find(colony, state=wire.WAITING, executortype="gpu", label="nightly")
    assert [p["processid"] for p in page["processes"]] == [wanted] and page["next"] == ""
    _, by_initiator = find(colony, state=wire.WAITING, initiator=colony.username)
    assert len(by_initiator["processes"]) == 3
    _, nobody = find(colony, state=wire.WAITING, initiator="nobody")
    assert nobody["processes"] == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"state": 7}, "state"),
        ({"state": 0, "count": 101}, "count"),
        ({"state": 0, "count": -1}, "count"),
        ({"state": 0, "after": "nonsense"}, "after"),
        ({"state": 2, "after": "99999999999999999999." + "a" * 64}, "after"),
        ({"state": 0, "after": 5}, "after"),
    ],
)
def test_bad_find_requests_name_the_field(colony: ColonyEnv, fields: dict[str, Any], named: str) -> None:
    status, reply = find(colony, **fields)
    assert status == 400 and named in reply["message"]


def test_find_is_for_members_only(colony: ColonyEnv) -> None:
    status, reply = call(colony, {"msgtype": "findprocessesmsg", "colonyname": colony.colonyname, "state": 0},
                         crypto.generate_private_key())
    assert status == 403
