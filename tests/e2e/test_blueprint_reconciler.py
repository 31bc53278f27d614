"""examples/blueprint_reconciler.py against a real server: it defines ExecutorDeployment, a
blueprint with replicas 2 gets two real python executors (``colonies executor start`` processes
that run a function) and a status saying so; an update to 1 stops one; removing the blueprint
stops the last; stopping the reconciler removes its own registration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycolonies import func_spec, wire
from tests.conftest import ColonyEnv
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
EXECUTOR_TYPE = "deployed-python"
TIMEOUT = 90.0


@pytest.fixture
def reconciler(colony: ColonyEnv, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    env.update(COLONIES_SERVER_HOST=colony.server.host, COLONIES_SERVER_PORT=str(colony.server.port),
               COLONIES_TLS="false", COLONIES_COLONY_NAME=colony.colonyname,
               COLONIES_COLONY_PRVKEY=colony.colony_prvkey, PYTHONUNBUFFERED="1")
    log = (tmp_path / "reconciler.log").open("w")
    example = str(REPO / "examples" / "blueprint_reconciler.py")
    proc = subprocess.Popen([sys.executable, example, "--define"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def deployed(colony: ColonyEnv) -> list[str]:
    return approved(colony, EXECUTOR_TYPE)


def approved(colony: ColonyEnv, executor_type: str) -> list[str]:
    """The names of the colony's approved executors of ``executor_type`` (a removed one is
    UNREGISTERED)."""
    executors = colony.client.list_executors(colony.colonyname, colony.user_prvkey)
    return sorted(e["executorname"] for e in executors
                  if e["executortype"] == executor_type and e["state"] == wire.APPROVED)


def status(colony: ColonyEnv) -> dict[str, Any]:
    return colony.client.get_blueprint(colony.colonyname, "web", colony.user_prvkey)["status"]


def reconciled(colony: ColonyEnv, generation: int, ready: int) -> dict[str, Any] | None:
    current = status(colony)
    if current.get("observedGeneration") == generation and current.get("ready") == ready:
        return current
    return None


def shout(word):  # noqa: ANN001, ANN201 - shipped to a python executor as source
    return word.upper()


def blueprint(colony: ColonyEnv, replicas: int) -> dict[str, Any]:
    return {"kind": "ExecutorDeployment", "metadata": {"name": "web", "colonyname": colony.colonyname},
            "spec": {"replicas": replicas, "executorType": EXECUTOR_TYPE}}


def test_the_reconciler_keeps_n_python_executors_running(colony: ColonyEnv,
                                                         reconciler: subprocess.Popen[str]) -> None:
    client, user = colony.client, colony.user_prvkey
    wait_until(lambda: client.get_blueprint_definitions(colony.colonyname, user), TIMEOUT, "the definition")
    refused = None
    try:
        client.add_blueprint(blueprint(colony, -1), user)
    except Exception as exc:  # noqa: BLE001 - the schema the example defines refuses it
        refused = exc
    assert refused is not None and "blueprint.spec.replicas" in str(refused)

    client.add_blueprint(blueprint(colony, 2), user)
    first = wait_until(lambda: reconciled(colony, 1, 2), TIMEOUT, "two executors ready")
    assert first["executors"] == ["web-0", "web-1"] == deployed(colony)
    # They are real executors: one runs a function.
    process = client.submit_func_spec(func_spec(shout, ["hi"], colony.colonyname, EXECUTOR_TYPE,
                                                maxexectime=60), user)
    done = client.wait(process, 60, user)
    assert done.state == wire.SUCCESS, done.errors
    assert done.output == ["HI"]

    client.update_blueprint(blueprint(colony, 1), user)
    wait_until(lambda: reconciled(colony, 2, 1), TIMEOUT, "one executor ready")
    assert deployed(colony) == ["web-0"]

    blueprint_id = client.get_blueprint(colony.colonyname, "web", user)["blueprintid"]
    client.remove_blueprint(colony.colonyname, "web", user)
    wait_until(lambda: not deployed(colony), TIMEOUT, "no executors left")
    cleanup_id = client.get_blueprint_history(blueprint_id, user)[0]["processid"]
    cleanup = wait_until(lambda: (p := client.get_process(cleanup_id, user)).state == wire.SUCCESS and p,
                         TIMEOUT, "the cleanup process closed")
    assert cleanup.spec.funcname == "cleanup"

    reconciler.send_signal(signal.SIGTERM)
    assert reconciler.wait(60) == 0
    assert approved(colony, "deployment-reconciler") == []
