"""The batch script of one process: ``#SBATCH`` lines from the spec's conditions and the executor's
configuration, the job's explicit environment, and the ``srun`` step. Every value is quoted
(``shlex.quote``); nothing of the spec is ever run through a shell unquoted.

| spec | ``#SBATCH`` |
|---|---|
| ``conditions.nodes`` | ``--nodes`` |
| ``conditions.processespernode`` (or ``processes-per-node``) | ``--ntasks-per-node`` |
| ``conditions.cpu`` (``"500m"``: millicores) | ``--cpus-per-task`` (rounded up) |
| ``conditions.mem`` (``"1Gi"``) | ``--mem`` in MiB (rounded up), per node |
| ``conditions.gpu.count`` | ``--gres=gpu:N`` |
| ``conditions.walltime`` (seconds) | ``--time`` (Slurm counts in whole minutes) |
| configuration | ``--partition``, ``--account``, ``--qos``, extra lines, ``module load`` |
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from executors.command_spec import parse_cpus, parse_gpus, parse_memory
from executors.job import JobFailed
from pycolonies.models import Conditions

RUNTIMES = ("apptainer", "singularity", "podman")


@dataclass(frozen=True)
class Resources:
    nodes: int = 0
    tasks_per_node: int = 0
    cpus_per_task: int = 0
    mem_mib: int = 0
    gpus: int = 0
    walltime: int = 0  # seconds

    def sbatch_options(self) -> list[str]:
        options = []
        for name, value in (("--nodes", self.nodes), ("--ntasks-per-node", self.tasks_per_node),
                            ("--cpus-per-task", self.cpus_per_task)):
            if value:
                options.append(f"{name}={value}")
        if self.mem_mib:
            options.append(f"--mem={self.mem_mib}M")
        if self.gpus:
            options.append(f"--gres=gpu:{self.gpus}")
        if self.walltime:
            options.append(f"--time={self.walltime // 60}:{self.walltime % 60:02d}")
        return options


def read_resources(conditions: Conditions) -> Resources:
    """The spec's resources, or JobFailed naming the field that is wrong."""
    for name in ("nodes", "processespernode", "walltime"):
        value = getattr(conditions, name)
        if not isinstance(value, int) or value < 0:
            raise JobFailed(f"conditions.{name} must be a whole number, at least 0, not {value!r}")
    cpus = parse_cpus(conditions.cpu, "conditions.cpu")
    memory = parse_memory(conditions.mem, "conditions.mem")
    gpus = parse_gpus(conditions.gpu.count)
    return Resources(nodes=conditions.nodes, tasks_per_node=conditions.processespernode,
                     cpus_per_task=math.ceil(cpus) if cpus else 0,
                     mem_mib=math.ceil(memory / 2**20) if memory else 0, gpus=gpus,
                     walltime=conditions.walltime)


@dataclass(frozen=True)
class Site:
    """What the executor's configuration adds to every job (never the spec)."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    sbatch_lines: tuple[str, ...] = ()  # e.g. "--constraint=cpu", "--exclusive"
    modules: tuple[str, ...] = ()  # module load ...
    runtime: str = ""  # container runtime for kwargs['docker-image']: apptainer, singularity, podman

    def sbatch_options(self) -> list[str]:
        options = [f"--{name}={value}" for name, value in
                   (("partition", self.partition), ("account", self.account), ("qos", self.qos)) if value]
        return options + list(self.sbatch_lines)


@dataclass(frozen=True)
class Script:
    """One batch script: ``step`` is the command line run with ``srun``; ``stdin``/``stdout``
    redirect the step's (the python worker's protocol)."""

    name: str
    comment: str
    workdir: Path
    step: Sequence[str]
    env: Mapping[str, str]
    resources: Resources = field(default_factory=Resources)
    single_task: bool = False  # one task on one node, whatever the spec asks
    stdin: Path | None = None
    stdout: Path | None = None
    cwd: Path | None = None  # where the step runs, when not in workdir (a process's fs directory)

    @property
    def output(self) -> Path:
        """The job's output file (stdout and stderr of the script and its step)."""
        return self.workdir / "slurm-%j.out"

    def text(self, site: Site) -> str:
        options = [f"--job-name={self.name}", f"--comment={self.comment}", f"--output={self.output}",
                   f"--chdir={self.workdir}", "--export=NONE",
                   *self.resources.sbatch_options(), *site.sbatch_options()]
        shell = "#!/bin/bash -l" if site.modules else "#!/bin/bash"  # a login shell defines `module`
        lines = [shell, *(f"#SBATCH {shlex.quote(option)}" for option in options), "set -e"]
        if site.modules:
            lines.append("module load " + " ".join(shlex.quote(module) for module in site.modules))
        lines += [f"export {name}={shlex.quote(value)}" for name, value in self.env.items()]
        if self.cwd is not None:
            lines.append(f"cd {shlex.quote(str(self.cwd))}")
        srun = ["srun", "--export=ALL"] + (["--nodes=1", "--ntasks=1"] if self.single_task else [])
        line = " ".join(shlex.quote(word) for word in [*srun, *self.step])
        if self.stdin is not None:
            line += f" < {shlex.quote(str(self.stdin))}"
        if self.stdout is not None:
            line += f" > {shlex.quote(str(self.stdout))}"
        return "\n".join(lines) + "\n" + line + "\n"


def in_container(runtime: str, image: str, argv: Sequence[str], workdir: Path, env_names: Sequence[str],
                 gpus: int, fsdir: Path | None = None) -> list[str]:
    """``argv`` run in ``image`` by ``runtime`` on the node, with the working dir mounted at its own
    path (where ``$COLONIES_OUTPUT`` points), the process's fs directory too (``$COLONIES_FS_DIR``),
    and the job's environment."""
    if not runtime:
        raise JobFailed(f"kwargs['docker-image'] asks for the image {image!r}, but this executor has no "
                        "container runtime configured (COLONIES_SLURM_CONTAINER_RUNTIME: apptainer, "
                        "singularity or podman)")
    mounts = [f"{path}:{path}" for path in (workdir, *([fsdir] if fsdir is not None else []))]
    if runtime in ("apptainer", "singularity"):
        source = image if "://" in image or image.endswith(".sif") or image.startswith("/") else f"docker://{image}"
        binds = [option for mount in mounts for option in ("--bind", mount)]
        return [runtime, "exec", *(["--nv"] if gpus else []), *binds, "--pwd", str(workdir), source, *argv]
    volumes = [option for mount in mounts for option in ("-v", mount)]
    passed = [option for name in env_names for option in ("--env", name)]
    devices = ["--device", "nvidia.com/gpu=all"] if gpus else []
    return ["podman", "run", "--rm", "--init", "--network", "host", *volumes, "-w", str(workdir),
            *passed, *devices, image, *argv]
