"""The administrative ``colonies`` command groups as real subprocesses against a real server:
colony, user, executor, attribute, log, cron and server status/alive/version.

Each test runs several commands in one colony (subprocesses cost ~0.3 s each), checking the table
output (upper-case headers, a value), the ``--json`` output, and the failure paths: an unknown id
(exit 1 with the server's message), a missing key (exit 5 naming the variable), a non-member
(exit 1) and an unreachable server (exit 3), each one ``Error: ...`` line without a traceback.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from typer.testing import CliRunner

from pycolonies import crypto, func_spec, wire
from pycolonies.cli.main import app
from pycolonies.models import Process
from server.embedded import free_port
from server.testing import ServerThread
from tests.conftest import ColonyEnv
from tests.support import wait_until

CLI = [sys.executable, "-m", "pycolonies.cli.main"]
CLI_TIMEOUT = 60.0
EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_MISSING = 1, 3, 5


def server_env(server: ServerThread, **overrides: str | None) -> dict[str, str]:
    """The environment without any COLONIES_* variable, pointing at ``server``; an override of
    None leaves that variable out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    # wide tables, so no id folds (a pipe has no terminal width: rich would take 80)
    env.update(PYTHONUNBUFFERED="1", COLUMNS="250", COLONIES_SERVER_HOST=server.host,
               COLONIES_SERVER_PORT=str(server.port), COLONIES_TLS="false",
               COLONIES_SERVER_PRVKEY=server.server_prvkey)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def colony_env(colony: ColonyEnv, **overrides: str | None) -> dict[str, str]:
    """Every setting of the ``colony`` fixture; COLONIES_PRVKEY is the user alice's key."""
    base: dict[str, str | None] = {
        "COLONIES_COLONY_NAME": colony.colonyname,
        "COLONIES_COLONY_PRVKEY": colony.colony_prvkey,
        "COLONIES_PRVKEY": colony.user_prvkey,
    }
    return server_env(colony.server, **{**base, **overrides})


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          check=False, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


