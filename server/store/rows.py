"""Rows to wire objects, in one place.

The replies of the hot paths (Process, ProcessGraph, Cron, Generator) are built as wire JSON
straight from rows, without a round trip through the models; ``pycolonies.models`` defines their
shapes, and ``tests/unit/test_rows.py`` checks that the keys here are exactly the models' wire
fields. Executors, users, logs, colonies, functions and attributes are built as model objects."""

from __future__ import annotations

import base64
from typing import Any

from pycolonies import wire
from pycolonies.codec import WireDict
from pycolonies.models import (
    Allocations,
    Attribute,
    Capabilities,
    Colony,
    Executor,
    File,
    Function,
    Location,
    Log,
    Reference,
    Snapshot,
    User,
)


def to_process(row: Any, attributes: list[Attribute] | None = None) -> WireDict:
    """The Process reply (wire JSON) straight from a row, without a round trip through the models:
    the stored spec is already in wire form (normalised when it was submitted)."""
    state = row["state"]
    if attributes is None:
        wire_attributes = [dict(a) for a in row.get("attributes") or []]
    else:
        wire_attributes = [a.to_wire() for a in attributes]
    spec = dict(row["spec"])
    env = {a["key"]: a["value"] for a in wire_attributes if a["attributetype"] == wire.ENV}
    if env:
        spec["env"] = {**(spec.get("env") or {}), **env}
    return WireDict(
        processid=row["process_id"],
        initiatorid=row["initiator_id"],
        initiatorname=row["initiator_name"],
        assignedexecutorid=row["assigned_executor_id"],
        isassigned=bool(row["assigned_executor_id"]),
        state=state,
        prioritytime=row["priority_time"],
        submissiontime=wire.format_time(row["submission_time"]),
        starttime=wire.format_time(row["start_time"]),
        endtime=wire.format_time(row["end_time"]),
        waitdeadline=wire.format_time(row["wait_deadline"]),
        execdeadline=wire.format_time(row["exec_deadline"]),
        retries=row["retries"],
        attributes=wire_attributes,
        spec=spec,
        waitforparents=row["wait_for_parents"],
        parents=list(row.get("parents") or ()),
        children=list(row.get("children") or ()),
        processgraphid=row["processgraph_id"],
        **{"in": row["input"], "out": row["output"]},
        errors=row["errors"],
    )


def to_graph(
    row: Any, processids: list[str], nodes: list[Any] | None = None, edges: list[Any] | None = None
) -> WireDict:
    return WireDict(
        processgraphid=row["processgraph_id"],
        initiatorid=row["initiator_id"],
        initiatorname=row["initiator_name"],
        colonyname=row["colony_name"],
        rootprocessids=list(row["root_process_ids"]),
        state=row["state"],
        submissiontime=wire.format_time(row["submission_time"]),
        starttime=wire.format_time(row["start_time"]),
        endtime=wire.format_time(row["end_time"]),
        processids=processids,
        nodes=nodes or [],
        edges=edges or [],
    )


def to_cron(row: Any, checker_period_ms: int) -> WireDict:
    return WireDict(
        cronid=row["cron_id"],
        initiatorid=row["initiator_id"],
        initiatorname=row["initiator_name"],
        colonyname=row["colony_name"],
        name=row["name"],
        cronexpression=row["cron_expression"],
        interval=row["interval_s"],
        random=row["random"],
        nextrun=wire.format_time(row["next_run"]),
        lastrun=wire.format_time(row["last_run"]),
        workflowspec=row["workflow_spec"],
        prevprocessgraphid=row["prev_processgraph_id"],
        waitforprevprocessgraph=row["wait_for_prev_processgraph"],
        checkerperiod=checker_period_ms,
    )


def to_generator(row: Any, checker_period_ms: int) -> WireDict:
    return WireDict(
        generatorid=row["generator_id"],
        initiatorid=row["initiator_id"],
        initiatorname=row["initiator_name"],
        colonyname=row["colony_name"],
        name=row["name"],
        workflowspec=row["workflow_spec"],
        trigger=row["trigger"],
        timeout=row["timeout_s"],
        firstpack=wire.format_time(row["first_pack"]),
        lastrun=wire.format_time(row["last_run"]),
        queuesize=row["queue_size"],
        checkerperiod=checker_period_ms,
    )


# Keys of a blueprint's metadata that the server keeps (columns), not the client.
BLUEPRINT_METADATA_KEYS = frozenset({
    "name", "colonyname", "namespace", "locationname", "generation", "createdAt", "updatedAt",
    "lastReconciliationProcess", "lastReconciliationTime",
})


def to_blueprint_definition(row: Any) -> WireDict:
    """A definition as the client sent it, with its id, kind and colony filled in."""
    data = dict(row["data"])
    metadata = {**(data.get("metadata") or {}), "name": row["name"], "colonyname": row["colony_name"],
                "namespace": row["colony_name"], "createdAt": wire.format_time(row["added"])}
    return WireDict({**data, "blueprintdefinitionid": row["definition_id"], "kind": "BlueprintDefinition",
                     "metadata": metadata})


