"""Fuzzing POST /api: a few thousand malformed envelopes and payloads, none of which may get a 5xx
or make the server log an error or a traceback, after which the server still serves normally.

The cases are drawn from a seeded generator (``COLONIES_FUZZ_SEED`` picks another seed, and a
failure names the seed and the case): the raw envelope (bytes, JSON, msgpack), and valid
messages of the main types with one part replaced by a hostile value (deep nesting, lone
surrogates, NULs, huge and non-finite numbers, wrong types, long strings), dropped or added,
signed by a member, an executor, the colony owner or a stranger so that most reach the handlers.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import logging
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

from pycolonies import crypto, wire
from tests.conftest import ColonyEnv, make_colony

CASES = 2400
SEED = int(os.environ.get("COLONIES_FUZZ_SEED", "20261201"))
RAW = object()  # a hostile value that must be spliced into the JSON text (json.dumps cannot write it)


class Connection:
    """One keep-alive HTTP connection to the server (a fresh one after the server closes it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.http = http.client.HTTPConnection(host, port, timeout=30)

    def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.http.request("POST", "/api", body=body, headers={"Content-Type": content_type})
                response = self.http.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.http.close()
                self.http = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


def deep(levels: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * levels + "1" + "}" * levels
    return opener * levels + closer * levels


# Hostile values: Python values, or (RAW, text) for JSON that json.dumps would not produce.
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 2**63, -(2**63) - 1, 2**64 + 1, 10**40, 1.5, -0.0, 1e308,
    "", " ", "x" * 100_000, "\x00", "a\x00b", "\ud800", "x\udfffy", "\U0001f600", "é" * 50,
    "0" * 64, "g" * 64, "../../etc/passwd", "<script>", "%s%n", "[red]markup[/red]",
    [], [None], [[[]]], {}, {"": ""}, {"\ud800": 1}, {"k": "\x00"}, [1, "two", 3.0, None, {}],
    (RAW, deep(1000)), (RAW, deep(5000)), (RAW, deep(150)), (RAW, deep(101)), (RAW, deep(800, "{")),
    (RAW, "NaN"), (RAW, "Infinity"), (RAW, "-Infinity"), (RAW, "1e999"), (RAW, "-1e999"),
    (RAW, "1" * 5000), (RAW, '"\\ud800"'), (RAW, '"\\udc00\\ud800"'), (RAW, '"\\u0000"'),
    (RAW, '"\\ud83d\\ude00"'),
]


def messages(env: ColonyEnv, pid: str) -> list[tuple[dict[str, Any], str]]:
    """Valid messages of the main types, each with the key that may send it."""
    spec = {"nodename": "n", "funcname": "echo", "args": ["a", 1], "kwargs": {"k": [1, {"x": "y"}]},
            "priority": 0, "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": env.colonyname, "executortype": env.executortype,
                           "executornames": [], "dependencies": [], "cpu": "100m", "mem": "10Mi",
                           "gpu": {"count": 0}},
            "label": "fuzz", "fs": {"mount": "/cfs", "dirs": []}, "env": {"E": "1"}}
    colony = env.colonyname
    workflow = {"colonyname": colony, "functionspecs": [spec, {**spec, "nodename": "m",
                                                               "conditions": {**spec["conditions"],
                                                                              "dependencies": ["n"]}}]}
    user, executor, owner = env.user_prvkey, env.executor_prvkey, env.colony_prvkey
    return [
        ({"msgtype": "submitfuncspecmsg", "spec": spec}, user),
        ({"msgtype": "submitworkflowspecmsg", "spec": workflow}, user),
        ({"msgtype": "addchildmsg", "processgraphid": "a" * 64, "parentprocessid": pid,
          "childprocessid": "", "insert": False, "spec": spec}, executor),
        ({"msgtype": "assignprocessmsg", "colonyname": colony, "timeout": -1,
          "availablecpu": "1000m", "availablememory": "1Gi"}, executor),
        ({"msgtype": "closesuccessfulmsg", "processid": pid, "out": ["x", {"y": 1}]}, executor),
        ({"msgtype": "closeassignmsg", "processid": pid, "out": [1], "colonyname": colony, "timeout": -1},
         executor),
        ({"msgtype": "addchildrenmsg", "processgraphid": "a" * 64, "parentprocessid": pid,
          "childprocessid": "", "insert": True, "specs": [spec, {**spec, "nodename": "o"}]}, executor),
        ({"msgtype": "closefailedmsg", "processid": pid, "errors": ["boom"]}, executor),
        ({"msgtype": "setoutputmsg", "processid": pid, "out": [1, 2]}, executor),
        ({"msgtype": "addlogmsg", "processid": pid, "message": "a log line\n"}, executor),
        ({"msgtype": "addattributemsg", "attribute": {"targetid": pid, "targetcolonyname": colony,
                                                      "key": "k", "value": "v", "attributetype": 1}},
         executor),
        ({"msgtype": "getprocessmsg", "processid": pid}, user),
        ({"msgtype": "findprocessesmsg", "colonyname": colony, "count": 10, "state": 2,
          "executortype": "fuzz", "label": "fuzz", "initiator": "alice",
          "after": "1700000000000000." + "b" * 64}, user),
        ({"msgtype": "getcolonyoverviewmsg", "colonyname": colony}, user),
        ({"msgtype": "getidentitymsg", "colonyname": colony}, user),
        ({"msgtype": "getprocessesmsg", "colonyname": colony, "count": 10, "state": 0,
          "executortype": "", "label": "", "initiator": ""}, user),
        ({"msgtype": "getlogsmsg", "colonyname": colony, "processid": pid, "count": 10, "since": 0,
          "executorname": ""}, user),
        ({"msgtype": "searchlogsmsg", "colonyname": colony, "text": "log", "days": 1, "count": 5}, user),
        ({"msgtype": "cancelprocessmsg", "processid": pid}, user),
        ({"msgtype": "getcolonymsg", "colonyname": colony}, user),
        ({"msgtype": "addexecutormsg", "executor": {"executorid": "b" * 64, "executorname": "fz",
                                                    "executortype": "t", "colonyname": colony}}, owner),
        ({"msgtype": "approveexecutormsg", "colonyname": colony, "executorname": "fz"}, owner),
        ({"msgtype": "addusermsg", "user": {"colonyname": colony, "userid": "c" * 64, "name": "fz",
                                            "email": "", "phone": ""}}, owner),
        ({"msgtype": "addcronmsg", "cron": {"colonyname": colony, "name": "fz", "interval": -1,
                                            "cronexpression": "0 0 * * * *",
                                            "workflowspec": json.dumps(workflow)}}, user),
        ({"msgtype": "addfunctionmsg", "fun": {"executorname": env.executorname, "colonyname": colony,
                                               "funcname": "f", "args": []}}, executor),
        ({"msgtype": "heartbeatmsg", "processid": pid}, executor),
        ({"msgtype": "pauseassignmentsmsg", "colonyname": colony}, owner),
        ({"msgtype": "resumeassignmentsmsg", "colonyname": colony}, owner),
        ({"msgtype": "getpausestatusmsg", "colonyname": colony}, user),
        ({"msgtype": "channelappendmsg", "processid": pid, "name": "chat", "sequence": 1, "inreplyto": 0,
          "payload": "aGk=", "payloadtype": "data"}, user),
        ({"msgtype": "channelappendmsg", "processid": pid, "name": "chat", "sequence": 2, "inreplyto": 1,
          "payload": [104, 105], "payloadtype": ""}, executor),
        ({"msgtype": "channelreadmsg", "processid": pid, "name": "chat", "afterseq": 0, "limit": 10}, user),
        ({"msgtype": "addlocationmsg", "location": {"name": "fz", "colonyname": colony, "locationid": "",
                                                    "description": "d", "long": 1.5, "lat": -2}}, owner),
        ({"msgtype": "getlocationsmsg", "colonyname": colony}, user),
        ({"msgtype": "getlocationmsg", "colonyname": colony, "name": "fz"}, user),
        ({"msgtype": "removelocationmsg", "colonyname": colony, "name": "fz"}, owner),
        ({"msgtype": "updateexecutormsg", "colonyname": colony, "executorname": env.executorname,
          "capabilities": {"hardware": [{"cores": 4, "mem": "8Gi", "gpu": {"count": 1}}],
                           "software": [{"name": "docker"}]}}, executor),
        ({"msgtype": "reportallocationmsg", "colonyname": colony, "executorname": env.executorname,
          "allocations": {"projects": {"p": {"allocatedcpu": 1, "usedcpu": 0}}}}, executor),
        ({"msgtype": "addexecutorlogmsg", "colonyname": colony, "executorname": env.executorname,
          "message": "up"}, executor),
        ({"msgtype": "getprocesshistmsg", "colonyname": colony, "executorid": "", "seconds": 60,
          "state": 0}, user),
        ({"msgtype": "getnodesmsg", "colonyname": colony}, user),
        ({"msgtype": "getnodemsg", "colonyname": colony, "nodename": env.executorname}, user),
        ({"msgtype": "getnodesbylocationmsg", "colonyname": colony, "location": "x"}, user),
        ({"msgtype": "getclustermsg"}, env.server_prvkey),
        *rotations(env),
        *blueprint_messages(env),
    ]


