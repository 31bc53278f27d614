"""Extensions for executors: ``heartbeatmsg`` (stamps lastheardfromtime) and ``releaseprocessmsg``
(the assignee gives a running process back to the queue without counting a retry)."""

from __future__ import annotations

import time

from pycolonies import crypto, wire
from tests.conftest import ColonyEnv
from tests.expect import refused


def call(colony: ColonyEnv, msg: dict, prvkey: str):  # noqa: ANN201 - raw RPC reply
    return colony.client._invoke(msg, prvkey, lambda reply: reply)


def submit(colony: ColonyEnv, **overrides):  # noqa: ANN003, ANN201
    spec = {"funcname": "work", "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype}}
    spec.update(overrides)
    return colony.client.submit_func_spec(spec, colony.user_prvkey)


def test_heartbeat_stamps_the_executor(colony: ColonyEnv) -> None:
    before = colony.client.get_executor(colony.colonyname, colony.executorname, colony.user_prvkey)
    time.sleep(0.05)
    assert call(colony, {"msgtype": "heartbeatmsg", "colonyname": colony.colonyname},
                colony.executor_prvkey) == {}
    after = colony.client.get_executor(colony.colonyname, colony.executorname, colony.user_prvkey)
    assert after["lastheardfromtime"] != before["lastheardfromtime"]
    assert not after["lastheardfromtime"].startswith("0001")
    refused(lambda: call(colony, {"msgtype": "heartbeatmsg", "colonyname": colony.colonyname},
                         colony.user_prvkey), 403, "not an approved executor")
    refused(lambda: call(colony, {"msgtype": "heartbeatmsg", "colonyname": colony.colonyname},
                         crypto.generate_private_key()), 403)
    refused(lambda: call(colony, {"msgtype": "heartbeatmsg"}, colony.executor_prvkey), 400, "colonyname")


def test_release_puts_the_process_back_without_a_retry(colony: ColonyEnv) -> None:
    submitted = submit(colony, maxexectime=60)
    process = colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    other = colony.add_executor("other")
    refused(lambda: call(colony, {"msgtype": "releaseprocessmsg", "processid": process.processid}, other),
            403, "assigned to another executor")
    assert call(colony, {"msgtype": "releaseprocessmsg", "processid": process.processid},
                colony.executor_prvkey) == {}
    released = colony.client.get_process(submitted.processid, colony.user_prvkey)
    assert released.state == wire.WAITING and released.retries == 0 and not released.assignedexecutorid
    again = colony.client.assign(colony.colonyname, 5, other)
    assert again.processid == submitted.processid
    colony.client.close(again.processid, ["done"], other)
    refused(lambda: call(colony, {"msgtype": "releaseprocessmsg", "processid": again.processid}, other),
            400, "already closed")