def to_blueprint(row: Any) -> WireDict:
    metadata = {key: value for key, value in (row["metadata"] or {}).items()
                if key not in BLUEPRINT_METADATA_KEYS}
    metadata.update(
        name=row["name"],
        colonyname=row["colony_name"],
        namespace=row["colony_name"],
        locationname=row["location_name"],
        generation=row["generation"],
        createdAt=wire.format_time(row["created"]),
        updatedAt=wire.format_time(row["updated"]),
        lastReconciliationProcess=row["last_reconcile_process_id"],
        lastReconciliationTime=wire.format_time(row["last_reconcile_time"]),
    )
    blueprint = WireDict(blueprintid=row["blueprint_id"], kind=row["kind"], metadata=metadata)
    if row["handler"] is not None:
        blueprint["handler"] = row["handler"]
    blueprint["spec"] = row["spec"]
    blueprint["status"] = row["status"]
    return blueprint


def to_blueprint_history(row: Any) -> WireDict:
    return WireDict(
        historyid=row["history_id"],
        blueprintid=row["blueprint_id"],
        kind=row["kind"],
        namespace=row["colony_name"],
        colonyname=row["colony_name"],
        name=row["name"],
        generation=row["generation"],
        spec=row["spec"],
        status=row["status"],
        timestamp=wire.format_time(row["recorded"]),
        changedby=row["changed_by"],
        changetype=row["change_type"],
        processid=row["process_id"],
    )

def to_executor(row: Any) -> Executor:
    return Executor(
        executorid=row["executor_id"],
        executortype=row["executor_type"],
        executorname=row["name"],
        colonyname=row["colony_name"],
        state=row["state"],
        requirefuncreg=row["require_func_reg"],
        commissiontime=row["commission_time"],
        lastheardfromtime=row["last_heard_from"],
        locationname=row["location_name"],
        capabilities=Capabilities.from_wire(row["capabilities"]),
        allocations=Allocations.from_wire(row["allocations"]),
    )


def to_location(row: Any) -> Location:
    return Location(
        locationid=row["location_id"],
        name=row["name"],
        colonyname=row["colony_name"],
        description=row["description"],
        long=row["long"],
        lat=row["lat"],
    )


def to_user(row: Any) -> User:
    return User(
        colonyname=row["colony_name"],
        userid=row["user_id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
    )


def to_log(row: Any) -> Log:
    return Log(
        processid=row["process_id"],
        colonyname=row["colony_name"],
        executorname=row["executor_name"],
        message=row["message"],
        timestamp=row["ts"],
    )


def to_colony(row: Any) -> Colony:
    return Colony(colonyid=row["colony_id"], name=row["name"])


def to_function(row: Any) -> Function:
    return Function.from_wire(
        {
            "functionid": row["function_id"],
            "executorname": row["executor_name"],
            "executortype": row["executor_type"],
            "colonyname": row["colony_name"],
            "funcname": row["funcname"],
            "description": row["description"],
            "args": row["args"],
            "counter": row["counter"],
            "minwaittime": row["min_wait_time"],
            "maxwaittime": row["max_wait_time"],
            "minexectime": row["min_exec_time"],
            "maxexectime": row["max_exec_time"],
            "avgwaittime": row["avg_wait_time"],
            "avgexectime": row["avg_exec_time"],
            "locationname": row["location_name"],
        }
    )


def to_attribute(row: Any) -> Attribute:
    """An attribute, with the state its client sent."""
    return Attribute(
        attributeid=row["attribute_id"],
        targetid=row["target_id"],
        targetcolonyname=row["colony_name"],
        targetprocessgraphid=row["processgraph_id"],
        state=row["state"],
        attributetype=row["attribute_type"],
        key=row["key"],
        value=row["value"],
    )


def to_file(row: Any) -> File:
    return File(
        fileid=row["file_id"],
        colonyname=row["colony_name"],
        label=row["label"],
        name=row["name"],
        size=row["size"],
        sequencenr=row["sequence_nr"],
        checksum=row["checksum"],
        checksumalg=row["checksum_alg"],
        ref=Reference.from_wire(row["ref"]),
        added=row["added"],
        metadata=dict(row["metadata"]),
        processid=row["process_id"],
    )


def to_snapshot(row: Any) -> Snapshot:
    return Snapshot(
        snapshotid=row["snapshot_id"],
        colonyname=row["colony_name"],
        label=row["label"],
        name=row["name"],
        fileids=list(row["file_ids"]),
        added=row["added"],
    )


def to_channel_entry(row: Any) -> WireDict:
    """A channel entry as the reference's MsgEntry; the payload as base64 (Go's []byte)."""
    return {
        "sequence": row["sequence"],
        "inreplyto": row["in_reply_to"],
        "timestamp": wire.format_time(row["added"]),
        "senderid": row["sender_id"],
        "payload": base64.b64encode(bytes(row["payload"])).decode("ascii"),
        "type": row["payload_type"],
    }
