"""The reference's nodes, derived from executors: one node per entry of an executor's
``capabilities.hardware`` (an executor without hardware entries is one node with nothing known).

A node is named after its executor (``<executor>`` for the first entry, ``<executor>-<i>`` for
entry ``i`` > 0) and sits at the executor's location; its id is derived from colony, executor and
entry, so it is stable. Its ``cpu`` is the entry's ``cores`` (else its ``cpu`` quantity in whole
cores), ``memory`` its ``mem`` in MiB, ``gpu`` its GPU count; ``capabilities`` are the names of
the executor's software entries, ``labels`` name the executor, its type and the hardware model.
``state`` is ``ready`` for an approved executor and ``not-ready`` otherwise."""

from __future__ import annotations

import hashlib
from typing import Any

from pycolonies import wire
from pycolonies.models import Executor, Node
from server.domain.resources import parse_cpu, parse_memory

MIB = 1024 * 1024


def node_name(executor_name: str, index: int) -> str:
    return executor_name if index == 0 else f"{executor_name}-{index}"


def nodes_of(executor: Executor) -> list[Node]:
    hardware = [entry for entry in executor.capabilities.hardware or [] if isinstance(entry, dict)]
    software = [entry for entry in executor.capabilities.software or [] if isinstance(entry, dict)]
    capabilities = [str(entry["name"]) for entry in software if entry.get("name")]
    return [_node(executor, index, entry, capabilities) for index, entry in enumerate(hardware or [{}])]


def _node(executor: Executor, index: int, entry: dict[str, Any], capabilities: list[str]) -> Node:
    name = node_name(executor.executorname, index)
    gpu = entry.get("gpu") if isinstance(entry.get("gpu"), dict) else {}
    labels = {"executorname": executor.executorname, "executortype": executor.executortype}
    if entry.get("model"):
        labels["model"] = str(entry["model"])
    return Node(
        id=hashlib.sha3_256(f"{executor.colonyname}:{executor.executorname}:{index}".encode()).hexdigest(),
        name=name,
        colonyname=executor.colonyname,
        location=executor.locationname,
        platform=str(entry.get("platform") or ""),
        architecture=str(entry.get("architecture") or ""),
        cpu=_cores(entry),
        memory=_mebibytes(entry.get("mem")),
        gpu=_int(gpu.get("count")),
        capabilities=list(capabilities),
        labels=labels,
        state="ready" if executor.state == wire.APPROVED else "not-ready",
        lastseen=executor.lastheardfromtime,
        created=executor.commissiontime,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _cores(entry: dict[str, Any]) -> int:
    if cores := _int(entry.get("cores")):
        return cores
    try:
        return parse_cpu(str(entry.get("cpu") or "")) // 1000
    except ValueError:
        return 0


def _mebibytes(value: Any) -> int:
    try:
        return parse_memory(str(value or "")) // MIB
    except ValueError:
        return 0
