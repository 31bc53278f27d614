"""Slurm's command-line tools, run as asyncio subprocesses (never through a shell): submit a batch
script, read the state of many jobs in one call, cancel jobs.

State comes from ``squeue -t all`` (the controller keeps finished jobs for ``MinJobAge`` seconds,
with their exit status); a job that has left it is looked up with ``sacct`` (the accounting
database, or ``sacct -c``, the job completion file, where there is no database).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TOOLS = ("sbatch", "squeue", "scancel", "sacct")
_FIELDS = ("JobID", "State", "Reason", "exit_code", "Name", "WorkDir", "Comment")
_SQUEUE_FORMAT = ",".join(f"{name}:|" for name in _FIELDS)  # "|" ends each field
_TIMEOUT = 60.0  # seconds a Slurm command may take
FINAL = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED",
         "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}


class SlurmError(Exception):
    """A Slurm command failed; the message holds its stderr."""


@dataclass(frozen=True)
class JobState:
    jobid: str
    state: str  # e.g. PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT (without "by <uid>" suffixes)
    reason: str = ""
    exitcode: int | None = None  # the command's exit code, when it exited
    signal: int | None = None  # the signal that ended it, when one did
    name: str = ""
    workdir: str = ""
    comment: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL


@dataclass(frozen=True)
class SlurmTools:
    """Where the tools are (``bin_dir``, default: ``PATH``) and the environment they run in
    (``SLURM_CONF`` and the like)."""

    bin_dir: str = ""
    env: Mapping[str, str] | None = None

    def path(self, tool: str) -> str:
        if self.bin_dir:
            return os.path.join(self.bin_dir, tool)
        return shutil.which(tool) or tool

    def missing(self) -> list[str]:
        return [tool for tool in TOOLS if not os.access(self.path(tool), os.X_OK)]

    async def run(self, tool: str, *args: str, cwd: str | None = None) -> str:
        """``tool args`` (its stdout), or SlurmError."""
        try:
            child = await asyncio.create_subprocess_exec(
                self.path(tool), *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(self.env) if self.env is not None else None, cwd=cwd)
        except OSError as exc:
            raise SlurmError(f"cannot run {tool}: {exc}") from None
        try:
            out, err = await asyncio.wait_for(child.communicate(), _TIMEOUT)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise SlurmError(f"{tool} did not answer within {_TIMEOUT:g} s") from None
        except asyncio.CancelledError:
            if child.returncode is None:
                child.kill()
            raise
        if child.returncode != 0:
            text = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            raise SlurmError(f"{tool} failed (exit code {child.returncode}): {text}")
        return out.decode(errors="replace")

    async def submit(self, script: str, cwd: str) -> str:
        """Submit the batch script at ``script``; its job id."""
        out = await self.run("sbatch", "--parsable", script, cwd=cwd)
        jobid = out.strip().split(";")[0]  # "ID" or "ID;cluster"
        if not jobid.isdigit():
            raise SlurmError(f"sbatch answered {out.strip()!r}, not a job id")
        return jobid

    async def cancel(self, *jobids: str) -> None:
        if jobids:
            await self.run("scancel", *jobids)

    async def states(self, jobids: Iterable[str]) -> dict[str, JobState]:
        """The states of ``jobids`` that the controller still knows, in one ``squeue`` call."""
        ids = sorted(set(jobids), key=int)
        if not ids:
            return {}
        try:
            out = await self.run("squeue", "-h", "-t", "all", "-j", ",".join(ids), "-O", _SQUEUE_FORMAT)
        except SlurmError as exc:
            if "Invalid job id" in str(exc):  # only ever for a single id that has gone
                return {}
            raise
        return {state.jobid: state for state in parse_squeue(out)}

    async def mine(self) -> list[JobState]:
        """Every job of this user the controller knows (for taking jobs up again at start)."""
        return parse_squeue(await self.run("squeue", "-h", "-t", "all", "--me", "-O", _SQUEUE_FORMAT))

    async def accounted(self, jobids: Iterable[str]) -> dict[str, JobState]:
        """The final states of jobs that have left the controller, from ``sacct``."""
        ids = ",".join(sorted(set(jobids), key=int))
        if not ids:
            return {}
        args = ("-n", "-P", "-X", "-j", ids, "-o", "JobID,State,ExitCode,JobName")
        try:
            out = await self.run("sacct", *args)
        except SlurmError:
            out = await self.run("sacct", "-c", *args)  # no accounting database: the completion file
        return {state.jobid: state for state in parse_sacct(out)}


def parse_squeue(text: str) -> list[JobState]:
    """``squeue -O JobID:|,State:|,...,Comment:|`` lines (see ``_FIELDS``; exit_code is a wait
    status there: ``768`` is exit code 3, ``15`` signal 15)."""
    states = []
    last = len(_FIELDS) - 1
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < len(_FIELDS) or not fields[0].strip():
            continue
        jobid, state, reason, status, name, workdir = (field.strip() for field in fields[:last])
        comment = "|".join(fields[last:-1]) if len(fields) > len(_FIELDS) else fields[last]
        exitcode, signal = _wait_status(status)
        states.append(JobState(jobid, _state(state), reason, exitcode, signal, name, workdir,
                               comment.strip()))
    return states


def parse_sacct(text: str) -> list[JobState]:
    """``sacct -P -o JobID,State,ExitCode,JobName`` lines (ExitCode is ``code:signal`` there)."""
    states = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 4 or not fields[0].strip().isdigit():
            continue  # also job steps ("123.batch")
        code, _, signal = fields[2].partition(":")
        exitcode = int(code) if code.isdigit() else None
        signum = int(signal) if signal.isdigit() and int(signal) else None
        states.append(JobState(fields[0], _state(fields[1]), "", exitcode, signum, fields[3]))
    return states


def _state(text: str) -> str:
    return text.strip().split()[0].upper() if text.strip() else "UNKNOWN"  # "CANCELLED by 0"


def _wait_status(text: str) -> tuple[int | None, int | None]:
    if not text.isdigit():
        return None, None
    status = int(text)
    if status & 0x7F:
        return None, status & 0x7F
    return status >> 8, None
