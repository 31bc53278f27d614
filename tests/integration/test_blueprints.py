"""Blueprints and reconcilers (docs/blueprints.md) against a real server and PostgreSQL, through the
SDK and raw HTTP.

Contract: the colony owner adds a definition of a kind (a JSON Schema for the spec, checked by a
real JSON Schema library, and the executor type and function that reconcile it); members or the
owner add, update and remove blueprints of that kind, each spec validated against the schema with
the failing path named. Every change (add, update, remove, reconcile now) commits together with a
history row and a WAITING reconcile process for the definition's executor type that carries the
old and the new blueprint; a refused change leaves nothing behind. The reconciler (a member)
reports the status; generation grows with each spec change (or a forced one).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from typing import Any

import pytest

from pycolonies import Colonies, crypto, wire
from pycolonies.aio import AsyncColonies
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv
from tests.expect import refused

KIND = "ExecutorDeployment"
RECONCILER_TYPE = "deployment-reconciler"
SCHEMA = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "minimum": 0},
        "executorType": {"type": "string"},
        "template": {
            "type": "object",
            "properties": {"image": {"type": "string"},
                           "ports": {"type": "array", "items": {"type": "integer"}}},
            "required": ["image"],
        },
    },
    "required": ["replicas"],
}


def definition(colony: ColonyEnv, *, name: str = "executordeployments", kind: str = KIND,
               schema: Any = SCHEMA, executor_type: str = RECONCILER_TYPE) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "group": "compute.colonies.io", "version": "v1", "scope": "Namespaced",
        "names": {"kind": kind, "plural": name, "singular": kind.lower()},
        "handler": {"executorType": executor_type, "functionName": "reconcile"},
    }
    if schema is not None:
        spec["schema"] = schema
    return {"kind": "BlueprintDefinition", "metadata": {"name": name, "colonyname": colony.colonyname},
            "spec": spec}


def blueprint(colony: ColonyEnv, name: str = "web", replicas: Any = 2, **spec: Any) -> dict[str, Any]:
    return {"kind": KIND, "metadata": {"name": name, "colonyname": colony.colonyname},
            "spec": {"replicas": replicas, **spec}}


def define(colony: ColonyEnv, **kwargs: Any) -> dict[str, Any]:
    return colony.client.add_blueprint_definition(definition(colony, **kwargs), colony.colony_prvkey)


def waiting_reconciles(colony: ColonyEnv) -> list[dict[str, Any]]:
    return colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey,
                                        executortype=RECONCILER_TYPE)


def reconcile_of(colony: ColonyEnv, bp: dict[str, Any]) -> Any:
    return colony.client.get_process(bp["metadata"]["lastReconciliationProcess"], colony.user_prvkey)


# -- definitions ----------------------------------------------------------------------------------


def test_the_owner_adds_lists_and_removes_definitions(colony: ColonyEnv) -> None:
    added = define(colony)
    assert len(added["blueprintdefinitionid"]) == 64
    assert added["spec"]["names"]["kind"] == KIND
    assert added["metadata"]["colonyname"] == colony.colonyname
    got = colony.client.get_blueprint_definition(colony.colonyname, "executordeployments", colony.user_prvkey)
    assert got["spec"]["schema"] == SCHEMA
    assert [d["metadata"]["name"] for d in colony.client.get_blueprint_definitions(
        colony.colonyname, colony.executor_prvkey)] == ["executordeployments"]
    colony.client.remove_blueprint_definition(colony.colonyname, "executordeployments", colony.colony_prvkey)
    assert colony.client.get_blueprint_definitions(colony.colonyname, colony.colony_prvkey) == []
    refused(lambda: colony.client.get_blueprint_definition(colony.colonyname, "executordeployments",
                                                           colony.user_prvkey), 404, "not found")


def test_only_the_owner_adds_or_removes_definitions(colony: ColonyEnv) -> None:
    for key in (colony.user_prvkey, colony.executor_prvkey, crypto.generate_private_key()):
        refused(lambda key=key: colony.client.add_blueprint_definition(definition(colony), key), 403,
                "not colony owner")
    define(colony)
    for key in (colony.user_prvkey, colony.executor_prvkey):
        refused(lambda key=key: colony.client.remove_blueprint_definition(
            colony.colonyname, "executordeployments", key), 403, "not colony owner")
    stranger = crypto.generate_private_key()
    refused(lambda: colony.client.get_blueprint_definitions(colony.colonyname, stranger), 403, "not a member")
    assert len(colony.client.get_blueprint_definitions(colony.colonyname, colony.colony_prvkey)) == 1


def test_a_definition_with_an_invalid_schema_is_refused(colony: ColonyEnv) -> None:
    error = refused(lambda: define(colony, schema={"type": "strng"}), 400, "blueprintdefinition.spec.schema")
    assert "not a valid JSON Schema" in error.message
    refused(lambda: define(colony, schema={"properties": {"a": {"minimum": "zero"}}}), 400,
            "/properties/a/minimum")
    refused(lambda: define(colony, schema=[1]), 400, "spec.schema: must be an object")
    refused(lambda: define(colony, kind=""), 400, "blueprintdefinition.spec.names.kind: is required")
    refused(lambda: define(colony, executor_type=""), 400, "spec.handler.executorType: is required")
    assert colony.client.get_blueprint_definitions(colony.colonyname, colony.colony_prvkey) == []


def test_definition_names_and_kinds_are_unique_per_colony(colony: ColonyEnv) -> None:
    define(colony)
    refused(lambda: define(colony), 409, "named <executordeployments>")
    refused(lambda: define(colony, name="other"), 409, f"for kind <{KIND}>")


def test_a_definition_in_use_cannot_be_removed(colony: ColonyEnv) -> None:
    define(colony)
    colony.client.add_blueprint(blueprint(colony), colony.user_prvkey)
    refused(lambda: colony.client.remove_blueprint_definition(colony.colonyname, "executordeployments",
                                                              colony.colony_prvkey), 409, "remove them first")
    colony.client.remove_blueprint(colony.colonyname, "web", colony.user_prvkey)
    colony.client.remove_blueprint_definition(colony.colonyname, "executordeployments", colony.colony_prvkey)


# -- blueprints and their reconcile processes ------------------------------------------------------


def test_adding_a_blueprint_submits_a_reconcile_process_with_the_new_state(colony: ColonyEnv) -> None:
    define(colony)
    added = colony.client.add_blueprint(blueprint(colony, template={"image": "python:3.12"}),
                                        colony.user_prvkey)
    assert added["metadata"]["generation"] == 1
    assert added["status"] == {}
    process = reconcile_of(colony, added)
    assert process.state == wire.WAITING
    assert process.spec.funcname == "reconcile"
    assert process.spec.conditions.executortype == RECONCILER_TYPE
    assert process.initiatorname == colony.username
    kwargs = process.spec.kwargs
    assert kwargs["kind"] == KIND and kwargs["blueprintName"] == "web" and kwargs["generation"] == 1
    assert kwargs["reconciliation"]["action"] == "create"
    assert "old" not in kwargs["reconciliation"]
    assert kwargs["reconciliation"]["new"]["spec"] == {"replicas": 2, "template": {"image": "python:3.12"}}
    assert [p["processid"] for p in waiting_reconciles(colony)] == [process.processid]
    # An executor of the reconciler's type is given it.
    reconciler = colony.add_executor("reconciler-1", RECONCILER_TYPE)
    assert colony.client.assign(colony.colonyname, 5, reconciler).processid == process.processid


def test_a_spec_the_schema_refuses_is_refused_naming_the_path(colony: ColonyEnv) -> None:
    define(colony)
    add = colony.client.add_blueprint
    refused(lambda: add(blueprint(colony, replicas="two"), colony.user_prvkey), 400,
            "blueprint.spec.replicas: 'two' is not of type 'integer'")
    refused(lambda: add(blueprint(colony, replicas=-1), colony.user_prvkey), 400, "blueprint.spec.replicas")
    bad_port = blueprint(colony, template={"image": "x", "ports": [80, "http"]})
    refused(lambda: add(bad_port, colony.user_prvkey), 400, "blueprint.spec.template.ports[1]")
    refused(lambda: add(blueprint(colony, template={}), colony.user_prvkey), 400,
            "blueprint.spec.template: 'image' is a required property")
    missing = blueprint(colony)
    missing["spec"] = {}
    refused(lambda: add(missing, colony.user_prvkey), 400, "'replicas' is a required property")
    other = {**blueprint(colony), "kind": "Unknown"}
    refused(lambda: add(other, colony.user_prvkey), 400, "no BlueprintDefinition for kind <Unknown>")
    # Nothing of a refused change was written.
    assert colony.client.get_blueprints(colony.colonyname, colony.user_prvkey) == []
    assert waiting_reconciles(colony) == []


def test_without_a_schema_any_spec_object_is_accepted(colony: ColonyEnv) -> None:
    define(colony, schema=None)
    added = colony.client.add_blueprint(blueprint(colony, replicas="anything"), colony.user_prvkey)
    assert added["spec"]["replicas"] == "anything"


def test_update_generations_history_and_old_and_new_state(colony: ColonyEnv) -> None:
    define(colony)
    added = colony.client.add_blueprint(blueprint(colony), colony.user_prvkey)
    updated = colony.client.update_blueprint(blueprint(colony, replicas=1), colony.executor_prvkey)
    assert updated["blueprintid"] == added["blueprintid"]
    assert updated["metadata"]["generation"] == 2
    reconciliation = reconcile_of(colony, updated).spec.kwargs["reconciliation"]
    assert reconciliation["action"] == "update"
    assert reconciliation["old"]["spec"]["replicas"] == 2 and reconciliation["new"]["spec"]["replicas"] == 1
    assert reconciliation["old"]["metadata"]["generation"] == 1

    same = colony.client.update_blueprint(blueprint(colony, replicas=1), colony.user_prvkey)
    assert same["metadata"]["generation"] == 2
    assert reconcile_of(colony, same).spec.kwargs["reconciliation"]["action"] == "noop"
    forced = colony.client.update_blueprint(blueprint(colony, replicas=1), colony.user_prvkey,
                                            force_generation=True)
    assert forced["metadata"]["generation"] == 3

    history = colony.client.get_blueprint_history(added["blueprintid"], colony.user_prvkey)
    assert [(h["changetype"], h["generation"]) for h in history] == [
        ("update", 3), ("update", 2), ("update", 2), ("create", 1)]
    assert history[-1]["spec"] == {"replicas": 2}
    assert history[0]["processid"] == forced["metadata"]["lastReconciliationProcess"]
    assert history[0]["changedby"] == crypto.derive_id(colony.user_prvkey)
    assert len(colony.client.get_blueprint_history(added["blueprintid"], colony.user_prvkey, limit=2)) == 2
    assert len(waiting_reconciles(colony)) == 4
    # An update that the schema refuses changes nothing.
    refused(lambda: colony.client.update_blueprint(blueprint(colony, replicas=0.5), colony.user_prvkey), 400,
            "blueprint.spec.replicas")
    assert colony.client.get_blueprint(colony.colonyname, "web", colony.user_prvkey)["metadata"][
        "generation"] == 3
    assert len(waiting_reconciles(colony)) == 4


def test_update_of_a_missing_blueprint_or_another_kind_is_refused(colony: ColonyEnv) -> None:
    define(colony)
    refused(lambda: colony.client.update_blueprint(blueprint(colony), colony.user_prvkey), 404, "not found")
    colony.client.add_blueprint(blueprint(colony), colony.user_prvkey)
    define(colony, name="others", kind="Other", schema=None)
    other_kind = {**blueprint(colony), "kind": "Other"}
    refused(lambda: colony.client.update_blueprint(other_kind, colony.user_prvkey), 400,
            "differs from the blueprint's kind")
    refused(lambda: colony.client.add_blueprint(blueprint(colony), colony.user_prvkey), 409, "already has")


def test_remove_submits_a_cleanup_with_the_old_state(colony: ColonyEnv) -> None:
    define(colony)
    added = colony.client.add_blueprint(blueprint(colony), colony.user_prvkey)
    colony.client.remove_blueprint(colony.colonyname, "web", colony.user_prvkey)
    refused(lambda: colony.client.get_blueprint(colony.colonyname, "web", colony.user_prvkey), 404,
            "not found")
    refused(lambda: colony.client.remove_blueprint(colony.colonyname, "web", colony.user_prvkey), 404)
    history = colony.client.get_blueprint_history(added["blueprintid"], colony.user_prvkey)
    assert [h["changetype"] for h in history] == ["delete", "create"]
    cleanup = colony.client.get_process(history[0]["processid"], colony.user_prvkey)
    assert cleanup.spec.funcname == "cleanup"
    assert cleanup.spec.kwargs["reconciliation"]["action"] == "delete"
    assert cleanup.spec.kwargs["reconciliation"]["old"]["spec"] == {"replicas": 2}
    assert "new" not in cleanup.spec.kwargs["reconciliation"]


def test_list_filters_by_kind_and_location(colony: ColonyEnv) -> None:
    define(colony)
    define(colony, name="others", kind="Other", schema=None)
    edge = blueprint(colony, "edge")
    edge["metadata"]["locationname"] = "edge-1"
    colony.client.add_blueprint(edge, colony.user_prvkey)
    colony.client.add_blueprint(blueprint(colony, "web"), colony.user_prvkey)
    colony.client.add_blueprint({**blueprint(colony, "x"), "kind": "Other"}, colony.user_prvkey)

    def names(**filters: Any) -> list[str]:
        return [b["metadata"]["name"]
                for b in colony.client.get_blueprints(colony.colonyname, colony.user_prvkey, **filters)]

    assert names() == ["edge", "web", "x"]
    assert names(kind=KIND) == ["edge", "web"]
    assert names(kind=KIND, location="edge-1") == ["edge"]
    assert names(location="edge-1") == ["edge"]
    process = reconcile_of(colony, colony.client.get_blueprint(colony.colonyname, "edge", colony.user_prvkey))
    assert process.spec.conditions.locationname == "edge-1"


def test_the_reconciler_reports_status(colony: ColonyEnv) -> None:
    define(colony)
    colony.client.add_blueprint(blueprint(colony), colony.user_prvkey)
    reconciler = colony.add_executor("reconciler-1", RECONCILER_TYPE)
    colony.client.update_blueprint_status(colony.colonyname, "web", {"replicas": 2, "ready": 1}, reconciler)
    got = colony.client.get_blueprint(colony.colonyname, "web", colony.user_prvkey)
    assert got["status"] == {"replicas": 2, "ready": 1}
    assert got["metadata"]["generation"] == 1  # a status report is not a new generation
    # Only members report status; the owner and strangers are refused; a missing blueprint is 404.
    refused(lambda: colony.client.update_blueprint_status(colony.colonyname, "web", {}, colony.colony_prvkey),
            403, "not a member")
    refused(lambda: colony.client.update_blueprint_status(colony.colonyname, "nope", {}, reconciler), 404)
    refused(lambda: colony.client.update_blueprint_status(colony.colonyname, "web", [1], reconciler),  # type: ignore[arg-type]
            400, "status must be an object")
    # An update keeps the reported status.
    updated = colony.client.update_blueprint(blueprint(colony, replicas=3), colony.user_prvkey)
    assert updated["status"] == {"replicas": 2, "ready": 1}


def test_reconcile_now_returns_the_process_and_force_is_a_new_generation(colony: ColonyEnv) -> None:
    define(colony)
    added = colony.client.add_blueprint(blueprint(colony), colony.user_prvkey)
    process = colony.client.reconcile_blueprint(colony.colonyname, "web", colony.user_prvkey)
    assert process["spec"]["kwargs"]["reconciliation"]["action"] == "reconcile"
    assert "force" not in process["spec"]["kwargs"]
    forced = colony.client.reconcile_blueprint(colony.colonyname, "web", colony.colony_prvkey, force=True)
    assert forced["spec"]["kwargs"]["force"] is True
    assert forced["spec"]["kwargs"]["generation"] == 2
    got = colony.client.get_blueprint(colony.colonyname, "web", colony.user_prvkey)
    assert got["metadata"]["generation"] == 2
    assert got["metadata"]["lastReconciliationProcess"] == forced["processid"]
    history = colony.client.get_blueprint_history(added["blueprintid"], colony.user_prvkey)
    assert [h["changetype"] for h in history] == ["reconcile", "create"]
    refused(lambda: colony.client.reconcile_blueprint(colony.colonyname, "nope", colony.user_prvkey), 404)
    assert len(waiting_reconciles(colony)) == 3


def test_members_or_the_owner_use_blueprints_strangers_do_not(colony: ColonyEnv, client: Colonies) -> None:
    define(colony)
    owner_added = colony.client.add_blueprint(blueprint(colony, "by-owner"), colony.colony_prvkey)
    assert reconcile_of(colony, owner_added).initiatorname == ""
    colony.client.add_blueprint(blueprint(colony, "by-executor"), colony.executor_prvkey)
    assert len(colony.client.get_blueprints(colony.colonyname, colony.colony_prvkey)) == 2
    stranger = crypto.generate_private_key()
    pending = colony.add_executor("pending", approve=False)
    for key in (stranger, pending):
        refused(lambda key=key: colony.client.add_blueprint(blueprint(colony, "x"), key), 403, "not a member")
        refused(lambda key=key: colony.client.get_blueprint(colony.colonyname, "by-owner", key), 403)
        refused(lambda key=key: colony.client.get_blueprints(colony.colonyname, key), 403)
        refused(lambda key=key: colony.client.update_blueprint(blueprint(colony, "by-owner"), key), 403)
        refused(lambda key=key: colony.client.remove_blueprint(colony.colonyname, "by-owner", key), 403)
        refused(lambda key=key: colony.client.reconcile_blueprint(colony.colonyname, "by-owner", key), 403)
        refused(lambda key=key: colony.client.get_blueprint_history(owner_added["blueprintid"], key), 403)
    # Another colony's owner is a stranger here.
    other_key = crypto.generate_private_key()
    client.add_colony({"colonyid": crypto.derive_id(other_key), "name": "other"}, colony.server_prvkey)
    refused(lambda: colony.client.get_blueprints(colony.colonyname, other_key), 403)
    refused(lambda: colony.client.add_blueprint_definition(definition(colony, name="x", kind="X"), other_key),
            403, "not colony owner")


def test_the_async_client_has_the_same_methods(colony: ColonyEnv) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with AsyncColonies(colony.server.host, colony.server.port) as sdk:
            await sdk.add_blueprint_definition(definition(colony), colony.colony_prvkey)
            added = await sdk.add_blueprint(blueprint(colony), colony.user_prvkey)
            updated = await sdk.update_blueprint(blueprint(colony, replicas=5), colony.user_prvkey)
            await sdk.update_blueprint_status(colony.colonyname, "web", {"ready": 5}, colony.executor_prvkey)
            process = await sdk.reconcile_blueprint(colony.colonyname, "web", colony.user_prvkey)
            listed = await sdk.get_blueprints(colony.colonyname, colony.user_prvkey, kind=KIND)
            history = await sdk.get_blueprint_history(added["blueprintid"], colony.user_prvkey)
            await sdk.remove_blueprint(colony.colonyname, "web", colony.user_prvkey)
            await sdk.remove_blueprint_definition(colony.colonyname, "executordeployments",
                                                  colony.colony_prvkey)
            left = await sdk.get_blueprint_definitions(colony.colonyname, colony.user_prvkey)
            return updated, process, listed, history, left

    updated, process, listed, history, left = asyncio.run(scenario())
    assert updated["metadata"]["generation"] == 2
    assert process["spec"]["kwargs"]["reconciliation"]["new"]["status"] == {"ready": 5}
    assert [b["status"] for b in listed] == [{"ready": 5}]
    assert [h["changetype"] for h in history] == ["update", "create"]
    assert left == []


def test_a_change_whose_reconcile_cannot_be_submitted_is_not_made(colony: ColonyEnv,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The change and its reconcile process are one transaction: when inserting the process fails
    (here: made to), neither the blueprint nor its history row is written."""
    from server.store import blueprints as blueprint_store

    define(colony)
    colony.client.add_blueprint(blueprint(colony, "kept"), colony.user_prvkey)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away (test)")

    monkeypatch.setattr(blueprint_store, "insert_reconcile_process", broken)
    for change in (lambda: colony.client.add_blueprint(blueprint(colony, "lost"), colony.user_prvkey),
                   lambda: colony.client.update_blueprint(blueprint(colony, "kept", replicas=9),
                                                          colony.user_prvkey),
                   lambda: colony.client.remove_blueprint(colony.colonyname, "kept", colony.user_prvkey)):
        refused(change, 500)
    monkeypatch.undo()
    kept = colony.client.get_blueprint(colony.colonyname, "kept", colony.user_prvkey)
    assert kept["spec"] == {"replicas": 2} and kept["metadata"]["generation"] == 1
    listed = colony.client.get_blueprints(colony.colonyname, colony.user_prvkey)
    names = [b["metadata"]["name"] for b in listed]
    assert names == ["kept"]
    assert len(colony.client.get_blueprint_history(kept["blueprintid"], colony.user_prvkey)) == 1
    assert len(waiting_reconciles(colony)) == 1


