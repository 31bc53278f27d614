"""Run one process's Python function, isolated, in a fresh worker subprocess.

:func:`run_process` decides *what* may run (an allow-listed module function, shipped source, or a
cloudpickled callable, see :class:`RunnerSettings`), starts ``python -m executors.python_worker``
in a new session, sends it the job on stdin, streams every line the function prints to a
callback, and reads the result from the worker's stdout, a channel the function cannot write
to. The worker's whole process group is killed when the run ends, times out or is cancelled, so
nothing the function started outlives it.

The worker interpreter (``RunnerSettings.python``) must have colonies-py installed, plus whatever
the allow-listed modules need. ``RunnerSettings.launcher`` is put in front of the worker's command
line: the python executor starts its workers isolated that way (:mod:`executors.isolation`). The
colony owner's and server's keys and the database URL (:data:`executors.protect.SECRET_VARIABLES`)
are never in the worker's environment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.lines import OutputCallback, OutputLines
from executors.process_files import FS_DIR_VARIABLE
from executors.protect import without_secrets
from executors.python_worker import allowed_entry
from executors.warm_workers import ZYGOTE_MODULE, WarmChild, WarmWorkers, ZygoteError
from pycolonies.models import Process

WORKER_MODULE = "executors.python_worker"
_STALL = 2.0  # once the worker's group is gone, a pipe with no data for this long is given up
_DRAIN_LIMIT = 60.0  # ... and the output still coming after this long too (an escaped process)
_OFFERED_TIMEOUT = 120.0


@dataclass(frozen=True)
class RunnerSettings:
    allow_code: bool = True  # run functions shipped as source (env["code"]) or cloudpickle (env["pickle"])
    allowed: tuple[str, ...] = ()  # registered functions: "pkg.module.function" or "pkg.module.*"
    python: str = sys.executable  # interpreter for the worker
    launcher: tuple[str, ...] = ()  # command prefix that starts the worker isolated (executors.isolation)
    memory: int = 0  # bytes of address space a worker may use (RLIMIT_AS); 0: no limit
    files: int = 0  # files a worker may have open (RLIMIT_NOFILE); 0: the executor's limit
    preload: tuple[str, ...] = ()  # modules the warm workers' zygote imports besides the SDK

    def worker_command(self, *args: str) -> list[str]:
        return [*self.launcher, self.python, "-m", WORKER_MODULE, *args]

    def zygote_command(self) -> list[str]:
        """The warm workers' parent (:mod:`executors.python_zygote`), isolated the same way."""
        optional = sorted({entry.rpartition(".")[0] for entry in self.allowed} - set(self.preload))
        return [*self.launcher, self.python, "-m", ZYGOTE_MODULE, *self.preload, *(f"?{m}" for m in optional)]


@dataclass(frozen=True)
class ClientInfo:
    """Where the function's ``colonies`` client connects, and what goes into its ``ctx``."""

    host: str
    port: int
    tls: bool
    colonyname: str
    executorid: str
    executor_prvkey: str


class ProcessFailure(Exception):
    """The process must be closed as failed with ``errors`` (a list of strings: the message first,
    then details such as the traceback)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.errors: list[str] = [message, details] if details else [message]


async def run_process(
    process: Process,
    settings: RunnerSettings,
    client: ClientInfo,
    on_output_line: OutputCallback,
    timeout: float | None = None,
    target: str | None = None,
    fsdir: Path | None = None,
    warm: WarmWorkers | None = None,
) -> list[Any]:
    """Run the process's function in a fresh worker subprocess and return its output list.

    Every line the function prints to stdout or stderr is passed to ``on_output_line`` as it
    happens, without its line ending. An exception raised by ``on_output_line`` kills the worker
    and propagates. ``timeout`` (seconds; None or <= 0: none) is the process's maxexectime.

    Raises :class:`ProcessFailure` when the function is not allowed, has no usable code, raises,
    exits or crashes the worker, runs out of time, or returns something JSON cannot carry. On
    cancellation the worker's process group is killed and ``CancelledError`` re-raised.

    ``target`` (``"pkg.module.function"``) runs that function instead of the one the process names
    (a kind that maps its own function names onto installed ones). ``fsdir`` (the process's fs
    directory) is the function's working directory and ``$COLONIES_FS_DIR``. With ``warm`` the
    worker is forked by its zygote instead of started afresh (:mod:`executors.warm_workers`).
    """
    job = worker_job(process, settings, client, target)
    worker = await _start_warm(warm, settings, fsdir) if warm else await _start(settings, fsdir)
    assert worker.stdout is not None and worker.stderr is not None
    output = OutputLines(on_output_line, stop=lambda: _kill(worker))
    lines = asyncio.create_task(output.pump(worker.stderr))
    result = asyncio.create_task(_read_answer(worker.stdout))
    try:
        returncode = await _feed_and_wait(worker, job, timeout)
    finally:
        _kill(worker)
        await _settle(output, lines, result)
    callback_error = None if lines.cancelled() else lines.exception()
    if callback_error is not None:
        raise callback_error  # on_output_line failed
    return worker_result(result.result() if not result.cancelled() else b"", returncode, output.tail)


def worker_job(
    process: Process, settings: RunnerSettings, client: ClientInfo, target: str | None = None
) -> bytes:
    """What a worker reads on stdin to run ``process`` (ProcessFailure if it may not run here), or
    to run the installed function ``target`` with its arguments. It holds the executor's key
    (``client``), for the function's ``colonies`` and ``ctx``."""
    plan = {"kind": "module", "name": target, "wildcard": False} if target else _plan(process, settings)
    job = {"process": process.to_wire(), "plan": plan,
           "client": dataclasses.asdict(client)}
    return json.dumps(job).encode()


