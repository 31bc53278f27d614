"""Hostile and malformed requests over raw HTTP: each gets a clean error envelope with the right
status and a message that names the problem, changes nothing, and leaves the server serving."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from pycolonies import Colonies, crypto, wire
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv, make_colony


def good_spec(colony: ColonyEnv, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "funcname": "echo",
        "args": ["hello"],
        "kwargs": {},
        "priority": 0,
        "maxwaittime": -1,
        "maxexectime": -1,
        "maxretries": 0,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype},
        "env": {},
    }
    body.update(overrides)
    return body


def with_conditions(colony: ColonyEnv, **conditions: Any) -> dict[str, Any]:
    spec = good_spec(colony)
    spec["conditions"] = {**spec["conditions"], **conditions}
    return spec


def envelope(msg: dict[str, Any] | str, prvkey: str, payloadtype: str | None = None) -> dict[str, str]:
    """A signed envelope; ``msg`` may be a dict (JSON-encoded) or the raw JSON text of the message."""
    text = msg if isinstance(msg, str) else json.dumps(msg)
    payload = base64.b64encode(text.encode()).decode()
    if payloadtype is None:
        payloadtype = msg["msgtype"] if isinstance(msg, dict) else ""
    return {"signature": crypto.sign(payload, prvkey), "payloadtype": payloadtype, "payload": payload}


def error_message(status: int, reply: dict[str, Any], expected_status: int) -> str:
    """Check that ``reply`` is a clean error envelope with ``expected_status``; return its message."""
    payload = wire.decode_payload(reply["payload"])
    assert status == expected_status, payload
    assert reply["payloadtype"] == wire.ERROR_PAYLOADTYPE
    assert reply["error"] is True
    assert payload["status"] == expected_status
    assert isinstance(payload["message"], str) and payload["message"]
    return payload["message"]


def post_json(colony: ColonyEnv, body: dict[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return rawrpc.post(colony.server.url, raw)


def expect_error(colony: ColonyEnv, body: dict[str, Any] | bytes, status: int, *fragments: str) -> str:
    code, reply = post_json(colony, body)
    message = error_message(code, reply, status)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def waiting_ids(colony: ColonyEnv) -> list[str]:
    return [p["processid"] for p in
            colony.client.list_processes(colony.colonyname, 100, wire.WAITING, colony.user_prvkey)]


def assert_still_serving(colony: ColonyEnv) -> None:
    """The server answers a normal signed request and an unsigned one."""
    assert colony.client.server_version()["buildversion"]
    assert colony.client.get_colony(colony.colonyname, colony.user_prvkey)["name"] == colony.colonyname


@pytest.fixture
def env(colony: ColonyEnv) -> Iterator[ColonyEnv]:
    """The ``colony`` fixture, checked afterwards to hold no processes and still serve."""
    yield colony
    assert waiting_ids(colony) == []
    assert_still_serving(colony)


# -- the envelope ------------------------------------------------------------------------------


def test_malformed_json_body(env: ColonyEnv) -> None:
    for body in (b'{"payloadtype": "getprocessmsg", ', b"not json at all", b"", b"\xff\xfe\x00garbage",
                 b"{'a': 1}"):
        expect_error(env, body, 400, "not a valid RPC envelope", "JSON")


def test_json_body_that_is_not_an_object(env: ColonyEnv) -> None:
    for body in (b"[1, 2, 3]", b'"a string"', b"42", b"null", b"true"):
        expect_error(env, body, 400, "must be an object")


def test_envelope_field_of_wrong_type(env: ColonyEnv) -> None:
    for field in ("payloadtype", "payload", "signature"):
        body: dict[str, Any] = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env)},
                                        env.user_prvkey)
        body[field] = 12
        expect_error(env, body, 400, field, "must be a string")


def test_bad_base64_payload(env: ColonyEnv) -> None:
    for payload in ("not base64!!", "e30", "@@@@", "e30=e30="):
        body = {"signature": crypto.sign(payload, env.user_prvkey), "payloadtype": "submitfuncspecmsg",
                "payload": payload}
        expect_error(env, body, 400, "submitfuncspecmsg", "base64")


def test_payload_that_is_not_json(env: ColonyEnv) -> None:
    body = envelope("this is not json", env.user_prvkey, "submitfuncspecmsg")
    expect_error(env, body, 400, "submitfuncspecmsg", "invalid JSON")
    body = envelope("[1, 2]", env.user_prvkey, "submitfuncspecmsg")
    expect_error(env, body, 400, "must be a JSON object")
    raw = base64.b64encode(b"\xff\xfe\xfd").decode()
    body = {"signature": crypto.sign(raw, env.user_prvkey), "payloadtype": "submitfuncspecmsg",
            "payload": raw}
    expect_error(env, body, 400, "invalid JSON")


# -- signatures --------------------------------------------------------------------------------


def _signed_submit(colony: ColonyEnv) -> dict[str, str]:
    return envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(colony)}, colony.user_prvkey)


def test_malformed_signature_is_forbidden(env: ColonyEnv) -> None:
    cases = [
        ("ab" * 64, "length"),  # short
        ("ab" * 66, "length"),  # long
        ("", "length"),
        ("zz" * 65, "hex"),
        ("0x" + "ab" * 64, "hex"),
    ]
    for signature, fragment in cases:
        body = _signed_submit(env)
        body["signature"] = signature
        expect_error(env, body, 403, fragment)


def test_signature_that_does_not_verify_is_forbidden(env: ColonyEnv) -> None:
    for _ in range(5):
        body = _signed_submit(env)
        # Random bytes with a low s and a valid recovery id: either recovery fails or it yields a
        # stranger's id; both are 403.
        body["signature"] = secrets.token_hex(32) + "00" + secrets.token_hex(31) + "01"
        expect_error(env, body, 403)
    body = _signed_submit(env)
    sig = bytearray.fromhex(body["signature"])
    sig[64] = 7  # invalid recovery id
    body["signature"] = sig.hex()
    expect_error(env, body, 403, "recovery id")
    sig[64] = 1
    sig[32:64] = (2**256 - 1).to_bytes(32, "big")  # s above half the curve order
    body["signature"] = sig.hex()
    expect_error(env, body, 403, "half the order")


def test_signature_by_someone_else_is_forbidden(env: ColonyEnv) -> None:
    body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env)}, crypto.generate_private_key())
    expect_error(env, body, 403, "not a member", env.colonyname)


def test_payload_tampered_after_signing_is_forbidden(env: ColonyEnv) -> None:
    body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, priority=1)}, env.user_prvkey)
    tampered = {"msgtype": "submitfuncspecmsg", "spec": good_spec(env, priority=50000)}
    body["payload"] = base64.b64encode(json.dumps(tampered).encode()).decode()
    # The signature still parses but recovers some other id, which is not a member.
    expect_error(env, body, 403, "not a member")


# -- payload types and messages ----------------------------------------------------------------


def test_unknown_payloadtype(env: ColonyEnv) -> None:
    body = envelope({"msgtype": "x"}, env.user_prvkey)
    assert expect_error(env, body, 403) == "invalid rpcMsg.PayloadType: x"
    # Unknown even when the signature is garbage: the signature is checked first.
    body["signature"] = "00"
    expect_error(env, body, 403, "signature")


def test_empty_payloadtype(env: ColonyEnv) -> None:
    body = envelope({"msgtype": ""}, env.user_prvkey, payloadtype="")
    expect_error(env, body, 403, "invalid rpcMsg.PayloadType: empty", "COLONIES_PRVKEY")
    missing = {"signature": body["signature"], "payload": body["payload"]}
    expect_error(env, missing, 403, "invalid rpcMsg.PayloadType: empty")


def test_websocket_only_payloadtype_is_not_an_rpc(env: ColonyEnv) -> None:
    body = envelope({"msgtype": "subscribeprocessmsg"}, env.user_prvkey)
    assert expect_error(env, body, 403) == "invalid rpcMsg.PayloadType: subscribeprocessmsg"


def test_msgtype_mismatch(env: ColonyEnv) -> None:
    msg = {"msgtype": "getprocessesmsg", "spec": good_spec(env)}
    body = envelope(msg, env.user_prvkey, payloadtype="submitfuncspecmsg")
    expect_error(env, body, 400, "msg.MsgType does not match payloadType")
    no_msgtype = envelope({"spec": good_spec(env)}, env.user_prvkey, payloadtype="submitfuncspecmsg")
    expect_error(env, no_msgtype, 400, "msg.MsgType does not match payloadType")


def test_submit_without_spec(env: ColonyEnv) -> None:
    for msg in ({"msgtype": "submitfuncspecmsg"}, {"msgtype": "submitfuncspecmsg", "spec": None}):
        expect_error(env, envelope(msg, env.user_prvkey), 400, "spec", "required")


WRONGLY_TYPED_SPEC_FIELDS: list[tuple[Any, str]] = [
    (lambda s: s.update(priority="high"), "spec.priority"),
    (lambda s: s.update(priority=1.5), "spec.priority"),
    (lambda s: s.update(priority=True), "spec.priority"),
    (lambda s: s.update(args={"not": "a list"}), "spec.args"),
    (lambda s: s.update(kwargs=["not", "an", "object"]), "spec.kwargs"),
    (lambda s: s.update(funcname=7), "spec.funcname"),
    (lambda s: s.update(maxexectime="10"), "spec.maxexectime"),
    (lambda s: s.update(env={"A": 1}), "spec.env.A"),
    (lambda s: s.update(conditions="dev"), "spec.conditions"),
    (lambda s: s["conditions"].update(executortype=5), "spec.conditions.executortype"),
    (lambda s: s["conditions"].update(colonyname=["dev"]), "spec.conditions.colonyname"),
    (lambda s: s["conditions"].update(executornames="executor-1"), "spec.conditions.executornames"),
    (lambda s: s["conditions"].update(executornames=[1]), "spec.conditions.executornames[0]"),
]


def test_submit_with_wrongly_typed_field(env: ColonyEnv) -> None:
    for mutate, field in WRONGLY_TYPED_SPEC_FIELDS:
        spec = good_spec(env)
        mutate(spec)
        body = envelope({"msgtype": "submitfuncspecmsg", "spec": spec}, env.user_prvkey)
        expect_error(env, body, 400, field)


def test_spec_that_is_not_an_object(env: ColonyEnv) -> None:
    body = envelope({"msgtype": "submitfuncspecmsg", "spec": "echo"}, env.user_prvkey)
    expect_error(env, body, 400, "spec must be an object")


def test_timeout_of_wrong_type(env: ColonyEnv) -> None:
    for timeout in ("10", [10], 1.5, True):
        msg = {"msgtype": "assignprocessmsg", "colonyname": env.colonyname, "timeout": timeout}
        expect_error(env, envelope(msg, env.executor_prvkey), 400, "timeout")


def test_other_wrongly_typed_fields(env: ColonyEnv) -> None:
    cases = [
        ({"msgtype": "getprocessesmsg", "colonyname": env.colonyname, "count": "10", "state": 0}, "count"),
        ({"msgtype": "getprocessesmsg", "colonyname": env.colonyname, "count": 10, "state": "0"}, "state"),
        ({"msgtype": "getprocessesmsg", "colonyname": 1, "count": 10, "state": 0}, "colonyname"),
        ({"msgtype": "getprocessmsg", "processid": 123}, "processid"),
        ({"msgtype": "getlogsmsg", "colonyname": env.colonyname, "processid": "x", "count": 1,
          "latest": "yes"}, "latest"),
    ]
    for msg, field in cases:
        expect_error(env, envelope(msg, env.user_prvkey), 400, field)


def test_priority_out_of_range(env: ColonyEnv) -> None:
    for priority in (50001, -50001, 2**63, -(2**70)):
        body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, priority=priority)},
                        env.user_prvkey)
        expect_error(env, body, 400, "spec.priority")
    # The bounds themselves are accepted.
    for priority in (50000, -50000):
        env.client.submit_func_spec(good_spec(env, priority=priority), env.user_prvkey)
    env.client.remove_all_processes(env.colonyname, env.colony_prvkey)


def test_invalid_conditions(env: ColonyEnv) -> None:
    cases = [
        ({"cpu": "lots"}, "spec.conditions.cpu"),
        ({"cpu": "-1"}, "spec.conditions.cpu"),
        ({"cpu": "5x"}, "spec.conditions.cpu"),
        ({"mem": "12XB"}, "spec.conditions.mem"),
        ({"mem": "many"}, "spec.conditions.mem"),
        ({"storage": "1Qi"}, "spec.conditions.storage"),
        ({"executortype": ""}, "spec.conditions.executortype"),
    ]
    for conditions, field in cases:
        body = envelope({"msgtype": "submitfuncspecmsg", "spec": with_conditions(env, **conditions)},
                        env.user_prvkey)
        expect_error(env, body, 400, field)


def test_invalid_limits(env: ColonyEnv) -> None:
    for field in ("maxwaittime", "maxexectime", "maxretries"):
        body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, **{field: -2})},
                        env.user_prvkey)
        expect_error(env, body, 400, f"spec.{field}")


def test_huge_integers_are_rejected_not_crashed(env: ColonyEnv) -> None:
    for field in ("maxwaittime", "maxexectime", "maxretries"):
        body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, **{field: 2**70})},
                        env.user_prvkey)
        expect_error(env, body, 400)
    msg = {"msgtype": "getprocessesmsg", "colonyname": env.colonyname, "count": 2**70, "state": 0}
    expect_error(env, envelope(msg, env.user_prvkey), 400, "count")
    msg = {"msgtype": "getlogsmsg", "colonyname": env.colonyname, "executorname": "e", "count": 1,
           "since": 2**70}
    expect_error(env, envelope(msg, env.user_prvkey), 400)


def test_invalid_available_resources_on_assign(env: ColonyEnv) -> None:
    for field, value in (("availablecpu", "fast"), ("availablemem", "big")):
        msg = {"msgtype": "assignprocessmsg", "colonyname": env.colonyname, "timeout": -1, field: value}
        expect_error(env, envelope(msg, env.executor_prvkey), 400, value)


def test_nan_in_json(env: ColonyEnv) -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        spec_text = json.dumps(good_spec(env)).replace('"args": ["hello"]', f'"args": [{constant}]')
        assert constant in spec_text
        body = envelope(f'{{"msgtype": "submitfuncspecmsg", "spec": {spec_text}}}', env.user_prvkey,
                        "submitfuncspecmsg")
        expect_error(env, body, 400, "invalid JSON")
        msg_text = f'{{"msgtype": "getprocessesmsg", "colonyname": "dev", "count": {constant}, "state": 0}}'
        expect_error(env, envelope(msg_text, env.user_prvkey, "getprocessesmsg"), 400, "invalid JSON")


def test_number_overflowing_to_infinity(env: ColonyEnv) -> None:
    spec_text = json.dumps(good_spec(env)).replace('"args": ["hello"]', '"args": [1e400]')
    body = envelope(f'{{"msgtype": "submitfuncspecmsg", "spec": {spec_text}}}', env.user_prvkey,
                    "submitfuncspecmsg")
    expect_error(env, body, 400)
    spec_text = json.dumps(good_spec(env)).replace('"priority": 0', '"priority": 1e400')
    body = envelope(f'{{"msgtype": "submitfuncspecmsg", "spec": {spec_text}}}', env.user_prvkey,
                    "submitfuncspecmsg")
    expect_error(env, body, 400, "spec.priority")


NUL_SPEC_CHANGES: list[dict[str, Any]] = [
    {"funcname": "ec\x00ho"},
    {"label": "\x00"},
    {"nodename": "a\x00"},
    {"args": ["nul \x00 inside"]},
    {"args": [{"nested": ["\x00"]}]},
    {"kwargs": {"k\x00": 1}},
    {"env": {"KEY": "va\x00lue"}},
    {"env": {"K\x00EY": "value"}},
    {"conditions": {"colonyname": "dev", "executortype": "test-\x00executor"}},
    {"conditions": {"colonyname": "dev", "executortype": "test-executor",
                    "executornames": ["executor\x00-1"]}},
]


def test_nul_characters_in_submit(env: ColonyEnv) -> None:
    for spec_change in NUL_SPEC_CHANGES:
        body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, **spec_change)},
                        env.user_prvkey)
        expect_error(env, body, 400, "NUL character")


def test_nul_character_error_names_the_field(env: ColonyEnv) -> None:
    body = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, args=[1, {"nested": ["\x00"]}])},
                    env.user_prvkey)
    expect_error(env, body, 400, "spec.args[1].nested[0]")


def test_nul_characters_in_other_messages(env: ColonyEnv) -> None:
    cases = [
        ({"msgtype": "getprocessmsg", "processid": "ab\x00cd"}, env.user_prvkey, {400}),
        ({"msgtype": "getprocessesmsg", "colonyname": "de\x00v", "count": 10, "state": 0}, env.user_prvkey,
         {400}),
        ({"msgtype": "assignprocessmsg", "colonyname": "dev\x00", "timeout": -1}, env.executor_prvkey,
         {400}),
        ({"msgtype": "getattributemsg", "attributeid": "\x00"}, env.user_prvkey, {400}),
    ]
    for msg, key, statuses in cases:
        code, reply = post_json(env, envelope(msg, key))
        assert code in statuses, (msg, code, wire.decode_payload(reply["payload"]))
        error_message(code, reply, code)


def test_nul_characters_from_a_running_executor(env: ColonyEnv) -> None:
    process = env.client.submit_func_spec(good_spec(env), env.user_prvkey)
    env.client.assign(env.colonyname, -1, env.executor_prvkey)
    pid = process.processid
    cases = [
        {"msgtype": "addlogmsg", "processid": pid, "message": "log \x00 line"},
        {"msgtype": "closesuccessfulmsg", "processid": pid, "out": ["\x00"]},
        {"msgtype": "setoutputmsg", "processid": pid, "out": [{"a": "\x00"}]},
        {"msgtype": "closefailedmsg", "processid": pid, "errors": ["bad \x00 error"]},
        {"msgtype": "addattributemsg", "attribute": {"targetid": pid, "key": "k\x00", "value": "v",
                                                     "attributetype": 1}},
        {"msgtype": "addattributemsg", "attribute": {"targetid": pid, "key": "k", "value": "\x00",
                                                     "attributetype": 1}},
    ]
    for msg in cases:
        code, reply = post_json(env, envelope(msg, env.executor_prvkey))
        error_message(code, reply, 400)
    got = env.client.get_process(pid, env.user_prvkey)
    assert got.state == wire.RUNNING
    assert got.output == [] and got.errors == []
    assert [a for a in got.attributes if a.attributetype == wire.OUT] == []
    assert env.client.get_process_log(env.colonyname, pid, 10, 0, env.user_prvkey) == []
    env.client.close(pid, ["fine"], env.executor_prvkey)
    assert env.client.get_process(pid, env.user_prvkey).state == wire.SUCCESS


def test_bad_close_payloads_change_nothing(env: ColonyEnv) -> None:
    process = env.client.submit_func_spec(good_spec(env), env.user_prvkey)
    env.client.assign(env.colonyname, -1, env.executor_prvkey)
    pid = process.processid
    cases = [
        ({"msgtype": "closesuccessfulmsg", "processid": pid, "out": "done"}, "out"),
        ({"msgtype": "closesuccessfulmsg", "processid": pid, "out": {"a": 1}}, "out"),
        ({"msgtype": "closefailedmsg", "processid": pid, "errors": "boom"}, "errors"),
        ({"msgtype": "setoutputmsg", "processid": pid, "out": 5}, "out"),
        ({"msgtype": "closesuccessfulmsg", "processid": ""}, "processid"),
    ]
    for msg, field in cases:
        expect_error(env, envelope(msg, env.executor_prvkey), 400, field)
    got = env.client.get_process(pid, env.user_prvkey)
    assert got.state == wire.RUNNING and got.output == [] and got.errors == []
    env.client.close(pid, [], env.executor_prvkey)


# -- unknown things ----------------------------------------------------------------------------


def test_unknown_process_ids(env: ColonyEnv) -> None:
    for pid in ("0" * 64, "no-such-process"):
        msg = {"msgtype": "getprocessmsg", "processid": pid}
        expect_error(env, envelope(msg, env.user_prvkey), 404, "not found")
    expect_error(env, envelope({"msgtype": "getprocessmsg", "processid": ""}, env.user_prvkey), 400,
                 "processid")
    msg = {"msgtype": "removeprocessmsg", "processid": "1" * 64}
    expect_error(env, envelope(msg, env.user_prvkey), 404, "not found")


def test_unknown_colony(env: ColonyEnv) -> None:
    msg = {"msgtype": "getprocessesmsg", "colonyname": "nowhere", "count": 10, "state": 0}
    expect_error(env, envelope(msg, env.user_prvkey), 403, "not a member", "nowhere")
    body = envelope({"msgtype": "submitfuncspecmsg",
                     "spec": with_conditions(env, colonyname="nowhere")}, env.user_prvkey)
    expect_error(env, body, 403, "nowhere")
    msg = {"msgtype": "assignprocessmsg", "colonyname": "nowhere", "timeout": -1}
    expect_error(env, envelope(msg, env.executor_prvkey), 403, "nowhere")
    msg = {"msgtype": "removeallprocessesmsg", "colonyname": "nowhere", "state": -1}
    expect_error(env, envelope(msg, env.colony_prvkey), 403, "nowhere")
    body = envelope({"msgtype": "submitfuncspecmsg", "spec": with_conditions(env, colonyname="")},
                    env.user_prvkey)
    expect_error(env, body, 400, "Colony name")


def test_get_on_api_is_not_an_rpc(env: ColonyEnv) -> None:
    request = urllib.request.Request(f"{env.server.url}/api", method="GET")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 405
    reply = json.loads(info.value.read())
    info.value.close()
    assert reply["error"] is True and reply["payloadtype"] == "error"
    assert "POST /api" in wire.decode_payload(reply["payload"])["message"]


def test_many_bad_requests_then_normal_work(env: ColonyEnv) -> None:
    for body in (b"{", b"[]", json.dumps({"payloadtype": "x", "payload": "", "signature": ""}).encode()):
        for _ in range(20):
            code, _ = post_json(env, body)
            assert code in (400, 403)
    process = env.client.submit_func_spec(good_spec(env), env.user_prvkey)
    assert env.client.assign(env.colonyname, -1, env.executor_prvkey).processid == process.processid
    env.client.close(process.processid, ["ok"], env.executor_prvkey)


# -- deep nesting and lone surrogates (decoded before any membership check) ----------------------


def nested(levels: int) -> list[Any]:
    """A list nested ``levels`` deep: nested(1) == [], nested(2) == [[]]."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def no_server_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


