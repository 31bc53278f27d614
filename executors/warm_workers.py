"""The executor's side of warm python workers: one zygote (:mod:`executors.python_zygote`) started
behind the isolation launcher, and a :class:`WarmChild` per process that looks to the runner like
a worker subprocess (stdin, stdout and stderr streams, a return code, a kill).

A zygote that dies (killed, out of memory) is noticed at once: the children it had fail as
crashed workers, and the next process starts a new zygote. One that cannot start (an import in
its preload list fails) raises :class:`ZygoteError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.config import ConfigError

log = logging.getLogger("executors")

ZYGOTE_MODULE = "executors.python_zygote"
START_TIMEOUT = 60.0  # seconds for the zygote's imports
KILLED = -9  # the return code of a child whose zygote died


@dataclass(frozen=True)
class WorkerSettings:
    """How the python executor starts its workers.

    * ``COLONIES_WORKER_WARM``: ``true`` (default) forks each worker from a warm zygote,
      ``false`` starts a fresh interpreter per process;
    * ``COLONIES_WORKER_PRELOAD``: ``,``-separated modules the zygote imports (besides the SDK and
      the allowed functions' modules);
    * ``COLONIES_WORKER_MEMORY``: address space per worker (``2Gi``, ``RLIMIT_AS``; default none);
    * ``COLONIES_WORKER_OPEN_FILES``: open files per worker (``RLIMIT_NOFILE``; default the
      executor's limit).
    """

    warm: bool = True
    preload: tuple[str, ...] = ()
    memory: int = 0
    files: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if environ is None else environ
        warm_text = (env.get("COLONIES_WORKER_WARM") or "true").strip().lower()
        if warm_text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ConfigError(f"COLONIES_WORKER_WARM must be true or false, not {warm_text!r}")
        preload = tuple(name.strip() for name in (env.get("COLONIES_WORKER_PRELOAD") or "").split(",")
                        if name.strip())
        for name in preload:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ConfigError(f"COLONIES_WORKER_PRELOAD: {name!r} is not a module name")
        memory = _size(env.get("COLONIES_WORKER_MEMORY") or "", "COLONIES_WORKER_MEMORY")
        files_text = (env.get("COLONIES_WORKER_OPEN_FILES") or "").strip()
        if files_text and (not files_text.isdigit() or int(files_text) < 16):
            raise ConfigError(f"COLONIES_WORKER_OPEN_FILES must be a number of at least 16, "
                              f"not {files_text!r}")
        return cls(warm=warm_text in ("true", "1", "yes", "on"), preload=preload, memory=memory,
                   files=int(files_text or 0))

    @property
    def summary(self) -> str:
        start = "forked from a warm zygote" if self.warm else "a fresh interpreter each"
        limits = [f"{self.memory // 2**20} MiB" if self.memory else "",
                  f"{self.files} files" if self.files else ""]
        shown = ", ".join(limit for limit in limits if limit)
        return f"{start}{', limits ' + shown if shown else ''}"


def _size(text: str, name: str) -> int:
    text = text.strip()
    if not text:
        return 0
    units = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}
    number = text.rstrip("KMGTi")
    unit = text[len(number):]
    try:
        size = int(float(number) * units[unit])
    except (KeyError, ValueError):
        raise ConfigError(f"{name} must be a size such as '2Gi' or '512Mi', not {text!r}") from None
    if size < 64 * 2**20:
        raise ConfigError(f"{name} of {text!r} is too small: a python worker needs at least 64Mi")
    return size


class ZygoteError(Exception):
    """The zygote could not be started; the message says why."""


class WarmChild:
    """One forked worker: what :mod:`executors.python_runner` needs of a worker subprocess."""

    def __init__(self, pool: WarmWorkers, ident: int, stdin: asyncio.StreamWriter,
                 stdout: asyncio.StreamReader, stderr: asyncio.StreamReader) -> None:
        self._pool, self.ident = pool, ident
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self._ended = asyncio.Event()

    def ended(self, status: int) -> None:
        if self.returncode is None:
            self.returncode = status
            self._ended.set()

    async def wait(self) -> int:
        await self._ended.wait()
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """Kill the child and everything it started (a no-op once it ended)."""
        if self.returncode is None:
            self._pool.kill(self.ident)


class WarmWorkers:
    """The zygote of one executor; :meth:`spawn` forks a child for a process."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.command, self.env = list(command), dict(env)
        self._socket: socket.socket | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._children: dict[int, WarmChild] = {}
        self._next = 0
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._stderr: asyncio.Task[None] | None = None
        self.starts = 0  # how many zygotes were started (1 unless one died)

    async def start(self) -> None:
        """Start the zygote (if none runs) and wait until it has imported what it preloads."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._socket is not None:
                return
            await self._start()

    async def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command, stdin=theirs.fileno(), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True)
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"cannot start the python workers' zygote {self.command[0]!r}: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        self._stderr = asyncio.create_task(self._log_stderr(self._process))
        try:
            first = await asyncio.wait_for(loop.sock_recv(ours, 1 << 16), START_TIMEOUT)
            event = json.loads(first) if first else {"op": "failed", "error": "it exited at start"}
        except TimeoutError:
            event = {"op": "failed", "error": f"it did not finish its imports within {START_TIMEOUT:g} s"}
        if event.get("op") != "ready":
            ours.close()
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            raise ZygoteError(f"the python workers' zygote did not start: {event.get('error')}")
        self._socket = ours
        self.starts += 1
        self._reader = asyncio.create_task(self._events(ours))

    async def spawn(self, cwd: Path | None, env: Mapping[str, str], memory: int = 0,
                    files: int = 0) -> WarmChild:
        """Fork a child for one process: its working directory, extra variables and limits."""
        await self.start()
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        self._next += 1
        ident = self._next
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        request = {"op": "spawn", "id": ident, "cwd": str(cwd) if cwd else None, "env": dict(env),
                   "memory": memory, "files": files}
        try:
            await self._send(request, [stdin_r, stdout_w, stderr_w])
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        stdout, stderr = await _reader(stdout_r), await _reader(stderr_r)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                            os.fdopen(stdin_w, "wb", 0))
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        child = WarmChild(self, ident, stdin, stdout, stderr)
        self._children[ident] = child
        return child

    def kill(self, ident: int) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.send(json.dumps({"op": "kill", "id": ident}).encode())

    async def close(self) -> None:
        """Stop the zygote: it kills every child it still has, then exits."""
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._process is not None and self._process.returncode is None:
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()
        self._died()

    async def _send(self, request: dict[str, Any], fds: list[int]) -> None:
        assert self._socket is not None
        data = json.dumps(request).encode()
        while True:
            try:
                socket.send_fds(self._socket, [data], fds)
                return
            except BlockingIOError:
                await asyncio.sleep(0.001)
            except OSError as exc:
                raise ZygoteError(f"the python workers' zygote is gone: {exc}") from exc

    async def _events(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await loop.sock_recv(sock, 1 << 16):
                event = json.loads(data)
                if event.get("op") == "exit":
                    child = self._children.pop(event["id"], None)
                    if child is not None:
                        child.ended(int(event["status"]))
        except (OSError, ValueError) as exc:
            log.warning("the python workers' zygote channel failed: %s", exc)
        if self._socket is sock:  # not closed by us: the zygote died
            log.warning("the python workers' zygote died; %d running process(es) fail, the next one "
                        "starts a new zygote", len(self._children))
            self._socket = None
            sock.close()
            self._died()

    def _died(self) -> None:
        children, self._children = self._children, {}
        for child in children.values():
            child.ended(KILLED)

    async def _log_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log.warning("python workers' zygote: %s", line.decode(errors="replace").rstrip())


async def _reader(fd: int) -> asyncio.StreamReader:
    """An asyncio stream reading the pipe end ``fd`` (closed with it)."""
    reader = asyncio.StreamReader(limit=1 << 16)
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                       os.fdopen(fd, "rb", 0))
    return reader
