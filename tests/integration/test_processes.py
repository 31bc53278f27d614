"""Process lifecycle against a real server and PostgreSQL: submit, assign, close, list, remove."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pycolonies import (
    AccessDeniedError,
    BadRequestError,
    NotFoundError,
    crypto,
    wire,
)
from pycolonies.codec import wire_name
from pycolonies.models import Process
from tests import rawrpc
from tests.conftest import ColonyEnv

# Every key of the Process wire shape (pycolonies' strict Process model needs them all).
PROCESS_KEYS = {wire_name(f) for f in dataclasses.fields(Process)}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# JSON of every shape: nested containers, floats, unicode strings, null, booleans, big ints.
ANY_ARGS: list[Any] = [
    1, -2.5, 0.1, "text", "unicodé ✓", None, True, False, 2**53 + 1,
    [1, [2, [3.25, None]]], {"a": {"b": [1.5, None, {"c": "d"}]}, "e": []}, [], {},
]
ANY_KWARGS: dict[str, Any] = {
    "nested": {"x": [1, {"y": None}], "z": {"deep": {"deeper": [0.5]}}},
    "f": 3.14159, "s": "str", "n": None, "l": ["a", 1, 2.0], "b": True,
}


def spec(colony: ColonyEnv, **overrides: Any) -> dict[str, Any]:
    """A wire FunctionSpec for ``colony``; ``conditions`` keys may be given as ``cond_<name>``."""
    conditions: dict[str, Any] = {"colonyname": colony.colonyname, "executortype": colony.executortype}
    for key in [k for k in overrides if k.startswith("cond_")]:
        conditions[key.removeprefix("cond_")] = overrides.pop(key)
    body: dict[str, Any] = {
        "funcname": "echo",
        "args": ["hello"],
        "kwargs": {},
        "maxwaittime": -1,
        "maxexectime": -1,
        "maxretries": 0,
        "conditions": conditions,
    }
    body.update(overrides)
    return body


def submit(colony: ColonyEnv, prvkey: str | None = None, **overrides: Any):
    return colony.client.submit_func_spec(spec(colony, **overrides), prvkey or colony.executor_prvkey)


def assign_now(colony: ColonyEnv, prvkey: str | None = None):
    """A single assignment attempt (negative timeout: no long-poll)."""
    return colony.client.assign(colony.colonyname, -1, prvkey or colony.executor_prvkey)


def ns(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1) * 1000


# -- submit -------------------------------------------------------------------------------------


def test_submit_reply_has_every_process_key_and_initial_state(colony: ColonyEnv) -> None:
    msg = {"msgtype": "submitfuncspecmsg", "spec": spec(colony)}
    status, reply = rawrpc.call(colony.server.url, msg, colony.executor_prvkey)
    assert status == 200
    assert set(reply) >= PROCESS_KEYS
    assert len(reply["processid"]) == 64
    assert reply["state"] == wire.WAITING
    assert reply["isassigned"] is False
    assert reply["assignedexecutorid"] == ""
    assert reply["initiatorid"] == crypto.derive_id(colony.executor_prvkey)
    assert reply["initiatorname"] == colony.executorname
    for key in ("parents", "children", "errors", "in", "out", "attributes"):
        assert reply[key] == [], key
    for key in ("starttime", "endtime", "waitdeadline", "execdeadline"):
        assert reply[key] == wire.ZERO_TIME, key
    assert reply["submissiontime"].endswith("Z")
    assert isinstance(reply["spec"]["env"], dict)
    assert {"mount", "snapshots", "dirs"} <= set(reply["spec"]["fs"])
    assert reply["spec"]["conditions"]["executortype"] == colony.executortype

    # The same shape comes back from getprocessmsg.
    status, got = rawrpc.call(
        colony.server.url, {"msgtype": "getprocessmsg", "processid": reply["processid"]}, colony.user_prvkey
    )
    assert status == 200
    assert set(got) >= PROCESS_KEYS
    assert got["processid"] == reply["processid"]


def test_initiator_is_the_submitting_user(colony: ColonyEnv) -> None:
    process = submit(colony, colony.user_prvkey)
    assert process.initiatorname == colony.username
    assert process.initiatorid == crypto.derive_id(colony.user_prvkey)
    assert colony.client.get_process(process.processid, colony.executor_prvkey).initiatorname == "alice"


def test_non_member_cannot_submit(colony: ColonyEnv) -> None:
    stranger = crypto.generate_private_key()
    with pytest.raises(AccessDeniedError):
        submit(colony, stranger)
    with pytest.raises(AccessDeniedError):  # the colony owner key is not a member
        submit(colony, colony.colony_prvkey)
    assert colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey) == []


def test_prioritytime_is_submission_minus_priority_days(colony: ColonyEnv) -> None:
    for priority in (0, 7, -3, 50000, -50000):
        process = submit(colony, priority=priority)
        assert process.spec.priority == priority
        submitted_ns = ns(process.submissiontime)
        # submissiontime is stored with microsecond precision, prioritytime with nanoseconds.
        assert 0 <= process.prioritytime + priority * wire.PRIORITY_TIME_UNIT_NS - submitted_ns < 1000
        assert abs(process.submissiontime - datetime.now(UTC)) < timedelta(minutes=1)
        assert colony.client.get_process(process.processid, colony.user_prvkey).prioritytime == \
            process.prioritytime


def test_env_is_mirrored_as_env_attributes_and_spec_env(colony: ColonyEnv) -> None:
    env = {"A": "1", "B": "two words", "EMPTY": ""}
    submitted = submit(colony, env=env)
    for process in (submitted, colony.client.get_process(submitted.processid, colony.user_prvkey)):
        assert process.spec.env == env
        env_attrs = {a.key: a for a in process.attributes if a.attributetype == wire.ENV}
        assert set(env_attrs) == set(env)
        for key, attr in env_attrs.items():
            assert attr.value == env[key]
            assert attr.targetid == submitted.processid
            assert attr.targetcolonyname == colony.colonyname
            assert attr.attributeid == crypto.sha3_hex(f"{submitted.processid}{key}{wire.ENV}")
    listed = colony.client.list_processes(colony.colonyname, 10, wire.WAITING, colony.user_prvkey)
    assert listed[0]["spec"]["env"] == env


def test_args_kwargs_and_output_carry_any_json(colony: ColonyEnv) -> None:
    submitted = submit(colony, args=ANY_ARGS, kwargs=ANY_KWARGS)
    assert submitted.spec.args == ANY_ARGS
    assert submitted.spec.kwargs == ANY_KWARGS
    got = colony.client.get_process(submitted.processid, colony.user_prvkey)
    assert got.spec.args == ANY_ARGS
    assert got.spec.kwargs == ANY_KWARGS
    # Type fidelity, not only equality (1 == 1.0 == True in Python).
    assert [type(v) for v in got.spec.args] == [type(v) for v in ANY_ARGS]

    assigned = assign_now(colony)
    assert assigned.processid == submitted.processid
    assert assigned.spec.args == ANY_ARGS
    output = [{"result": [1, 2.5, None, "x"]}, 42, -0.125, "done", None, [[], {}], True]
    colony.client.close(assigned.processid, output, colony.executor_prvkey)
    closed = colony.client.get_process(submitted.processid, colony.user_prvkey)
    assert closed.output == output
    assert [type(v) for v in closed.output] == [type(v) for v in output]


# -- assign and close ---------------------------------------------------------------------------


def test_assign_sets_running_with_starttime(colony: ColonyEnv) -> None:
    submitted = submit(colony)
    before = datetime.now(UTC)
    assigned = assign_now(colony)
    assert assigned.processid == submitted.processid
    assert assigned.state == wire.RUNNING
    assert assigned.isassigned is True
    assert assigned.assignedexecutorid == crypto.derive_id(colony.executor_prvkey)
    assert assigned.starttime is not None
    assert abs(assigned.starttime - before) < timedelta(seconds=30)
    assert assigned.starttime >= assigned.submissiontime
    assert assigned.endtime is None
    got = colony.client.get_process(submitted.processid, colony.user_prvkey)
    assert got.state == wire.RUNNING
    assert got.starttime == assigned.starttime
    # Nothing else is waiting.
    with pytest.raises(NotFoundError):
        assign_now(colony)


def test_close_successful_with_output(colony: ColonyEnv) -> None:
    process = submit(colony)
    assign_now(colony)
    assert colony.client.close(process.processid, ["out-1", 2], colony.executor_prvkey) == {}
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.SUCCESS
    assert got.output == ["out-1", 2]
    assert got.errors == []
    assert got.endtime is not None and got.endtime >= got.starttime


def test_close_failed_with_errors(colony: ColonyEnv) -> None:
    process = submit(colony)
    assign_now(colony)
    assert colony.client.fail(process.processid, ["boom", "second error"], colony.executor_prvkey) == {}
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.FAILED
    assert got.errors == ["boom", "second error"]
    assert got.output == []
    assert got.endtime is not None


def test_set_output_while_running_then_close_keeps_it(colony: ColonyEnv) -> None:
    process = submit(colony)
    assign_now(colony)
    colony.client.set_output(process.processid, [{"progress": 0.5}], colony.executor_prvkey)
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.RUNNING
    assert got.output == [{"progress": 0.5}]
    # A close with empty output keeps the output set while running.
    colony.client.close(process.processid, [], colony.executor_prvkey)
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.SUCCESS
    assert got.output == [{"progress": 0.5}]
    # Not running any more: set_output is refused and changes nothing.
    with pytest.raises((AccessDeniedError, BadRequestError)):
        colony.client.set_output(process.processid, ["late"], colony.executor_prvkey)
    assert colony.client.get_process(process.processid, colony.user_prvkey).output == [{"progress": 0.5}]


def test_set_output_by_other_executor_is_refused(colony: ColonyEnv) -> None:
    other = colony.add_executor("executor-2")
    process = submit(colony)
    assign_now(colony)
    with pytest.raises(AccessDeniedError):
        colony.client.set_output(process.processid, ["x"], other)
    assert colony.client.get_process(process.processid, colony.user_prvkey).output == []


def test_close_by_non_assignee_is_forbidden_and_changes_nothing(colony: ColonyEnv) -> None:
    other = colony.add_executor("executor-2")
    process = submit(colony)
    assign_now(colony)
    with pytest.raises(AccessDeniedError, match="assigned to another executor"):
        colony.client.close(process.processid, ["hijack"], other)
    with pytest.raises(AccessDeniedError):
        colony.client.fail(process.processid, ["hijack"], other)
    with pytest.raises(AccessDeniedError):  # a user is a member but not the assignee
        colony.client.close(process.processid, ["hijack"], colony.user_prvkey)
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.RUNNING
    assert got.output == [] and got.errors == []
    assert got.endtime is None


def test_second_close_is_rejected_and_output_unchanged(colony: ColonyEnv) -> None:
    process = submit(colony)
    assign_now(colony)
    colony.client.close(process.processid, ["first"], colony.executor_prvkey)
    first = colony.client.get_process(process.processid, colony.user_prvkey)
    with pytest.raises(BadRequestError, match="already closed"):
        colony.client.close(process.processid, ["second"], colony.executor_prvkey)
    with pytest.raises(BadRequestError):
        colony.client.fail(process.processid, ["second"], colony.executor_prvkey)
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.SUCCESS
    assert got.output == ["first"]
    assert got.errors == []
    assert got.endtime == first.endtime


def test_close_of_waiting_process_is_forbidden(colony: ColonyEnv) -> None:
    process = submit(colony)
    with pytest.raises(AccessDeniedError, match="not assigned"):
        colony.client.close(process.processid, ["x"], colony.executor_prvkey)
    with pytest.raises(AccessDeniedError, match="not assigned"):
        colony.client.fail(process.processid, ["x"], colony.executor_prvkey)
    got = colony.client.get_process(process.processid, colony.user_prvkey)
    assert got.state == wire.WAITING
    assert got.output == [] and got.errors == []


def test_close_of_unknown_process_is_not_found(colony: ColonyEnv) -> None:
    with pytest.raises(NotFoundError):
        colony.client.close("0" * 64, [], colony.executor_prvkey)


# -- get and list -------------------------------------------------------------------------------


def test_get_unknown_process_is_not_found(colony: ColonyEnv) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        colony.client.get_process("f" * 64, colony.user_prvkey)


def test_get_process_of_another_colony_is_forbidden(colony: ColonyEnv) -> None:
    from tests.conftest import make_colony

    other = make_colony(colony.client, colony.server, "other")
    process = submit(other)
    with pytest.raises(AccessDeniedError):
        colony.client.get_process(process.processid, colony.user_prvkey)
    assert colony.client.get_process(process.processid, other.user_prvkey).processid == process.processid


def test_list_by_state_with_count(colony: ColonyEnv) -> None:
    ids = [submit(colony).processid for _ in range(4)]
    running = assign_now(colony)
    assert running.processid == ids[0]
    waiting = colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey)
    assert [p["processid"] for p in waiting] == ids[1:]
    assert all(p["state"] == wire.WAITING for p in waiting)
    two = colony.client.list_processes(colony.colonyname, 2, wire.WAITING, colony.user_prvkey)
    assert [p["processid"] for p in two] == ids[1:3]
    assert colony.client.list_processes(colony.colonyname, 0, wire.WAITING, colony.user_prvkey) == []
    listed = colony.client.list_processes(colony.colonyname, 10, wire.RUNNING, colony.executor_prvkey)
    assert [p["processid"] for p in listed] == [running.processid]
    assert colony.client.list_processes(colony.colonyname, 10, wire.SUCCESS, colony.user_prvkey) == []


def test_list_success_and_failed_newest_first(colony: ColonyEnv) -> None:
    ids = [submit(colony).processid for _ in range(3)]
    for pid in ids:
        assign_now(colony)
        colony.client.close(pid, [pid], colony.executor_prvkey)
    listed = colony.client.list_processes(colony.colonyname, 10, wire.SUCCESS, colony.user_prvkey)
    assert [p["processid"] for p in listed] == list(reversed(ids))
    assert colony.client.list_processes(colony.colonyname, 10, wire.FAILED, colony.user_prvkey) == []


def test_list_count_over_100_is_rejected(colony: ColonyEnv) -> None:
    with pytest.raises(BadRequestError, match="count"):
        colony.client.list_processes(colony.colonyname, 101, wire.WAITING, colony.user_prvkey)
    assert colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey) == []


def test_list_invalid_state_is_rejected(colony: ColonyEnv) -> None:
    for state in (-1, 5, 99):
        with pytest.raises(BadRequestError, match="invalid msg.State"):
            colony.client.list_processes(colony.colonyname, 10, state, colony.user_prvkey)


def test_list_by_non_member_is_forbidden(colony: ColonyEnv) -> None:
    submit(colony)
    with pytest.raises(AccessDeniedError):
        colony.client.list_processes(colony.colonyname, 10, wire.WAITING, crypto.generate_private_key())


def test_waiting_list_orders_by_priority_then_fifo(colony: ColonyEnv) -> None:
    low_a = submit(colony, priority=0).processid
    high_a = submit(colony, priority=5).processid
    low_b = submit(colony, priority=0).processid
    high_b = submit(colony, priority=5).processid
    negative = submit(colony, priority=-1).processid
    listed = colony.client.list_processes(colony.colonyname, 10, wire.WAITING, colony.user_prvkey)
    assert [p["processid"] for p in listed] == [high_a, high_b, low_a, low_b, negative]


# -- remove -------------------------------------------------------------------------------------


def test_remove_waiting_process(colony: ColonyEnv) -> None:
    keep = submit(colony).processid
    gone = submit(colony).processid
    assert colony.client.remove_process(gone, colony.user_prvkey) == {}
    with pytest.raises(NotFoundError):
        colony.client.get_process(gone, colony.user_prvkey)
    assert colony.client.get_process(keep, colony.user_prvkey).state == wire.WAITING


def test_remove_running_process_is_rejected(colony: ColonyEnv) -> None:
    process = submit(colony)
    assign_now(colony)
    with pytest.raises(BadRequestError, match="running"):
        colony.client.remove_process(process.processid, colony.user_prvkey)
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.RUNNING


def test_remove_unknown_process_is_not_found(colony: ColonyEnv) -> None:
    with pytest.raises(NotFoundError):
        colony.client.remove_process("a" * 64, colony.user_prvkey)


def test_remove_by_non_member_is_forbidden(colony: ColonyEnv) -> None:
    process = submit(colony)
    with pytest.raises(AccessDeniedError):
        colony.client.remove_process(process.processid, crypto.generate_private_key())
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.WAITING


def _ids(colony: ColonyEnv, state: int) -> set[str]:
    return {p["processid"] for p in colony.client.list_processes(colony.colonyname, 100, state,
                                                                 colony.user_prvkey)}


def test_remove_all_by_colony_owner_only_with_state_filter(colony: ColonyEnv) -> None:
    done = submit(colony).processid
    failed = submit(colony).processid
    assign_now(colony)
    colony.client.close(done, [], colony.executor_prvkey)
    assign_now(colony)
    colony.client.fail(failed, ["x"], colony.executor_prvkey)
    running = submit(colony).processid
    assign_now(colony)
    waiting = {submit(colony).processid for _ in range(2)}

    for key in (colony.user_prvkey, colony.executor_prvkey, colony.server_prvkey):
        with pytest.raises(AccessDeniedError, match="not colony owner"):
            colony.client.remove_all_processes(colony.colonyname, key)
    assert _ids(colony, wire.WAITING) == waiting
    assert _ids(colony, wire.SUCCESS) == {done}

    with pytest.raises(BadRequestError):  # running processes cannot be removed this way
        colony.client.remove_all_processes(colony.colonyname, colony.colony_prvkey, wire.RUNNING)

    colony.client.remove_all_processes(colony.colonyname, colony.colony_prvkey, wire.SUCCESS)
    assert _ids(colony, wire.SUCCESS) == set()
    assert _ids(colony, wire.FAILED) == {failed}
    assert _ids(colony, wire.WAITING) == waiting

    assert _ids(colony, wire.RUNNING) == {running}
    # -1 removes every state, running included (as the reference's RemoveAllProcessesByColonyName).
    colony.client.remove_all_processes(colony.colonyname, colony.colony_prvkey)
    for state in (wire.WAITING, wire.RUNNING, wire.SUCCESS, wire.FAILED):
        assert _ids(colony, state) == set()
    with pytest.raises(NotFoundError):  # its executor's late close is a clean 404
        colony.client.close(running, ["ok"], colony.executor_prvkey)


def test_remove_all_only_touches_its_own_colony(colony: ColonyEnv) -> None:
    from tests.conftest import make_colony

    other = make_colony(colony.client, colony.server, "other")
    theirs = submit(other).processid
    submit(colony)
    colony.client.remove_all_processes(colony.colonyname, colony.colony_prvkey)
    assert _ids(colony, wire.WAITING) == set()
    assert colony.client.get_process(theirs, other.user_prvkey).state == wire.WAITING
    with pytest.raises(AccessDeniedError):  # owner of dev is not the owner of other
        colony.client.remove_all_processes(other.colonyname, colony.colony_prvkey)


# -- scheduling conditions ----------------------------------------------------------------------


def test_executornames_targets_only_the_named_executor(colony: ColonyEnv) -> None:
    second = colony.add_executor("executor-2")
    process = submit(colony, cond_executornames=["executor-2"])
    assert process.spec.conditions.executornames == ["executor-2"]
    with pytest.raises(NotFoundError):
        assign_now(colony)  # executor-1 has the right type but is not named
    assigned = assign_now(colony, second)
    assert assigned.processid == process.processid
    assert assigned.assignedexecutorid == crypto.derive_id(second)


def test_executornames_skips_to_next_eligible_process(colony: ColonyEnv) -> None:
    colony.add_executor("executor-2")
    submit(colony, priority=10, cond_executornames=["executor-2"])
    untargeted = submit(colony).processid
    assert assign_now(colony).processid == untargeted


def test_executortype_must_match(colony: ColonyEnv) -> None:
    other_type = colony.add_executor("gpu-1", "gpu-executor")
    process = submit(colony, cond_executortype="gpu-executor")
    with pytest.raises(NotFoundError):
        assign_now(colony)
    assert assign_now(colony, other_type).processid == process.processid
    assert colony.client.get_process(process.processid, colony.user_prvkey).state == wire.RUNNING


def test_higher_priority_is_assigned_first(colony: ColonyEnv) -> None:
    low = submit(colony, priority=1).processid
    high = submit(colony, priority=100).processid
    middle = submit(colony, priority=50).processid
    low_twin = submit(colony, priority=1).processid
    order = [assign_now(colony).processid for _ in range(4)]
    assert order == [high, middle, low, low_twin]


def test_maxexectime_sets_execdeadline(colony: ColonyEnv) -> None:
    limited = submit(colony, maxexectime=30).processid
    assigned = assign_now(colony)
    assert assigned.processid == limited
    assert assigned.execdeadline is not None
    delta = assigned.execdeadline - assigned.starttime
    assert timedelta(seconds=29) <= delta <= timedelta(seconds=31)
    got = colony.client.get_process(limited, colony.user_prvkey)
    assert got.execdeadline == assigned.execdeadline

    unlimited = submit(colony, maxexectime=-1).processid
    assigned = assign_now(colony)
    assert assigned.processid == unlimited
    assert assigned.execdeadline is None


def test_maxwaittime_sets_waitdeadline(colony: ColonyEnv) -> None:
    process = submit(colony, maxwaittime=60)
    assert process.waitdeadline is not None
    delta = process.waitdeadline - process.submissiontime
    assert timedelta(seconds=59) <= delta <= timedelta(seconds=61)
    assert submit(colony, maxwaittime=-1).waitdeadline is None


def test_unset_resources_read_back_as_the_reference_writes_them(colony: ColonyEnv) -> None:
    """What pycolonies sends (empty quantities, executornames null) reads back as the reference
    server returns it: "0m", "0Mi", null; set values stay as they were written."""
    url = f"http://{colony.server.host}:{colony.server.port}"
    conditions = {"colonyname": colony.colonyname, "executornames": None, "executortype": colony.executortype,
                  "dependencies": [], "nodes": 0, "cpu": "", "processes": 0, "processespernode": 0, "mem": "",
                  "storage": "", "gpu": {"name": "", "mem": "", "count": 0, "nodecount": 0}, "walltime": 0}
    spec = {"funcname": "f", "maxexectime": -1, "conditions": conditions}
    status, unset = rawrpc.call(url, {"msgtype": "submitfuncspecmsg", "spec": spec}, colony.user_prvkey)
    assert status == 200
    for read in (unset, rawrpc.call(url, {"msgtype": "getprocessmsg", "processid": unset["processid"]},
                                    colony.user_prvkey)[1]):
        got = read["spec"]["conditions"]
        assert (got["cpu"], got["mem"], got["storage"], got["gpu"]["mem"]) == ("0m", "0Mi", "0Mi", "0Mi")
        assert got["executornames"] is None
    given = {**conditions, "cpu": "500m", "mem": "1Gi", "executornames": ["executor-1"]}
    _, kept = rawrpc.call(url, {"msgtype": "submitfuncspecmsg", "spec": {**spec, "conditions": given}},
                          colony.user_prvkey)
    assert (kept["spec"]["conditions"]["cpu"], kept["spec"]["conditions"]["mem"]) == ("500m", "1Gi")
    assert kept["spec"]["conditions"]["executornames"] == ["executor-1"]
    # The SDK still reads them as unset.
    read_back = colony.client.get_process(unset["processid"], colony.user_prvkey)
    assert read_back.spec.conditions.executornames in (None, [])