# -- raw HTTP -------------------------------------------------------------------------------------


def test_raw_requests_with_bad_fields_get_clear_errors(colony: ColonyEnv) -> None:
    url, user = f"http://{colony.server.host}:{colony.server.port}", colony.user_prvkey
    define(colony)
    cases: list[tuple[dict[str, Any], str, int, str]] = [
        ({"msgtype": "addblueprintmsg"}, user, 400, "blueprint: must be an object"),
        ({"msgtype": "addblueprintmsg", "blueprint": "x"}, user, 400, "blueprint: must be an object"),
        ({"msgtype": "addblueprintmsg", "blueprint": {"kind": KIND, "metadata": {"colonyname": "dev"}}}, user,
         400, "blueprint.metadata.name: is required"),
        ({"msgtype": "addblueprintmsg", "blueprint": {**blueprint(colony), "spec": [1]}}, user, 400,
         "blueprint.spec: must be an object"),
        ({"msgtype": "addblueprintmsg", "blueprint": {**blueprint(colony), "handler": {"executorNames": 3}}},
         user, 400, "blueprint.handler.executorNames"),
        ({"msgtype": "addblueprintmsg", "blueprint": {
            **blueprint(colony), "metadata": {"name": "a", "colonyname": "dev", "namespace": "zz"}}}, user,
         400,
         "differs from colonyname"),
        ({"msgtype": "getblueprintmsg", "name": "web"}, user, 400, "namespace (the colony name) is required"),
        ({"msgtype": "getblueprintmsg", "namespace": "dev"}, user, 400, "name is required"),
        ({"msgtype": "getblueprinthistorymsg"}, user, 400, "blueprintid is required"),
        ({"msgtype": "getblueprinthistorymsg", "blueprintid": "a" * 64, "limit": -1}, user, 400, "limit"),
        ({"msgtype": "getblueprinthistorymsg", "blueprintid": "a" * 64}, user, 404, "not found"),
        ({"msgtype": "updateblueprintmsg", "blueprint": blueprint(colony), "forcegeneration": "yes"}, user,
         400,
         "forcegeneration"),
        ({"msgtype": "updateblueprintstatusmsg", "colonyname": "dev", "blueprintname": "web",
          "status": "ok"}, user, 400, "status must be an object"),
        ({"msgtype": "addblueprintdefinitionmsg", "blueprintdefinition": {
            **definition(colony), "kind": "Blueprint"}}, colony.colony_prvkey, 400,
         "must be BlueprintDefinition"),
        ({"msgtype": "removeblueprintdefinitionmsg", "namespace": "dev", "name": "nope"},
         colony.colony_prvkey, 404, "not found"),
    ]
    for msg, key, status, fragment in cases:
        got_status, reply = rawrpc.call(url, msg, key)
        assert got_status == status, (msg, reply)
        assert fragment in reply["message"], (msg, reply)
    # A good raw add: the reply is the stored blueprint.
    status, reply = rawrpc.call(url, {"msgtype": "addblueprintmsg", "blueprint": blueprint(colony)}, user)
    assert status == 200 and reply["metadata"]["generation"] == 1 and reply["kind"] == KIND
    status, reply = rawrpc.call(url, {"msgtype": "getblueprintsmsg", "namespace": "dev", "kind": KIND}, user)
    assert status == 200 and [b["metadata"]["name"] for b in reply] == ["web"]


