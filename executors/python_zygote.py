"""The python executor's warm worker parent (a zygote): imports once what every worker needs, then
forks a fresh child per process. Run by :mod:`executors.warm_workers` as
``python -m executors.python_zygote [MODULE...] [?MODULE...]`` (``?``: imported if it can be),
behind the sandbox launcher, so it and every child are isolated as a cold worker is.

Control channel: a Unix ``SOCK_SEQPACKET`` socket on stdin (moved aside at start). The executor
sends one JSON message per request, a ``spawn`` with the child's stdin, stdout and stderr pipe
ends attached (``SCM_RIGHTS``)::

    {"op": "spawn", "id": 7, "cwd": "/tmp/colonies-fs-0/<pid>/fs" | null,
     "env": {"COLONIES_FS_DIR": "..."}, "memory": bytes | 0, "files": n | 0}
    {"op": "kill", "id": 7}

and reads one JSON message per event: ``{"op": "ready"}`` once the imports are done (or ``{"op":
"failed", "error": "..."}``), ``{"op": "exit", "id": 7, "status": <exit code, or -signal>}``.

Each child:

* gets its own session and process group, the three pipes as fds 0-2 and nothing else of the
  zygote's (the control socket is closed), the requested working directory and variables, and
  its memory (``RLIMIT_AS``) and open-file limits;
* is a child subreaper and non-dumpable, so its siblings cannot read its memory and nothing it
  starts escapes it: a ``kill`` (cancellation, maxexectime, the end of the run) kills its whole
  tree, and a child that ends by itself kills what it left behind first;
* runs :func:`executors.python_worker.main` on the job its stdin carries, with the modules the
  zygote imported already there, and nothing any earlier child did (module globals included).

When the control channel closes (the executor stopped or died), the zygote kills every child's tree
and exits; a child whose zygote dies is killed by the kernel (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
from importlib import import_module
from typing import Any

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
MAX_FDS = 3

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    _libc.prctl(option, value, 0, 0, 0)


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``: from ``/proc/PID/task/*/children`` where the kernel
    has it, else from every process's ``stat``."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    try:
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
        return found
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN (or the task just ended)
        found = []
    except OSError:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def kill_tree(root: int, include_root: bool = True) -> None:
    """Stop ``root`` and every process below it (until no new one appears), then kill them all."""
    stopped: set[int] = set()
    for _ in range(100):
        tree = {root} if include_root else set()
        frontier = [root]
        while frontier:
            below = _children_of(frontier.pop())
            tree.update(below)
            frontier.extend(below)
        fresh = tree - stopped
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= fresh
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: dict[int, int] = {}  # pid -> request id
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def send(self, event: dict[str, Any]) -> None:
        self.control.sendall(json.dumps(event).encode())

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wake_r, selectors.EVENT_READ, "children")
        while True:
            for key, _ in selector.select():
                if key.data == "children":
                    os.read(self.wake_r, 4096)
                    self.reap()
                elif not self.read_requests():
                    self.shut_down()
                    return

    def read_requests(self) -> bool:
        """Handle one request of the executor; False once it closed the channel."""
        try:
            data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, MAX_FDS)
        except InterruptedError:
            return True
        except OSError:
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        request = json.loads(data)
        if request["op"] == "spawn":
            self.spawn(request, fds)
            return True
        for fd in fds:  # fds with another request: never leak them
            os.close(fd)
        if request["op"] == "kill":
            for pid, ident in list(self.children.items()):
                if ident == request["id"]:
                    kill_tree(pid)
        return True

    def spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            self.send({"op": "exit", "id": request["id"], "status": 125})
            return
        pid = os.fork()
        if pid == 0:
            try:
                try:
                    self._become_child(request, fds)
                except Exception as exc:  # noqa: BLE001 - e.g. its working directory is out of reach
                    answer = {"error": [f"the worker could not start: {type(exc).__name__}: {exc}", ""]}
                    os.write(1, json.dumps(answer).encode() + b"\n")
                    os._exit(1)
                from executors.python_worker import main

                main(["python_worker"], before_exit=lambda: kill_tree(os.getpid(), include_root=False))
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        self.children[pid] = request["id"]

    def _become_child(self, request: dict[str, Any], fds: list[int]) -> None:
        for target, fd in enumerate(fds):  # first: whatever fails below is answered on fd 1
            os.dup2(fd, target)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(PR_SET_DUMPABLE, 0)  # siblings (the same user) cannot read its memory
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # what it starts stays below it, to be killed with it
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # the control socket too
        os.environ.update(request.get("env") or {})
        if request.get("cwd"):
            os.chdir(request["cwd"])
        if request.get("memory"):
            resource.setrlimit(resource.RLIMIT_AS, (request["memory"], request["memory"]))
        if request.get("files"):
            resource.setrlimit(resource.RLIMIT_NOFILE, (request["files"], request["files"]))
        sys.argv = ["python_worker"]

    def reap(self) -> None:
        """Report every child that ended; kill what a crashed child left behind (its orphans
        come here: the zygote is a subreaper)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ident = self.children.pop(pid, None)
            if ident is not None:  # else an orphan of an ended child, reparented here
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                self.send({"op": "exit", "id": ident, "status": code})
        for orphan in set(_children_of(os.getpid())) - set(self.children):
            kill_tree(orphan)

    def shut_down(self) -> None:
        for pid in list(self.children):
            kill_tree(pid)
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self.children.pop(pid, None)


def _warm_up() -> None:
    """Run one tiny shipped function here, before any fork, so that what the first call fills in
    (the SDK's decoders, compiled regular expressions, ...) is already there in every child; then
    forget it (its module and source), and freeze what is here so that no child's garbage
    collection touches (and copies) the zygote's objects."""
    import gc
    import linecache

    from executors.python_worker import CODE_MODULE, run_job

    source = "def warm_up(ctx={}):\n    return [1]\n"
    job = {"process": {"processid": "0" * 64, "spec": {"funcname": "warm_up", "args": [], "kwargs": {}}},
           "plan": {"kind": "code", "source": source},
           "client": {"host": "localhost", "port": 1, "tls": False, "colonyname": "", "executorid": "",
                      "executor_prvkey": ""}}
    run_job(job)
    sys.modules.pop(CODE_MODULE, None)
    linecache.cache.pop("<colonies function warm_up>", None)
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> None:
    control = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # what an import prints goes to the zygote's stderr, never to the channel
    os.close(devnull)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    zygote = Zygote(control)
    try:
        import cloudpickle  # noqa: F401  (what every child needs, imported once)

        import executors.python_worker  # noqa: F401
        import pycolonies.client  # noqa: F401
        import pycolonies.models  # noqa: F401

        _warm_up()
        for name in argv[1:]:
            if name.startswith("?"):  # an allowed function's module: a child reports its import error
                with contextlib.suppress(Exception):
                    import_module(name[1:])
            else:
                import_module(name)
    except BaseException as exc:  # noqa: BLE001 - reported to the executor, which refuses to start
        zygote.send({"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    zygote.send({"op": "ready", "pid": os.getpid()})
    zygote.serve()
    os._exit(0)


if __name__ == "__main__":
    sys.modules.setdefault("executors.python_zygote", sys.modules[__name__])
    main(sys.argv)
