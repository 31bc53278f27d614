"""``colonies blueprint`` as real subprocesses against a real server: a definition (colony key),
a blueprint added from a file, listed, shown, changed with ``set`` and ``update``, reconciled,
its history, and removed; the failure paths as one ``Error:`` line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ColonyEnv
from tests.e2e.test_cli_admin import colony_env

CLI = [sys.executable, "-m", "pycolonies.cli.main"]

DEFINITION = {
    "kind": "BlueprintDefinition",
    "metadata": {"name": "executordeployments"},
    "spec": {"names": {"kind": "ExecutorDeployment"},
             "schema": {"type": "object", "properties": {"replicas": {"type": "integer"}},
                        "required": ["replicas"]},
             "handler": {"executorType": "deployment-reconciler", "functionName": "reconcile"}},
}
BLUEPRINT = {"kind": "ExecutorDeployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}


def cli(colony: ColonyEnv, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=colony_env(colony, **env), capture_output=True, text=True,
                          timeout=60, check=False, stdin=subprocess.DEVNULL)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout + result.stderr


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("Error: "), result
    return lines[0]


def test_blueprint_commands(colony: ColonyEnv, tmp_path: Path) -> None:
    definition_file, blueprint_file = tmp_path / "definition.json", tmp_path / "blueprint.json"
    definition_file.write_text(json.dumps(DEFINITION))
    blueprint_file.write_text(json.dumps(BLUEPRINT))

    # A member cannot add a definition: it takes the colony owner's key.
    as_member = cli(colony, "blueprint", "definition", "add", "--spec", str(definition_file),
                    COLONIES_COLONY_PRVKEY=colony.user_prvkey)
    assert "not colony owner" in error_line(as_member)
    assert "BlueprintDefinitionId: " in ok(cli(colony, "blueprint", "definition", "add", "--spec",
                                               str(definition_file)))
    listed = ok(cli(colony, "blueprint", "definition", "ls"))
    assert "EXECUTOR TYPE" in listed.upper() and "deployment-reconciler" in listed
    shown = ok(cli(colony, "blueprint", "definition", "get", "--name", "executordeployments"))
    assert "ExecutorDeployment" in shown and '"required"' in shown

    assert "BlueprintId: " in ok(cli(colony, "blueprint", "add", "--spec", str(blueprint_file)))
    table = ok(cli(colony, "blueprint", "ls"))
    assert "web" in table and "ExecutorDeployment" in table
    got = json.loads(ok(cli(colony, "blueprint", "get", "--name", "web", "--json")))
    assert got["spec"] == {"replicas": 2} and got["metadata"]["generation"] == 1
    assert '"replicas": 2' in ok(cli(colony, "blueprint", "get", "--name", "web"))

    assert "generation 2" in ok(cli(colony, "blueprint", "set", "--name", "web", "--key", "replicas",
                                    "--value", "3"))
    assert "'three' is not of type 'integer'" in error_line(cli(
        colony, "blueprint", "set", "--name", "web", "--key", "spec.replicas", "--value", "three"))
    blueprint_file.write_text(json.dumps({**BLUEPRINT, "spec": {"replicas": 1}}))
    assert "generation 3" in ok(cli(colony, "blueprint", "update", "--spec", str(blueprint_file)))
    assert "generation 4" in ok(cli(colony, "blueprint", "update", "--spec", str(blueprint_file), "--force"))
    assert "ProcessId: " in ok(cli(colony, "blueprint", "reconcile", "--name", "web"))

    history = json.loads(ok(cli(colony, "blueprint", "history", "--name", "web", "--json")))
    assert [h["generation"] for h in history] == [4, 3, 2, 1]
    assert [h["generation"] for h in json.loads(ok(cli(
        colony, "blueprint", "history", "--name", "web", "-g", "2", "--json")))] == [2]
    assert "CHANGE TYPE" in ok(cli(colony, "blueprint", "history", "--name", "web")).upper()
    assert "No reconciler logs found" in ok(cli(colony, "blueprint", "log", "--name", "web"))

    assert "remove them first" in error_line(cli(colony, "blueprint", "definition", "remove", "--name",
                                                 "executordeployments"))
    ok(cli(colony, "blueprint", "remove", "--name", "web"))
    assert "not found" in error_line(cli(colony, "blueprint", "get", "--name", "web"))
    assert "No blueprints found" in ok(cli(colony, "blueprint", "ls"))
    ok(cli(colony, "blueprint", "definition", "remove", "--name", "executordeployments"))
    assert "No blueprint definitions found" in ok(cli(colony, "blueprint", "definition", "ls"))