def worker_result(answer: bytes, returncode: int | None, tail: Iterable[str]) -> list[Any]:
    """The output list of a worker that answered ``answer`` on its stdout and exited with
    ``returncode``; ProcessFailure with the function's error (or why there is none, quoting the
    ``tail`` of its output)."""
    parsed = _parse_answer(answer)
    if "output" in parsed and isinstance(parsed["output"], list):
        return parsed["output"]
    if "error" in parsed:
        raise ProcessFailure(*parsed["error"][:2])
    raise ProcessFailure(_died(returncode), "\n".join(tail))


def offered_functions(settings: RunnerSettings) -> list[tuple[str, list[str]]]:
    """(funcname, argument names) for each allow-listed function (expanding ``"module.*"`` to the
    module's public functions), for registering them with the server.

    The modules are imported by the worker interpreter in a subprocess, not in the executor.
    Raises ValueError, naming the entry, when an entry is malformed or its module fails to import.
    """
    if not settings.allowed:
        return []
    command = settings.worker_command("--offered")
    # stderr to a file: a process started by an imported module must not keep us reading a pipe
    with tempfile.TemporaryFile() as stderr:
        try:
            worker = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                env=worker_env(), start_new_session=True,
            )
        except OSError as exc:
            raise ValueError(f"cannot start the python worker {settings.python!r}: {exc}") from exc
        try:
            stdout, _ = worker.communicate(json.dumps(list(settings.allowed)).encode(), _OFFERED_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise ValueError(f"importing the allowed functions took over {_OFFERED_TIMEOUT:g} s") from exc
        finally:
            _kill_group(worker.pid)
            worker.wait()
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace").strip()[-2000:]
    answer = _parse_answer(stdout)
    if "functions" in answer:
        return [(str(name), [str(arg) for arg in args]) for name, args in answer["functions"]]
    if "error" in answer:
        raise ValueError("\n".join(filter(None, answer["error"][:2])))
    raise ValueError(f"the python worker {settings.python!r} failed listing the allowed functions: "
                     f"{_died(worker.returncode)}\n{tail}")


# ---------------------------------------------------------------------------------------------
# What to run


def _plan(process: Process, settings: RunnerSettings) -> dict[str, Any]:
    """The worker's instructions, or ProcessFailure when this executor may not run the function."""
    name = process.spec.funcname
    entry = allowed_entry(name, settings.allowed)
    if entry is not None:
        return {"kind": "module", "name": name, "wildcard": entry.endswith(".*")}
    listing = ", ".join(settings.allowed) or "none"
    env = process.spec.env
    if not settings.allow_code:
        raise ProcessFailure(
            f"function {name!r} is not allowed on this executor: it is not one of the allowed functions "
            f"({listing}) and running shipped code (env['code'] or env['pickle']) is turned off. "
            f"To allow it, add {name!r} or its 'module.*' to the executor's allowed functions, "
            "or turn code shipping on."
        )
    if env.get("code"):
        return {"kind": "code", "source": _decode(env["code"], "code", name).decode("utf-8", "strict")}
    if env.get("pickle"):
        _decode(env["pickle"], "pickle", name)
        return {"kind": "pickle", "payload": env["pickle"]}
    raise ProcessFailure(
        f"function {name!r} has no code to run: the spec carries neither env['code'] nor env['pickle'] "
        f"and it is not one of this executor's allowed functions ({listing})"
    )


def _decode(text: str, key: str, name: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
        if key == "code":
            data.decode("utf-8")
        return data
    except (binascii.Error, ValueError) as exc:
        raise ProcessFailure(f"env[{key!r}] of function {name!r} cannot be decoded: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The worker subprocess


def worker_env() -> dict[str, str]:
    """The worker's environment: the executor's, without its secrets."""
    env = without_secrets()
    env["PYTHONUNBUFFERED"] = "1"  # prints reach the pipe as they happen
    return env


Worker = asyncio.subprocess.Process | WarmChild


async def _start(settings: RunnerSettings, fsdir: Path | None = None) -> asyncio.subprocess.Process:
    """A fresh worker subprocess (the cold start)."""
    command = settings.worker_command()
    env = worker_env()
    if fsdir is not None:
        env[FS_DIR_VARIABLE] = str(fsdir)
    try:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=fsdir,
            start_new_session=True,  # its own process group, killed as a whole
            preexec_fn=(lambda: _limit(settings.memory, settings.files)) if settings.memory or settings.files
            else None,
        )
    except OSError as exc:
        raise ProcessFailure(f"cannot start the python worker {command[0]!r}: {exc}") from exc


async def _start_warm(warm: WarmWorkers, settings: RunnerSettings, fsdir: Path | None) -> WarmChild:
    env = {FS_DIR_VARIABLE: str(fsdir)} if fsdir is not None else {}
    try:
        return await warm.spawn(fsdir, env, memory=settings.memory, files=settings.files)
    except ZygoteError as exc:
        raise ProcessFailure(str(exc)) from exc


def _limit(memory: int, files: int) -> None:
    """In a fresh worker, before it runs: its memory and open-file limits."""
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if files:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))


