"""What the dashboard asks that the reference protocol has no message for (ours):

* ``getidentitymsg {colonyname}``: who the signer is to the server and to that colony, so a page
  can say "signed in as ..." and show only what the key may do. It tells a signer only about
  itself; a stranger's key gets ``roles: []``.
* ``getcolonyoverviewmsg {colonyname}`` (members): counts by executor type and state, ends per
  minute over the last hour, and the process that has waited longest.
"""

from __future__ import annotations

from typing import Any

from server import auth
from server.context import Call
from server.params import require_name
from server.store import colonies as colony_store
from server.store import executors as executor_store
from server.store import overview as store

THROUGHPUT_MINUTES = 60


async def get_identity(call: Call) -> Any:
    colony = require_name(call.msg.str("colonyname"), "colonyname")
    roles: list[dict[str, Any]] = []
    if call.signer == await auth.server_owner_id(call.pool, call.services.config.server_id):
        roles.append({"role": "serverowner", "name": ""})
    found = await colony_store.get(call.pool, colony)
    if found is not None and found.colonyid == call.signer:
        roles.append({"role": "colonyowner", "name": colony})
    for member in await executor_store.find_member(call.pool, colony, call.signer):
        roles.append({"role": member.kind, "name": member.name, "state": member.state})
    return {"id": call.signer, "colonyname": colony, "roles": roles}


async def get_colony_overview(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    by_type = await store.counts_by_type(call.pool, colony)
    throughput = await store.ended_per_minute(call.pool, colony, THROUGHPUT_MINUTES)
    return {
        "colonyname": colony,
        "executortypes": [entry.to_wire() for entry in by_type],
        "throughput": {"bucketseconds": 60, **throughput},
        "oldestwaiting": await store.oldest_waiting(call.pool, colony),
    }


HANDLERS = {
    "getidentitymsg": get_identity,
    "getcolonyoverviewmsg": get_colony_overview,
}
