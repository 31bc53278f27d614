"""The dashboard's crypto and API client in a real Chromium, against a real server.

The page's modules (server/dashboard/static/js/crypto.js and api.js, over the vendored noble
libraries) must sign exactly as the Python SDK: same IDs, signatures the server recovers, the
same envelope with a fresh requestnonce and requesttime, and the same reply decoding.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any

import pytest

from pycolonies import crypto, wire
from server.app import PUBSUB
from server.testing import ServerThread
from tests.conftest import ColonyEnv
from tests.support.browser import base_url

pytestmark = pytest.mark.browser

CRYPTO = "/dashboard/static/js/crypto.js"
API = "/dashboard/static/js/api.js"
HALF_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2
HELLO_KEY = "d6eb959e9aec2e6fdc44b5862b269e987b8a4d6f2baca542d8acaa97ee5e74f6"

# ../shared/protocol.md §3.7
VECTORS = {
    "6d2fb6f546bacfd98c68769e61e0b44a697a30596c018a50e28200aa59b01c0a":
        "4fef2b5a82d134d058c1883c72d6d9caf77cd59ca82d73105017590dea3dcb87",
    "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d":
        "039231c7644e04b6895471dd5335cf332681c54e27f81fac54f9067b3f2c0103",
    "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514":
        "4787a5071856a4acf702b2ffcea422e3237a679c681314113d86139461290cf4",
    "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05":
        "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac",
    HELLO_KEY: "5d6568f883451ae2e407d1a0a7992e414f2a67b69d0e6e9176d353b98f06f696",
}
NON_ASCII = {"msgtype": "x", "text": "héllo wörld ✓ 日本語 𝄞 \u0000 \"quoted\" \\ \n",
             "n": [1, -2.5, None, True]}


async def in_page(page: Any, body: str, arg: Any = None) -> Any:
    """Run ``body`` (an async function body with ``c`` = crypto.js, ``a`` = api.js, ``arg``) in
    the page and return its JSON result."""
    script = (f"async (arg) => {{ const c = await import('{CRYPTO}'); const a = await import('{API}');\n"
              f"{body}\n}}")
    return await page.evaluate(script, arg)


async def open_page(page: Any, server: ServerThread) -> Any:
    response = await page.goto(base_url(server) + "/")
    assert response is not None and response.ok
    return response


async def until(predicate: Any, what: str, timeout: float = 15.0) -> None:
    """Wait for server-side state (the event loop keeps serving Playwright meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


def watching(server: ServerThread) -> int:
    runner = server.serving.runner
    assert runner is not None
    return runner.app[PUBSUB].listener.watching


def submit_spec(env: ColonyEnv) -> dict[str, Any]:
    return {"funcname": "echo", "args": ["hi"], "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": env.colonyname, "executortype": env.executortype}}


# -- crypto.js ---------------------------------------------------------------------------------------


async def test_ids_and_sha3_match_the_protocol_vectors(page: Any, server: ServerThread) -> None:
    await open_page(page, server)
    ids = await in_page(page, "return Object.fromEntries(arg.map((k) => [k, c.idFromPrivateKey(k)]));",
                        list(VECTORS))
    assert ids == VECTORS
    assert await in_page(page, "return c.sha3hex('hello world');") == (
        "644bcc7e564373040999aac89e7622f3ca71fba1d972fd94a31c3bfbf24e3938")
    # the key may come in upper case (Go's hex decoding accepts it); the ID is the same
    upper = await in_page(page, "return c.idFromPrivateKey(arg.toUpperCase());", HELLO_KEY)
    assert upper == VECTORS[HELLO_KEY]


async def test_bad_private_keys_are_refused_with_a_clear_message(page: Any, server: ServerThread) -> None:
    await open_page(page, server)
    bad = ["", "abc", "zz" * 32, "00" * 32, "ff" * 32,
           "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", HELLO_KEY + "00"]
    errors = await in_page(page, """
        return arg.map((k) => {
          try { c.idFromPrivateKey(k); return null; } catch (e) { return e.message; }
        });
    """, bad)
    assert all(isinstance(text, str) and text.startswith("Invalid private key") for text in errors), errors
    assert "64 hex characters" in errors[0] and "between 1 and" in errors[3] and "between 1 and" in errors[5]
    # the largest valid key, n - 1, is accepted
    assert await in_page(page, "return c.idFromPrivateKey(arg);",
                         "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140")