def ok(env: dict[str, str], *args: str) -> str:
    result = run(env, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def as_json(env: dict[str, str], *args: str) -> object:
    return json.loads(ok(env, *args, "--json"))


def fails(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """Exit ``code`` with exactly one ``Error: ...`` line on stderr containing ``needles``."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def headers(table: str) -> list[str]:
    """The header cells of the first table in ``table`` (rounded box: ``│ A │ B │``)."""
    for line in table.splitlines():
        if "│" in line:
            return [cell.strip() for cell in line.strip().strip("│").split("│")]
    raise AssertionError(f"no table in {table!r}")


def details(table: str) -> dict[str, str]:
    """The rows of key/value detail tables as a dict (the first occurrence of a key wins)."""
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")] if "│" in line else []
        if len(cells) == 2 and cells[0]:
            rows.setdefault(cells[0], cells[1])
    return rows


def field(output: str, name: str) -> str:
    match = re.search(rf"^{name}: (\S+)$", output, re.MULTILINE)
    assert match, (name, output)
    return match.group(1)


def running_process(colony: ColonyEnv) -> Process:
    """A process submitted by alice and assigned to executor-1."""
    spec = func_spec(func="echo", args=["hi"], colonyname=colony.colonyname,
                     executortype=colony.executortype, maxexectime=600)
    colony.client.submit_func_spec(spec, colony.user_prvkey)
    return colony.client.assign(colony.colonyname, 5, colony.executor_prvkey)


# -- colony -----------------------------------------------------------------------------------------


def test_colony_commands(colony: ColonyEnv) -> None:
    env = colony_env(colony)
    sdk, server_key = colony.client, colony.server_prvkey

    added = ok(env, "colony", "add", "--name", "other")
    prvkey = field(added, "PrvKey")
    assert field(added, "ColonyId") == crypto.derive_id(prvkey)
    assert {"name": "other", "colonyid": crypto.derive_id(prvkey)} in sdk.list_colonies(server_key)
    given = crypto.generate_private_key()
    added = ok(env, "colony", "add", "--name", "third", "--colonyprvkey", given)
    assert field(added, "ColonyId") == crypto.derive_id(given) and "PrvKey" not in added

    table = ok(env, "colony", "ls")
    assert headers(table) == ["NAME", "COLONYID"]
    assert "other" in table and crypto.derive_id(given) in table
    assert {"name": "dev", "colonyid": crypto.derive_id(colony.colony_prvkey)} in as_json(env, "colony", "ls")

    assert details(ok(env, "colony", "get", "--name", "dev")) == {
        "Name": "dev", "ColonyId": crypto.derive_id(colony.colony_prvkey)}
    stats = details(ok(env, "colony", "stats"))
    assert stats["Colony"] == "dev" and stats["Executors"] == "1" and stats["Waiting processes"] == "0"
    assert list(stats) == ["Colony", "Executors", "Active executors", "Unregistered executors",
                           "Waiting processes", "Running processes", "Successful processes",
                           "Failed processes", "Waiting workflows", "Running workflows",
                           "Successful workflows", "Failed workflows"]

    # remove: anything but YES aborts; --yes removes
    refused = run(env, "colony", "remove", "--name", "other", stdin="yes\n")
    assert refused.returncode == EXIT_REFUSED and "Traceback" not in refused.stderr
    assert "Are you sure" in refused.stderr and "Error: aborted" in refused.stderr
    assert any(c["name"] == "other" for c in sdk.list_colonies(server_key))
    ok(env, "colony", "remove", "--name", "other", "--yes")
    assert not any(c["name"] == "other" for c in sdk.list_colonies(server_key))

    # failures: a missing server key, a non-member
    fails(run(colony_env(colony, COLONIES_SERVER_PRVKEY=None), "colony", "add", "--name", "x"),
          EXIT_MISSING, "COLONIES_SERVER_PRVKEY")
    fails(run(colony_env(colony, COLONIES_PRVKEY=crypto.generate_private_key()), "colony", "stats"),
          EXIT_REFUSED, "not a member")


# -- user -------------------------------------------------------------------------------------------


def test_user_commands(colony: ColonyEnv, tmp_path: Path) -> None:
    env = colony_env(colony)
    sdk = colony.client

    added = ok(env, "user", "add", "--name", "bob", "--email", "bob@example.com", "--phone", "555")
    prvkey = field(added, "PrvKey")
    assert sdk.get_user("dev", "bob", prvkey)["userid"] == crypto.derive_id(prvkey) == field(added, "UserId")

    # --prvkey-file: a new key is written (private to its owner), an existing one is used
    key_file = tmp_path / "carol.key"
    added = ok(env, "user", "add", "--name", "carol", "--prvkey-file", str(key_file))
    assert "PrvKey" not in added and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert field(added, "UserId") == crypto.derive_id(key_file.read_text().strip())
    fails(run(env, "user", "add", "--name", "carol2", "--prvkey-file", str(key_file)), EXIT_REFUSED,
          "already exists")

    table = ok(env, "user", "ls")
    assert headers(table) == ["USERNAME", "EMAIL", "PHONE"]
    assert "bob@example.com" in table and "alice" in table
    assert table.index("carol") < table.index("bob") < table.index("alice")  # USERNAME descending
    assert {u["name"] for u in as_json(env, "user", "ls")} == {"alice", "bob", "carol"}
    assert details(ok(env, "user", "get", "--name", "bob")) == {
        "Username": "bob", "UserId": crypto.derive_id(prvkey), "Phone": "555", "Email": "bob@example.com",
        "Colony": "dev"}

    unanswered = run(env, "user", "remove", "--name", "bob")  # nothing on stdin: not confirmed
    assert unanswered.returncode == EXIT_REFUSED and "Traceback" not in unanswered.stderr
    assert unanswered.stderr.splitlines()[-1].startswith("Error: aborted"), unanswered.stderr
    ok(env, "user", "remove", "--name", "bob", "--yes")
    assert {u["name"] for u in sdk.get_users("dev", colony.user_prvkey)} == {"alice", "carol"}

    fails(run(env, "user", "get", "--name", "nobody"), EXIT_REFUSED, "no user with name <nobody>")
    fails(run(colony_env(colony, COLONIES_COLONY_PRVKEY=None), "user", "add", "--name", "dave"),
          EXIT_MISSING, "COLONIES_COLONY_PRVKEY")


# -- executor ---------------------------------------------------------------------------------------


def test_executor_commands(colony: ColonyEnv) -> None:
    env = colony_env(colony)
    sdk = colony.client
    sdk.add_function("dev", colony.executorname, "echo", colony.executor_prvkey)

    added = ok(env, "executor", "add", "--name", "gpu-1", "--type", "gpu")
    prvkey = field(added, "PrvKey")
    assert field(added, "ExecutorId") == crypto.derive_id(prvkey)
    assert sdk.get_executor("dev", "gpu-1", colony.user_prvkey)["state"] == 0  # pending
    given = crypto.derive_id(crypto.generate_private_key())
    added = ok(env, "executor", "add", "--name", "cpu-1", "--type", "cpu", "--executorid", given, "--approve")
    assert field(added, "ExecutorId") == given and "PrvKey" not in added
    assert sdk.get_executor("dev", "cpu-1", colony.user_prvkey)["state"] == 1  # approved

    ok(env, "executor", "approve", "--name", "gpu-1")
    ok(env, "executor", "reject", "--name", "cpu-1")
    assert [sdk.get_executor("dev", n, colony.user_prvkey)["state"] for n in ("gpu-1", "cpu-1")] == [1, 2]
    ok(env, "executor", "remove", "--name", "gpu-1")

    table = ok(env, "executor", "ls")
    assert headers(table) == ["NAME", "TYPE", "LOCATION", "LAST HEARD FROM"]
    assert "executor-1" in table and "n/a" in table and "gpu-1" not in table  # removed: hidden
    assert table.index("test-executor") < table.index("cpu-1")  # TYPE descending
    table = ok(env, "executor", "ls", "--all")
    assert headers(table) == ["NAME", "TYPE", "STATE", "LOCATION", "LAST HEARD FROM"]
    assert re.search(r"gpu-1\s*│ gpu\s*│ Unregistered", table) and re.search(r"cpu-1 .*Rejected", table)
    assert {e["executorname"] for e in as_json(env, "executor", "ls")} == {"executor-1", "cpu-1"}

    shown = ok(env, "executor", "get", "--name", "executor-1")
    rows = details(shown)
    assert rows["Name"] == "executor-1" and rows["State"] == "Approved" and rows["Type"] == "test-executor"
    assert rows["Id"] == crypto.derive_id(colony.executor_prvkey) and rows["Location"] == "n/a"
    assert "Function: echo" in shown and rows["FunctionName"] == "echo" and rows["Call counter"] == "0"
    assert as_json(env, "executor", "get", "--name", "executor-1")["executortype"] == "test-executor"

    fails(run(env, "executor", "get", "--name", "nosuch"), EXIT_REFUSED, "nosuch")
    fails(run(colony_env(colony, COLONIES_COLONY_PRVKEY=colony.user_prvkey), "executor", "approve",
              "--name", "cpu-1"), EXIT_REFUSED)
    assert sdk.get_executor("dev", "cpu-1", colony.user_prvkey)["state"] == 2


# -- attribute and log ------------------------------------------------------------------------------


def test_attribute_commands(colony: ColonyEnv) -> None:
    process = running_process(colony)
    executor_env = colony_env(colony, COLONIES_PRVKEY=colony.executor_prvkey)

    added = ok(executor_env, "attribute", "add", "-p", process.processid, "--key", "stage", "--value", "2")
    attributeid = field(added, "AttributeId")
    table = ok(colony_env(colony), "attribute", "get", "--attributeid", attributeid)
    assert headers(table) == ["ATTRIBUTEID", "TARGETID", "KEY", "VALUE", "TYPE"]
    assert re.search(rf"{attributeid}\s*│ {process.processid}\s*│ stage\s*│ 2\s*│ Out", table), table
    got = as_json(colony_env(colony), "attribute", "get", "--attributeid", attributeid)
    assert got["key"] == "stage" and got["value"] == "2" and got["targetid"] == process.processid

    fails(run(colony_env(colony), "attribute", "get", "--attributeid", "0" * 64), EXIT_REFUSED, "not found")


def test_log_commands(colony: ColonyEnv) -> None:
    sdk = colony.client
    process = running_process(colony)
    sdk.add_log(process.processid, "starting\n", colony.executor_prvkey)
    sdk.add_log(process.processid, 'time="2026-01-02T03:04:05Z" level=warning msg="disk almost full"\n',
                colony.executor_prvkey)
    sdk.add_log(process.processid, "the NEEDLE is here\n", colony.executor_prvkey)
    env = colony_env(colony)

    assert ok(env, "log", "get", "-p", process.processid) == (
        "starting\n[2026-01-02T03:04:05Z] WARNING disk almost full\nthe NEEDLE is here\n")
    assert ok(env, "log", "get", "-p", process.processid, "--count", "1") == "the NEEDLE is here\n"
    assert ok(env, "log", "get", "--executor", colony.executorname, "--first", "--count", "1") == "starting\n"
    logs = as_json(env, "log", "get", "-p", process.processid)
    assert [entry["message"] for entry in logs][0] == "starting\n"
    assert logs[0]["executorname"] == colony.executorname

    found = ok(env, "log", "search", "--text", "needle")
    rows = details(found)
    assert rows["ProcessID"] == process.processid and rows["ExecutorName"] == colony.executorname
    assert "the NEEDLE is here" in rows["Text"]
    assert [m["message"] for m in as_json(env, "log", "search", "-t", "needle")] == ["the NEEDLE is here\n"]
    printed = ok(env, "log", "search", "-t", "needle", "--print", "--seconds", "60")
    assert "ProcessID: " + process.processid in printed and "starting\n" in printed and "END LOGS" in printed

    fails(run(colony_env(colony, COLONIES_PRVKEY=None), "log", "get", "-p", process.processid),
          EXIT_MISSING, "COLONIES_PRVKEY")


def test_log_get_follow_prints_until_the_process_ends(colony: ColonyEnv) -> None:
    sdk = colony.client
    process = running_process(colony)
    sdk.add_log(process.processid, "one\n", colony.executor_prvkey)
    follower = subprocess.Popen([*CLI, "log", "get", "-p", process.processid, "--follow"],
                                env=colony_env(colony), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "one\n"
        sdk.add_log(process.processid, "two\n", colony.executor_prvkey)
        assert follower.stdout.readline() == "two\n"
        sdk.add_log(process.processid, "three\n", colony.executor_prvkey)
        sdk.close(process.processid, [], colony.executor_prvkey)
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, stderr
    assert stdout == "three\n"


# -- cron -------------------------------------------------------------------------------------------


def test_cron_commands(colony: ColonyEnv, tmp_path: Path) -> None:
    env = colony_env(colony)
    sdk = colony.client
    empty = run(env, "cron", "ls")
    assert empty.returncode == 0 and empty.stdout == "" and "No crons found" in empty.stderr

    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps([{"nodename": "hello", "funcname": "echo", "args": ["hi"],
                                 "conditions": {"executortype": colony.executortype}}]))
    cronid = field(ok(env, "cron", "add", "--name", "hourly", "--interval", "3600", "--spec", str(spec),
                      "--waitforprev"), "CronId")
    table = ok(env, "cron", "ls")
    assert headers(table) == ["CRONID", "NAME", "INITIATOR"]
    assert re.search(rf"{cronid}\s*│ hourly\s*│ alice", table), table

    shown = ok(env, "cron", "get", "--cronid", cronid)
    rows = details(shown)
    assert "Cron" in shown.splitlines()[0]
    assert rows["Name"] == "hourly" and rows["Interval"] == "3600" and rows["Colony"] == "dev"
    assert rows["WaitForPrevProcessGraph"] == "true" and rows["Random"] == "false"
    assert as_json(env, "cron", "get", "--cronid", cronid)["interval"] == 3600

    workflowid = field(ok(env, "cron", "run", "--cronid", cronid), "WorkflowId")
    assert sdk.get_processgraph(workflowid, colony.user_prvkey).colonyname == "dev"

    ok(env, "cron", "remove", "--cronid", cronid)
    fails(run(env, "cron", "get", "--cronid", cronid), EXIT_REFUSED, "not found")


# -- generator --------------------------------------------------------------------------------------


def test_generator_commands(colony: ColonyEnv, tmp_path: Path) -> None:
    env = colony_env(colony)
    empty = run(env, "generator", "ls")
    assert empty.returncode == 0 and empty.stdout == "" and "No generators found" in empty.stderr

    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps([{"nodename": "count", "funcname": "count",
                                 "conditions": {"executortype": colony.executortype}}]))
    generatorid = field(ok(env, "generator", "add", "--name", "batches", "--spec", str(spec),
                           "--trigger", "2", "--timeout", "-1"), "GeneratorId")
    table = ok(env, "generator", "ls")
    assert headers(table) == ["GENERATORID", "NAME", "INITIATOR"]
    assert re.search(rf"{generatorid}\s*│ batches\s*│ alice", table), table
    rows = details(ok(env, "generator", "get", "--generatorid", generatorid))
    assert rows["Name"] == "batches" and rows["Trigger"] == "2" and rows["Colony"] == "dev"

    # Two packed args submit the workflow once, its root getting both as args.
    ok(env, "generator", "pack", "--generatorid", generatorid, "--arg", "first")
    assert as_json(env, "generator", "get", "--generatorid", generatorid)["queuesize"] == 1
    ok(env, "generator", "pack", "--generatorid", generatorid, "--arg", "second")
    waiting = wait_until(lambda: colony.client.list_processes("dev", 100, wire.WAITING, colony.user_prvkey),
                         30, "the generator's workflow")
    assert [p["spec"]["args"] for p in waiting] == [["first", "second"]]

    fails(run(env, "generator", "add", "--name", "bad", "--spec", str(spec), "--trigger", "0"),
          EXIT_REFUSED, "--trigger must be at least 1")
    fails(run(env, "generator", "get", "--generatorid", "nonsense"), EXIT_REFUSED, "64 lower-case hex")
    ok(env, "generator", "remove", "--generatorid", generatorid)
    fails(run(env, "generator", "get", "--generatorid", generatorid), EXIT_REFUSED, "")


# -- server -----------------------------------------------------------------------------------------


def test_server_commands_and_an_empty_server(server: ServerThread) -> None:
    env = server_env(server)
    table = ok(env, "server", "status")
    status = details(table)
    assert status["Server version"] == "dev" and status["Server Backends"] == "http"
    assert status["Client Configuration"] == "" and status["CLI version"]
    assert len(re.findall(rf"HTTP Port\s*│ {server.port}\s*│", table)) == 2  # the server's and the client's
    assert as_json(env, "server", "status")["backends"][0]["type"] == "http"

    alive = run(env, "server", "alive")
    assert alive.returncode == 0 and alive.stdout == "alive\n"
    version = details(ok(env, "server", "version"))
    assert version["Server version"] == "dev" and version["CLI version"] == status["CLI version"]

    empty = run(env, "colony", "ls")
    assert empty.returncode == 0 and empty.stdout == "" and "No colonies found" in empty.stderr
    assert as_json(env, "colony", "ls") == []

    closed = server_env(server, COLONIES_SERVER_PORT=str(free_port(server.host)))
    fails(run(closed, "server", "alive"), EXIT_UNREACHABLE, "cannot reach")
    fails(run(closed, "colony", "ls"), EXIT_UNREACHABLE, "cannot reach")


def test_server_alive_reports_an_unhealthy_server() -> None:
    """A /health that does not answer 200 (starting, database unreachable): exit 3 with its reason."""

    class Unhealthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"database unreachable")

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Unhealthy) as fake:
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        try:
            env = {"COLONIES_SERVER_HOST": "127.0.0.1", "COLONIES_SERVER_PORT": str(fake.server_port)}
            result = CliRunner().invoke(app, ["server", "alive"], env=env)
        finally:
            fake.shutdown()
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert "Error: " in result.output and "HTTP 503 database unreachable" in result.output


# -- argument parsing (in process, no server) -------------------------------------------------------


def test_bad_flag_combinations_fail_before_contacting_a_server() -> None:
    runner = CliRunner()
    env = {"COLONIES_SERVER_PORT": "1", "COLONIES_PRVKEY": "ab" * 32, "COLONIES_COLONY_NAME": "dev"}
    cases = [
        (["log", "get"], "--processid or --executor"),
        (["log", "get", "-p", "x", "-e", "y"], "--processid or --executor"),
        (["log", "get", "-p", "x", "--follow", "--json"], "--follow"),
        (["cron", "add", "--name", "c", "--spec", "wf.json"], "--cron or a positive --interval"),
        (["cron", "add", "--name", "c", "--spec", "wf.json", "--cron", "@daily", "--interval", "5"],
         "--cron or a positive --interval"),
        (["cron", "add", "--name", "c", "--spec", "wf.json", "--cron", "@daily", "--random"], "--random"),
        (["user", "add", "--name", "u", "--userid", "not-hex"], "--userid"),
        (["executor", "add", "--name", "e", "--type", "t", "--executorid", "ab" * 32, "--prvkey-file", "k"],
         "only one"),
    ]
    for args, needle in cases:
        result = runner.invoke(app, args, env={**env, "COLONIES_COLONY_PRVKEY": "ab" * 32})
        assert result.exit_code in (EXIT_REFUSED, EXIT_UNREACHABLE), (args, result.output)
        assert needle in result.output, (args, result.output)
    assert runner.invoke(app, ["colony", "add"]).exit_code == 2  # --name is required (usage error)
