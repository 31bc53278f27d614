"""The public ColonyOS Python client (``pycolonies==1.0.25``, unchanged) through a rolling restart of
both replicas behind a load balancer: it does not retry, so it may see errors, but only ones that
say "try again" (a 503 while a replica shuts down, a connection the balancer closed because its
replica went away), never a wrong answer: every process it submitted and closed is there, closed
once, with its output. See ``test_public_client.py`` for how its environment is built.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycolonies import Colonies, wire
from tests.compat.test_public_client import compat_python  # noqa: F401 - a fixture
from tests.integration.replicas import HOST, Replica, balanced_replicas, restart_in_place
from tests.support import wait_until
from tests.support.balancer import Balancer

pytestmark = [pytest.mark.compat, pytest.mark.slow, pytest.mark.timeout(900)]

CALLS_BETWEEN = 50  # the client's completed rounds before, between and after the restarts

SCRIPT = r"""
import json, os, sys, time

from pycolonies import Crypto, colonies_client, func_spec
from pycolonies import ColoniesConnectionError

client, _, _, _, _ = colonies_client()
c = Crypto()
colonyname, executortype = "compat-roll", "compat-type"
colony_prvkey, executor_prvkey, user_prvkey = c.prvkey(), c.prvkey(), c.prvkey()
server_prvkey = os.environ["COLONIES_SERVER_PRVKEY"]
client.add_colony({"colonyid": c.id(colony_prvkey), "name": colonyname}, server_prvkey)
client.add_executor({"executorname": "x", "executorid": c.id(executor_prvkey), "colonyname": colonyname,
                     "executortype": executortype}, colony_prvkey)
client.approve_executor(colonyname, "x", colony_prvkey)
client.add_user({"colonyname": colonyname, "userid": c.id(user_prvkey), "name": "u", "email": "",
                 "phone": ""}, colony_prvkey)
progress, stop = sys.argv[1], sys.argv[2]
out = {"errors": [], "closed": {}, "user_prvkey": user_prvkey, "colonyname": colonyname}
rounds = 0
while not os.path.exists(stop):
    try:
        spec = func_spec("echo", [rounds], colonyname, executortype)
        submitted = client.submit_func_spec(spec, user_prvkey)
        assigned = client.assign(colonyname, 2, executor_prvkey)
        client.close(assigned.processid, [assigned.processid[:8]], executor_prvkey)
        out["closed"][assigned.processid] = [assigned.processid[:8]]
        client.get_process(submitted.processid, user_prvkey)
    except ColoniesConnectionError as exc:
        out["errors"].append(str(exc))
        time.sleep(0.05)
    rounds += 1
    with open(progress, "w") as f:
        f.write(str(rounds))
out["rounds"] = rounds
print(json.dumps(out))
"""

# What the public client shows for a call that did not take effect and may be sent again.
RETRYABLE = ("shutting down", "Database unavailable", "Connection aborted", "RemoteDisconnected",
             "Connection reset", "Connection refused", "Max retries exceeded", "closed connection")


@pytest.fixture
def deployment(database: str, tmp_path: Path) -> Iterator[tuple[list[Replica], Balancer, str]]:
    with balanced_replicas(database, tmp_path) as replicas_and_balancer:
        yield replicas_and_balancer


def test_public_client_sees_only_retryable_errors_in_a_rolling_restart(
    compat_python: Path,  # noqa: F811 - the fixture imported above
    deployment: tuple[list[Replica], Balancer, str],
    tmp_path: Path,
) -> None:
    replicas, balancer, server_prvkey = deployment
    script, progress, stop = tmp_path / "roll.py", tmp_path / "progress", tmp_path / "stop"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLONIES_", "PYTHON"))}
    env.update(COLONIES_SERVER_HOST=HOST, COLONIES_SERVER_PORT=str(balancer.port),
               COLONIES_SERVER_TLS="false", COLONIES_SERVER_PRVKEY=server_prvkey)
    proc = subprocess.Popen([str(compat_python), "-I", str(script), str(progress), str(stop)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def rounds() -> int:
            if proc.poll() is not None:
                raise AssertionError(f"the public client exited early:\n{proc.stderr.read()}")
            try:
                return int(progress.read_text() or 0)
            except (OSError, ValueError):
                return 0

        for index in (0, 1):
            mark = rounds()
            wait_until(lambda m=mark: rounds() >= m + CALLS_BETWEEN, 120, "the public client's rounds")
            restart_in_place(replicas, index, server_prvkey, tmp_path / "replicas")
        mark = rounds()
        wait_until(lambda: rounds() >= mark + CALLS_BETWEEN, 120, "the public client's rounds after")
    finally:
        stop.write_text("")
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    out: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    unexpected = [e for e in out["errors"] if not any(mark in e for mark in RETRYABLE)]
    assert not unexpected, unexpected
    with Colonies(HOST, balancer.port) as sdk:
        for pid, output in out["closed"].items():
            process = sdk.get_process(pid, out["user_prvkey"])
            assert (process.state, process.output) == (wire.SUCCESS, output)
    print(f"\npublic client: {out['rounds']} rounds, {len(out['errors'])} retryable errors: "
          f"{sorted({e[:60] for e in out['errors']})}")
