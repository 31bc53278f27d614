"""ColoniesApi builds the right messages and parses replies, independent of the transport."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pycolonies import FuncSpec, Process, ProcessGraph, Workflow, func_spec
from pycolonies.api import ColoniesApi

K = "key"


class RecordingApi(ColoniesApi):
    """Records each call; replies with ``self.reply`` (JSON as the server would send it)."""

    def __init__(self, reply: Any = None) -> None:
        self.reply = reply
        self.calls: list[tuple[dict[str, Any], str | None]] = []
        self.transport_closed = False

    def _invoke(self, msg, prvkey, parse):  # type: ignore[override]
        # what goes on the wire is JSON: prove the message is serialisable
        self.calls.append((json.loads(json.dumps(msg)), prvkey))
        return parse(self.reply)

    def _close_transport(self) -> None:
        self.transport_closed = True

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1][0]


SPEC = func_spec("echo", ["hi"], "dev", "cli")
WORKFLOW = Workflow(colonyname="dev", functionspecs=[SPEC])

# (call, expected message without the msgtype, msgtype)
CASES: list[tuple[Any, str, dict[str, Any]]] = [
    (
        lambda c: c.add_colony({"colonyid": "i", "name": "dev"}, K),
        "addcolonymsg",
        {"colony": {"colonyid": "i", "name": "dev"}},
    ),
    (lambda c: c.del_colony("dev", K), "removecolonymsg", {"colonyname": "dev"}),
    (lambda c: c.list_colonies(K), "getcoloniesmsg", {}),
    (lambda c: c.get_colony("dev", K), "getcolonymsg", {"colonyname": "dev"}),
    (lambda c: c.stats("dev", K), "getcolonystatsmsg", {"colonyname": "dev"}),
    (
        lambda c: c.add_executor({"executorname": "e"}, K),
        "addexecutormsg",
        {"executor": {"executorname": "e"}},
    ),
    (lambda c: c.list_executors("dev", K), "getexecutorsmsg", {"colonyname": "dev"}),
    (lambda c: c.get_executor("dev", "e", K), "getexecutormsg", {"colonyname": "dev", "executorname": "e"}),
    (
        lambda c: c.approve_executor("dev", "e", K),
        "approveexecutormsg",
        {"colonyname": "dev", "executorname": "e"},
    ),
    (
        lambda c: c.reject_executor("dev", "e", K),
        "rejectexecutormsg",
        {"colonyname": "dev", "executorname": "e"},
    ),
    (
        lambda c: c.remove_executor("dev", "e", K),
        "removeexecutormsg",
        {"colonyname": "dev", "executorname": "e"},
    ),
    (lambda c: c.add_user({"name": "u"}, K), "addusermsg", {"user": {"name": "u"}}),
    (lambda c: c.get_users("dev", K), "getusersmsg", {"colonyname": "dev"}),
    (lambda c: c.get_user("dev", "u", K), "getusermsg", {"colonyname": "dev", "name": "u"}),
    (lambda c: c.remove_user("dev", "u", K), "removeusermsg", {"colonyname": "dev", "name": "u"}),
    (
        lambda c: c.add_function("dev", "e", "f", K),
        "addfunctionmsg",
        {"fun": {"executorname": "e", "colonyname": "dev", "funcname": "f"}},
    ),
    (
        lambda c: c.get_functions_by_executor("dev", "e", K),
        "getfunctionsmsg",
        {"colonyname": "dev", "executorname": "e"},
    ),
    (lambda c: c.get_functions_by_colony("dev", K), "getfunctionsmsg", {"colonyname": "dev"}),
    (lambda c: c.remove_function("fid", K), "removefunctionmsg", {"functionid": "fid"}),
    (
        lambda c: c.assign("dev", 10, K),
        "assignprocessmsg",
        {"colonyname": "dev", "timeout": 10, "availablecpu": "", "availablemem": ""},
    ),
    (
        lambda c: c.assign("dev", 5, K, "4000m", "8Gi"),
        "assignprocessmsg",
        {"colonyname": "dev", "timeout": 5, "availablecpu": "4000m", "availablemem": "8Gi"},
    ),
    (
        lambda c: c.list_processes("dev", 10, 2, K),
        "getprocessesmsg",
        {"colonyname": "dev", "count": 10, "state": 2},
    ),
    (lambda c: c.get_process("p", K), "getprocessmsg", {"processid": "p"}),
    (lambda c: c.remove_process("p", K), "removeprocessmsg", {"processid": "p"}),
    (lambda c: c.remove_all_processes("dev", K), "removeallprocessesmsg", {"colonyname": "dev", "state": -1}),
    (
        lambda c: c.remove_all_processes("dev", K, 3),
        "removeallprocessesmsg",
        {"colonyname": "dev", "state": 3},
    ),
    (
        lambda c: c.close("p", [1, {"a": 2}], K),
        "closesuccessfulmsg",
        {"processid": "p", "out": [1, {"a": 2}]},
    ),
    (lambda c: c.close_process("p", [], K), "closesuccessfulmsg", {"processid": "p", "out": []}),
    (lambda c: c.fail("p", ["boom"], K), "closefailedmsg", {"processid": "p", "errors": ["boom"]}),
    (lambda c: c.set_output("p", [1.5], K), "setoutputmsg", {"processid": "p", "out": [1.5]}),
    (lambda c: c.cancel_process("p", K), "cancelprocessmsg", {"processid": "p"}),
    (
        lambda c: c.add_attribute("p", "k", "v", K),
        "addattributemsg",
        {"attribute": {"key": "k", "value": "v", "targetid": "p", "attributetype": 1}},
    ),
    (lambda c: c.get_attribute("a", K), "getattributemsg", {"attributeid": "a"}),
    (lambda c: c.add_log("p", "hello\n", K), "addlogmsg", {"processid": "p", "message": "hello\n"}),
    (
        lambda c: c.get_process_log("dev", "p", 50, 0, K),
        "getlogsmsg",
        {"colonyname": "dev", "processid": "p", "executorname": "", "count": 50, "since": 0, "latest": False},
    ),
    (
        lambda c: c.get_executor_log("dev", "e", 50, 7, K, latest=True),
        "getlogsmsg",
        {"colonyname": "dev", "processid": "", "executorname": "e", "count": 50, "since": 7, "latest": True},
    ),
    (lambda c: c.get_processgraph("g", K), "getprocessgraphmsg", {"processgraphid": "g"}),
    (lambda c: c.get_processgraphs("dev", 10, K), "getprocessgraphsmsg", {"colonyname": "dev", "count": 10}),
    (
        lambda c: c.get_processgraphs("dev", 10, K, 1),
        "getprocessgraphsmsg",
        {"colonyname": "dev", "count": 10, "state": 1},
    ),
    (lambda c: c.remove_processgraph("g", K), "removeprocessgraphmsg", {"processgraphid": "g"}),
    (lambda c: c.remove_all_processgraphs("dev", K), "removeallprocessgraphsmsg", {"colonyname": "dev"}),
    (
        lambda c: c.remove_all_processgraphs("dev", K, -1),
        "removeallprocessgraphsmsg",
        {"colonyname": "dev", "state": -1},
    ),
    (lambda c: c.cancel_processgraph("g", K), "cancelprocessgraphmsg", {"processgraphid": "g"}),
    (lambda c: c.get_cron("c", K), "getcronmsg", {"cronid": "c"}),
    (lambda c: c.get_crons("dev", 5, K), "getcronsmsg", {"colonyname": "dev", "count": 5}),
    (lambda c: c.del_cron("c", K), "removecronmsg", {"cronid": "c", "all": False}),
    (lambda c: c.run_cron("c", K), "runcronmsg", {"cronid": "c"}),
    (lambda c: c.add_generator({"name": "g"}, K), "addgeneratormsg", {"generator": {"name": "g"}}),
    (lambda c: c.get_generator("g", K), "getgeneratormsg", {"generatorid": "g"}),
    (lambda c: c.get_generators("dev", K), "getgeneratorsmsg", {"colonyname": "dev", "count": 100}),
    (lambda c: c.pack_generator("g", "x", K), "packgeneratormsg", {"generatorid": "g", "arg": "x"}),
    (lambda c: c.remove_generator("g", K), "removegeneratormsg", {"generatorid": "g", "all": False}),
    (lambda c: c.server_statistics(K), "getstatisticsmsg", {}),
    (lambda c: c.add_blueprint_definition({"kind": "BlueprintDefinition"}, K), "addblueprintdefinitionmsg",
     {"blueprintdefinition": {"kind": "BlueprintDefinition"}}),
    (lambda c: c.get_blueprint_definition("dev", "d", K), "getblueprintdefinitionmsg",
     {"colonyname": "dev", "name": "d"}),
    (lambda c: c.get_blueprint_definitions("dev", K), "getblueprintdefinitionsmsg", {"colonyname": "dev"}),
    (lambda c: c.remove_blueprint_definition("dev", "d", K), "removeblueprintdefinitionmsg",
     {"namespace": "dev", "name": "d"}),
    (lambda c: c.add_blueprint({"kind": "K"}, K), "addblueprintmsg", {"blueprint": {"kind": "K"}}),
    (lambda c: c.get_blueprint("dev", "b", K), "getblueprintmsg", {"namespace": "dev", "name": "b"}),
    (lambda c: c.get_blueprints("dev", K), "getblueprintsmsg", {"namespace": "dev"}),
    (lambda c: c.get_blueprints("dev", K, kind="K", location="l"), "getblueprintsmsg",
     {"namespace": "dev", "kind": "K", "locationname": "l"}),
    (lambda c: c.update_blueprint({"kind": "K"}, K, force_generation=True), "updateblueprintmsg",
     {"blueprint": {"kind": "K"}, "forcegeneration": True}),
    (lambda c: c.remove_blueprint("dev", "b", K), "removeblueprintmsg", {"namespace": "dev", "name": "b"}),
    (lambda c: c.update_blueprint_status("dev", "b", {"ready": 1}, K), "updateblueprintstatusmsg",
     {"colonyname": "dev", "blueprintname": "b", "status": {"ready": 1}}),
    (lambda c: c.reconcile_blueprint("dev", "b", K, force=True), "reconcileblueprintmsg",
     {"namespace": "dev", "name": "b", "force": True}),
    (lambda c: c.get_blueprint_history("i", K, limit=5), "getblueprinthistorymsg",
     {"blueprintid": "i", "limit": 5}),
]


@pytest.mark.parametrize(
    ("call", "msgtype", "fields"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_message_fields(call, msgtype: str, fields: dict[str, Any]) -> None:
    api = RecordingApi()
    call(api)
    msg, prvkey = api.calls[-1]
    assert msg == {"msgtype": msgtype, **fields}
    assert prvkey == K


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.list_colonies(K),
        lambda c: c.list_executors("dev", K),
        lambda c: c.get_users("dev", K),
        lambda c: c.get_functions_by_colony("dev", K),
        lambda c: c.list_processes("dev", 10, 0, K),
        lambda c: c.get_process_log("dev", "p", 10, 0, K),
        lambda c: c.get_processgraphs("dev", 10, K),
        lambda c: c.get_crons("dev", 10, K),
        lambda c: c.get_generators("dev", K),
    ],
)
def test_null_list_reply_becomes_empty_list(call) -> None:
    assert call(RecordingApi(reply=None)) == []


def test_dict_replies_are_returned_as_is() -> None:
    reply = {"colonyid": "i", "name": "dev"}
    assert RecordingApi(reply).get_colony("dev", K) == reply


def test_submit_func_spec_sends_wire_spec_and_returns_process() -> None:
    api = RecordingApi(reply={"processid": "p1", "spec": SPEC.to_wire(), "in": [], "out": []})
    process = api.submit_func_spec(SPEC, K)
    assert api.last == {"msgtype": "submitfuncspecmsg", "spec": SPEC.to_wire()}
    assert isinstance(process, Process)
    assert process.processid == "p1"
    assert process.spec == FuncSpec.from_wire(SPEC.to_wire())


def test_submit_func_spec_accepts_a_plain_dict() -> None:
    api = RecordingApi(reply={"processid": "p1"})
    api.submit_func_spec({"funcname": "echo"}, K)
    assert api.last["spec"] == {"funcname": "echo"}


@pytest.mark.parametrize("method", ["assign", "get_process"])
def test_process_returning_methods(method: str) -> None:
    api = RecordingApi(reply={"processid": "p2", "state": 1, "in": [3]})
    process = api.assign("dev", 1, K) if method == "assign" else api.get_process("p2", K)
    assert isinstance(process, Process)
    assert (process.processid, process.state, process.input) == ("p2", 1, [3])


def test_submit_workflow_and_get_processgraph_return_processgraphs() -> None:
    api = RecordingApi(reply={"processgraphid": "g1", "processids": ["a"], "nodes": None})
    graph = api.submit_workflow(WORKFLOW, K)
    assert api.last == {"msgtype": "submitworkflowspecmsg", "spec": WORKFLOW.to_wire()}
    assert isinstance(graph, ProcessGraph)
    assert graph.processids == ["a"]
    assert graph.nodes == []
    assert isinstance(api.get_processgraph("g1", K), ProcessGraph)


def test_add_child_sets_nodename_without_mutating_the_spec() -> None:
    api = RecordingApi(reply={"processid": "child"})
    spec = func_spec("gen_nums", [], "dev", "python-executor", code="x = 1")
    result = api.add_child("g", "parent", "reduce", spec, "gen_nums_0", True, K)
    msg = api.last
    assert msg["msgtype"] == "addchildmsg"
    assert (msg["processgraphid"], msg["parentprocessid"], msg["childprocessid"]) == ("g", "parent", "reduce")
    assert msg["insert"] is True
    assert msg["spec"]["nodename"] == "gen_nums_0"
    assert msg["spec"]["funcname"] == "gen_nums"
    assert spec.nodename == "gen_nums"
    assert result == {"processid": "child"}


def test_add_cron_sends_correct_wait_key_and_workflow_as_string() -> None:
    api = RecordingApi()
    api.add_cron("nightly", "0 0 3 * * *", True, WORKFLOW, "dev", K)
    cron = api.last["cron"]
    assert cron["waitforprevprocessgraph"] is True
    assert "waitforprevprocessgrap" not in cron
    assert cron["interval"] == -1
    assert cron["cronexpression"] == "0 0 3 * * *"
    assert (cron["name"], cron["colonyname"]) == ("nightly", "dev")
    assert isinstance(cron["workflowspec"], str)
    assert json.loads(cron["workflowspec"]) == WORKFLOW.to_wire()


def test_unsigned_server_calls() -> None:
    api = RecordingApi(reply={"buildversion": "v", "buildtime": "t"})
    assert api.server_version() == {"buildversion": "v", "buildtime": "t"}
    assert api.calls[-1] == ({"msgtype": "versionmsg", "buildversion": "", "buildtime": ""}, None)
    api.server_info()
    assert api.calls[-1] == ({"msgtype": "getserverinfomsg"}, None)


def test_close_without_arguments_closes_the_transport() -> None:
    api = RecordingApi()
    api.close()
    assert api.transport_closed
    assert api.calls == []


def test_close_with_keywords_is_the_rpc() -> None:
    api = RecordingApi()
    api.close(processid="p", output=["x"], prvkey=K)
    assert api.last == {"msgtype": "closesuccessfulmsg", "processid": "p", "out": ["x"]}
    assert not api.transport_closed


def test_close_with_partial_arguments_is_an_error() -> None:
    with pytest.raises(TypeError):
        RecordingApi().close("p")


def test_state_constants() -> None:
    assert (ColoniesApi.WAITING, ColoniesApi.RUNNING, ColoniesApi.SUCCESSFUL) == (0, 1, 2)
    assert (ColoniesApi.FAILED, ColoniesApi.CANCELLED) == (3, 4)