def with_deep(msg: dict[str, Any], levels: int) -> str:
    """The JSON text of ``msg`` with each "DEEP" string replaced by lists nested ``levels`` deep
    (too deep for json.dumps to write)."""
    return json.dumps(msg).replace('"DEEP"', "[" * levels + "]" * levels)


def test_deep_nesting_from_any_key_is_a_400_naming_the_field(
        env: ColonyEnv, caplog: pytest.LogCaptureFixture) -> None:
    stranger = crypto.generate_private_key()  # not a member of anything
    cases = [
        ({"msgtype": "getcolonymsg", "colonyname": "x", "deep": "DEEP"}, 1000, "deep"),
        ({"msgtype": "getcolonymsg", "colonyname": "x", "deep": "DEEP"}, 50_000, "nested"),
        ({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, args="DEEP")}, 600, "spec.args"),
        ({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, kwargs={"k": "DEEP"})}, 900,
         "spec.kwargs.k[0]"),
        ({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, fs={"dirs": "DEEP"})}, 1000,
         "spec.fs.dirs[0]"),
        ({"msgtype": "addchildmsg", "processgraphid": "a" * 64, "parentprocessid": "b" * 64,
          "childprocessid": "", "insert": False, "spec": good_spec(env, args="DEEP")}, 1000, "spec.args"),
        ({"msgtype": "submitworkflowspecmsg", "spec": {"colonyname": env.colonyname, "functionspecs": [
            good_spec(env, kwargs={"x": "DEEP"})]}}, 500, "spec.functionspecs[0].kwargs.x"),
    ]
    with caplog.at_level(logging.INFO):
        for msg, levels, field in cases:
            for key in (stranger, env.user_prvkey):
                body = envelope(with_deep(msg, levels), key, msg["msgtype"])
                expect_error(env, body, 400, msg["msgtype"], field, "nested deeper than 100")
        # Deeper than the JSON decoder's own recursion limit, in the envelope itself.
        expect_error(env, b'{"payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "envelope")
    no_server_errors_logged(caplog)


def test_the_depth_limit_is_exactly_100_levels(env: ColonyEnv) -> None:
    # The message is level 1, spec 2, args 3: args may hold 97 more levels of lists.
    at_limit = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, args=nested(98))},
                        env.user_prvkey)
    code, reply = post_json(env, at_limit)
    assert code == 200, wire.decode_payload(reply["payload"])
    stored = env.client.get_process(wire.decode_payload(reply["payload"])["processid"], env.user_prvkey)
    assert stored.spec.args == nested(98)
    env.client.remove_process(stored.processid, env.user_prvkey)
    over = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, args=nested(99))},
                    env.user_prvkey)
    message = expect_error(env, over, 400, "nested deeper than 100")
    assert message.startswith("Invalid submitfuncspecmsg: spec.args[0][0][0][0]"), message


