"""Rows to wire objects, in one place: the reply shapes of Process, ProcessGraph, Cron and
Generator (``pycolonies.models`` defines them; ``tests/unit/test_rows.py`` checks that the keys
here are exactly the models' wire fields). Replies are built straight from rows, without a round
trip through the models, because they are on the hot path."""

from __future__ import annotations

from typing import Any

from pycolonies import wire
from pycolonies.codec import WireDict
from pycolonies.models import Attribute


def to_process(row: Any, attributes: list[Attribute] | None = None) -> WireDict:
    """The Process reply (wire JSON) straight from a row, without a round trip through the models:
    the stored spec is already in wire form (normalised when it was submitted)."""
    state = row["state"]
    if attributes is None:
        wire_attributes = [{**a, "state": state} for a in row.get("attributes") or []]
    else:
        wire_attributes = [{**a.to_wire(), "state": state} for a in attributes]
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
