"""Process logs and attributes: only the assigned executor writes, members read."""

from __future__ import annotations

from typing import Any

import pytest

from pycolonies import (
    AccessDeniedError,
    BadRequestError,
    NotFoundError,
    crypto,
    wire,
)
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony


def submit(colony: ColonyEnv, **overrides: Any):
    body: dict[str, Any] = {
        "funcname": "work",
        "maxwaittime": -1,
        "maxexectime": -1,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype},
    }
    body.update(overrides)
    return colony.client.submit_func_spec(body, colony.user_prvkey)


def running(colony: ColonyEnv, prvkey: str | None = None) -> str:
    """Submit a process and have ``prvkey``'s executor (default executor-1) take it; its id."""
    process = submit(colony)
    assigned = colony.client.assign(colony.colonyname, -1, prvkey or colony.executor_prvkey)
    assert assigned.processid == process.processid
    return process.processid


def process_log(colony: ColonyEnv, pid: str, count: int = 100, since: int = 0, latest: bool = False):
    return colony.client.get_process_log(colony.colonyname, pid, count, since, colony.user_prvkey, latest)


# -- logs ---------------------------------------------------------------------------------------


def test_add_log_by_assigned_executor_and_read_in_order(colony: ColonyEnv) -> None:
    pid = running(colony)
    messages = [f"line {i}" for i in range(5)]
    for message in messages:
        assert colony.client.add_log(pid, message, colony.executor_prvkey) == {}
    logs = process_log(colony, pid)
    assert [entry["message"] for entry in logs] == messages
    for entry in logs:
        assert entry["processid"] == pid
        assert entry["colonyname"] == colony.colonyname
        assert entry["executorname"] == colony.executorname
        assert isinstance(entry["timestamp"], int) and entry["timestamp"] > 10**18  # unix ns
    stamps = [entry["timestamp"] for entry in logs]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # The executor (a member) can read them too.
    by_executor_key = colony.client.get_process_log(colony.colonyname, pid, 100, 0, colony.executor_prvkey)
    assert by_executor_key == logs


def test_log_count_since_and_latest(colony: ColonyEnv) -> None:
    pid = running(colony)
    for i in range(6):
        colony.client.add_log(pid, f"m{i}", colony.executor_prvkey)
    logs = process_log(colony, pid)
    stamps = [entry["timestamp"] for entry in logs]

    assert [e["message"] for e in process_log(colony, pid, count=2)] == ["m0", "m1"]
    assert [e["message"] for e in process_log(colony, pid, since=stamps[2])] == ["m3", "m4", "m5"]
    assert [e["message"] for e in process_log(colony, pid, count=2, since=stamps[1])] == ["m2", "m3"]
    assert process_log(colony, pid, since=stamps[-1]) == []
    assert [e["message"] for e in process_log(colony, pid, count=2, latest=True)] == ["m5", "m4"]
    assert [e["message"] for e in process_log(colony, pid, count=100, latest=True)] == [
        "m5", "m4", "m3", "m2", "m1", "m0"]
    assert process_log(colony, pid, count=0) == []
    assert len(process_log(colony, pid, count=500)) == 6


def test_log_count_over_500_is_rejected(colony: ColonyEnv) -> None:
    pid = running(colony)
    colony.client.add_log(pid, "x", colony.executor_prvkey)
    with pytest.raises(BadRequestError, match="count"):
        process_log(colony, pid, count=501)
    with pytest.raises(BadRequestError, match="count"):
        colony.client.get_executor_log(colony.colonyname, colony.executorname, 501, 0, colony.user_prvkey)


def test_logs_by_executor_name(colony: ColonyEnv) -> None:
    second = colony.add_executor("executor-2")
    first_pid = running(colony)
    second_pid = running(colony)
    other_pid = running(colony, second)
    colony.client.add_log(first_pid, "a", colony.executor_prvkey)
    colony.client.add_log(other_pid, "from executor-2", second)
    colony.client.add_log(second_pid, "b", colony.executor_prvkey)

    mine = colony.client.get_executor_log(colony.colonyname, colony.executorname, 100, 0, colony.user_prvkey)
    assert [(e["processid"], e["message"]) for e in mine] == [(first_pid, "a"), (second_pid, "b")]
    assert all(e["executorname"] == colony.executorname for e in mine)
    theirs = colony.client.get_executor_log(colony.colonyname, "executor-2", 100, 0, colony.user_prvkey)
    assert [(e["processid"], e["message"]) for e in theirs] == [(other_pid, "from executor-2")]
    latest = colony.client.get_executor_log(colony.colonyname, colony.executorname, 1, 0, colony.user_prvkey,
                                            latest=True)
    assert [e["message"] for e in latest] == ["b"]
    assert colony.client.get_executor_log(colony.colonyname, "nobody", 100, 0, colony.user_prvkey) == []