def test_a_deep_cron_workflow_spec_is_refused(env: ColonyEnv) -> None:
    workflow = with_deep({"colonyname": env.colonyname, "functionspecs": [
        good_spec(env, nodename="a", args="DEEP")]}, 200)
    msg = {"msgtype": "addcronmsg", "cron": {"colonyname": env.colonyname, "name": "deep",
                                             "cronexpression": "0 0 * * * *", "interval": -1,
                                             "workflowspec": workflow}}
    expect_error(env, envelope(msg, env.user_prvkey), 400, "cron.workflowspec", "nested deeper than 100")


def test_lone_surrogates_are_a_400(env: ColonyEnv, caplog: pytest.LogCaptureFixture) -> None:
    # "\ud800" in these Python strings is a lone surrogate; json.dumps sends it as the escape
    # \ud800, exactly as a hostile client would.
    process = env.client.submit_func_spec(good_spec(env), env.user_prvkey)
    env.client.assign(env.colonyname, -1, env.executor_prvkey)
    pid = process.processid
    with caplog.at_level(logging.INFO):
        # In the envelope's fields, before any key is known: no signature recovery is tried.
        for field in ("payload", "signature", "payloadtype"):
            body = _signed_submit(env)
            body[field] = body[field][:4] + "\ud800" + body[field][4:]
            expect_error(env, body, 400, f"envelope field {field}", "surrogate")
        cases = [
            ({"msgtype": "addlogmsg", "processid": pid, "message": "log \ud800 line"}, "message"),
            ({"msgtype": "addattributemsg", "attribute": {"targetid": pid, "key": "k\udfff",
                                                          "value": "v", "attributetype": 1}},
             "attribute.key"),
            ({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, env={"K\ud800EY": "v"})}, "spec.env"),
            ({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, env={"KEY": "\udc00"})}, "spec.env.KEY"),
            ({"msgtype": "submitfuncspecmsg", "spec": good_spec(env, args=[{"\ud83d": 1}])}, "spec.args[0]"),
        ]
        for msg, field in cases:
            key = env.user_prvkey if msg["msgtype"] == "submitfuncspecmsg" else env.executor_prvkey
            message = expect_error(env, envelope(msg, key), 400, field, "lone surrogate")
            assert message.isascii()
        # A proper surrogate pair is one character (an emoji) and is fine.
        line = envelope({"msgtype": "addlogmsg", "processid": pid, "message": "ok \U0001f600"},
                        env.executor_prvkey)
        assert "\\ud83d\\ude00" in base64.b64decode(line["payload"]).decode()
        code, reply = post_json(env, line)
        assert code == 200, wire.decode_payload(reply["payload"])
    no_server_errors_logged(caplog)
    logs = env.client.get_process_log(env.colonyname, pid, 10, 0, env.user_prvkey)
    assert [entry["message"] for entry in logs] == ["ok \U0001f600"]
    got = env.client.get_process(pid, env.user_prvkey)
    assert [a for a in got.attributes if a.attributetype == wire.OUT] == []
    env.client.close(pid, ["fine"], env.executor_prvkey)


