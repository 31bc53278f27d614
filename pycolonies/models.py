"""The ColonyOS wire models, shared by the SDK and the server.

Field names are the JSON keys the reference server emits (``Process.input``/``output`` travel as
``in``/``out``). Every model round-trips through :func:`from_wire` / ``to_wire()``; decoding is
lenient the way Go is (missing or null fields take their zero value) and strict about types.
Unlike the reference SDK, ``args``, ``kwargs``, ``in`` and ``out`` may hold any JSON value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pycolonies import wire
from pycolonies.codec import FieldError, dataclass_to_wire, from_wire, to_wire

__all__ = [
    "Attribute",
    "Colony",
    "Conditions",
    "Cron",
    "Executor",
    "FieldError",
    "Fs",
    "FuncSpec",
    "Function",
    "Generator",
    "Gpu",
    "Location",
    "Log",
    "Node",
    "Position",
    "Process",
    "ProcessEdge",
    "ProcessGraph",
    "ProcessNode",
    "Statistics",
    "User",
    "Workflow",
    "from_wire",
    "to_wire",
]


class _Model:
    """Helpers every model shares, including the reference SDK's pydantic-style names."""

    def to_wire(self) -> dict[str, Any]:
        return dataclass_to_wire(self)

    def to_dict(self) -> dict[str, Any]:
        return self.to_wire()

    def model_dump(self, by_alias: bool = True, **_: Any) -> dict[str, Any]:
        return self.to_wire()

    def model_dump_json(self, **_: Any) -> str:
        return json.dumps(self.to_wire())

    @classmethod
    def from_wire(cls, data: Any, path: str = ""):  # noqa: ANN206 - returns cls
        return from_wire(cls, data, path)


@dataclass(kw_only=True)
class Colony(_Model):
    colonyid: str = ""
    name: str = ""


@dataclass(kw_only=True)
class User(_Model):
    colonyname: str = ""
    userid: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(kw_only=True)
class Capabilities(_Model):
    hardware: list[Any] | None = None
    software: list[Any] | None = None


@dataclass(kw_only=True)
class Allocations(_Model):
    projects: dict[str, Any] | None = None


@dataclass(kw_only=True)
class Executor(_Model):
    executorid: str = ""
    executortype: str = ""
    executorname: str = ""
    colonyname: str = ""
    state: int = wire.PENDING
    requirefuncreg: bool = False
    commissiontime: datetime | None = None
    lastheardfromtime: datetime | None = None
    locationname: str = field(default="", metadata={"omitempty": True})
    capabilities: Capabilities = field(default_factory=Capabilities)
    allocations: Allocations = field(default_factory=Allocations)


@dataclass(kw_only=True)
class Location(_Model):
    """A named place of a colony; executors and process conditions refer to it by name."""

    locationid: str = ""
    name: str = ""
    colonyname: str = ""
    description: str = ""
    long: float = 0.0
    lat: float = 0.0


@dataclass(kw_only=True)
class Node(_Model):
    """A host an executor runs on, as the reference's ``core.Node`` (its node messages are served
    from the executors' capabilities and locations: one node per hardware entry)."""

    id: str = ""
    name: str = ""
    colonyname: str = ""
    location: str = ""
    platform: str = ""
    architecture: str = ""
    cpu: int = 0
    memory: int = 0  # MiB
    gpu: int = 0
    capabilities: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    state: str = ""
    lastseen: datetime | None = None
    created: datetime | None = None


@dataclass(kw_only=True)
class FunctionArg(_Model):
    name: str = ""
    type: str = ""
    description: str = field(default="", metadata={"omitempty": True})
    required: bool = False
    enum: list[Any] | None = field(default=None, metadata={"omitempty": True})


@dataclass(kw_only=True)
class Function(_Model):
    functionid: str = ""
    executorname: str = ""
    executortype: str = ""
    colonyname: str = ""
    funcname: str = ""
    description: str = field(default="", metadata={"omitempty": True})
    args: list[FunctionArg] = field(default_factory=list)
    counter: int = 0
    minwaittime: float = 0.0
    maxwaittime: float = 0.0
    minexectime: float = 0.0
    maxexectime: float = 0.0
    avgwaittime: float = 0.0
    avgexectime: float = 0.0
    locationname: str = field(default="", metadata={"omitempty": True})