async def test_a_signature_recovers_to_the_signer_with_low_s(page: Any, server: ServerThread) -> None:
    await open_page(page, server)
    signature = await in_page(page, "return c.signPayload('hello', arg);", HELLO_KEY)
    assert re.fullmatch(r"[0-9a-f]{130}", signature)
    assert crypto.recover_id("hello", signature) == VECTORS[HELLO_KEY]
    assert int(signature[64:128], 16) <= HALF_ORDER
    assert int(signature[128:], 16) in (0, 1)
    # RFC 6979 with HMAC-SHA256, as libsecp256k1: the very bytes of pycolonies and protocol.md §3.7
    assert signature == crypto.sign("hello", HELLO_KEY) == (
        "e713a1bb015fecabb5a084b0fe6d6e7271fca6f79525a634183cfdb175fe69241f4da161779d8e6b761200e1cf93766010a19072fa778f9643363e2cfadd640900")
    # many payloads: every signature recovers and is low-S (about half need the S flip)
    payloads = [wire.encode_payload({"msgtype": "getcolonymsg", "colonyname": f"c{i}"}) for i in range(40)]
    signatures = await in_page(page, "return arg.p.map((p) => c.signPayload(p, arg.k));",
                               {"p": payloads, "k": HELLO_KEY})
    for payload, sig in zip(payloads, signatures, strict=True):
        assert crypto.recover_id(payload, sig) == VECTORS[HELLO_KEY]
        assert int(sig[64:128], 16) <= HALF_ORDER
        assert sig == crypto.sign(payload, HELLO_KEY)


async def test_signing_works_without_webcrypto_subtle(page: Any, server: ServerThread) -> None:
    """A page served over plain http from a non-localhost address has no crypto.subtle."""
    await page.add_init_script(
        "Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined, configurable: true});")
    await open_page(page, server)
    result = await in_page(page, """
        return {subtle: String(globalThis.crypto.subtle), id: c.idFromPrivateKey(arg),
                sig: c.signPayload('hello', arg), env: c.signedEnvelope({msgtype: 'getcolonymsg'}, arg)};
    """, HELLO_KEY)
    assert result["subtle"] == "undefined"
    assert result["id"] == VECTORS[HELLO_KEY]
    assert crypto.recover_id("hello", result["sig"]) == VECTORS[HELLO_KEY]
    assert crypto.recover_id(result["env"]["payload"], result["env"]["signature"]) == VECTORS[HELLO_KEY]


async def test_non_ascii_payloads_round_trip(page: Any, server: ServerThread) -> None:
    await open_page(page, server)
    from_page = await in_page(page, "return c.encodePayload(arg);", NON_ASCII)
    # standard base64 with padding
    assert base64.b64encode(base64.b64decode(from_page, validate=True)).decode() == from_page
    assert wire.decode_payload(from_page) == NON_ASCII
    assert "日本語".encode() in base64.b64decode(from_page)  # UTF-8 JSON text, not escapes
    # what the SDK encodes (ASCII-escaped JSON) decodes in the page, and the page's own round-trips
    assert await in_page(page, "return c.decodePayload(arg);", wire.encode_payload(NON_ASCII)) == NON_ASCII
    assert await in_page(page, "return c.decodePayload(c.encodePayload(arg));", NON_ASCII) == NON_ASCII


async def test_the_envelope_carries_a_fresh_nonce_and_an_integer_time(page: Any,
                                                                       server: ServerThread) -> None:
    await open_page(page, server)
    msg = {"msgtype": "getcolonymsg", "colonyname": "dév"}
    before = time.time_ns()
    envelopes = await in_page(page, "return [1, 2].map(() => c.signedEnvelope(arg.msg, arg.key));",
                              {"msg": msg, "key": HELLO_KEY})
    after = time.time_ns()
    nonces = set()
    for envelope in envelopes:
        assert set(envelope) == {"signature", "payloadtype", "payload"}
        assert envelope["payloadtype"] == "getcolonymsg"
        assert crypto.recover_id(envelope["payload"], envelope["signature"]) == VECTORS[HELLO_KEY]
        text = base64.b64decode(envelope["payload"]).decode()
        assert re.search(r'"requesttime":\d{19}[,}]', text), text  # a plain integer, no exponent, no string
        decoded = json.loads(text)
        assert {k: decoded[k] for k in msg} == msg
        assert re.fullmatch(r"[0-9a-f]{32}", decoded["requestnonce"])
        assert isinstance(decoded["requesttime"], int)
        assert before - 5_000_000 <= decoded["requesttime"] <= after + 5_000_000  # ms clock, rounded
        nonces.add(decoded["requestnonce"])
    assert len(nonces) == 2


# -- api.js ------------------------------------------------------------------------------------------


CALL = """
    const api = new a.Api(arg.key);
    try { return {ok: await api.call(arg.msg)}; }
    catch (e) {
      return {error: {name: e.name, status: e.status, message: e.message, api: e instanceof a.ApiError}};
    }
"""


async def test_signed_calls_to_the_api(page: Any, server: ServerThread, colony: ColonyEnv) -> None:
    await open_page(page, server)
    get_colony = {"msgtype": "getcolonymsg", "colonyname": colony.colonyname}
    first = await in_page(page, CALL, {"key": colony.user_prvkey, "msg": get_colony})
    assert first["ok"]["name"] == colony.colonyname, first
    assert first["ok"]["colonyid"] == crypto.derive_id(colony.colony_prvkey)
    second = await in_page(page, CALL, {"key": colony.user_prvkey, "msg": get_colony})
    assert second == first

    processes = {"msgtype": "getprocessesmsg", "colonyname": colony.colonyname, "count": 10,
                 "state": wire.WAITING}
    assert (await in_page(page, CALL, {"key": colony.user_prvkey, "msg": processes}))["ok"] == []

    # a state-changing call, twice byte-identical but for the nonce: the replay guard takes both
    submit = {"msgtype": "submitfuncspecmsg", "spec": submit_spec(colony)}
    submitted = [await in_page(page, CALL, {"key": colony.user_prvkey, "msg": submit}) for _ in range(2)]
    ids = {reply["ok"]["processid"] for reply in submitted}
    assert len(ids) == 2, submitted
    listed = colony.client.list_processes(colony.colonyname, 10, wire.WAITING, colony.user_prvkey)
    assert {process["processid"] for process in listed} == ids
    assert {process["initiatorid"] for process in listed} == {crypto.derive_id(colony.user_prvkey)}


