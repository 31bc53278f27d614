"""Security properties that a plausible optimisation would silently break, checked over raw HTTP.

A signature covers only its payload: the signer of a request is recovered from (payload,
signature) every time. A cache of recovered signers keyed by the signature alone (in
``server.envelope.recover_signer`` or ``pycolonies.crypto.recover_id``) would let anyone who saw one
signed request send any payload under that signature, as its signer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from pycolonies import wire
from tests.conftest import ColonyEnv
from tests.rawrpc import envelope_call


def submit_msg(colony: ColonyEnv, funcname: str) -> dict[str, Any]:
    """A submitfuncspecmsg as the reference clients send it: no requesttime, so replay protection
    does not record it (submitting the same spec twice is legitimate for them), and only the
    signature check stands between a forged payload and the server."""
    return {"msgtype": "submitfuncspecmsg", "spec": {
        "funcname": funcname, "args": [], "maxwaittime": -1, "maxexectime": -1,
        "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype}}}


def processes_in(database: str) -> list[tuple[str, str]]:
    """(process id, funcname) of every process in the test's database, whatever its state."""
    async def query() -> list[tuple[str, str]]:
        con = await asyncpg.connect(database)
        try:
            return [(r["process_id"], r["funcname"])
                    for r in await con.fetch("SELECT process_id, funcname FROM processes")]
        finally:
            await con.close()

    return asyncio.run(query())


def test_a_seen_signature_does_not_sign_another_payload(colony: ColonyEnv, database: str) -> None:
    signed = wire.signed_request(submit_msg(colony, "harmless"), colony.user_prvkey)
    status, accepted = envelope_call(colony.server.url, signed)
    assert status == 200, accepted
    assert accepted["spec"]["funcname"] == "harmless"

    for funcname in ("rm-rf", "harmless-but-different"):
        forged = {**signed, "payload": wire.encode_payload(submit_msg(colony, funcname))}
        assert forged["payload"] != signed["payload"]
        status, refused = envelope_call(colony.server.url, forged)
        assert status == 403, (funcname, status, refused)
        assert "replay" not in json.dumps(refused).lower(), (
            "refused as a replay: the signature check was never reached, so this test no longer "
            f"tells whether it holds: {refused}")

    assert processes_in(database) == [(accepted["processid"], "harmless")], "the forgeries created nothing"
    # The genuine request is still the user's: the refusals were about the payloads, not the key.
    status, again = envelope_call(colony.server.url, signed)
    assert status == 200 and again["spec"]["funcname"] == "harmless", again
