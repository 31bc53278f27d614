"""A replicated PostgreSQL 15 for the tests, from Debian's packages (``postgresql-15``): a primary
and a streaming standby that the primary waits for on every commit (``synchronous_commit = on``
with ``synchronous_standby_names``), on loopback ports, in data directories of their own.

:func:`require_postgres15` skips a test when the binaries are absent, except in CI (``CI=true``),
where it fails: CI installs them itself (``.ci/run``). PostgreSQL refuses to run as root, so under
root every command runs as the ``postgres`` user the package creates.

The standby's own ``synchronous_standby_names`` is empty: once promoted it is the only node left,
and a name there would make every commit wait for a standby that does not exist (an operator, or
Patroni, sets the new pair up again; see docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.embedded import free_port
from tests.support.processes import descendants, pid_gone
from tests.support.waiting import wait_until

HOME = Path("/usr/lib/postgresql/15")  # Debian's postgresql-15
BIN = HOME / "bin"
HOST = "127.0.0.1"
SYSTEM_USER = "postgres"
STANDBY_NAME = "standby"
_TIMEOUT = 120


def require_postgres15() -> None:
    """Return if Debian's PostgreSQL 15 is here; else skip (fail in CI) with the reason."""
    reason = ""
    if not (BIN / "postgres").exists():
        reason = f"PostgreSQL 15 is not installed ({BIN}; apt-get install postgresql-15, see .ci/run)"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            reason = f"no {SYSTEM_USER!r} user to run PostgreSQL as (root is refused)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (in CI, with CI=true, this fails)")


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    """Run ``command`` as the postgres user when we are root; raise with its output if it fails."""
    if os.geteuid() == 0:
        kwargs.update(user=SYSTEM_USER, group=SYSTEM_USER, extra_groups=[])
    done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


@dataclass
class Node:
    """One PostgreSQL server: its data directory, port and log."""

    name: str
    data: Path
    port: int = field(default_factory=free_port)

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.address}/{database}"

    def fetchval(self, sql: str, *args: Any) -> Any:
        async def run() -> Any:
            con = await asyncpg.connect(self.dsn(), timeout=10)
            try:
                return await con.fetchval(sql, *args)
            finally:
                await con.close()

        return asyncio.run(run())

    def configure(self, **settings: str) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self) -> None:
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                      "start"])

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL the postmaster and every process it started at once, as a lost machine."""
        pid = self.pid()
        if pid is None:
            return
        for target in [pid, *descendants(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not pid_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def promote(self) -> None:
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote"])

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None and not pid_gone(pid):
            subprocess.run([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=_TIMEOUT,
                           **({"user": SYSTEM_USER} if os.geteuid() == 0 else {}))

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


class ReplicatedPostgres:
    """A primary and its synchronous standby (``start``), and what a failover needs."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="colonies-pg15-"))
        os.chmod(self.base, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.base, SYSTEM_USER, SYSTEM_USER)
        self.primary = Node("primary", self.base / "primary")
        self.standby = Node("standby", self.base / "standby")

    @property
    def dsn(self) -> str:
        """The multi-host URL the server is given: both nodes, the writable one is used."""
        return f"postgresql://postgres@{self.primary.address},{self.standby.address}/postgres"

    def start(self) -> None:
        primary, standby = self.primary, self.standby
        _as_postgres([str(BIN / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C"])
        primary.configure(
            listen_addresses=f"'{HOST}'", port=str(primary.port), unix_socket_directories="''",
            wal_level="replica", max_wal_senders="4", wal_keep_size="'64MB'", max_connections="200",
            shared_buffers="'64MB'", synchronous_commit="on",
            synchronous_standby_names=f"'{STANDBY_NAME}'",
        )
        primary.start()
        _as_postgres([str(BIN / "pg_basebackup"), "-h", HOST, "-p", str(primary.port), "-U", "postgres",
                      "-D", str(standby.data), "-X", "stream", "-R", "-c", "fast"])
        standby.configure(port=str(standby.port), cluster_name=f"'{STANDBY_NAME}'",
                          synchronous_standby_names="''", hot_standby="on")
        standby.start()
        self.wait_synchronous()

    def wait_synchronous(self, timeout: float = 60) -> None:
        """Until the primary streams to the standby and waits for it on every commit."""
        sql = "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1"
        wait_until(lambda: self.primary.fetchval(sql, STANDBY_NAME) == "sync", timeout,
                   "the standby to be synchronous")

    def fail_over(self) -> float:
        """Lose the primary (kill -9) and promote the standby; the seconds the promotion took."""
        self.primary.kill()
        started = time.monotonic()
        self.standby.promote()
        return time.monotonic() - started

    def stop(self) -> None:
        for node in (self.standby, self.primary):
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(f"--- {n.name} ---\n{n.log_tail()}" for n in (self.primary, self.standby))
