"""The public ColonyOS Python client's ``wait()`` (``pycolonies==1.0.25``, websocket-client) against
our /pubsub. See ``test_public_client.py`` for how its environment is built (or the tests skipped).

The public ``wait`` subscribes to SUCCESS only, reads one frame, closes, and re-reads the process;
when the server closes the socket at the timeout it gets an empty frame and returns the process as
it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.compat.test_public_client import compat_python, run_public_script  # noqa: F401 - a fixture

pytestmark = [pytest.mark.compat, pytest.mark.timeout(900)]

SCRIPT = r"""
import json, os, threading, time

from pycolonies import Crypto, colonies_client, func_spec

client, _, _, _, _ = colonies_client()
server_prvkey = os.environ["COLONIES_SERVER_PRVKEY"]
c = Crypto()
colonyname, executortype = "compat-wait", "compat-type"
colony_prvkey, executor_prvkey, user_prvkey = c.prvkey(), c.prvkey(), c.prvkey()
client.add_colony({"colonyid": c.id(colony_prvkey), "name": colonyname}, server_prvkey)
client.add_executor({"executorname": "x", "executorid": c.id(executor_prvkey), "colonyname": colonyname,
                     "executortype": executortype}, colony_prvkey)
client.approve_executor(colonyname, "x", colony_prvkey)
user = {"colonyname": colonyname, "userid": c.id(user_prvkey), "name": "u", "email": "", "phone": ""}
client.add_user(user, colony_prvkey)
out = {}

def run_later(process):
    time.sleep(0.3)
    assigned = client.assign(colonyname, 5, executor_prvkey)
    client.close(assigned.processid, ["waited", 1], executor_prvkey)

# 1. The process finishes while wait() is subscribed.
process = client.submit_func_spec(func_spec("echo", [], colonyname, executortype), user_prvkey)
worker = threading.Thread(target=run_later, args=(process,))
worker.start()
started = time.monotonic()
out["waited"] = client.wait(process, 20, user_prvkey).model_dump(mode="json", by_alias=True)
out["waited_seconds"] = time.monotonic() - started
worker.join()

# 2. Already finished: the first look answers at once.
started = time.monotonic()
out["again"] = client.wait(process, 20, user_prvkey).model_dump(mode="json", by_alias=True)
out["again_seconds"] = time.monotonic() - started

# 3. Not finished in time: the server closes the socket after the timeout.
pending = client.submit_func_spec(func_spec("echo", [], colonyname, executortype), user_prvkey)
started = time.monotonic()
out["timed_out"] = client.wait(pending, 1, user_prvkey).model_dump(mode="json", by_alias=True)
out["timed_out_seconds"] = time.monotonic() - started
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(
    compat_python: Path,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
    admin_dsn: str,
) -> dict[str, Any]:
    return run_public_script(compat_python, tmp_path_factory, admin_dsn, SCRIPT, "compat-wait")


def test_public_wait_returns_the_finished_process(results: dict[str, Any]) -> None:
    waited = results["waited"]
    assert (waited["state"], waited["out"]) == (2, ["waited", 1])
    assert results["waited_seconds"] < 15


def test_public_wait_on_a_finished_process_returns_at_once(results: dict[str, Any]) -> None:
    assert results["again"]["state"] == 2
    assert results["again_seconds"] < 5


def test_public_wait_returns_after_the_timeout_when_not_finished(results: dict[str, Any]) -> None:
    assert results["timed_out"]["state"] == 0
    assert 1 <= results["timed_out_seconds"] < 10
