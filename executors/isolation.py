"""How the python executor isolates its workers from itself and from the machine's keys.

Decided once, at start (:func:`resolve`), from these settings:

| variable | meaning | default |
|---|---|---|
| ``COLONIES_WORKER_ISOLATION`` | ``auto``, ``required`` or ``off`` (below) | ``auto`` |
| ``COLONIES_WORKER_USER`` | workers' user if the executor is root: name, uid or uid:gid | ``nobody`` |
| ``COLONIES_WORKER_HIDE`` | ``:``-separated paths the workers must not see | the home directory |

``~/.colonies`` and ``$COLONIES_DATA_DIR`` are always hidden as well. What a worker gets (each
tried in turn, and probed by starting one for real):

* executor run as root: the worker user (never root), in its own PID and mount namespaces with
  the hidden paths covered by empty directories; failing that (no namespaces, e.g. a container
  without ``CAP_SYS_ADMIN``), only the worker user, if it can reach the Python installation;
* any other user: its own user, PID and mount namespaces (unprivileged user namespaces), with the
  hidden paths covered; its home is an empty private one.

What the worker's Python runs from (interpreter, venv, the directories on its ``sys.path``) is
mounted read-only, and put back where it lies under a hidden or private directory (an interpreter
in ``/root/.pyenv``, a venv in the home). ``auto`` uses the first that works;
when none does, it refuses to start an executor that is root and runs shipped code (the worker
would be root), and otherwise warns loudly and runs the workers unisolated. ``required`` refuses
whenever no isolation works; ``off`` never isolates (with the same warning if code is shipped).
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.config import ConfigError

MODES = ("auto", "required", "off")
SANDBOX = str(Path(__file__).with_name("sandbox.py"))
PROBE_TIMEOUT = 60.0

# Run by the worker interpreter: every directory it reads its Python from.
_NEEDED_PATHS = r"""
import json, os, sys
paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
link = sys.executable
for _ in range(40):
    paths.add(os.path.dirname(os.path.abspath(link)))
    if not os.path.islink(link):
        break
    link = os.path.join(os.path.dirname(link), os.readlink(link))
paths.update(p for p in sys.path if p)
import executors.python_worker, pycolonies
for name in ("executors", "pycolonies", "cloudpickle"):
    try:
        paths.update(__import__(name).__path__)
    except ImportError:
        pass
for finder in sys.meta_path:  # editable installs map packages to their source directories
    mapping = getattr(sys.modules.get(getattr(finder, "__module__", "")), "MAPPING", None)
    if isinstance(mapping, dict):
        paths.update(str(p) for p in mapping.values())