def rotations(env: ColonyEnv) -> list[tuple[dict[str, Any], str]]:
    """ID rotations, signed by spare identities of a colony of their own (a fuzzed rotation that
    succeeds must not take the keys the other messages are signed with)."""
    spare = make_colony(env.client, env.server, "fuzz-spare")
    colony, fresh = spare.colonyname, "e" * 64
    return [
        ({"msgtype": "changeuseridmsg", "colonyname": colony, "userid": fresh}, spare.user_prvkey),
        ({"msgtype": "changeexecutoridmsg", "colonyname": colony, "executorid": fresh},
         spare.executor_prvkey),
        ({"msgtype": "changecolonyidmsg", "colonyname": colony, "colonyid": fresh}, spare.colony_prvkey),
        ({"msgtype": "changeserveridmsg", "serverid": fresh}, env.server_prvkey),
    ]


FUZZ_KIND = "FuzzDeployment"


def fuzz_definition(colony: str) -> dict[str, Any]:
    return {"kind": "BlueprintDefinition", "metadata": {"name": "fuzzdeployments", "colonyname": colony},
            "spec": {"names": {"kind": FUZZ_KIND},
                     "schema": {"type": "object", "properties": {"replicas": {"type": "integer"},
                                                                 "tags": {"type": "array"}},
                                "required": ["replicas"]},
                     "handler": {"executorType": "fuzz-reconciler", "functionName": "reconcile"}}}


