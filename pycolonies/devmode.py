"""The ``colonies dev`` environment: its data directory, the dev identities and the ``export`` lines.

The identities are a colony ``dev`` (owned by the colony key), a user ``dev-user`` and an approved
executor ``dev-python-executor`` of type ``python-executor``, each with its own key. They are
created on the first run and reused afterwards, so the keys, the colony and its processes survive
a restart. The data directory (default ``~/.colonies/dev``) holds::

    server.prvkey colony.prvkey user.prvkey executor.prvkey   the keys (mode 0600)
    env               the export lines for the CLI and SDK (mode 0600): ``source`` it
    postgres/         the embedded PostgreSQL cluster (the server's)
    logs/             server.log, executor.log: this run's output of each child process
    dev.lock          locked while a ``colonies dev`` runs on this directory

Only the SDK is used here (over the wire, like any client); starting processes is the CLI's job.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pycolonies import crypto, wire
from pycolonies.client import Colonies
from pycolonies.errors import AccessDeniedError, BadRequestError, ColoniesError

COLONY = "dev"
USER = "dev-user"
EXECUTOR = "dev-python-executor"
EXECUTOR_TYPE = "python-executor"


class DevError(Exception):
    """A one-line failure of ``colonies dev``; ``log`` is the log file whose end explains it."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log = log


@dataclass(frozen=True)
class DevKeys:
    server: str
    colony: str
    user: str
    executor: str


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("COLONIES_DATA_DIR") or "~/.colonies/dev").expanduser()


@dataclass(frozen=True)
class DevDir:
    root: Path

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def prepare(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.root / "logs").mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DevError(f"cannot create the data directory {self.root}: {exc}") from None

    def lock(self) -> IO[str]:
        """Lock the directory for this run (released when the returned file is closed, or when this
        process dies); DevError if another ``colonies dev`` holds it."""
        import fcntl

        path = self.root / "dev.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise DevError(f"another colonies dev (pid {holder}) is already running on {self.root}: "
                           "stop it first, or use another --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def keys(self) -> DevKeys:
        """The four keys, each read from its file or generated into it on first use."""
        return DevKeys(*(_load_or_create_key(self.root / f"{role}.prvkey")
                         for role in ("server", "colony", "user", "executor")))

    def write_env(self, lines: list[str]) -> None:
        try:
            _write_private(self.env_file, "".join(line + "\n" for line in lines), replace=True)
        except OSError as exc:
            raise DevError(f"cannot write {self.env_file}: {exc}") from None


def _write_private(path: Path, text: str, *, replace: bool = False) -> None:
    """Write ``text`` to a file only its owner may read (mode 0600 from its creation on)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _load_or_create_key(path: Path) -> str:
    try:
        if not path.exists():
            prvkey = crypto.generate_private_key()
            _write_private(path, prvkey + "\n")
            return prvkey
        prvkey = path.read_text().strip()
    except OSError as exc:
        raise DevError(f"cannot read or create the key {path}: {exc}") from None
    try:
        crypto.derive_id(prvkey)
    except ValueError:
        raise DevError(f"{path} does not hold a private key (64 hex characters): "
                       "restore it, or use another --data-dir") from None
    return prvkey


def exports(host: str, port: int, keys: DevKeys) -> list[str]:
    """The ``export`` lines a shell needs to use the dev colony with the CLI and the SDK."""
    values = {
        "COLONIES_SERVER_HOST": host,
        "COLONIES_SERVER_PORT": str(port),
        "COLONIES_TLS": "false",
        "COLONIES_COLONY_NAME": COLONY,
        "COLONIES_COLONY_PRVKEY": keys.colony,
        "COLONIES_PRVKEY": keys.user,
        "COLONIES_SERVER_PRVKEY": keys.server,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def ensure_identities(client: Colonies, keys: DevKeys) -> list[str]:
    """Create the dev colony, user and executor where missing (reusing what exists) and return what
    was created or replaced, e.g. ``["colony dev", "user dev-user"]``.

    A user or executor registered under the dev name with another key (its key file was lost) is
    replaced; a colony ``dev`` owned by another key is an error (replacing it would delete its data).
    """
    try:
        created = _ensure_colony(client, keys)
        created += _ensure_user(client, keys)
        created += _ensure_executor(client, keys)
    except ColoniesError as exc:
        raise DevError(f"cannot set up the dev colony: {exc}") from None
    return created


def _ensure_colony(client: Colonies, keys: DevKeys) -> list[str]:
    colony_id = crypto.derive_id(keys.colony)
    found = next((c for c in client.list_colonies(keys.server) if c.get("name") == COLONY), None)
    if found is None:
        client.add_colony({"colonyid": colony_id, "name": COLONY}, keys.server)
        return [f"colony {COLONY}"]
    if found.get("colonyid") != colony_id:
        raise DevError(f"colony {COLONY!r} on this server is owned by another key than colony.prvkey: "
                       "restore that key, or use another --data-dir")
    return []


def _ensure_user(client: Colonies, keys: DevKeys) -> list[str]:
    user_id = crypto.derive_id(keys.user)
    try:
        if any(u.get("userid") == user_id for u in client.get_users(COLONY, keys.user)):
            return []
    except AccessDeniedError:  # the key is not a member yet
        pass
    user = {"colonyname": COLONY, "userid": user_id, "name": USER, "email": "", "phone": ""}
    try:
        client.add_user(user, keys.colony)
        return [f"user {USER}"]
    except BadRequestError:  # the name is taken by a user with a lost key
        client.remove_user(COLONY, USER, keys.colony)
        client.add_user(user, keys.colony)
        return [f"user {USER} (new key)"]


def _ensure_executor(client: Colonies, keys: DevKeys) -> list[str]:
    executor_id = crypto.derive_id(keys.executor)
    found = next((e for e in client.list_executors(COLONY, keys.user) if e.get("executorname") == EXECUTOR),
                 None)
    created: list[str] = []
    if found is not None and (found.get("executorid") != executor_id
                              or found.get("executortype") != EXECUTOR_TYPE):
        client.remove_executor(COLONY, EXECUTOR, keys.colony)
        found, created = None, [f"executor {EXECUTOR} (new key)"]
    if found is None:
        client.add_executor({"executorid": executor_id, "executorname": EXECUTOR,
                             "executortype": EXECUTOR_TYPE, "colonyname": COLONY}, keys.colony)
        created = created or [f"executor {EXECUTOR}"]
    if found is None or found.get("state") != wire.APPROVED:
        client.approve_executor(COLONY, EXECUTOR, keys.colony)
    return created