print(json.dumps(sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})))
"""

# Run inside a sandbox by the probe: what every worker must be able to do.
_CHECK = "import cloudpickle, executors.python_worker, pycolonies.client; print('ok')"


class IsolationError(ConfigError):
    """Shipped code would run unisolated where that is refused; the message says what to change."""


@dataclass(frozen=True)
class IsolationSettings:
    mode: str = "auto"
    user: str = "nobody"  # who workers run as when the executor is root
    hide: tuple[str, ...] | None = None  # None: the home directory (and $HOME)
    data_dir: str | None = None  # COLONIES_DATA_DIR, always hidden

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IsolationSettings:
        env = os.environ if environ is None else environ
        mode = (env.get("COLONIES_WORKER_ISOLATION") or "auto").strip().lower()
        if mode not in MODES:
            raise ConfigError(f"COLONIES_WORKER_ISOLATION must be one of {', '.join(MODES)}, not {mode!r}")
        hide = env.get("COLONIES_WORKER_HIDE")
        return cls(mode=mode, user=env.get("COLONIES_WORKER_USER") or "nobody",
                   hide=None if hide is None else tuple(p for p in hide.split(":") if p),
                   data_dir=env.get("COLONIES_DATA_DIR") or None)


@dataclass(frozen=True)
class Isolation:
    """What :func:`resolve` decided: the command prefix that starts a worker isolated (empty when it
    is not), a one-line summary, and a warning to show at start if any."""

    launcher: tuple[str, ...] = ()
    summary: str = "not isolated"
    warning: str | None = None
    owner: tuple[int, int] | None = None  # (uid, gid) workers run as, when not the executor's own
    hidden: tuple[str, ...] = ()  # paths the workers cannot see


@dataclass(frozen=True)
class _Candidate:
    plan: dict[str, Any]
    summary: str


def resolve(settings: IsolationSettings, python: str, env: Mapping[str, str], runs_code: bool) -> Isolation:
    """The isolation workers of interpreter ``python`` (started with ``env``) get on this machine.

    Raises :class:`IsolationError` when none works and that is refused (see the module)."""
    if settings.mode == "off":
        return Isolation(summary="not isolated (COLONIES_WORKER_ISOLATION=off)",
                         warning=_unisolated("COLONIES_WORKER_ISOLATION=off") if runs_code else None)
    reasons: list[str] = []
    for candidate in _candidates(settings, python, env, reasons):
        launcher = (sys.executable, "-I", "-S", SANDBOX, json.dumps(candidate.plan), "--")
        problem = _probe(launcher, python, env)
        if problem is None:
            plan = candidate.plan
            owner = (plan["uid"], plan["gid"]) if "uid" in plan else None
            return Isolation(launcher, candidate.summary, owner=owner, hidden=tuple(plan.get("hide", ())))
        reasons.append(problem)
    reason = "; ".join(reasons)
    root = os.geteuid() == 0
    if settings.mode == "required" or (root and runs_code):
        why = "COLONIES_WORKER_ISOLATION=required" if settings.mode == "required" else (
            "the executor runs as root, so shipped code would run as root")
        raise IsolationError(
            f"cannot isolate the python workers ({reason}) and {why}: allow namespaces, make the python "
            "installation readable by COLONIES_WORKER_USER, run with --no-code, or set "
            "COLONIES_WORKER_ISOLATION=off to run shipped code unisolated"
        )
    return Isolation(summary=f"not isolated ({reason})", warning=_unisolated(reason) if runs_code else None)


def _unisolated(reason: str) -> str:
    user = pwd.getpwuid(os.geteuid()).pw_name
    return (
        f"SHIPPED CODE RUNS UNISOLATED ({reason}): any member of the colony can run code as {user} "
        f"that reads every file and process environment of {user}, e.g. colony and server keys kept on "
        "this machine (only this executor's own memory and environment are protected). Enable "
        "unprivileged user namespaces, run the executor as root (workers then run as nobody), or run "
        "--no-code; COLONIES_WORKER_ISOLATION=required refuses to start instead."
    )


def _candidates(
    settings: IsolationSettings, python: str, env: Mapping[str, str], reasons: list[str]
) -> Iterator[_Candidate]:
    if not sys.platform.startswith("linux"):
        reasons.append(f"workers can only be isolated on Linux, not {sys.platform}")
        return
    try:
        needed = _needed_paths(python, env)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        reasons.append(f"cannot ask {python} where it runs from: {exc}")
        return
    home = os.path.realpath(env.get("HOME") or pwd.getpwuid(os.geteuid()).pw_dir)
    hidden = _hidden(settings, env)
    if os.geteuid() != 0:
        yield _Candidate(_plan(hidden, needed, home, userns=True),
                         f"own user, PID and mount namespaces; hidden: {', '.join(hidden)}")
        return
    uid, gid, name, worker_home = _worker_user(settings.user)
    blocked = sorted({block for path in needed if (block := blocking(path, uid, gid))})
    hidden = sorted(set(hidden) | set(blocked))
    plan = _plan(hidden, needed, home, uid=uid, gid=gid)
    plan["home"] = plan["home"] or worker_home
    yield _Candidate(plan, f"user {name} (uid {uid}) in own PID and mount namespaces; "
                           f"hidden: {', '.join(hidden)}")
    if blocked:
        reasons.append(f"without namespaces user {name} cannot reach {', '.join(blocked)}")
        return
    yield _Candidate({"uid": uid, "gid": gid, "home": worker_home}, f"user {name} (uid {uid})")


def _plan(hidden: list[str], needed: list[str], home: str, *, userns: bool = False,
          uid: int | None = None, gid: int | None = None) -> dict[str, Any]:
    """The sandbox plan: ``hidden`` covered; every ``needed`` path mounted read-only (put back where
    it is under a hidden one), so a worker can neither change the code the executor and later
    workers run nor, below a hidden directory, see more than it needs."""
    wanted = sorted(path for path in needed if path not in hidden)
    expose = [path for path in wanted if not any(_within(path, other) for other in wanted)]
    plan: dict[str, Any] = {"namespaces": True, "hide": hidden, "expose": expose,
                            "home": home if home in hidden else None}
    if userns:
        plan["userns"] = True
    if uid is not None:
        plan.update(uid=uid, gid=gid)
    return plan


def _within(path: str, parent: str) -> bool:
    """``path`` is strictly below ``parent``."""
    return path != parent and path.startswith(parent.rstrip("/") + "/")


def _hidden(settings: IsolationSettings, env: Mapping[str, str]) -> list[str]:
    homes = {pwd.getpwuid(os.geteuid()).pw_dir, env.get("HOME") or ""} - {""}
    if settings.hide is None:  # the homes; not a home that is / (of a service), only its .colonies
        paths = [home for home in homes if os.path.realpath(home) != "/"]
    else:
        paths = list(settings.hide)
    paths += [os.path.join(home, ".colonies") for home in homes]
    if settings.data_dir:
        paths.append(settings.data_dir)
    hidden = sorted({os.path.realpath(os.path.expanduser(path)) for path in paths})
    if "/" in hidden:
        raise ConfigError("COLONIES_WORKER_HIDE cannot hide / (the worker needs its Python)")
    return hidden


def _worker_user(spec: str) -> tuple[int, int, str, str]:
    """(uid, gid, name, home) of COLONIES_WORKER_USER."""
    text, _, group = spec.partition(":")
    try:
        entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
        uid, gid, name, home = entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir
    except KeyError:
        if not text.isdigit():
            raise ConfigError(f"COLONIES_WORKER_USER {spec!r}: no user {text!r} on this machine") from None
        uid = int(text)
        gid, name, home = uid, text, "/"
    if group:
        if not group.isdigit():
            raise ConfigError(f"COLONIES_WORKER_USER {spec!r}: the group must be a number (uid:gid)")
        gid = int(group)
    if uid == 0:
        raise ConfigError("COLONIES_WORKER_USER must not be root: the workers run submitted code")
    return uid, gid, name, home


def blocking(path: str, uid: int, gid: int) -> str | None:
    """The highest directory above ``path`` that user ``uid`` (group ``gid``) cannot pass through."""
    parts = Path(path).parts
    for depth in range(1, len(parts)):
        directory = os.path.join(*parts[:depth])
        try:
            info = os.stat(directory)
        except OSError:
            return None
        bit = stat.S_IXUSR if info.st_uid == uid else stat.S_IXGRP if info.st_gid == gid else stat.S_IXOTH
        if not info.st_mode & bit:
            return directory
    return None


def _needed_paths(python: str, env: Mapping[str, str]) -> list[str]:
    result = subprocess.run([python, "-c", _NEEDED_PATHS], env=dict(env), capture_output=True, text=True,
                            timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise ValueError(lines[-1] if lines else f"exit code {result.returncode}")
    paths = json.loads(result.stdout)
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ValueError("unexpected answer")
    return paths


def _probe(launcher: tuple[str, ...], python: str, env: Mapping[str, str]) -> str | None:
    """None if a worker starts under ``launcher``; otherwise why not."""
    try:
        result = subprocess.run([*launcher, python, "-c", _CHECK], env=dict(env), capture_output=True,
                                text=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if result.returncode == 0 and result.stdout.strip() == "ok":
        return None
    lines = result.stderr.strip().splitlines()
    return (lines[-1] if lines else f"exit code {result.returncode}").removeprefix("colonies sandbox: ")