def fuzz_blueprint(colony: str, name: str = "fz") -> dict[str, Any]:
    return {"kind": FUZZ_KIND, "metadata": {"name": name, "colonyname": colony, "locationname": "l1",
                                            "labels": {"a": "b"}},
            "handler": {"executorNames": ["x"]}, "spec": {"replicas": 2, "tags": ["t", 1]}}


def blueprint_messages(env: ColonyEnv) -> list[tuple[dict[str, Any], str]]:
    """The blueprint messages; the test adds ``fuzz_definition`` and ``fuzz_blueprint`` first."""
    colony, user, owner = env.colonyname, env.user_prvkey, env.colony_prvkey
    return [
        ({"msgtype": "addblueprintdefinitionmsg", "blueprintdefinition": fuzz_definition(colony)}, owner),
        ({"msgtype": "getblueprintdefinitionmsg", "colonyname": colony, "name": "fuzzdeployments"}, user),
        ({"msgtype": "removeblueprintdefinitionmsg", "namespace": colony, "name": "fuzzdeployments"}, owner),
        ({"msgtype": "addblueprintmsg", "blueprint": fuzz_blueprint(colony, "fz2")}, user),
        ({"msgtype": "updateblueprintmsg", "blueprint": fuzz_blueprint(colony), "forcegeneration": True},
         user),
        ({"msgtype": "getblueprintsmsg", "namespace": colony, "kind": FUZZ_KIND, "locationname": "l1"}, user),
        ({"msgtype": "removeblueprintmsg", "namespace": colony, "name": "fz2"}, user),
        ({"msgtype": "getblueprinthistorymsg", "blueprintid": "a" * 64, "limit": 5}, user),
        ({"msgtype": "updateblueprintstatusmsg", "colonyname": colony, "blueprintname": "fz",
          "status": {"ready": 1, "list": [1, {"x": None}]}}, env.executor_prvkey),
        ({"msgtype": "reconcileblueprintmsg", "namespace": colony, "name": "fz", "force": True}, owner),
    ]


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, index))


def encode(msg: Any, raw: dict[str, str]) -> str:
    text = json.dumps(msg)
    for marker, value in raw.items():
        text = text.replace(json.dumps(marker), value)
    return text


def mutate(rng: random.Random, msg: dict[str, Any]) -> str:
    """The JSON text of ``msg`` with one to three parts replaced, removed or added."""
    msg = copy.deepcopy(msg)
    raw: dict[str, str] = {}
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in leaf_paths(msg) if p]
        path = rng.choice(paths) if paths else ("extra",)
        parent: Any = msg
        for part in path[:-1]:
            parent = parent[part]
        if not isinstance(parent, dict | list):
            continue
        action = rng.random()
        if action < 0.1 and isinstance(parent, dict):
            parent.pop(path[-1], None)
            continue
        value = rng.choice(HOSTILE)
        if isinstance(value, dict | list):
            value = copy.deepcopy(value)  # never shared: a later mutation must not make a cycle
        if isinstance(value, tuple) and value[0] is RAW:
            marker = f"@@raw{len(raw)}@@"
            raw[marker] = value[1]
            value = marker
        if action < 0.2 and isinstance(parent, dict):
            parent[rng.choice(["extra", "\ud800", "msgtype", "requesttime", "requestnonce"])] = value
        else:
            parent[path[-1]] = value
    return encode(msg, raw)


def signed(text: str, prvkey: str, payloadtype: str) -> dict[str, Any]:
    payload = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    return {"payloadtype": payloadtype, "payload": payload, "signature": crypto.sign(payload, prvkey)}