@dataclass(kw_only=True)
class Gpu(_Model):
    name: str = ""
    mem: str = ""
    count: int = 0
    nodecount: int = 0


@dataclass(kw_only=True)
class Conditions(_Model):
    colonyname: str = ""
    executornames: list[str] | None = None
    executortype: str = ""
    locationname: str = field(default="", metadata={"omitempty": True})
    dependencies: list[str] = field(default_factory=list)
    nodes: int = 0
    cpu: str = ""
    processes: int = 0
    # the reference's own spec files also write "processes-per-node"
    processespernode: int = field(default=0, metadata={"aliases": ("processes-per-node",)})
    mem: str = ""
    storage: str = ""
    gpu: Gpu = field(default_factory=Gpu)
    walltime: int = 0

    def to_wire(self) -> dict[str, Any]:
        out = dataclass_to_wire(self)
        out["executornames"] = list(self.executornames or [])
        return out


@dataclass(kw_only=True)
class Fs(_Model):
    mount: str = ""
    snapshots: list[Any] | None = None
    dirs: list[Any] | None = None


@dataclass(kw_only=True)
class FuncSpec(_Model):
    nodename: str = ""
    funcname: str = ""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    maxwaittime: int = 0
    maxexectime: int = 0
    maxretries: int = 0
    conditions: Conditions = field(default_factory=Conditions)
    label: str = ""
    fs: Fs = field(default_factory=Fs)
    env: dict[str, str] = field(default_factory=dict)
    channels: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Attribute(_Model):
    attributeid: str = ""
    targetid: str = ""
    targetcolonyname: str = ""
    targetprocessgraphid: str = ""
    state: int = 0
    attributetype: int = wire.OUT
    key: str = ""
    value: str = ""


@dataclass(kw_only=True)
class Process(_Model):
    processid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    assignedexecutorid: str = ""
    isassigned: bool = False
    state: int = wire.WAITING
    prioritytime: int = 0
    submissiontime: datetime | None = None
    starttime: datetime | None = None
    endtime: datetime | None = None
    waitdeadline: datetime | None = None
    execdeadline: datetime | None = None
    retries: int = 0
    attributes: list[Attribute] = field(default_factory=list)
    spec: FuncSpec = field(default_factory=FuncSpec)
    waitforparents: bool = False
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    processgraphid: str = ""
    input: list[Any] = field(default_factory=list, metadata={"wire": "in"})
    output: list[Any] = field(default_factory=list, metadata={"wire": "out"})
    errors: list[Any] = field(default_factory=list)


@dataclass(kw_only=True)
class Workflow(_Model):
    colonyname: str = ""
    functionspecs: list[FuncSpec] = field(default_factory=list)


@dataclass(kw_only=True)
class Position(_Model):
    x: int = 0
    y: int = 0


@dataclass(kw_only=True)
class ProcessNode(_Model):
    id: str = ""
    data: dict[str, str] = field(default_factory=dict)
    position: Position = field(default_factory=Position)
    type: str = ""
    style: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class ProcessEdge(_Model):
    id: str = ""
    source: str = ""
    target: str = ""
    animated: bool = False


@dataclass(kw_only=True)
class ProcessGraph(_Model):
    processgraphid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    colonyname: str = ""
    rootprocessids: list[str] = field(default_factory=list)
    state: int = wire.WAITING
    submissiontime: datetime | None = None
    starttime: datetime | None = None
    endtime: datetime | None = None
    processids: list[str] = field(default_factory=list)
    nodes: list[ProcessNode] = field(default_factory=list)
    edges: list[ProcessEdge] = field(default_factory=list)


@dataclass(kw_only=True)
class Log(_Model):
    processid: str = ""
    colonyname: str = ""
    executorname: str = ""
    message: str = ""
    timestamp: int = 0


@dataclass(kw_only=True)
class Statistics(_Model):
    colonies: int = 0
    executors: int = 0
    activeexecutors: int = 0
    unregisteredexecutors: int = 0
    waitingprocesses: int = 0
    runningprocesses: int = 0
    successfulprocesses: int = 0
    failedprocesses: int = 0
    cancelledprocesses: int = 0
    waitingworkflows: int = 0
    runningworkflows: int = 0
    successfulworkflows: int = 0
    failedworkflows: int = 0
    cancelledworkflows: int = 0


