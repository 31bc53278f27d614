"""The container executor: runs the reference's ``execute`` spec (``cmd``, ``args``,
``docker-image``) in a container with podman (the default) or Docker.

Each process gets a fresh container, labelled with the executor and the process, run with an
init as PID 1, ``--network none`` unless configured, memory/CPU/PID limits (the spec's, or the
executor's defaults), never privileged, and only the environment the spec gives plus a few
documented ``COLONIES_*`` variables. Its stdout and stderr become process logs as they come; exit
code 0 closes the process with the JSON the command wrote to ``$COLONIES_OUTPUT`` (or else its
last stdout lines), anything else fails it with the tail of stderr. Cancellation, ``maxexectime``
and a shutdown stop the container (SIGTERM, ``stop_grace`` seconds, SIGKILL); it is removed in
every case, and at start the executor removes what a crashed run of itself left behind. A spec's
``fs`` directory (:mod:`executors.process_files`) is mounted at ``fs.mount`` (default ``/cfs``).
Settings: :class:`ContainerSettings` (``COLONIES_CONTAINER_*``, see docs/executors.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.base import BaseExecutor, Job, JobFailed
from executors.command_spec import (
    FUNCNAME,
    FUNCTION_ARGS,
    CommandSpec,
    command_output,
    parse_cpus,
    parse_memory,
    read_command_spec,
)
from executors.config import ConfigError, ExecutorConfig
from executors.engine import ContainerEngine, EngineError, RunOptions
from executors.lines import OutputLines
from executors.process_files import FS_DIR_VARIABLE, fs_mount
from executors.register import Identity
from pycolonies.models import Process

log = logging.getLogger("executors")

LABEL_EXECUTOR = "colonies.executor"  # the executor's id
LABEL_EXECUTORNAME = "colonies.executorname"  # <colony>/<executor name>
LABEL_PROCESS = "colonies.process"  # the process's id
EXCHANGE = "/colonies"  # the per-run directory inside the container
_OOM_EXIT = 137  # 128 + SIGKILL: what the kernel's OOM killer leaves
_ENGINE_EXITS = {125: "the container engine could not run the container",
                 126: "the command cannot be invoked in the image",
                 127: "the command was not found in the image"}


@dataclass(frozen=True)
class ContainerSettings:
    engine: str = "podman"  # or "docker", or a path to either
    network: str = "none"  # "host" or a network name lets the command reach out
    pull: bool = True  # pull an image that is not here
    mounts: tuple[tuple[str, str, bool], ...] = ()  # (host path, container path, read only)
    workdir: str | None = None  # the command's working directory (default: the image's)
    memory: int = 2**30  # bytes, when the spec's conditions.mem is empty
    cpus: float = 1.0  # cores, when the spec's conditions.cpu is empty
    pids_limit: int = 1024
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL
    hand_over_identity: bool = False  # give the command the executor's key (see docs/executors.md)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ContainerSettings:
        env = os.environ if environ is None else environ
        get = lambda name: env.get(f"COLONIES_CONTAINER_{name}", "").strip()  # noqa: E731
        values: dict[str, Any] = {}
        if get("ENGINE"):
            values["engine"] = get("ENGINE")
        if get("NETWORK"):
            values["network"] = get("NETWORK")
        if get("PULL"):
            values["pull"] = _flag(get("PULL"), "COLONIES_CONTAINER_PULL")
        if get("MOUNTS"):
            values["mounts"] = tuple(parse_mount(m) for m in get("MOUNTS").split(",") if m.strip())
        if get("WORKDIR"):
            values["workdir"] = get("WORKDIR")
        parsers: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
            ("MEMORY", "memory", lambda text: parse_memory(text, "the memory limit")),
            ("CPUS", "cpus", lambda text: parse_cpus(text, "the CPU limit")),
            ("PIDS_LIMIT", "pids_limit", int),
            ("STOP_GRACE", "stop_grace", float),
        )
        for name, key, parse in parsers:
            if get(name):
                values[key] = _setting(parse, get(name), f"COLONIES_CONTAINER_{name}")
        if get("HAND_OVER_IDENTITY"):
            values["hand_over_identity"] = _flag(get("HAND_OVER_IDENTITY"),
                                                 "COLONIES_CONTAINER_HAND_OVER_IDENTITY")
        return cls(**values)

    def checked(self) -> ContainerSettings:
        """These settings, or ConfigError naming the first bad one."""
        for host, inside, _ in self.mounts:
            if not os.path.isabs(host) or not os.path.exists(host):
                raise ConfigError(f"COLONIES_CONTAINER_MOUNTS: the host path {host!r} must be an existing "
                                  "absolute path")
            if not os.path.isabs(inside) or inside.rstrip("/") in ("", EXCHANGE):
                raise ConfigError(f"COLONIES_CONTAINER_MOUNTS: the container path {inside!r} must be an "
                                  f"absolute path other than / and {EXCHANGE}")
        if self.workdir is not None and not os.path.isabs(self.workdir):
            raise ConfigError(f"COLONIES_CONTAINER_WORKDIR must be an absolute path, not {self.workdir!r}")
        if self.pids_limit < 1:
            raise ConfigError(f"COLONIES_CONTAINER_PIDS_LIMIT must be at least 1, not {self.pids_limit}")
        if self.stop_grace < 0:
            raise ConfigError(f"COLONIES_CONTAINER_STOP_GRACE must not be negative, not {self.stop_grace:g}")
        return self


def parse_mount(text: str) -> tuple[str, str, bool]:
    """``HOST:CONTAINER`` or ``HOST:CONTAINER:ro`` (or ``:rw``)."""
    parts = text.strip().split(":")
    if len(parts) == 2 or (len(parts) == 3 and parts[2] in ("ro", "rw")):
        return parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"
    raise ConfigError(f"COLONIES_CONTAINER_MOUNTS: {text!r} is not HOST:CONTAINER[:ro]")


class ContainerExecutor(BaseExecutor):
    executortype = "container-executor"

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        settings: ContainerSettings | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, announce=announce)
        self.settings = settings
        self.engine = ContainerEngine()

    def setup(self) -> None:
        settings = (self.settings or ContainerSettings.from_env()).checked()
        self.settings = settings
        self.engine = ContainerEngine(settings.engine)
        version = self.engine.check()
        self._announce(f"Containers: {version}, network {settings.network}, "
                       f"default limits {settings.memory // 2**20} MiB and {settings.cpus:g} CPUs")

    def functions(self) -> list[tuple[str, list[str]]]:
        return [(FUNCNAME, FUNCTION_ARGS)]

    async def started(self, identity: Identity) -> None:
        """Remove the containers a crashed run of this executor left (same id, or same name in the
        same colony)."""
        found: set[str] = set()
        for key, value in _owner_labels(identity).items():
            found.update(await self.engine.labelled(key, value))
        if found:
            await self.engine.remove(*sorted(found))
            self._announce(f"Removed {len(found)} container(s) left by an earlier run of this executor")

    async def execute(self, job: Job) -> list[Any]:
        command = read_command_spec(job.process)
        try:
            async with asyncio.timeout(job.timeout) as deadline:
                await self._ensure_image(command.image, job)
                with tempfile.TemporaryDirectory(prefix="colonies-container-") as private:
                    return await self._run(job, command, Path(private))
        except TimeoutError:
            if not deadline.expired():
                raise
            raise JobFailed(f"the command did not finish within its maxexectime of {job.timeout:g} s; "
                            "the container was stopped") from None

    async def _ensure_image(self, image: str, job: Job) -> None:
        assert self.settings is not None
        if await self.engine.has_image(image):
            return
        if not self.settings.pull:
            raise JobFailed(f"kwargs['docker-image']: image {image!r} is not on this executor's machine, and "
                            "pulling is turned off (COLONIES_CONTAINER_PULL=false)")
        await job.log(f"[executor: pulling image {image}]")
        try:
            await self.engine.pull(image)
        except EngineError as exc:
            raise JobFailed(f"kwargs['docker-image']: image {image!r} is not on this executor's machine, "
                            f"and pulling it failed: {exc}") from None

    async def _run(self, job: Job, command: CommandSpec, private: Path) -> list[Any]:
        """Run the container, with ``private`` (a directory of this run's own) as the engine's
        working directory and holding the exchange directory mounted at /colonies."""
        exchange = _exchange_dir(private, job)
        options = self._options(job, command, exchange)
        try:
            argv = self.engine.run_command(options, command.image, command.argv)
        except EngineError as exc:
            raise JobFailed(str(exc)) from None
        stdout = OutputLines(job.log, stop=lambda: None)
        stderr = OutputLines(job.log, stop=lambda: None)
        child: asyncio.subprocess.Process | None = None
        pumps: set[asyncio.Task[None]] = set()
        try:
            try:
                child = await self.engine.start(argv, cwd=str(private))
            except OSError as exc:
                raise JobFailed(f"cannot run the container engine {self.engine.binary!r}: {exc}") from None
            assert child.stdout is not None and child.stderr is not None
            pumps = {asyncio.create_task(stdout.pump(child.stdout)),
                     asyncio.create_task(stderr.pump(child.stderr))}
            code = await child.wait()
            await asyncio.wait(pumps, timeout=5)
            if code == 0:
                return command_output(exchange / "output.json", stdout.tail)
            oom = await self.engine.oom_killed(options.name, cwd=str(private))
            raise JobFailed(_failure(code, oom, options.memory), "\n".join(stderr.tail or stdout.tail))
        finally:
            await self._dispose(child, options.name, pumps)

    async def _dispose(
        self, child: asyncio.subprocess.Process | None, name: str, pumps: set[asyncio.Task[None]]
    ) -> None:
        """Stop the container if it still runs (cancelled, out of time), then remove it (also
        when its start was cut short: it may have been created)."""
        assert self.settings is not None
        try:
            if child is not None and child.returncode is None:
                await self.engine.stop(name, self.settings.stop_grace)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.wait(), 10)
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
        finally:
            await self.engine.remove(name)
            for pump in pumps:
                pump.cancel()
            if pumps:
                await asyncio.wait(pumps)

    def _options(self, job: Job, command: CommandSpec, exchange: Path) -> RunOptions:
        assert self.settings is not None
        settings, me, process = self.settings, job.executor, job.process
        env = dict(command.env)
        env.update(COLONIES_PROCESS_ID=process.processid, COLONIES_INPUT=f"{EXCHANGE}/input.json",
                   COLONIES_OUTPUT=f"{EXCHANGE}/output.json")
        mounts = [(str(exchange), EXCHANGE, False), *settings.mounts]
        if job.fsdir is not None:
            mount = self._fs_mount(process)
            mounts.append((str(job.fsdir), mount, False))
            env[FS_DIR_VARIABLE] = mount
        if settings.hand_over_identity:
            config = job.config
            env.update(COLONIES_SERVER_HOST=config.host, COLONIES_SERVER_PORT=str(config.port),
                       COLONIES_TLS=str(config.tls).lower(), COLONIES_COLONY_NAME=me.colonyname,
                       COLONIES_EXECUTOR_ID=me.executorid, COLONIES_PRVKEY=me.prvkey)
        return RunOptions(
            name=f"colonies-{process.processid[:16]}-{secrets.token_hex(3)}",
            labels={**_owner_labels(me), LABEL_PROCESS: process.processid},
            env=env,
            network=settings.network,
            memory=command.memory or settings.memory,
            cpus=command.cpus or settings.cpus,
            pids_limit=settings.pids_limit,
            mounts=tuple(mounts),
            workdir=settings.workdir,
            gpus=command.gpus,
        )

    def _fs_mount(self, process: Process) -> str:
        """Where the process's fs directory appears in the container (``fs.mount``, default /cfs)."""
        assert self.settings is not None
        mount = fs_mount(process).rstrip("/") or "/"
        taken = [EXCHANGE, *(inside.rstrip("/") for _, inside, _ in self.settings.mounts)]
        if mount == "/" or any(mount == t or mount.startswith(t + "/") or t.startswith(mount + "/")
                               for t in taken):
            raise JobFailed(f"fs.mount {mount!r} cannot be used: it is / or overlaps {', '.join(taken)}, "
                            "which this executor mounts itself")
        return mount

    def prepare_fs(self, process_dir: Path) -> None:
        """The command may run as any user of its image: the process's fs directory (mounted) is
        writable by all, inside the process's directory only the executor's user can enter."""
        root = process_dir / "fs"
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o777 if path.is_dir() else 0o666)


def _owner_labels(identity: Identity) -> dict[str, str]:
    return {LABEL_EXECUTOR: identity.executorid,
            LABEL_EXECUTORNAME: f"{identity.colonyname}/{identity.executorname}"}


def _exchange_dir(private: Path, job: Job) -> Path:
    """The directory mounted at /colonies: the process's input in, the command's output out. The
    command may run as any user of its image, so it is writable by all, inside a directory only
    the executor's user can enter."""
    exchange = private / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    (exchange / "input.json").write_text(json.dumps(job.process.input))
    return exchange


def _failure(code: int, oom: bool, memory: int) -> str:
    if oom or code == _OOM_EXIT:
        cause = "it ran out of" if oom else "most likely it ran out of"
        return (f"the command was killed (exit code {code}, SIGKILL): {cause} its memory limit of "
                f"{memory // 2**20} MiB (conditions.mem, or the executor's default)")
    if code in _ENGINE_EXITS:
        return f"{_ENGINE_EXITS[code]} (exit code {code})"
    return f"the command exited with code {code}"


def _flag(text: str, name: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {text!r}")


def _setting(parse: Callable[[str], Any], text: str, name: str) -> Any:
    try:
        return parse(text)
    except (JobFailed, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None