def envelope_case(rng: random.Random, good: dict[str, Any]) -> tuple[bytes, str]:
    """A broken envelope: bytes that are not one, or one with a hostile field."""
    choice = rng.randrange(8)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))), "application/json"
    if choice == 1:
        text = json.dumps(good)
        return text[: rng.randrange(len(text))].encode(), "application/json"
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))), wire.MSGPACK_CONTENT_TYPE
    if choice == 3:
        body = dict(good)
        body[rng.choice(["payloadtype", "payload", "signature", "other"])] = rng.choice(
            [v for v in HOSTILE if not isinstance(v, tuple)])
        try:
            return msgpack.packb(body), wire.MSGPACK_CONTENT_TYPE
        except (UnicodeEncodeError, OverflowError, TypeError, ValueError):
            return json.dumps(body).encode(), "application/json"
    if choice == 4:
        return (deep(rng.choice([100, 1000, 20_000]), rng.choice("[{"))).encode(), "application/json"
    body = dict(good)
    field = rng.choice(["payloadtype", "payload", "signature"])
    value = rng.choice(HOSTILE)
    if isinstance(value, tuple):
        text = json.dumps({**body, field: "@@raw@@"}).replace('"@@raw@@"', value[1])
        return text.encode(), "application/json"
    body[field] = value
    return json.dumps(body).encode(), "application/json"


def payload_case(rng: random.Random, env: ColonyEnv, pid: str,
                 templates: list[tuple[dict[str, Any], str]]) -> tuple[bytes, str]:
    msg, key = rng.choice(templates)
    key = rng.choice([key, key, key, crypto.generate_private_key()])
    text = mutate(rng, msg)
    payloadtype = msg["msgtype"] if rng.random() < 0.95 else rng.choice([t[0]["msgtype"] for t in templates])
    body = signed(text, key, payloadtype)
    if rng.random() < 0.1:
        return msgpack.packb(body), wire.MSGPACK_CONTENT_TYPE
    return json.dumps(body).encode(), "application/json"


def check_reply(status: int, raw: bytes, content_type: str, describe: Callable[[], str]) -> None:
    assert status < 500, describe()
    reply = msgpack.unpackb(raw) if content_type == wire.MSGPACK_CONTENT_TYPE else json.loads(raw)
    assert isinstance(reply, dict) and isinstance(reply.get("payload"), str), describe()
    if status >= 400:
        message = wire.decode_payload(reply["payload"])["message"]
        assert isinstance(message, str) and message and "Traceback" not in message, describe()


def test_fuzzed_requests_get_no_5xx_and_log_no_error(colony: ColonyEnv,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(SEED)
    process = colony.client.submit_func_spec(
        {"funcname": "target", "channels": ["chat"],
         "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype}},
        colony.user_prvkey)
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    colony.client.add_blueprint_definition(fuzz_definition(colony.colonyname), colony.colony_prvkey)
    colony.client.add_blueprint(fuzz_blueprint(colony.colonyname), colony.user_prvkey)
    templates = messages(colony, process.processid)
    good = signed(json.dumps(templates[0][0]), templates[0][1], templates[0][0]["msgtype"])
    connection = Connection(colony.server.host, colony.server.port)
    statuses: dict[int, int] = {}
    try:
        with caplog.at_level(logging.WARNING):
            for number in range(CASES):
                if rng.random() < 0.25:
                    body, content_type = envelope_case(rng, good)
                else:
                    body, content_type = payload_case(rng, colony, process.processid, templates)
                status, raw = connection.post(body, content_type)
                statuses[status] = statuses.get(status, 0) + 1
                check_reply(status, raw, content_type,
                            lambda number=number, body=body, status=status: (
                                f"seed {SEED} case {number}: HTTP {status} for {body[:300]!r}"))
    finally:
        connection.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors[:5]]
    assert sum(statuses.values()) == CASES
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > CASES // 4, statuses  # it reached handlers

    # Afterwards the server serves normally (once a fuzzed pause is undone).
    colony.client.resume_assignments(colony.colonyname, colony.colony_prvkey)
    again = colony.client.submit_func_spec(
        {"funcname": "after", "conditions": {"colonyname": colony.colonyname,
                                              "executortype": colony.executortype,
                                              "executornames": [colony.executorname]}}, colony.user_prvkey)
    assigned = colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
    while assigned.processid != again.processid:  # fuzzed submits that were valid come first
        colony.client.close(assigned.processid, ["fuzz"], colony.executor_prvkey)
        assigned = colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
    colony.client.close(again.processid, ["ok"], colony.executor_prvkey)
    assert colony.client.get_process(again.processid, colony.user_prvkey).state == wire.SUCCESS
