"""Wire models: round trips, JSON naming, Go-style zero values and typed decoding errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pycolonies import Attribute, Conditions, Fs, FuncSpec, Gpu, Process, ProcessGraph, Workflow, wire
from pycolonies.models import FieldError

PROCESS_WIRE = {
    "processid": "a" * 64,
    "initiatorid": "b" * 64,
    "initiatorname": "alice",
    "assignedexecutorid": "c" * 64,
    "isassigned": True,
    "state": wire.RUNNING,
    "prioritytime": 1739368223123456000,
    "submissiontime": "2026-02-12T14:30:23.123456Z",
    "starttime": "2026-02-12T14:30:24.5Z",
    "endtime": "0001-01-01T00:00:00Z",
    "waitdeadline": "0001-01-01T00:00:00Z",
    "execdeadline": "2026-02-12T14:31:24.5Z",
    "retries": 1,
    "attributes": [
        {
            "attributeid": "d" * 64,
            "targetid": "a" * 64,
            "targetcolonyname": "dev",
            "targetprocessgraphid": "",
            "state": 0,
            "attributetype": wire.ENV,
            "key": "k",
            "value": "v",
        }
    ],
    "spec": {
        "nodename": "echo",
        "funcname": "echo",
        "args": ["hello", 1, 2.5, {"nested": [1, 2]}, None, True],
        "kwargs": {"x": 1.5, "y": {"z": "w"}, "l": [1, "a"]},
        "priority": 3,
        "maxwaittime": -1,
        "maxexectime": 60,
        "maxretries": 3,
        "conditions": {
            "colonyname": "dev",
            "executornames": ["worker-1"],
            "executortype": "cli",
            "dependencies": [],
            "nodes": 0,
            "cpu": "0m",
            "processes": 0,
            "processespernode": 0,
            "mem": "0Mi",
            "storage": "0Mi",
            "gpu": {"name": "", "mem": "0Mi", "count": 0, "nodecount": 0},
            "walltime": 0,
        },
        "label": "",
        "fs": {"mount": "", "snapshots": None, "dirs": None},
        "env": {"k": "v"},
        "channels": [],
    },
    "waitforparents": False,
    "parents": [],
    "children": ["e" * 64],
    "processgraphid": "",
    "in": [{"a": 1}, 2.25],
    "out": ["done", {"score": 0.5}],
    "errors": [],
}


def test_process_decodes_every_field() -> None:
    process = Process.from_wire(PROCESS_WIRE)
    assert process.processid == "a" * 64
    assert process.isassigned is True
    assert process.state == wire.RUNNING
    assert process.prioritytime == 1739368223123456000
    assert process.submissiontime == datetime(2026, 2, 12, 14, 30, 23, 123456, tzinfo=UTC)
    assert process.endtime is None
    assert process.attributes[0] == Attribute(
        attributeid="d" * 64,
        targetid="a" * 64,
        targetcolonyname="dev",
        attributetype=wire.ENV,
        key="k",
        value="v",
    )
    assert process.spec.conditions.executornames == ["worker-1"]
    assert process.spec.conditions.gpu == Gpu(mem="0Mi")
    assert process.children == ["e" * 64]


def test_process_in_and_out_use_wire_names() -> None:
    process = Process.from_wire(PROCESS_WIRE)
    assert process.input == [{"a": 1}, 2.25]
    assert process.output == ["done", {"score": 0.5}]
    out = process.to_wire()
    assert out["in"] == [{"a": 1}, 2.25]
    assert out["out"] == ["done", {"score": 0.5}]
    assert "input" not in out and "output" not in out


def test_process_round_trip_is_lossless() -> None:
    process = Process.from_wire(PROCESS_WIRE)
    out = process.to_wire()
    assert out == PROCESS_WIRE
    assert Process.from_wire(json.loads(json.dumps(out))) == process


def test_any_json_args_kwargs_and_outputs_survive() -> None:
    spec = Process.from_wire(PROCESS_WIRE).spec
    assert spec.args == ["hello", 1, 2.5, {"nested": [1, 2]}, None, True]
    assert spec.kwargs == {"x": 1.5, "y": {"z": "w"}, "l": [1, "a"]}
    assert FuncSpec.from_wire(spec.to_wire()) == spec


def test_zero_times_decode_to_none_and_encode_as_go_zero_time() -> None:
    process = Process.from_wire({"processid": "p", "submissiontime": wire.ZERO_TIME})
    assert process.submissiontime is None
    out = process.to_wire()
    for key in ("submissiontime", "starttime", "endtime", "waitdeadline", "execdeadline"):
        assert out[key] == "0001-01-01T00:00:00Z"


def test_times_with_offsets_and_nanoseconds_normalise_to_utc() -> None:
    process = Process.from_wire(
        {"submissiontime": "2026-02-12T14:30:23.123456789+01:00", "starttime": "2026-02-12T13:30:00Z"}
    )
    assert process.submissiontime == datetime(2026, 2, 12, 13, 30, 23, 123456, tzinfo=UTC)
    out = process.to_wire()
    assert out["submissiontime"] == "2026-02-12T13:30:23.123456Z"
    assert out["starttime"] == "2026-02-12T13:30:00Z"


def test_missing_and_null_fields_take_zero_values() -> None:
    process = Process.from_wire({"processid": "p", "parents": None, "spec": None, "in": None})
    assert process.parents == []
    assert process.input == []
    assert process.spec == FuncSpec()
    assert process.state == wire.WAITING
    assert process.isassigned is False


def test_empty_process_emits_lists_not_nulls() -> None:
    out = Process().to_wire()
    for key in ("attributes", "parents", "children", "in", "out", "errors"):
        assert out[key] == []
    assert out["spec"]["env"] == {}
    assert out["spec"]["fs"] == {"mount": "", "snapshots": None, "dirs": None}
    assert out["spec"]["conditions"]["executornames"] == []


def test_unknown_fields_are_ignored() -> None:
    process = Process.from_wire({"processid": "p", "someday": "a new field"})
    assert process.processid == "p"


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"spec": {"conditions": {"executortype": 5}}}, "spec.conditions.executortype", "a string"),
        ({"state": "running"}, "state", "an integer"),
        ({"isassigned": 1}, "isassigned", "a boolean"),
        ({"parents": "p1"}, "parents", "a list"),
        ({"parents": ["p1", 2]}, "parents[1]", "a string"),
        ({"spec": {"env": {"k": 1}}}, "spec.env.k", "a string"),
        ({"spec": {"kwargs": []}}, "spec.kwargs", "an object"),
        ({"submissiontime": "yesterday"}, "submissiontime", "an RFC 3339 timestamp"),
        ({"attributes": [{"key": ["k"]}]}, "attributes[0].key", "a string"),
    ],
)
def test_wrong_types_raise_errors_naming_the_field(data: dict, path: str, expected: str) -> None:
    with pytest.raises(FieldError) as info:
        Process.from_wire(data)
    assert info.value.path == path
    assert str(info.value) == f"{path} must be {expected}"


def test_integral_float_is_accepted_for_int_fields() -> None:
    assert Process.from_wire({"state": 2.0}).state == 2
    with pytest.raises(FieldError):
        Process.from_wire({"state": 2.5})


def test_non_object_top_level_is_an_error() -> None:
    with pytest.raises(FieldError):
        Process.from_wire(["not", "an", "object"])


def test_conditions_and_fs_defaults() -> None:
    conditions = Conditions(colonyname="dev", executortype="cli")
    out = conditions.to_wire()
    assert out["executornames"] == []
    assert out["dependencies"] == []
    assert out["gpu"] == {"name": "", "mem": "", "count": 0, "nodecount": 0}
    assert "locationname" not in out  # omitted when empty
    assert Conditions(locationname="lab").to_wire()["locationname"] == "lab"
    assert Fs().to_wire() == {"mount": "", "snapshots": None, "dirs": None}


def test_default_factories_are_not_shared() -> None:
    a, b = Conditions(), Conditions()
    a.dependencies.append("x")
    assert b.dependencies == []


def test_workflow_to_wire_nests_function_specs() -> None:
    wf = Workflow(colonyname="dev")
    wf.functionspecs.append(FuncSpec(nodename="a", funcname="a"))
    child = FuncSpec(nodename="b", funcname="b")
    child.conditions.dependencies.append("a")
    wf.functionspecs.append(child)
    out = wf.to_wire()
    assert out["colonyname"] == "dev"
    assert [s["nodename"] for s in out["functionspecs"]] == ["a", "b"]
    assert out["functionspecs"][1]["conditions"]["dependencies"] == ["a"]
    assert Workflow.from_wire(out).to_wire() == out


def test_processgraph_round_trip() -> None:
    data = {
        "processgraphid": "g" * 64,
        "initiatorid": "i" * 64,
        "initiatorname": "alice",
        "colonyname": "dev",
        "rootprocessids": ["a"],
        "state": wire.RUNNING,
        "submissiontime": "2026-02-12T14:30:23Z",
        "starttime": "2026-02-12T14:30:24Z",
        "endtime": "0001-01-01T00:00:00Z",
        "processids": ["a", "b"],
        "nodes": [
            {
                "id": "a",
                "data": {"label": "a"},
                "position": {"x": 0, "y": 0},
                "type": "input",
                "style": {"color": "", "background": "#4689cd"},
            }
        ],
        "edges": [{"id": "a-b", "source": "a", "target": "b", "animated": True}],
    }
    graph = ProcessGraph.from_wire(data)
    assert graph.processids == ["a", "b"]
    assert graph.nodes[0].data == {"label": "a"}
    assert graph.edges[0].animated is True
    assert graph.endtime is None
    assert graph.to_wire() == data


def test_reference_style_helpers() -> None:
    spec = FuncSpec(nodename="n", funcname="f", args=[1.5])
    assert spec.model_dump(by_alias=True) == spec.to_wire() == spec.to_dict()
    assert json.loads(spec.model_dump_json()) == spec.to_wire()


def test_processes_per_node_is_read_under_both_names_the_reference_writes() -> None:
    assert FuncSpec.from_wire({"conditions": {"processes-per-node": 4}}).conditions.processespernode == 4
    both = {"conditions": {"processespernode": 3, "processes-per-node": 4}}
    assert FuncSpec.from_wire(both).conditions.processespernode == 3
    assert FuncSpec.from_wire(both).to_wire()["conditions"]["processespernode"] == 3