# -- body size limit ---------------------------------------------------------------------------


def test_oversized_body_is_rejected(database: str) -> None:
    with ServerThread(database, max_body_bytes=1024) as small, Colonies(small.host, small.port) as client:
        colony = make_colony(client, small)
        big = envelope({"msgtype": "submitfuncspecmsg", "spec": good_spec(colony, args=["x" * 4096])},
                       colony.user_prvkey)
        raw = json.dumps(big).encode()
        assert len(raw) > 4096
        code, reply = rawrpc.post(small.url, raw)
        message = error_message(code, reply, 413)
        assert "COLONIES_MAX_BODY_BYTES" in message
        assert "1024" in message
        assert waiting_ids(colony) == []
        # Under the limit, the same server still works.
        process = client.submit_func_spec(good_spec(colony), colony.user_prvkey)
        assert waiting_ids(colony) == [process.processid]
        code, reply = rawrpc.post(small.url, b"x" * 4096)
        assert "COLONIES_MAX_BODY_BYTES" in error_message(code, reply, 413)
        assert client.server_version()["buildversion"]


# -- malformed HTTP (before any envelope) ----------------------------------------------------------

MALFORMED_HTTP = [
    b"GARBAGE\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 50,  # a TLS hello on plain HTTP
    b"POST /api HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHo st: x\r\n\r\n",
]


def test_malformed_http_gets_a_400_and_no_traceback_in_the_log(
        env: ColonyEnv, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for raw in MALFORMED_HTTP:
            with socket.create_connection((env.server.host, env.server.port), timeout=10) as sock:
                sock.sendall(raw)
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
            assert re.match(rb"HTTP/1\.[01] 400 ", reply), (raw, reply[:200])
    traced = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert traced == [], [r.getMessage() for r in traced]
