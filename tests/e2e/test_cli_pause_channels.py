"""``colonies process pause|resume|status`` and ``colonies channel append|read|follow`` as real
subprocesses against a real server."""

from __future__ import annotations

import json
import subprocess

from pycolonies import crypto
from tests.conftest import ColonyEnv
from tests.e2e.test_cli_work import CLI, ROOT, env_for, ok, run


def test_pause_resume_and_status(colony: ColonyEnv) -> None:
    assert ok(run(colony, "process", "status")).strip() == "Colony process assignments are ACTIVE"
    paused = run(colony, "process", "pause", "--colonyname", colony.colonyname)
    ok(paused)
    assert "PAUSED" in paused.stderr + paused.stdout
    assert colony.client.get_pause_status(colony.colonyname, colony.user_prvkey) is True
    assert ok(run(colony, "process", "status")).strip() == "Colony process assignments are PAUSED"
    ok(run(colony, "process", "resume"))
    assert ok(run(colony, "process", "status", "--colony", colony.colonyname)).strip() == (
        "Colony process assignments are ACTIVE")


def test_pause_needs_the_colony_key(colony: ColonyEnv) -> None:
    refused = run(colony, "process", "pause", COLONIES_COLONY_PRVKEY=colony.user_prvkey)
    assert refused.returncode != 0 and "not colony owner" in refused.stderr
    missing = run(colony, "process", "pause", COLONIES_COLONY_PRVKEY="")
    assert missing.returncode != 0 and "COLONIES_COLONY_PRVKEY" in missing.stderr
    assert "Traceback" not in refused.stderr + missing.stderr


def test_channel_append_read_and_follow(colony: ColonyEnv) -> None:
    spec = {"funcname": "chat", "channels": ["chat"],
            "conditions": {"colonyname": colony.colonyname, "executortype": colony.executortype}}
    process = colony.client.submit_func_spec(spec, colony.user_prvkey)
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)
    pid = process.processid
    ok(run(colony, "channel", "append", "-p", pid, "--name", "chat", "--payload", "hello"))
    ok(run(colony, "channel", "append", "-p", pid, "--name", "chat", "--payload", "world", "--inreplyto",
           "1", "--type", "end", COLONIES_PRVKEY=colony.executor_prvkey))
    entries = json.loads(ok(run(colony, "channel", "read", "-p", pid, "--name", "chat", "--json")))
    assert [(e["sequence"], e["inreplyto"], e["payload"], e["type"]) for e in entries] == [
        (1, 0, "hello", ""), (2, 1, "world", "end")]
    assert entries[1]["senderid"] == crypto.derive_id(colony.executor_prvkey)
    table = ok(run(colony, "channel", "read", "-p", pid, "--name", "chat", "--after", "1"))
    assert "world" in table and "hello" not in table

    follower = subprocess.Popen([*CLI, "channel", "follow", "-p", pid, "--name", "chat", "--timeout", "600"],
                                env=env_for(colony), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL)
    try:
        assert follower.stdout is not None
        assert [follower.stdout.readline() for _ in range(2)] == ["hello\n", "world\n"]
        colony.client.channel_append(pid, "chat", 3, "live", colony.executor_prvkey)
        assert follower.stdout.readline() == "live\n"
        colony.client.close(pid, [], colony.executor_prvkey)  # the follow ends with the process
        assert follower.wait(60) == 0
    finally:
        follower.kill()
        follower.wait()

    refused = run(colony, "channel", "read", "-p", pid, "--name", "chat")
    assert refused.returncode != 0 and "not found" in refused.stderr and "Traceback" not in refused.stderr
