"""The HPC executor (``--type slurm``): each process becomes a Slurm batch job on the cluster the
executor runs beside.

* ``execute`` specs (``kwargs.cmd``/``args``, optionally ``docker-image``) run their command with
  ``srun`` (in apptainer/singularity or podman on the node when an image is named and a runtime
  is configured); Python functions (shipped with ``func_spec(func=f)``, or allow-listed) run in
  the job with the python kind's worker. Resources come from the spec's conditions, site options
  (partition, account, QOS, extra ``#SBATCH`` lines, modules) from the configuration only
  (:mod:`executors.slurm_script`).
* Each process gets a working dir under ``COLONIES_SLURM_WORKDIR`` holding its batch script, its
  input, the job's output file and the result file ``$COLONIES_OUTPUT`` the command may write; the
  job id, working dir and script are process attributes. A spec's ``fs`` dirs and snapshots are
  synced into ``$COLONIES_SLURM_WORKDIR/fs/<processid>/fs`` (on the shared filesystem; the job
  gets ``$COLONIES_FS_DIR``, a Python function runs there) and its results back after the job.
* All jobs in flight (``--concurrency``, default 100) are followed by one status query per poll
  interval (:mod:`executors.slurm_tracker`); their output files are tailed into the process logs.
* Cancellation, removal and ``maxexectime`` cancel the job (``scancel``). A stop leaves the jobs
  running (they are the cluster's); the next start with the same executor takes them up again by
  the process id in the job's comment, and cancels jobs whose process is no longer its.
* Jobs get ``--export=NONE`` and an explicit environment: none of the executor's ``COLONIES_*``
  or ``AWS_*`` variables (a Python function's job file holds the executor's key, as its worker needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.base import BaseExecutor, Job, JobFailed, JobReleased
from executors.command_spec import FUNCNAME, FUNCTION_ARGS, command_output, read_command_spec
from executors.config import ConfigError, ExecutorConfig
from executors.process_files import FS_DIR_VARIABLE
from executors.python_runner import ClientInfo, RunnerSettings, offered_functions, worker_job, worker_result
from executors.register import Identity
from executors.slurm_cli import JobState, SlurmError, SlurmTools
from executors.slurm_script import RUNTIMES, Script, Site, in_container, read_resources
from executors.slurm_tracker import Tracker
from pycolonies.models import Process

log = logging.getLogger("executors")

COMMENT_PREFIX = "colonies:"  # comment = colonies:<colony>/<executor name>:<process id>
PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH")  # the executor's variables jobs get
SECRET_PREFIXES = ("COLONIES_", "AWS_", "EXECUTOR_")  # never passed, whatever COLONIES_SLURM_PASS_ENV says
WORKER_MODULE = "executors.python_worker"


@dataclass(frozen=True)
class SlurmSettings:
    workdir: str = ""  # base of the per-process working dirs, shared with the nodes (~/colonies-slurm)
    partition: str = ""
    account: str = ""
    qos: str = ""
    sbatch: tuple[str, ...] = ()  # extra #SBATCH options, e.g. "--constraint=cpu"
    modules: tuple[str, ...] = ()  # module load, before the command
    container_runtime: str = ""  # apptainer, singularity or podman, for kwargs['docker-image']
    python: str = sys.executable  # the interpreter Python functions run with on the nodes
    bin_dir: str = ""  # where sbatch, squeue, scancel and sacct are (default: PATH)
    poll_min: float = 1.0  # seconds between status rounds while jobs change...
    poll_max: float = 10.0  # ...backing off up to this while they do not
    pass_env: tuple[str, ...] = PASS_ENV

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlurmSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in ("WORKDIR", "PARTITION", "ACCOUNT", "QOS", "CONTAINER_RUNTIME", "PYTHON", "BIN"):
            text = env.get(f"COLONIES_SLURM_{name}", "").strip()
            if text:
                values["bin_dir" if name == "BIN" else name.lower()] = text
        for name, split in (("SBATCH", ";"), ("MODULES", ","), ("PASS_ENV", ",")):
            text = env.get(f"COLONIES_SLURM_{name}", "").strip()
            if text:
                values[name.lower()] = tuple(item.strip() for item in text.split(split) if item.strip())
        for name in ("POLL_MIN", "POLL_MAX"):
            text = env.get(f"COLONIES_SLURM_{name}", "").strip()
            if text:
                try:
                    values[name.lower()] = float(text)
                except ValueError:
                    raise ConfigError(f"COLONIES_SLURM_{name} must be a number of seconds, "
                                      f"not {text!r}") from None
        return cls(**values)

    def checked(self) -> SlurmSettings:
        """These settings (the working dir made absolute), or ConfigError naming the first bad one."""
        workdir = os.path.abspath(os.path.expanduser(self.workdir or "~/colonies-slurm"))
        if self.container_runtime and self.container_runtime not in RUNTIMES:
            raise ConfigError(f"COLONIES_SLURM_CONTAINER_RUNTIME must be one of {', '.join(RUNTIMES)}, "
                              f"not {self.container_runtime!r}")
        if not 0 < self.poll_min <= self.poll_max:
            raise ConfigError("COLONIES_SLURM_POLL_MIN must be more than 0 and at most "
                              "COLONIES_SLURM_POLL_MAX")
        for option in self.sbatch:
            if not option.startswith("-") or "\n" in option:
                raise ConfigError(f"COLONIES_SLURM_SBATCH: {option!r} is not an sbatch option (--name=value)")
        return SlurmSettings(**{**self.__dict__, "workdir": workdir})

    @property
    def site(self) -> Site:
        return Site(self.partition, self.account, self.qos, self.sbatch, self.modules, self.container_runtime)


class SlurmExecutor(BaseExecutor):
    executortype = "hpc-executor"
    default_concurrency = 100
    detached = True

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        settings: SlurmSettings | None = None,
        allow_code: bool = True,
        allowed: Iterable[str] = (),
        announce: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, announce=announce)
        self.settings = settings
        self.runner = RunnerSettings(allow_code=allow_code, allowed=tuple(allowed))
        self.tools = SlurmTools()
        self.tracker = Tracker(self.tools)
        self._adopted: dict[str, JobState] = {}  # process id -> its job, taken up at start

    def setup(self) -> None:
        settings = (self.settings or SlurmSettings.from_env()).checked()
        self.settings = settings
        self.runner = RunnerSettings(allow_code=self.runner.allow_code, allowed=self.runner.allowed,
                                     python=settings.python)
        self.tools = SlurmTools(settings.bin_dir, _tools_env())
        self.tracker = Tracker(self.tools, settings.poll_min, settings.poll_max)
        missing = self.tools.missing()
        if missing:
            raise ConfigError(f"Slurm's {', '.join(missing)} not found "
                              f"({'in ' + settings.bin_dir if settings.bin_dir else 'on PATH'}; "
                              "set COLONIES_SLURM_BIN to their directory)")
        Path(settings.workdir).mkdir(parents=True, exist_ok=True, mode=0o700)
        site = settings.site
        self._announce(f"Slurm: jobs in {settings.workdir}, partition {site.partition or '(default)'}, "
                       f"containers {site.runtime or 'not configured'}")

    def functions(self) -> list[tuple[str, list[str]]]:
        return [(FUNCNAME, FUNCTION_ARGS), *offered_functions(self.runner)]

    def fs_base(self) -> Path:
        """The processes' fs directories must be where the nodes see them: under the working dir."""
        if self.config.fs_dir or self.settings is None:
            return super().fs_base()
        return Path(self.settings.workdir) / "fs"

    async def resume(self, identity: Identity, running: list[Process]) -> list[Process]:
        """Take up the jobs of the processes still assigned to this executor; cancel this
        executor's jobs whose process is not."""
        try:
            jobs = await self.tools.mine()
        except SlurmError as exc:
            raise ConfigError(f"cannot list this executor's Slurm jobs: {exc}") from None
        prefix = f"{COMMENT_PREFIX}{identity.colonyname}/{identity.executorname}:"
        ours: dict[str, JobState] = {}
        stale: list[str] = []
        for state in sorted((s for s in jobs if s.comment.startswith(prefix)), key=lambda s: int(s.jobid)):
            processid = state.comment.removeprefix(prefix)
            earlier = ours.get(processid)
            if earlier is not None and not earlier.final:
                stale.append(earlier.jobid)  # submitted twice: keep the newest
            ours[processid] = state
        assigned = {process.processid for process in running}
        stale += [state.jobid for pid, state in ours.items() if pid not in assigned and not state.final]
        if stale:
            await self.tools.cancel(*stale)
            self._announce(f"Cancelled {len(stale)} Slurm job(s) whose process is no longer this executor's")
        self._adopted = {pid: state for pid, state in ours.items() if pid in assigned}
        if self._adopted:
            self._announce(f"Taking up {len(self._adopted)} Slurm job(s) left by an earlier run")
        return [process for process in running if process.processid in self._adopted]

    async def execute(self, job: Job) -> list[Any]:
        assert self.settings is not None
        adopted = self._adopted.pop(job.processid, None)
        if adopted is not None:
            jobid, workdir = adopted.jobid, Path(adopted.workdir)
            await job.log(f"[executor: taking up Slurm job {jobid} again after a restart; its output "
                          "follows from the start]")
        else:
            jobid, workdir = await self._submit(job)
        try:
            async with asyncio.timeout(job.timeout) as deadline:
                final, tail = await self.tracker.follow(jobid, workdir / f"slurm-{jobid}.out", job.log)
        except TimeoutError:
            if not deadline.expired():
                raise
            await self._cancel(jobid)
            raise JobFailed(f"the Slurm job {jobid} did not finish within the process's maxexectime of "
                            f"{job.timeout:g} s; it was cancelled") from None
        except BaseException:
            if not job.stopping():  # cancelled or removed, or taken away: the job goes too
                await self._cancel(jobid)
            raise
        return _outcome(final, tail, workdir, job.funcname == FUNCNAME)

    async def _submit(self, job: Job) -> tuple[str, Path]:
        """Write the process's working dir and batch script, and submit it; (job id, working dir)."""
        assert self.settings is not None
        workdir = _new_workdir(Path(self.settings.workdir) / job.processid)
        script = self._script(job, workdir)
        path = workdir / "job.sbatch"
        path.write_text(script.text(self.settings.site))
        try:
            jobid = await self.tools.submit(str(path), cwd=str(workdir))
        except SlurmError as exc:
            raise JobFailed(f"sbatch refused the job: {exc}", f"batch script: {path}") from None
        await job.log(f"[executor: Slurm job {jobid} submitted; working dir {workdir}]")
        shown = (("slurm.jobid", jobid), ("slurm.workdir", str(workdir)), ("slurm.script", str(path)))
        for key, value in shown:
            with contextlib.suppress(Exception):  # visibility only: never fail the job over it
                await job.attribute(key, value)
        return jobid, workdir

    def _script(self, job: Job, workdir: Path) -> Script:
        assert self.settings is not None
        process, me = job.process, job.executor
        resources = read_resources(process.spec.conditions)
        env = {name: os.environ[name] for name in self.settings.pass_env
               if name in os.environ and not name.startswith(SECRET_PREFIXES)}
        fs_env = {FS_DIR_VARIABLE: str(job.fsdir)} if job.fsdir is not None else {}
        common = {"name": f"colonies-{process.processid}", "workdir": workdir, "resources": resources,
                  "comment": f"{COMMENT_PREFIX}{me.colonyname}/{me.executorname}:{process.processid}"}
        if job.funcname != FUNCNAME:  # a Python function, in the python kind's worker
            config = job.config
            client = ClientInfo(host=config.host, port=config.port, tls=config.tls, colonyname=me.colonyname,
                                executorid=me.executorid, executor_prvkey=me.prvkey)
            _private_file(workdir / "worker-job.json", worker_job(process, self.runner, client))
            return Script(**common, step=[self.runner.python, "-m", WORKER_MODULE],
                          env={**env, **fs_env, "PYTHONUNBUFFERED": "1"}, single_task=True,
                          stdin=workdir / "worker-job.json", stdout=workdir / "worker-answer.json",
                          cwd=job.fsdir)
        command = read_command_spec(process, image_required=False)
        env.update(command.env)
        env.update(COLONIES_PROCESS_ID=process.processid, COLONIES_INPUT=str(workdir / "input.json"),
                   COLONIES_OUTPUT=str(workdir / "output.json"), **fs_env)
        (workdir / "input.json").write_text(json.dumps(process.input))
        step = command.argv
        if command.image:
            step = in_container(self.settings.container_runtime, command.image, command.argv, workdir,
                                list(env), resources.gpus, job.fsdir)
        return Script(**common, step=step, env=env)

    async def _cancel(self, jobid: str) -> None:
        try:
            await self.tools.cancel(jobid)
        except SlurmError as exc:
            log.warning("could not cancel Slurm job %s: %s", jobid, exc)


