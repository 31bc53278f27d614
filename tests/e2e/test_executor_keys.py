"""Shipped code cannot get the colony owner's or the server's key, nor act as the colony owner.

The function a colony member submits below does what an attacker would: it looks for private keys
in every ``/proc/*/environ`` and ``/proc/*/cmdline`` it can read, in the memory of its ancestors
and of every colonies process it can see (through ``/proc/<pid>/maps`` and ``mem``), and in the
files of the given directories (the ``colonies dev`` data directory, ``~/.colonies``); then it
tries to add a user with every owner key it found, and to log in as the superuser of every
PostgreSQL on this machine it can find (the server's database: owning it is owning every colony).
The executor's own key, which the function gets in ``ctx`` on purpose, is the one it must find (in
its own memory: proof that the search works).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.isolation import IsolationSettings, resolve
from executors.python_runner import worker_env
from pycolonies import Colonies, crypto, func_spec, wire
from tests.conftest import ColonyEnv
from tests.e2e.test_dev import Dev, free_port
from tests.executors.harness import CLI, RunningExecutor, executor_env, wait_state

OWNER_ROLES = ("colony owner", "server owner")


def hunt(targets, directories, colonyname, ctx={}):  # noqa: B006 - shipped code, tutorial style
    """``targets`` maps key ids to roles. Returns where each role's key was found, what was
    searched, and the roles whose key could add a user to the colony."""
    import os
    import re

    from pycolonies import crypto

    candidate = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
    found, keys = {}, {}
    searched = {"environ": 0, "cmdline": 0, "mem": 0, "files": 0}

    def look(data, where):
        for match in set(candidate.findall(data)):
            try:
                role = targets.get(crypto.derive_id(match.decode()))
            except ValueError:
                continue
            if role:
                found.setdefault(role, []).append(where)
                keys[role] = match.decode()

    def read(path, limit=1 << 20):
        try:
            with open(path, "rb") as file:
                return file.read(limit)
        except OSError:
            return None

    pids = [name for name in os.listdir("/proc") if name.isdigit()]
    for pid in pids:
        for name in ("environ", "cmdline"):
            data = read(f"/proc/{pid}/{name}")
            if data is not None:
                searched[name] += 1
                look(data, f"/proc/{pid}/{name}")

    ancestors, pid = {"self"}, str(os.getppid())
    while pid not in ("0", "") and pid not in ancestors:
        ancestors.add(pid)
        stat = read(f"/proc/{pid}/stat") or b") ? 0"
        pid = stat.rsplit(b")", 1)[1].split()[1].decode()
    colonies = {p for p in pids if b"colonies" in (read(f"/proc/{p}/cmdline") or b"")}
    import ctypes
    import io

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)

    class OwnMemory(io.RawIOBase):
        """This process's memory through process_vm_readv: a warm worker is not dumpable, so even
        its own /proc/self/mem is refused to it (its siblings cannot read it either)."""

        def seek(self, offset, whence=0):
            self.at = offset

        def read(self, size=-1):
            buffer = ctypes.create_string_buffer(size)
            local, remote = IoVec(ctypes.cast(buffer, ctypes.c_void_p), size), IoVec(self.at, size)
            got = libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
            if got < 0:
                raise OSError(ctypes.get_errno(), "process_vm_readv")
            return buffer.raw[:got]

    for pid in ancestors | colonies:
        maps = read(f"/proc/{pid}/maps", 1 << 24)
        if maps is None:
            continue
        try:
            memory = open(f"/proc/{pid}/mem", "rb")  # noqa: SIM115
        except OSError:
            if pid != "self":
                continue
            memory = OwnMemory()
        with memory:
            for line in maps.decode().splitlines():
                fields = line.split()
                start, end = (int(x, 16) for x in fields[0].split("-"))
                backed = len(fields) > 5 and fields[5].startswith("/")
                if "r" not in fields[1] or backed or end - start > 1 << 28:
                    continue
                try:
                    memory.seek(start)
                    data = memory.read(end - start)
                except (OSError, ValueError, OverflowError):
                    continue
                searched["mem"] += len(data)
                look(data, f"/proc/{pid}/mem")

    for directory in directories:
        for root, _, files in os.walk(directory):
            for name in files:
                data = read(os.path.join(root, name))
                if data is not None:
                    searched["files"] += 1
                    look(data, os.path.join(root, name))

    acted = []
    import asyncio

    import asyncpg

    servers = set()
    for line in (read("/proc/net/tcp") or b"").decode().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and local.startswith("0100007F:"):  # listening on 127.0.0.1
            servers.add(("127.0.0.1", int(local.split(":")[1], 16)))
    for line in (read("/proc/net/unix", 1 << 24) or b"").decode().splitlines()[1:]:
        path = line.split()[-1]
        if ".s.PGSQL." in path:
            servers.add((os.path.dirname(path), int(path.rsplit(".", 1)[1])))

    async def superuser(host, port):
        try:
            con = await asyncio.wait_for(asyncpg.connect(host=host, port=port, user="postgres",
                                                         database="postgres"), 3)
        except Exception:  # noqa: BLE001 - not a database, or refused
            return None
        try:
            return f"database superuser at {host}:{port}" if await con.fetchval("SHOW is_superuser") else None
        finally:
            await con.close()

    async def attempts():
        return await asyncio.gather(*(superuser(host, port) for host, port in sorted(servers)))

    acted += [found for found in asyncio.run(attempts()) if found]
    searched["databases"] = len(servers)
    for role, key in keys.items():
        user = {"colonyname": colonyname, "userid": crypto.derive_id(crypto.generate_private_key()),
                "name": f"intruder-{len(acted)}", "email": "", "phone": ""}
        try:
            colonies.add_user(user, key)  # noqa: F821 - the executor's client
            acted.append(role)
        except Exception:  # noqa: BLE001 - refused, as it must be
            pass
    return {"found": found, "searched": searched, "acted": acted, "own": ctx.get("executorid")}


def targets(colony_prvkey: str, server_prvkey: str, executorid: str | None = None) -> dict[str, str]:
    ids = {crypto.derive_id(colony_prvkey): "colony owner", crypto.derive_id(server_prvkey): "server owner"}
    if executorid:
        ids[executorid] = "own executor"
    return ids


def run_hunt(client: Colonies, user_prvkey: str, colonyname: str, ids: dict[str, str],
             directories: list[str]) -> dict[str, Any]:
    spec = func_spec(func=hunt, args=[ids, directories, colonyname], colonyname=colonyname,
                     executortype="python-executor", maxexectime=120)
    done = wait_state(client, client.submit_func_spec(spec, user_prvkey), user_prvkey, timeout=150)
    assert done.state == wire.SUCCESS, done.errors
    return done.output[0]


def assert_no_owner_key(result: dict[str, Any]) -> None:
    searched = result["searched"]
    assert searched["environ"] >= 1 and searched["mem"] > 0 and searched["databases"] >= 1, searched
    stolen = {role: where for role, where in result["found"].items() if role in OWNER_ROLES}
    assert {"stolen": stolen, "acted": result["acted"]} == {"stolen": {}, "acted": []}


def intruders(client: Colonies, colonyname: str, prvkey: str) -> list[str]:
    return [u["name"] for u in client.get_users(colonyname, prvkey) if u["name"].startswith("intruder")]


def as_ordinary_user() -> list[str]:
    """A command prefix that runs the executor itself as an ordinary user (nobody), when these
    tests run as root: its workers are then isolated the way a non-root executor isolates them."""
    if os.geteuid() != 0:
        pytest.skip("the executor already runs as an ordinary user")
    isolation = resolve(IsolationSettings(), sys.executable, worker_env(), runs_code=True)
    return list(isolation.launcher)


@pytest.fixture(params=["as this user", "as an ordinary user"])
def executor_with_colony_key(
    request: pytest.FixtureRequest, colony: ColonyEnv, tmp_path: Path
) -> Iterator[RunningExecutor]:
    """``colonies executor start --type python`` registered with the colony owner's key, the
    documented way."""
    env = executor_env(colony.server.port, colony.colonyname, COLONIES_COLONY_PRVKEY=colony.colony_prvkey)
    prefix = as_ordinary_user() if request.param == "as an ordinary user" else []
    command = [*prefix, *CLI, "executor", "start", "--type", "python"]
    with RunningExecutor(command, env, tmp_path / "executor") as executor:
        executor.wait_ready()
        assert "Workers: " in executor.stdout and "not isolated" not in executor.stdout, executor.stdout
        yield executor


def test_shipped_code_finds_no_owner_key_on_an_executor_started_with_the_colony_key(
    colony: ColonyEnv, executor_with_colony_key: RunningExecutor
) -> None:
    name = executor_with_colony_key.name
    executor = colony.client.get_executor(colony.colonyname, name, colony.user_prvkey)
    ids = targets(colony.colony_prvkey, colony.server_prvkey, executor["executorid"])
    result = run_hunt(colony.client, colony.user_prvkey, colony.colonyname, ids,
                      [str(Path.home() / ".colonies")])
    assert_no_owner_key(result)
    assert result["found"].get("own executor"), "the search must at least find the key in ctx"
    assert intruders(colony.client, colony.colonyname, colony.user_prvkey) == []


@pytest.mark.slow
def test_shipped_code_finds_no_key_under_colonies_dev(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    dev = Dev(data_dir, free_port(), tmp_path / "run")
    try:
        env = dev.wait_banner()
        keys = {role: (data_dir / f"{role}.prvkey").read_text().strip() for role in ("colony", "server")}
        executorid = crypto.derive_id((data_dir / "executor.prvkey").read_text().strip())
        ids = targets(keys["colony"], keys["server"], executorid)
        with Colonies(env["COLONIES_SERVER_HOST"], int(env["COLONIES_SERVER_PORT"]), timeout=30) as client:
            result = run_hunt(client, env["COLONIES_PRVKEY"], env["COLONIES_COLONY_NAME"], ids,
                              [str(data_dir), str(Path.home() / ".colonies")])
            assert_no_owner_key(result)
            assert result["found"].get("own executor"), "the search must at least find the key in ctx"
            assert intruders(client, "dev", env["COLONIES_PRVKEY"]) == []
    finally:
        if dev.proc.poll() is None:
            dev.signal_and_wait(signal.SIGTERM)