# -- two replicas ---------------------------------------------------------------------------------


def _signed_update(colony: ColonyEnv, replicas: int) -> bytes:
    msg = {"msgtype": "updateblueprintmsg", "blueprint": blueprint(colony, replicas=replicas),
           "forcegeneration": False, "requesttime": time.time_ns(), "requestnonce": secrets.token_hex(16)}
    return json.dumps(wire.signed_request(msg, colony.user_prvkey)).encode()


def _post_together(bodies: list[tuple[str, bytes]]) -> list[int]:
    """POST each (url, body) from its own thread, released together; the HTTP statuses."""
    statuses: list[int] = [0] * len(bodies)
    start = threading.Barrier(len(bodies))

    def send(index: int, url: str, body: bytes) -> None:
        start.wait()
        statuses[index] = rawrpc.post(url, body)[0]

    threads = [threading.Thread(target=send, args=(i, url, body)) for i, (url, body) in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


@pytest.mark.parametrize("rounds", [5])
def test_two_replicas_submit_one_reconcile_per_change(colony: ColonyEnv, rounds: int) -> None:
    """The same signed update sent to both replicas at once is one change with one reconcile; two
    different updates at once are two changes, with distinct generations and one reconcile each."""
    second = ServerThread(colony.server.dsn, server_prvkey=colony.server_prvkey).start()
    try:
        urls = [f"http://{s.host}:{s.port}" for s in (colony.server, second)]
        define(colony)
        colony.client.add_blueprint(blueprint(colony, replicas=0), colony.user_prvkey)
        replicas = 0
        for _ in range(rounds):
            replicas += 1
            body = _signed_update(colony, replicas)
            statuses = _post_together([(urls[0], body), (urls[1], body)])
            assert sorted(statuses) == [200, 403], statuses
        assert len(waiting_reconciles(colony)) == 1 + rounds
        got = colony.client.get_blueprint(colony.colonyname, "web", colony.user_prvkey)
        assert got["metadata"]["generation"] == 1 + rounds

        for _ in range(rounds):
            statuses = _post_together([(urls[0], _signed_update(colony, replicas + 1)),
                                       (urls[1], _signed_update(colony, replicas + 2))])
            assert statuses == [200, 200]
            replicas += 2
        history = colony.client.get_blueprint_history(got["blueprintid"], colony.user_prvkey)
        generations = [h["generation"] for h in history]
        assert generations == list(range(1 + 3 * rounds, 0, -1))
        processes = {h["processid"] for h in history}
        assert {p["processid"] for p in waiting_reconciles(colony)} == processes
        assert len(processes) == 1 + 3 * rounds
    finally:
        second.stop()