@dataclass(kw_only=True)
class Cron(_Model):
    """A workflow run on a schedule: every ``interval`` seconds, or (``interval`` -1) on
    ``cronexpression``. ``workflowspec`` is a Workflow as a JSON string."""

    cronid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    colonyname: str = ""
    name: str = ""
    cronexpression: str = ""
    interval: int = 0
    random: bool = False
    nextrun: datetime | None = None
    lastrun: datetime | None = None
    workflowspec: str = ""
    prevprocessgraphid: str = ""
    waitforprevprocessgraph: bool = False
    checkerperiod: int = 0


@dataclass(kw_only=True)
class Generator(_Model):
    """A workflow submitted once ``trigger`` string args are packed (or ``timeout`` seconds after
    the oldest one); the roots get the args. ``workflowspec`` is a Workflow as a JSON string."""

    generatorid: str = ""
    initiatorid: str = ""
    initiatorname: str = ""
    colonyname: str = ""
    name: str = ""
    workflowspec: str = ""
    trigger: int = 0
    timeout: int = 0
    firstpack: datetime | None = None
    lastrun: datetime | None = None
    queuesize: int = 0
    checkerperiod: int = 0


def normalize_label(label: str) -> str:
    """A file label as the colony keeps it: one leading slash, no empty or ``.`` segments, no
    trailing slash (``"data//x/"`` and ``"///data/./x"`` are ``"/data/x"``; ``""`` is ``"/"``).
    A ``..`` segment stays, for :func:`path_problem` to refuse."""
    return "/" + "/".join(part for part in label.split("/") if part and part != ".")


def path_problem(label: str, name: str | None = None) -> str | None:
    """Why a label (and a file name) cannot map onto a local directory tree, or None: a label
    may not have a ``..`` segment, and a name is one path segment, not ``.`` or ``..``. Syncs and
    downloads write files at these paths, so they must stay inside the target directory."""
    if ".." in label.split("/"):
        return f"label {label!r} has a '..' segment"
    if name is not None and (not name or "/" in name or "\\" in name or name in (".", "..")):
        return f"file name {name!r} is not a single path segment"
    return None


@dataclass(kw_only=True)
class S3Object(_Model):
    """Where a file's bytes are. The reference also sends ``accesskey``, ``secretkey`` and
    ``encryptionkey`` here; the server never stores them (credentials come from each client's own
    configuration)."""

    server: str = ""
    port: int = 0
    tls: bool = False
    accesskey: str = ""
    secretkey: str = ""
    region: str = ""
    encryptionkey: str = ""
    encryptionalg: str = ""
    object: str = ""
    bucket: str = ""


@dataclass(kw_only=True)
class Reference(_Model):
    protocol: str = "s3"
    s3object: S3Object = field(default_factory=S3Object)


@dataclass(kw_only=True)
class File(_Model):
    """One revision of a file under a label; adding the same (label, name) again adds a revision,
    and the newest (highest ``sequencenr``) is the latest."""

    fileid: str = ""
    colonyname: str = ""
    label: str = ""
    name: str = ""
    size: int = 0
    sequencenr: int = 0
    checksum: str = ""
    checksumalg: str = ""
    ref: Reference = field(default_factory=Reference)
    added: datetime | None = None
    # Our extensions (reference clients ignore them): key/value metadata set at upload, and the
    # process that produced the file.
    metadata: dict[str, str] = field(default_factory=dict)
    processid: str = ""


@dataclass(kw_only=True)
class FileData(_Model):
    """A label's file as ``getfilesmsg`` lists it (its latest revision)."""

    name: str = ""
    checksum: str = ""
    size: int = 0
    s3filename: str = ""


@dataclass(kw_only=True)
class Label(_Model):
    name: str = ""
    files: int = 0


@dataclass(kw_only=True)
class Snapshot(_Model):
    """The latest revisions of every file under ``label``, frozen under ``name``."""

    snapshotid: str = ""
    colonyname: str = ""
    label: str = ""
    name: str = ""
    fileids: list[str] = field(default_factory=list)
    added: datetime | None = None