def test_only_the_assigned_executor_of_a_running_process_may_log(colony: ColonyEnv) -> None:
    other = colony.add_executor("executor-2")
    waiting = submit(colony).processid
    with pytest.raises(AccessDeniedError):  # not assigned yet
        colony.client.add_log(waiting, "early", colony.executor_prvkey)

    pid = colony.client.assign(colony.colonyname, -1, colony.executor_prvkey).processid
    assert pid == waiting
    for key in (other, colony.user_prvkey, crypto.generate_private_key(), colony.colony_prvkey):
        with pytest.raises(AccessDeniedError):
            colony.client.add_log(pid, "intruder", key)
    colony.client.add_log(pid, "legit", colony.executor_prvkey)

    colony.client.close(pid, [], colony.executor_prvkey)
    with pytest.raises(AccessDeniedError):  # closed: no more logs
        colony.client.add_log(pid, "late", colony.executor_prvkey)
    assert [e["message"] for e in process_log(colony, pid)] == ["legit"]


def test_logs_of_unknown_process_are_not_found(colony: ColonyEnv) -> None:
    with pytest.raises(NotFoundError):
        process_log(colony, "0" * 64)
    with pytest.raises(NotFoundError):
        colony.client.add_log("0" * 64, "x", colony.executor_prvkey)


