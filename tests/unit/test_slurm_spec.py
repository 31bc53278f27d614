"""The slurm executor without a cluster: the batch script from a spec (mapping, quoting, the
environment), the settings, reading squeue and sacct, and Slurm's final states as outcomes."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from executors.config import ConfigError, ExecutorConfig
from executors.job import Job, JobFailed, JobReleased
from executors.register import Identity
from executors.slurm import SlurmExecutor, SlurmSettings, _outcome
from executors.slurm_cli import JobState, parse_sacct, parse_squeue
from executors.slurm_script import Site, in_container, read_resources
from pycolonies.models import Conditions, Process


def process(kwargs: dict[str, Any], funcname: str = "execute", **spec: Any) -> Process:
    wire = {"processid": "p" * 64, "spec": {"funcname": funcname, "kwargs": kwargs, **spec}}
    return Process.from_wire(wire)


def test_conditions_map_to_sbatch_options() -> None:
    conditions = Conditions.from_wire({"nodes": 2, "processes-per-node": 4, "cpu": "1500m", "mem": "1Gi",
                                       "gpu": {"count": 1}, "walltime": 700})
    assert read_resources(conditions).sbatch_options() == [
        "--nodes=2", "--ntasks-per-node=4", "--cpus-per-task=2", "--mem=1024M", "--gres=gpu:1",
        "--time=11:40"]
    assert read_resources(Conditions()).sbatch_options() == []


@pytest.mark.parametrize(("conditions", "field"), [
    ({"cpu": "lots"}, "conditions.cpu"), ({"mem": "1 parsec"}, "conditions.mem"),
    ({"walltime": -5}, "conditions.walltime"), ({"gpu": {"count": -1}}, "conditions.gpu.count"),
])
def test_bad_conditions_name_their_field(conditions: dict[str, Any], field: str) -> None:
    with pytest.raises(JobFailed, match=field):
        read_resources(Conditions.from_wire(conditions))


def _executor(tmp_path: Path, **settings: Any) -> tuple[SlurmExecutor, Job]:
    identity = Identity("dev", "hpc-1", "e" * 64, "hpc-executor", "k" * 64, registered=False)
    config = ExecutorConfig(host="127.0.0.1", port=50080, colonyname="dev", prvkey="k" * 64)
    executor = SlurmExecutor(config, settings=SlurmSettings(workdir=str(tmp_path), **settings).checked())
    job = Job(process=process({"cmd": "echo", "args": ["it's", "$HOME; rm -rf /"]}, env={"MINE": "a b"}),
              log=_no_log, executor=identity, config=config, timeout=None)
    return executor, job


async def _no_log(line: str) -> None:
    return None


def test_the_script_quotes_everything_and_carries_no_executor_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLONIES_PRVKEY", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    executor, job = _executor(tmp_path, partition="gpu", account="proj 1", sbatch=("--exclusive",),
                              modules=("python/3.11",), pass_env=("PATH", "AWS_SECRET_ACCESS_KEY"))
    script = executor._script(job, tmp_path)
    text = script.text(executor.settings.site)
    assert "secret" not in text and "COLONIES_PRVKEY" not in text
    assert "#SBATCH --partition=gpu" in text and "#SBATCH '--account=proj 1'" in text
    assert "#SBATCH --exclusive" in text and "module load python/3.11" in text
    assert text.startswith("#!/bin/bash -l\n")  # where `module` is defined
    assert f"#SBATCH --comment=colonies:dev/hpc-1:{'p' * 64}" in text and "#SBATCH --export=NONE" in text
    step = text.strip().splitlines()[-1]
    assert shlex.split(step) == ["srun", "--export=ALL", "echo", "it's", "$HOME; rm -rf /"]
    assert "export MINE='a b'" in text and f"export COLONIES_OUTPUT={tmp_path}/output.json" in text
    assert json.loads((tmp_path / "input.json").read_text()) == []


def test_a_python_function_runs_in_the_worker_with_its_job_file_private(tmp_path: Path) -> None:
    executor, job = _executor(tmp_path)
    code = "ZGVmIGYoKToKICAgIHJldHVybiAxCg=="  # def f(): return 1
    job = Job(process=process({}, funcname="f", env={"code": code}), log=_no_log, executor=job.executor,
              config=job.config, timeout=None)
    text = executor._script(job, tmp_path).text(Site())
    assert "-m executors.python_worker" in text and "--ntasks=1" in text
    assert code not in text  # the spec's env stays in the job file
    assert (tmp_path / "worker-job.json").stat().st_mode & 0o777 == 0o600


def test_containers_need_a_configured_runtime(tmp_path: Path) -> None:
    with pytest.raises(JobFailed, match="COLONIES_SLURM_CONTAINER_RUNTIME"):
        in_container("", "ubuntu:20.04", ["echo"], tmp_path, [], 0)
    apptainer = in_container("apptainer", "ubuntu:20.04", ["echo", "hi"], tmp_path, [], 1)
    assert apptainer[:3] == ["apptainer", "exec", "--nv"]
    assert apptainer[-3:] == ["docker://ubuntu:20.04", "echo", "hi"]
    podman = in_container("podman", "busybox", ["echo"], tmp_path, ["A"], 0)
    assert podman[:2] == ["podman", "run"] and podman[podman.index("--env"):][:2] == ["--env", "A"]
    fsdir = tmp_path / "fs"
    with_fs = in_container("apptainer", "img.sif", ["ls"], tmp_path, [], 0, fsdir)
    binds = with_fs[with_fs.index("--bind"):][:4]
    assert binds == ["--bind", f"{tmp_path}:{tmp_path}", "--bind", f"{fsdir}:{fsdir}"]
    podman = in_container("podman", "busybox", ["ls"], tmp_path, [], 0, fsdir)
    assert f"{fsdir}:{fsdir}" in podman and podman[podman.index(f"{fsdir}:{fsdir}") - 1] == "-v"


def test_settings_from_the_environment() -> None:
    settings = SlurmSettings.from_env({"COLONIES_SLURM_PARTITION": "small", "COLONIES_SLURM_SBATCH":
                                       "--exclusive; --constraint=cpu", "COLONIES_SLURM_MODULES": "a, b",
                                       "COLONIES_SLURM_POLL_MIN": "2"})
    assert settings.partition == "small" and settings.sbatch == ("--exclusive", "--constraint=cpu")
    assert settings.modules == ("a", "b") and settings.poll_min == 2
    with pytest.raises(ConfigError, match="COLONIES_SLURM_POLL_MAX"):
        SlurmSettings.from_env({"COLONIES_SLURM_POLL_MAX": "soon"})
    with pytest.raises(ConfigError, match="CONTAINER_RUNTIME"):
        SlurmSettings(container_runtime="docker").checked()


def test_squeue_and_sacct_lines() -> None:
    squeue = parse_squeue("7|FAILED|NonZeroExitCode|768|colonies-x|/w/1|colonies:dev/h:x|\n"
                          "8|CANCELLED|None|15|n|/w|(null)|\n9|RUNNING|None|0|n|/w|a|b|\n")
    assert (squeue[0].exitcode, squeue[0].signal, squeue[0].workdir) == (3, None, "/w/1")
    assert squeue[1].signal == 15 and squeue[2].comment == "a|b" and not squeue[2].final
    sacct = parse_sacct("7|FAILED|3:0|x\n7.batch|FAILED|3:0|batch\n8|CANCELLED by 0|0:15|y\n")
    assert [(s.jobid, s.state, s.exitcode, s.signal) for s in sacct] == [
        ("7", "FAILED", 3, None), ("8", "CANCELLED", 0, 15)]


@pytest.mark.parametrize(("state", "needle"), [
    (JobState("1", "FAILED", exitcode=3), "exit code 3"), (JobState("1", "TIMEOUT"), "TIMEOUT"),
    (JobState("1", "OUT_OF_MEMORY"), "OUT_OF_MEMORY"), (JobState("1", "NODE_FAIL"), "NODE_FAIL"),
    (JobState("1", "CANCELLED"), "cancelled outside the executor"), (JobState("1", "BOOT_FAIL"), "BOOT_FAIL"),
])
def test_final_states_fail_with_the_reason(tmp_path: Path, state: JobState, needle: str) -> None:
    with pytest.raises(JobFailed, match=needle):
        _outcome(state, ["last line"], tmp_path, command=True)


def test_completed_is_the_output_and_preempted_goes_back_to_the_queue(tmp_path: Path) -> None:
    assert _outcome(JobState("1", "COMPLETED", exitcode=0), ["hi"], tmp_path, command=True) == ["hi"]
    with pytest.raises(JobReleased):
        _outcome(JobState("1", "PREEMPTED"), [], tmp_path, command=True)
