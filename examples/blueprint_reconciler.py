"""A blueprint reconciler: keeps N python executors running for each ``ExecutorDeployment``.

    COLONIES_COLONY_NAME=dev COLONIES_COLONY_PRVKEY=<the colony owner's key> \\
        python examples/blueprint_reconciler.py [--define]

It registers itself as an executor of type ``deployment-reconciler`` (with the colony key, which
it also hands to the executors it starts so that they register themselves) and takes the
reconcile processes the server submits for every change of an ``ExecutorDeployment`` blueprint
(docs/blueprints.md). For each one it reads the blueprint as it is now (a reconciler is level
triggered: the process says *which* blueprint changed, the server says what it should be), starts
or stops ``colonies executor start --type python`` subprocesses named ``<blueprint>-<i>`` until
``spec.replicas`` of them are registered, and reports ``status`` (``replicas``, ``ready``,
``executors``, ``observedGeneration``). A ``cleanup`` process (the blueprint was removed) stops
them all. ``--define`` adds the ExecutorDeployment definition first (if the colony has none).

SIGTERM or Ctrl-C stops the executors it started and removes its own registration.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from pycolonies import Colonies, crypto
from pycolonies.errors import NotFoundError

KIND = "ExecutorDeployment"
RECONCILER_TYPE = "deployment-reconciler"
DEFAULT_EXECUTOR_TYPE = "python-executor"
READY_TIMEOUT_S = 60.0
CLI = [sys.executable, "-m", "pycolonies.cli.main"]

DEFINITION = {
    "kind": "BlueprintDefinition",
    "metadata": {"name": "executordeployments"},
    "spec": {
        "group": "compute.colonies.io", "version": "v1", "scope": "Namespaced",
        "names": {"kind": KIND, "singular": "executordeployment", "plural": "executordeployments"},
        "schema": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 20},
                "executorType": {"type": "string", "minLength": 1},
            },
            "required": ["replicas"],
            "additionalProperties": False,
        },
        "handler": {"executorType": RECONCILER_TYPE, "functionName": "reconcile"},
    },
}


class Deployments:
    """The executor subprocesses this reconciler started, by blueprint name."""

    def __init__(self, client: Colonies, colony: str, colony_prvkey: str, prvkey: str) -> None:
        self.client, self.colony, self.colony_prvkey, self.prvkey = client, colony, colony_prvkey, prvkey
        self.running: dict[str, dict[str, subprocess.Popen[bytes]]] = {}

    def registered(self, prefix: str) -> list[str]:
        """Names of the colony's approved executors that this blueprint's executors are named as."""
        return sorted(e["executorname"] for e in self.client.list_executors(self.colony, self.prvkey)
                      if e["executorname"].startswith(prefix) and e["state"] == 1)

    def scale(self, name: str, replicas: int, executor_type: str) -> list[str]:
        """Start or stop executors until ``replicas`` named ``<name>-<i>`` are registered."""
        mine = self.running.setdefault(name, {})
        for executor_name, proc in list(mine.items()):  # forget the ones that died
            if proc.poll() is not None:
                del mine[executor_name]
        wanted = {f"{name}-{i}" for i in range(replicas)}
        for executor_name in sorted(set(mine) - wanted):
            self._stop(mine.pop(executor_name))
        for executor_name in sorted(wanted - set(mine)):
            mine[executor_name] = self._start(executor_name, executor_type)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            ready = [n for n in self.registered(f"{name}-") if n in wanted]
            extra = [n for n in self.registered(f"{name}-") if n not in wanted]
            if (len(ready) == replicas and not extra) or time.monotonic() > deadline:
                return ready
            time.sleep(0.2)

    def _start(self, executor_name: str, executor_type: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "COLONIES_PRVKEY"}
        env["COLONIES_COLONY_PRVKEY"] = self.colony_prvkey
        print(f"starting {executor_name} ({executor_type})", flush=True)
        return subprocess.Popen([*CLI, "executor", "start", "--type", "python", "--name", executor_name,
                                 "--executor-type", executor_type, "--grace", "5"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for mine in self.running.values():
            for proc in mine.values():
                self._stop(proc)
        self.running.clear()


def reconcile(deployments: Deployments, process: Any) -> list[Any]:
    """Bring the blueprint named in ``process`` about, report its status; the process's output."""
    client, colony, prvkey = deployments.client, deployments.colony, deployments.prvkey
    name = process.spec.kwargs["blueprintName"]
    try:
        blueprint = client.get_blueprint(colony, name, prvkey)
    except NotFoundError:
        blueprint = None  # removed since: nothing should run
    if process.spec.funcname == "cleanup" or blueprint is None:
        deployments.scale(name, 0, DEFAULT_EXECUTOR_TYPE)
        print(f"{name}: removed, executors stopped", flush=True)
        return [{"blueprint": name, "ready": 0}]
    spec = blueprint["spec"]
    replicas, executor_type = spec["replicas"], spec.get("executorType", DEFAULT_EXECUTOR_TYPE)
    ready = deployments.scale(name, replicas, executor_type)
    status = {"replicas": replicas, "ready": len(ready), "executors": ready,
              "observedGeneration": blueprint["metadata"]["generation"]}
    client.update_blueprint_status(colony, name, status, prvkey)
    print(f"{name}: {len(ready)} of {replicas} ready (generation {status['observedGeneration']})", flush=True)
    return [status]


def register(client: Colonies, colony: str, colony_prvkey: str) -> tuple[str, str]:
    prvkey = crypto.generate_private_key()
    name = f"reconciler-{crypto.derive_id(prvkey)[:8]}"
    client.add_executor({"executorid": crypto.derive_id(prvkey), "executorname": name,
                         "executortype": RECONCILER_TYPE, "colonyname": colony}, colony_prvkey)
    client.approve_executor(colony, name, colony_prvkey)
    return name, prvkey


def ensure_definition(client: Colonies, colony: str, colony_prvkey: str) -> None:
    kinds = [d["spec"]["names"]["kind"] for d in client.get_blueprint_definitions(colony, colony_prvkey)]
    if KIND not in kinds:
        definition = {**DEFINITION, "metadata": {**DEFINITION["metadata"], "colonyname": colony}}
        client.add_blueprint_definition(definition, colony_prvkey)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--define", action="store_true", help=f"add the {KIND} definition if missing")
    options = parser.parse_args()
    colony, colony_prvkey = os.environ["COLONIES_COLONY_NAME"], os.environ["COLONIES_COLONY_PRVKEY"]
    host = os.environ.get("COLONIES_SERVER_HOST", "localhost")
    port = int(os.environ.get("COLONIES_SERVER_PORT", "50080"))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with Colonies(host, port, tls=os.environ.get("COLONIES_TLS", "false") == "true") as client:
        if options.define:
            ensure_definition(client, colony, colony_prvkey)
        name, prvkey = register(client, colony, colony_prvkey)
        deployments = Deployments(client, colony, colony_prvkey, prvkey)
        print(f"reconciler {name} waiting for {KIND} changes", flush=True)
        try:
            while not stopping.is_set():
                try:
                    process = client.assign(colony, 1, prvkey)
                except NotFoundError:  # nothing to do within the poll's timeout
                    continue
                try:
                    client.close(process.processid, reconcile(deployments, process), prvkey)
                except Exception as exc:  # noqa: BLE001 - the process fails, the reconciler goes on
                    client.fail(process.processid, [str(exc)], prvkey)
        finally:
            deployments.stop_all()
            client.remove_executor(colony, name, colony_prvkey)
            print(f"reconciler {name} stopped", flush=True)


if __name__ == "__main__":
    main()