def _kill(worker: Worker) -> None:
    """Kill the worker and everything it started."""
    if isinstance(worker, WarmChild):
        worker.kill()
    else:
        _kill_group(worker.pid)


async def _feed_and_wait(worker: Worker, job: bytes, timeout: float | None) -> int:
    limit = timeout if timeout is not None and timeout > 0 else None
    try:
        async with asyncio.timeout(limit) as deadline:
            assert worker.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # its exit code tells why
                worker.stdin.write(job)
                await worker.stdin.drain()
            worker.stdin.close()
            return await _exit_code(worker)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise ProcessFailure(
            f"the function did not finish within its maxexectime of {limit:g} s; the worker was killed"
        ) from None


async def _exit_code(worker: Worker) -> int:
    """The worker's exit code as soon as it exits. (``worker.wait()`` of a subprocess also waits
    for its pipes to close, which a process the function left behind can hold open for as long as
    it lives; a warm child's is told by its zygote.)"""
    if isinstance(worker, WarmChild):
        return await worker.wait()
    delay = 0.005
    while worker.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return worker.returncode


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _settle(output: OutputLines, *readers: asyncio.Task[Any]) -> None:
    """Let the pipe readers finish once the worker's group is killed (asyncio's child watcher
    reaps the worker): all the output it wrote reaches ``on_output_line``, however slow that is.
    A process that left the group (``setsid``) may hold a pipe open: give up on it when no data
    came for a while, or when it goes on writing for too long."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _DRAIN_LIMIT
    try:
        pending: set[asyncio.Task[Any]] = set(readers)
        while pending and loop.time() < give_up and not output.stalled(_STALL):
            _, pending = await asyncio.wait(pending, timeout=0.1)
    finally:
        pending = {reader for reader in readers if not reader.done()}
        for reader in pending:
            reader.cancel()
        if pending:
            await asyncio.wait(pending)


async def _read_answer(stream: asyncio.StreamReader) -> bytes:
    """The worker's answer: one line of JSON. Read up to its newline, not to EOF, which a
    process forked by the function could hold off."""
    data = b""
    while chunk := await stream.read(1 << 16):
        data += chunk
        if data.endswith(b"\n"):
            break
    return data


def _parse_answer(data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _died(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the worker crashed: it was killed by {name} before the function returned"
    return (
        f"the worker exited with code {returncode} without a result: the function called "
        f"os._exit({returncode}), native code crashed, or the worker could not start (see its output)"
    )
