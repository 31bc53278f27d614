"""One interface to podman and Docker, through their command lines (which share every flag used
here; the few differences are decided by :attr:`ContainerEngine.name`).

The engine's client runs in its own session, so a Ctrl-C at the executor's terminal does not
reach the containers (the executor stops them itself), and with an environment without the
executor's secrets (:func:`executors.protect.without_secrets`). Nothing of that environment goes
into a container: its variables are only the ``-e NAME=VALUE`` pairs passed explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from executors.config import ConfigError
from executors.protect import without_secrets

ENGINES = ("podman", "docker")
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")  # where podman finds GPU device specs (nvidia-ctk cdi generate)
_CHECK_TIMEOUT = 60.0
_QUICK_TIMEOUT = 60.0


class EngineError(Exception):
    """An engine command failed; the message is its last line of stderr."""


@dataclass(frozen=True)
class RunOptions:
    """How one container runs (everything the engine's ``run`` gets besides image and command)."""

    name: str
    labels: Mapping[str, str]
    env: Mapping[str, str]
    network: str
    memory: int  # bytes; swap is not allowed beyond it
    cpus: float
    pids_limit: int
    mounts: Sequence[tuple[str, str, bool]] = ()  # (host path, container path, read only)
    workdir: str | None = None
    gpus: int = 0


class ContainerEngine:
    """``podman`` (the default) or ``docker``, or a path to one of them."""

    def __init__(self, binary: str = "podman") -> None:
        self.binary = binary
        name = os.path.basename(binary)
        self.name = "docker" if name.startswith("docker") else "podman"

    # -- at start -------------------------------------------------------------------------------

    def check(self) -> str:
        """The engine's version; ConfigError (one line) if it is missing or unusable (blocking)."""
        path = shutil.which(self.binary)
        if path is None:
            raise ConfigError(f"the container engine {self.binary!r} is not installed (not found on PATH): "
                              "install it, or choose another with COLONIES_CONTAINER_ENGINE "
                              f"({' or '.join(ENGINES)})")
        try:
            done = subprocess.run([path, "info"], capture_output=True, timeout=_CHECK_TIMEOUT,
                                  env=without_secrets(), stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"the container engine {self.binary!r} cannot be used: '{self.binary} info' "
                              f"failed: {exc}") from None
        if done.returncode != 0:
            raise ConfigError(f"the container engine {self.binary!r} cannot be used: '{self.binary} info' "
                              f"failed: {_last_line(done.stderr) or f'exit code {done.returncode}'}")
        version = subprocess.run([path, "--version"], capture_output=True, timeout=_CHECK_TIMEOUT,
                                 env=without_secrets(), stdin=subprocess.DEVNULL)
        return version.stdout.decode(errors="replace").strip() or self.binary

    # -- images ---------------------------------------------------------------------------------

    async def has_image(self, image: str) -> bool:
        return (await self._call("image", "inspect", "--format", "{{.Id}}", image, check=False))[0] == 0

    async def pull(self, image: str) -> None:
        await self._call("pull", "-q", image, timeout=None)

    # -- containers -----------------------------------------------------------------------------

    def run_command(self, options: RunOptions, image: str, argv: Sequence[str]) -> list[str]:
        """The ``run`` command line: attached (stdout and stderr are the command's), with an init
        as PID 1 (so SIGTERM stops the command), never privileged, and no pulling."""
        command = [self.binary, "run", "--name", options.name, "--init", "--pull", "never",
                   "--network", options.network, "--memory", str(options.memory),
                   "--memory-swap", str(options.memory), "--cpus", f"{options.cpus:g}",
                   "--pids-limit", str(options.pids_limit), "--security-opt", "no-new-privileges",
                   "--sig-proxy=false"]
        if self.name == "podman":
            command.append("--http-proxy=false")  # podman would pass the host's proxy variables in
        for key, value in options.labels.items():
            command += ["--label", f"{key}={value}"]
        for host, inside, read_only in options.mounts:
            command += ["--volume", f"{host}:{inside}:{'ro' if read_only else 'rw'}"]
        if options.workdir:
            command += ["--workdir", options.workdir]
        for key, value in options.env.items():
            command += ["--env", f"{key}={value}"]
        command += self._gpu_flags(options.gpus)
        command += [image, *argv]
        return command

    async def start(self, command: Sequence[str], cwd: str) -> asyncio.subprocess.Process:
        """Start a ``run_command`` (its stdout and stderr are pipes) in the directory ``cwd``:
        podman's conmon keeps that as its working directory and, on cgroup v1, leaves a file
        ``oom`` there when the kernel's OOM killer struck in the container."""
        return await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=without_secrets(), start_new_session=True, cwd=cwd,
        )

    async def oom_killed(self, name: str, cwd: str) -> bool:
        """Whether the OOM killer struck in container ``name`` (started in ``cwd``), as far as the
        engine can tell: its ``State.OOMKilled``, or conmon's ``oom`` file."""
        if os.path.exists(os.path.join(cwd, "oom")):
            return True
        code, out = await self._call("inspect", "--format", "{{.State.OOMKilled}}", name, check=False)
        return code == 0 and out.strip() == "true"

    async def stop(self, name: str, grace: float) -> None:
        """SIGTERM, ``grace`` seconds, then SIGKILL (best effort: it may be gone already)."""
        await self._call("stop", "-t", str(max(0, round(grace))), name, check=False,
                         timeout=grace + _QUICK_TIMEOUT)

    async def remove(self, *names: str) -> None:
        """Remove containers, killing them if they run (best effort)."""
        if names:
            await self._call("rm", "-f", *names, check=False)

    async def labelled(self, key: str, value: str) -> list[str]:
        """Ids of the containers, running or not, labelled ``key=value``."""
        _, out = await self._call("ps", "-a", "-q", "--filter", f"label={key}={value}", check=False)
        return out.split()

    # -- helpers ----------------------------------------------------------------------------------

    def _gpu_flags(self, count: int) -> list[str]:
        if count <= 0:
            return []
        if self.name == "docker":
            return ["--gpus", str(count)]
        if not any(os.path.isdir(d) and any(n.startswith("nvidia") for n in os.listdir(d)) for d in CDI_DIRS):
            raise EngineError(f"conditions.gpu.count is {count}, but this executor has no GPUs: podman finds "
                              f"none without an nvidia CDI spec in {' or '.join(CDI_DIRS)}")
        return ["--device", "nvidia.com/gpu=all"]

    async def _call(self, *args: str, check: bool = True, timeout: float | None = _QUICK_TIMEOUT
                    ) -> tuple[int, str]:
        try:
            child = await asyncio.create_subprocess_exec(
                self.binary, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=without_secrets(), start_new_session=True,
            )
        except OSError as exc:
            raise EngineError(f"cannot run {self.binary}: {exc}") from None
        try:
            async with asyncio.timeout(timeout):
                out, err = await child.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            raise EngineError(f"'{self.binary} {args[0]}' did not finish within {timeout:g} s") from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            raise
        code = child.returncode if child.returncode is not None else -1
        if check and code != 0:
            raise EngineError(_last_line(err) or f"'{self.binary} {args[0]}' exited with code {code}")
        return code, out.decode(errors="replace")


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""
