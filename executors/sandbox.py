"""Start a command isolated from the executor: the launcher of the python executor's workers (Linux).

Run by path, with the standard library only, before the worker's interpreter starts::

    python -I -S executors/sandbox.py '<plan as JSON>' -- python -m executors.python_worker

The plan (made by :mod:`executors.isolation`) says what to do, in this order:

1. ``namespaces``: ``unshare`` a new mount and PID namespace (plus a user namespace with
   ``userns``, for an executor that is not root, mapping its own uid and gid only), then fork:
   the child is PID 1 of the new namespace. In its private mount table it covers every ``hide``
   path with an empty tmpfs (a file with ``/dev/null``; ``home`` becomes an empty, private, writable
   home of the worker user), mounts each ``expose`` path (what the worker's Python runs from)
   read-only where it is (put back if it lies under a hidden path, e.g. an interpreter in a
   hidden home), and mounts a fresh ``/proc`` that shows only this namespace's processes: nothing
   outside the namespace can be seen, signalled or traced.
2. ``uid``/``gid``: drop to that user (an executor running as root). In a user namespace the
   capabilities are dropped instead, so nobody can undo the mounts.
3. ``no_new_privs``: set-user-id programs cannot give the worker privileges back.
4. Run the command (with namespaces, as PID 2: PID 1 stays a small reaper, so the function's
   signals to itself behave as usual). This launcher exits as the command did (the same code, or
   the same signal), and when it is killed the whole namespace dies with it.

A step that fails stops everything before the command runs: one line on stderr, exit code 125.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys
from typing import Any

SETUP_FAILED = 125

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | (1 << 21)  # ... noatime, nodiratime, relatime
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter is linked with


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data))
    _check(result, f"mount {fstype or source or ''} on {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as file:
            file.write(text)
    except OSError as exc:
        raise SetupError(f"write {path}: {exc.strerror}") from None


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable (twice: 64 capability bits)
    _check(_libc.capset(header, data), "capset")


# -- the mount namespace --------------------------------------------------------------------------


def _hide(path: str, home: str | None, owner: tuple[int, int]) -> bool:
    """Cover ``path`` with something empty; True if it was a directory (now an empty tmpfs)."""
    if not os.path.lexists(path):
        return False
    if not os.path.isdir(path) or os.path.islink(path):
        _mount("/dev/null", path, None, MS_BIND)
        return False
    options = "mode=0755"
    if path == home:
        options = "mode=0700,uid={},gid={}".format(*owner)
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options)
    return True


def _expose(fd: int, path: str) -> None:
    """Mount the tree ``fd`` refers to (opened before it was hidden) on ``path``, read-only."""
    flags = os.fstatvfs(fd).f_flag
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    kept = (flags & KEPT_FLAGS) | MS_NOSUID | MS_NODEV
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def _under(path: str, parent: str) -> bool:
    return path != parent and path.startswith(parent.rstrip("/") + "/")


def _prepare_mounts(plan: dict[str, Any], owner: tuple[int, int]) -> None:
    hide: list[str] = plan.get("hide", [])
    expose: list[str] = plan.get("expose", [])
    home = plan.get("home")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the executor's mounts
    try:
        kept = [(os.open(path, os.O_PATH | os.O_CLOEXEC), path) for path in expose]
    except OSError as exc:
        raise SetupError(f"open {exc.filename}: {exc.strerror}") from None
    empty = [path for path in sorted(hide, key=len) if _hide(path, home, owner)]
    for fd, path in kept:
        _expose(fd, path)
        os.close(fd)
    for path in hide:  # a hidden path inside an exposed one is hidden again, on top of it
        if any(_under(path, shown) for shown in expose) and _hide(path, home, owner):
            empty.append(path)
    for path in empty:  # the empty directories stay empty (the worker's home excepted)
        if path != home:
            _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


# -- the processes ----------------------------------------------------------------------------------


def _drop_privileges(plan: dict[str, Any]) -> None:
    uid, gid = plan.get("uid"), plan.get("gid")
    if uid is not None:
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)
    elif plan.get("userns"):
        _drop_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # undone by exec; keeps this reaper out of reach of the worker


def _enter(plan: dict[str, Any], cwd: str) -> None:
    home = plan.get("home")
    if home:
        os.environ["HOME"] = home
    for place in (cwd, home, "/"):
        if place:
            try:
                os.chdir(place)  # through the new mounts: a hidden working directory stays hidden
                return
            except OSError:
                continue


def _exec(command: list[str]) -> None:
    try:
        os.execv(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"colonies sandbox: cannot run {command[0]}: {exc.strerror}\n")
        os._exit(127)


def _exit_like(status: int) -> None:
    """Exit as a child with wait status ``status`` did: the same code, or the same signal."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be caught anyway
            signal.signal(signum, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the worker dumped its core, if any
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else SETUP_FAILED)


def _quiet() -> None:
    """Let go of the worker's pipes: only the worker itself holds them open."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _reap_until(worker: int) -> int:
    """As PID 1: reap every child until the worker is done; its wait status."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if pid == worker:
            return status


def _namespaced(plan: dict[str, Any], command: list[str]) -> None:
    flags = CLONE_NEWNS | CLONE_NEWPID | (CLONE_NEWUSER if plan.get("userns") else 0)
    uid, gid, cwd = os.geteuid(), os.getegid(), os.getcwd()
    _check(_libc.unshare(flags), "unshare")
    if plan.get("userns"):
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    status_r, status_w = os.pipe()
    init = os.fork()
    if init:  # outside: wait for the namespace's PID 1, then exit as the worker did
        os.close(status_w)
        _quiet()
        _, own = os.waitpid(init, 0)
        with os.fdopen(status_r) as report:
            text = report.read().strip()
        _exit_like(int(text) if text.lstrip("-").isdigit() else own)
    os.close(status_r)
    try:
        owner = (plan["uid"], plan.get("gid", plan["uid"])) if plan.get("uid") is not None else (uid, gid)
        _prepare_mounts(plan, owner)
        _drop_privileges(plan)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
        _enter(plan, cwd)
    except (SetupError, OSError) as exc:
        sys.stderr.write(f"colonies sandbox: {exc}\n")
        os._exit(SETUP_FAILED)
    worker = os.fork()
    if worker == 0:
        os.close(status_w)
        _exec(command)
    _quiet()
    status = _reap_until(worker)
    os.write(status_w, str(status).encode())
    os._exit(0)  # PID 1 ends: the kernel kills whatever the function left behind


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: sandbox.py PLAN -- COMMAND...\n")
        os._exit(2)
    plan, command = json.loads(argv[1]), argv[3:]
    if plan.get("namespaces"):
        _namespaced(plan, command)
        return
    try:
        cwd = os.getcwd()
        _drop_privileges(plan)
        _enter(plan, cwd)
    except (SetupError, OSError) as exc:
        sys.stderr.write(f"colonies sandbox: {exc}\n")
        os._exit(SETUP_FAILED)
    _exec(command)


if __name__ == "__main__":
    main(sys.argv)