async def test_a_key_that_is_not_a_member_gets_a_403_api_error(page: Any, server: ServerThread,
                                                              colony: ColonyEnv) -> None:
    await open_page(page, server)
    stranger = crypto.generate_private_key()
    reply = await in_page(page, CALL, {"key": stranger,
                                       "msg": {"msgtype": "getcolonymsg", "colonyname": colony.colonyname}})
    error = reply["error"]
    assert error["api"] is True and error["name"] == "ApiError"
    assert error["status"] == 403
    assert "not a member" in error["message"] and colony.colonyname in error["message"], error
    # a bad key never reaches the server: a plain Error from the constructor
    bad = await in_page(page, "try { new a.Api('nope'); return null; }\n"
                              "catch (e) { return [e.name, e.message]; }")
    assert bad == ["Error", bad[1]] and bad[1].startswith("Invalid private key")


SUBSCRIBE = """
    window.__events = []; window.__closed = [];
    const api = new a.Api(arg.key);
    window.__sub = api.subscribe(arg.msg, (payload) => window.__events.push(payload),
        (error) => window.__closed.push(error ? {status: error.status, message: error.message} : null));
    await window.__sub.opened;
    return true;
"""


async def test_subscribe_receives_process_events(page: Any, server: ServerThread, colony: ColonyEnv) -> None:
    await open_page(page, server)
    process = colony.client.submit_func_spec(submit_spec(colony), colony.user_prvkey)
    msg = {"msgtype": "subscribeprocessmsg", "processid": process.processid, "executortype": "",
           "state": wire.RUNNING, "timeout": 30, "colonyname": colony.colonyname}
    assert await in_page(page, SUBSCRIBE, {"key": colony.user_prvkey, "msg": msg})
    await until(lambda: watching(server) >= 1, "the page's subscription to be registered")
    assigned = colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)
    assert assigned.processid == process.processid
    await page.wait_for_function("window.__events.length >= 1")
    event = (await page.evaluate("window.__events"))[0]
    assert event["processid"] == process.processid
    assert event["state"] == wire.RUNNING
    assert await page.evaluate("window.__closed") == []
    await page.evaluate("window.__sub.close()")
    assert await page.evaluate("window.__closed") == [None]
    await until(lambda: watching(server) == 0, "the subscription to be released after close()")


async def test_subscribe_reports_an_error_envelope(page: Any, server: ServerThread,
                                                   colony: ColonyEnv) -> None:
    await open_page(page, server)
    msg = {"msgtype": "subscribeprocessmsg", "processid": "ab" * 32, "executortype": "",
           "state": wire.SUCCESS, "timeout": 30, "colonyname": colony.colonyname}
    assert await in_page(page, SUBSCRIBE, {"key": colony.user_prvkey, "msg": msg})
    await page.wait_for_function("window.__closed.length >= 1")
    closed = await page.evaluate("window.__closed")
    assert len(closed) == 1 and closed[0] is not None, closed
    # (the Go server says 403 "Invalid process with Id ...", this one 404 "... not found")
    assert closed[0]["status"] in (403, 404) and "ab" * 32 in closed[0]["message"], closed
    assert await page.evaluate("window.__events") == []


# -- the page itself ---------------------------------------------------------------------------------


async def test_the_page_loads_under_its_csp_without_errors(page: Any, page_log: Any,
                                                           server: ServerThread) -> None:
    response = await open_page(page, server)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "default-src 'none'" in policy, policy
    assert f"ws://{server.host}:{server.port}" in policy
    await page.wait_for_load_state("networkidle")
    # the modules and the vendored files they import load under the policy too
    assert await in_page(page, "return typeof c.signedEnvelope === 'function'\n"
                               "  && typeof a.Api === 'function';")
    assert page_log.errors == []


async def test_the_harness_sees_a_csp_violation(page: Any, page_log: Any, server: ServerThread) -> None:
    """The check above is not vacuous: inline code the policy forbids is reported."""
    await open_page(page, server)
    await page.evaluate("""() => { const s = document.createElement('script');
                                   s.textContent = 'window.__ran = true;'; document.head.append(s); }""")
    await until(lambda: page_log.csp_violations, "the CSP violation to be reported")
    assert any("script-src" in text for text in page_log.csp_violations), page_log.csp_violations
    assert await page.evaluate("window.__ran === undefined")