def _outcome(final: JobState, tail: list[str], workdir: Path, command: bool) -> list[Any]:
    """The process's output for a job that ended ``final``, or the exception that closes it."""
    job = f"the Slurm job {final.jobid}"
    details = "\n".join(tail)
    reason = f" ({final.reason})" if final.reason and final.reason != "None" else ""
    if not command and final.state in ("COMPLETED", "FAILED"):  # the worker's answer says it all
        answer = workdir / "worker-answer.json"
        return worker_result(answer.read_bytes() if answer.is_file() else b"", final.exitcode, tail)
    if final.state == "COMPLETED":
        return command_output(workdir / "output.json", tail)
    if final.state == "FAILED":
        if final.signal:
            raise JobFailed(f"{job} failed: the command was killed by signal {final.signal}", details)
        raise JobFailed(f"{job} failed: the command exited with exit code {final.exitcode}", details)
    if final.state == "PREEMPTED":
        raise JobReleased(f"{job} was preempted; the process goes back to the queue")
    messages = {
        "TIMEOUT": "hit its time limit (TIMEOUT: conditions.walltime, which Slurm counts in whole minutes)",
        "OUT_OF_MEMORY": "ran out of memory (OUT_OF_MEMORY: conditions.mem)",
        "NODE_FAIL": "was ended by a failure of its node (NODE_FAIL)",
        "CANCELLED": "was cancelled outside the executor (CANCELLED, e.g. scancel on the cluster)",
        "UNKNOWN": "is gone: neither squeue nor sacct knows it any more",
    }
    raise JobFailed(f"{job} {messages.get(final.state, f'ended {final.state}')}{reason}", details)


def _new_workdir(base: Path) -> Path:
    """A fresh working dir for one run of a process (a retried process gets another)."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for attempt in range(1, 10_000):
        workdir = base / str(attempt)
        with contextlib.suppress(FileExistsError):
            workdir.mkdir(mode=0o700)
            return workdir
    raise JobFailed(f"too many runs of this process in {base}")


def _private_file(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _tools_env() -> dict[str, str]:
    """The environment sbatch and friends run in: the executor's, without its secrets."""
    return {name: value for name, value in os.environ.items() if not name.startswith(SECRET_PREFIXES)}
