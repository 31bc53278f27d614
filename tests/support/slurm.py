"""A real single-node Slurm for the tests (../shared/systems.md, "Slurm 22.05"): munged (started if
it is not running), slurmctld and slurmd from a ``slurm.conf`` in a temporary directory, on free
ports, so it never touches a Slurm the machine runs already.

:func:`require_slurm` skips a test when the Slurm binaries are absent, except in CI (``CI=true``),
where it fails: CI installs them (``.ci/run``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sacct")
TOOLS = ("sbatch", "squeue", "scancel", "sacct")  # what the executor calls
_MUNGE_DIRS = ("/run/munge", "/var/log/munge", "/var/lib/munge")
# CPUs the node claims (config_overrides: more than the machine's 2 cores, so that sleeping test
# jobs run side by side; each takes one CPU and 256 MiB unless it asks for more)
CPUS = 8
_NODE = ("NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 "
         "RealMemory=4000 State=UNKNOWN")

_CONF = """\
ClusterName=colonies-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={dir}/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
MailProg=/bin/true
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
MinJobAge=300
KillWait=2
SchedulerParameters=sched_interval=1
SlurmdParameters=config_overrides
{node}
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def require_slurm() -> None:
    """Return if the Slurm binaries are here; else skip (fail in CI) with the reason."""
    missing = [name for name in BINARIES if shutil.which(name) is None and not os.path.exists(_sbin(name))]
    if not missing:
        return
    reason = (f"Slurm is not installed (missing {', '.join(missing)}; apt-get install slurm-wlm munge, "
              "see .ci/run)")
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason + " (in CI, with CI=true, this fails)")


@dataclass(frozen=True)
class Slurm:
    """A running test cluster: ``env`` holds ``SLURM_CONF`` for the executor and the CLI calls."""

    dir: Path
    conf: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *command: str) -> str:
        """A Slurm command's stdout (AssertionError with its stderr if it fails)."""
        done = subprocess.run(list(command), env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
        return done.stdout

    def queue(self) -> dict[str, str]:
        """Job id -> state of the jobs squeue shows as pending or running."""
        out = self.run("squeue", "-h", "-o", "%i %T")
        return dict(line.split() for line in out.splitlines() if line.strip())

    def log(self, name: str) -> str:
        path = self.dir / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def counting_tools(bin_dir: Path, calls: Path) -> None:
    """Scripts in ``bin_dir`` that log each call of a Slurm tool to ``calls`` (``<time> <tool>
    <args>``), then exec the real one: point ``COLONIES_SLURM_BIN`` at ``bin_dir`` to count them."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        real = shutil.which(tool) or f"/usr/bin/{tool}"
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\necho "$(date +%s.%N) {tool} $*" >> {calls}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)


def tool_calls(calls: Path, tool: str) -> list[tuple[float, str]]:
    """(time, arguments) of each logged call of ``tool``."""
    lines = calls.read_text().splitlines() if calls.exists() else []
    fields = (f"{line} ".split(" ", 2) for line in lines)
    return [(float(t), rest) for t, name, rest in fields if name == tool]


def _sbin(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _munge_works() -> bool:
    encoded = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
    if encoded.returncode != 0:
        return False
    return subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True, timeout=10).returncode == 0


def _start_munge() -> subprocess.Popen[bytes] | None:
    """Start munged unless one runs (then None): it outlives nothing but the test session."""
    if _munge_works():
        return None
    for path in _MUNGE_DIRS:
        os.makedirs(path, exist_ok=True)
        shutil.chown(path, "munge", "munge")
    munged = subprocess.Popen(["runuser", "-u", "munge", "--", _sbin("munged"), "-F"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(_munge_works, 20, "munged to answer", interval=0.1)
    return munged


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _cancel_all(env: dict[str, str]) -> None:
    """Cancel every job of the test cluster and wait until none is left."""

    def jobs() -> list[str]:
        done = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True,
                              timeout=30)
        return done.stdout.split() if done.returncode == 0 else []

    left = jobs()
    if left:
        subprocess.run(["scancel", *left], env=env, capture_output=True, timeout=30)
        try:
            wait_until(lambda: not jobs(), 30, "the test cluster's jobs to end", interval=0.2)
        except AssertionError as exc:
            print(exc)


# One test cluster at a time on a machine (pytest-xdist workers, or two test runs): two would
# share munged and the node's name, and a job of one times out no more.
LOCK_FILE = Path(tempfile.gettempdir()) / "colonies-test-slurm.lock"


@contextmanager
def _machine_lock() -> Iterator[None]:
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another test's cluster runs
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def running_slurm(base: Path) -> Iterator[Slurm]:
    """A single-node Slurm with its files under ``base``; stopped (its jobs with it) at the end.
    Only one runs on the machine at a time: a second waits for the first to stop."""
    with _machine_lock():
        yield from _running_slurm(base)


def _running_slurm(base: Path) -> Iterator[Slurm]:
    for sub in ("log", "state", "spool"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    conf = base / "slurm.conf"
    conf.write_text(_CONF.format(host=host, dir=base, node=_NODE.format(host=host, cpus=CPUS),
                                 ctld_port=_free_port(), slurmd_port=_free_port()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munged = _start_munge()
    daemons: list[subprocess.Popen[bytes]] = []
    cluster = Slurm(base, conf)
    try:
        for command in ([_sbin("slurmctld"), "-D", "-i"], [_sbin("slurmd"), "-D"]):
            daemons.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                            stderr=(base / "log" / "daemons.err").open("ab")))

        def idle() -> bool:
            for daemon in daemons:
                if daemon.poll() is not None:
                    raise AssertionError(f"{daemon.args[0]} exited with {daemon.returncode}:\n"
                                         f"{cluster.log('slurmctld')}\n{cluster.log('slurmd')}")
            done = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True,
                                  timeout=10)
            return done.returncode == 0 and done.stdout.strip() == "idle"

        started = time.monotonic()
        wait_until(idle, 60, "the Slurm node to be idle", interval=0.1)
        print(f"slurm up in {time.monotonic() - started:.1f} s")
        yield cluster
    finally:
        if all(daemon.poll() is None for daemon in daemons) and daemons:
            _cancel_all(env)  # a stopped slurmd leaves its jobs' steps running
        for daemon in reversed(daemons):
            _stop(daemon)
        if munged is not None:
            _stop(munged)