def test_logs_are_confined_to_their_colony(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    theirs = running(other)
    other.client.add_log(theirs, "secret", other.executor_prvkey)
    with pytest.raises(NotFoundError):  # asking in my colony for their process
        process_log(colony, theirs)
    with pytest.raises(AccessDeniedError):  # asking in their colony as a non-member
        colony.client.get_process_log(other.colonyname, theirs, 10, 0, colony.user_prvkey)
    with pytest.raises(AccessDeniedError):
        colony.client.add_log(theirs, "x", colony.executor_prvkey)
    assert [e["message"] for e in process_log(other, theirs)] == ["secret"]


def test_oversized_log_message_is_rejected(colony: ColonyEnv) -> None:
    pid = running(colony)
    with pytest.raises(BadRequestError, match="exceeds"):
        colony.client.add_log(pid, "x" * (1024 * 1024 + 1), colony.executor_prvkey)
    assert process_log(colony, pid) == []


# -- attributes ---------------------------------------------------------------------------------


def test_add_and_get_attribute_with_deterministic_id(colony: ColonyEnv) -> None:
    pid = running(colony)
    added = colony.client.add_attribute(pid, "result-key", "some value", colony.executor_prvkey)
    expected_id = crypto.sha3_hex(f"{pid}result-key{wire.OUT}")
    assert added["attributeid"] == expected_id
    assert added["targetid"] == pid
    assert added["targetcolonyname"] == colony.colonyname
    assert added["targetprocessgraphid"] == ""
    assert added["attributetype"] == wire.OUT
    assert (added["key"], added["value"]) == ("result-key", "some value")

    got = colony.client.get_attribute(expected_id, colony.user_prvkey)
    assert {k: got[k] for k in ("attributeid", "targetid", "targetcolonyname", "attributetype", "key",
                                "value")} == {k: added[k] for k in ("attributeid", "targetid",
                                                                    "targetcolonyname", "attributetype",
                                                                    "key", "value")}
    process = colony.client.get_process(pid, colony.user_prvkey)
    assert [(a.attributeid, a.key, a.value) for a in process.attributes if a.attributetype == wire.OUT] == [
        (expected_id, "result-key", "some value")]


def test_an_attribute_keeps_the_state_its_client_sent(colony: ColonyEnv) -> None:
    """As the reference returns it: the attribute's own state, not its process's."""
    pid = running(colony)
    url = f"http://{colony.server.host}:{colony.server.port}"
    attribute = {"targetid": pid, "key": "phase", "value": "v", "attributetype": wire.OUT, "state": 7}
    status, added = rawrpc.call(url, {"msgtype": "addattributemsg", "attribute": attribute},
                                colony.executor_prvkey)
    assert status == 200 and added["state"] == 7
    assert colony.client.get_attribute(added["attributeid"], colony.user_prvkey)["state"] == 7
    colony.client.close(pid, [], colony.executor_prvkey)
    process = colony.client.get_process(pid, colony.user_prvkey)
    assert process.state == wire.SUCCESS
    assert [a.state for a in process.attributes if a.key == "phase"] == [7]
    plain = colony.client.add_attribute(running(colony), "k", "v", colony.executor_prvkey)
    assert plain["state"] == 0  # none sent


def test_attribute_types_are_distinct_ids(colony: ColonyEnv) -> None:
    pid = running(colony)
    ids = set()
    for attributetype in (wire.IN, wire.OUT, wire.ERR):
        msg = {"msgtype": "addattributemsg", "attribute": {
            "targetid": pid, "key": "k", "value": str(attributetype), "attributetype": attributetype}}
        status, reply = rawrpc.call(colony.server.url, msg, colony.executor_prvkey)
        assert status == 200, reply
        assert reply["attributeid"] == crypto.sha3_hex(f"{pid}k{attributetype}")
        ids.add(reply["attributeid"])
    assert len(ids) == 3
    msg = {"msgtype": "addattributemsg", "attribute": {
        "targetid": pid, "key": "k", "value": "v", "attributetype": 9}}
    status, reply = rawrpc.call(colony.server.url, msg, colony.executor_prvkey)
    assert status == 400 and "attributetype" in reply["message"]


def test_duplicate_attribute_is_rejected(colony: ColonyEnv) -> None:
    pid = running(colony)
    colony.client.add_attribute(pid, "k", "first", colony.executor_prvkey)
    with pytest.raises(BadRequestError, match="already"):
        colony.client.add_attribute(pid, "k", "second", colony.executor_prvkey)
    got = colony.client.get_attribute(crypto.sha3_hex(f"{pid}k{wire.OUT}"), colony.user_prvkey)
    assert got["value"] == "first"


def test_attribute_by_non_assignee_is_forbidden(colony: ColonyEnv) -> None:
    other = colony.add_executor("executor-2")
    waiting = submit(colony).processid
    with pytest.raises(AccessDeniedError):  # not running yet
        colony.client.add_attribute(waiting, "k", "v", colony.executor_prvkey)
    pid = colony.client.assign(colony.colonyname, -1, colony.executor_prvkey).processid
    assert pid == waiting
    for key in (other, colony.user_prvkey, crypto.generate_private_key()):
        with pytest.raises(AccessDeniedError):
            colony.client.add_attribute(pid, "k", "v", key)
    with pytest.raises(NotFoundError):
        colony.client.get_attribute(crypto.sha3_hex(f"{pid}k{wire.OUT}"), colony.user_prvkey)
    assert [a for a in colony.client.get_process(pid, colony.user_prvkey).attributes
            if a.attributetype == wire.OUT] == []


def test_attribute_on_unknown_process_or_missing_key(colony: ColonyEnv) -> None:
    with pytest.raises(NotFoundError):
        colony.client.add_attribute("0" * 64, "k", "v", colony.executor_prvkey)
    pid = running(colony)
    with pytest.raises(BadRequestError, match="key"):
        colony.client.add_attribute(pid, "", "v", colony.executor_prvkey)


def test_unknown_attribute_is_not_found(colony: ColonyEnv) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        colony.client.get_attribute("b" * 64, colony.user_prvkey)
    with pytest.raises(NotFoundError):
        colony.client.get_attribute("", colony.user_prvkey)


def test_attribute_of_another_colonys_process_is_forbidden(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    theirs = running(other)
    added = other.client.add_attribute(theirs, "k", "v", other.executor_prvkey)
    for key in (colony.user_prvkey, colony.executor_prvkey):
        with pytest.raises(AccessDeniedError):
            colony.client.get_attribute(added["attributeid"], key)
    with pytest.raises(AccessDeniedError):
        colony.client.add_attribute(theirs, "mine", "v", colony.executor_prvkey)
    assert other.client.get_attribute(added["attributeid"], other.user_prvkey)["value"] == "v"


def test_search_logs_finds_text_in_the_colony_only(colony: ColonyEnv, client: Any, server: Any) -> None:
    from tests.expect import refused

    process = colony.client.submit_func_spec(
        {"funcname": "f", "conditions": {"colonyname": colony.colonyname,
                                         "executortype": colony.executortype}}, colony.user_prvkey)
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    for message in ("first NEEDLE\n", "nothing here\n", "100%_literal\n", "second needle\n"):
        colony.client.add_log(process.processid, message, colony.executor_prvkey)
    found = colony.client.search_logs(colony.colonyname, "needle", 1, 10, colony.user_prvkey)
    assert [f["message"] for f in found] == ["second needle\n", "first NEEDLE\n"]
    assert [f["message"] for f in colony.client.search_logs(
        colony.colonyname, "%_", 1, 10, colony.user_prvkey)] == ["100%_literal\n"]
    assert colony.client.search_logs(colony.colonyname, "needle", 1, 1, colony.user_prvkey)[0]["message"] \
        == "second needle\n"
    other = make_colony(client, server, "other")
    assert colony.client.search_logs("other", "needle", 1, 10, other.user_prvkey) == []
    refused(lambda: colony.client.search_logs(colony.colonyname, "needle", 31, 10, colony.user_prvkey), 400,
            "days")
    refused(lambda: colony.client.search_logs(colony.colonyname, "", 1, 10, colony.user_prvkey), 400, "text")
    refused(lambda: colony.client.search_logs(colony.colonyname, "x", 1, 10, other.user_prvkey), 403)
