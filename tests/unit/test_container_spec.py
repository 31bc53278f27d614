"""Reading the reference's command spec, the container executor's settings, and the engine's
``run`` command line (no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from executors.command_spec import command_output, parse_cpus, parse_memory, read_command_spec
from executors.config import ConfigError, ExecutorConfig
from executors.container import ContainerExecutor, ContainerSettings
from executors.engine import ContainerEngine, RunOptions
from executors.job import Job, JobFailed
from executors.register import Identity
from pycolonies.models import Process


def process(kwargs: dict[str, Any], funcname: str = "execute", **spec: Any) -> Process:
    wire = {"processid": "p" * 64, "spec": {"funcname": funcname, "kwargs": kwargs, **spec}}
    return Process.from_wire(wire)


def test_the_reference_spec() -> None:
    command = read_command_spec(process(
        {"cmd": "echo", "args": ["hello", "world"], "docker-image": "ubuntu:20.04", "rebuild-image": False},
        conditions={"mem": "1Gi", "cpu": "500m", "gpu": {"count": 0}}, env={"A": "1"}))
    assert command.image == "ubuntu:20.04" and command.argv == ["echo", "hello", "world"]
    assert command.memory == 2**30 and command.cpus == 0.5 and command.gpus == 0 and command.env == {"A": "1"}


def test_a_whole_command_line_in_cmd_is_split_like_a_shell_never_run_by_one() -> None:
    command = read_command_spec(process({"cmd": "sh -c 'echo $HOME; exit 2'", "image": "busybox"}))
    assert command.argv == ["sh", "-c", "echo $HOME; exit 2"]
    assert read_command_spec(process({"cmd": "sleep 8", "docker-image": "x"})).argv == ["sleep", "8"]
    assert read_command_spec(process({"docker-image": "x"})).argv == []  # the image's own command


@pytest.mark.parametrize(("kwargs", "spec", "needle"), [
    ({"cmd": "echo"}, {}, "kwargs['docker-image'] is missing"),
    ({"cmd": "echo", "docker-image": 3}, {}, "kwargs['docker-image'] must be an image name"),
    ({"cmd": "echo", "args": "a b", "docker-image": "x"}, {}, "kwargs['args'] must be a list of strings"),
    ({"cmd": "echo", "args": ["a", 2], "docker-image": "x"}, {}, "kwargs['args'][1] must be a string"),
    ({"cmd": ["echo"], "docker-image": "x"}, {}, "kwargs['cmd'] must be a string"),
    ({"cmd": "echo 'open", "docker-image": "x"}, {}, "kwargs['cmd'] cannot be split"),
    ({"args": ["a"], "docker-image": "x"}, {}, "without kwargs['cmd']"),
    ({"cmd": "echo", "docker-image": "x"}, {"conditions": {"mem": "lots"}}, "conditions.mem must be"),
    ({"cmd": "echo", "docker-image": "x"}, {"conditions": {"mem": "1Ki"}}, "too small"),
    ({"cmd": "echo", "docker-image": "x"}, {"conditions": {"cpu": "2 cores"}}, "conditions.cpu must be"),
    ({"cmd": "echo", "docker-image": "x"}, {"conditions": {"gpu": {"count": -1}}}, "conditions.gpu.count"),
    ({"cmd": "echo", "docker-image": "x"}, {"env": {"A=B": "1"}}, "not a valid environment variable"),
])
def test_bad_specs_name_the_field(kwargs: dict[str, Any], spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(JobFailed) as failed:
        read_command_spec(process(kwargs, **spec))
    assert needle in failed.value.errors[0]


def test_other_functions_are_refused() -> None:
    with pytest.raises(JobFailed, match="'sync' is not offered here"):
        read_command_spec(process({}, funcname="sync"))


def test_quantities() -> None:
    assert parse_memory("512Mi", "m") == 512 * 2**20 and parse_memory("1G", "m") == 10**9
    assert parse_memory("", "m") is None and parse_memory("67108864", "m") == 64 * 2**20
    assert parse_cpus("1000m", "c") == 1.0 and parse_cpus("2", "c") == 2.0 and parse_cpus("", "c") is None


def test_zero_quantities_are_unset_as_servers_write_them() -> None:
    """A reference server (and ours) returns an unset cpu as "0m" and an unset size as "0Mi"."""
    assert parse_cpus("0m", "c") is None and parse_cpus("0", "c") is None
    assert parse_memory("0Mi", "m") is None and parse_memory("0", "m") is None
    with pytest.raises(JobFailed, match="too small"):
        parse_memory("1Mi", "m")


def test_the_output(tmp_path: Path) -> None:
    file = tmp_path / "output.json"
    assert command_output(file, ["a", "b", ""]) == ["a", "b"]
    assert command_output(file, ["x" * 40_000, "y" * 40_000]) == ["y" * 40_000]
    file.write_text(json.dumps({"k": 1}))
    assert command_output(file, ["ignored"]) == [{"k": 1}]
    file.write_text("[1, 2]")
    assert command_output(file, []) == [1, 2]
    file.write_text("{not json")
    with pytest.raises(JobFailed, match="not JSON"):
        command_output(file, [])


def test_settings_from_the_environment(tmp_path: Path) -> None:
    settings = ContainerSettings.from_env({
        "COLONIES_CONTAINER_ENGINE": "docker", "COLONIES_CONTAINER_NETWORK": "host",
        "COLONIES_CONTAINER_PULL": "false", "COLONIES_CONTAINER_MOUNTS": f"{tmp_path}:/data:ro",
        "COLONIES_CONTAINER_MEMORY": "256Mi", "COLONIES_CONTAINER_CPUS": "250m",
        "COLONIES_CONTAINER_HAND_OVER_IDENTITY": "yes"}).checked()
    assert (settings.engine, settings.network, settings.pull) == ("docker", "host", False)
    assert settings.mounts == ((str(tmp_path), "/data", True),)
    assert settings.memory == 256 * 2**20 and settings.cpus == 0.25 and settings.hand_over_identity
    defaults = ContainerSettings.from_env({})
    assert defaults.network == "none" and not defaults.hand_over_identity and defaults.memory == 2**30


@pytest.mark.parametrize(("variables", "needle"), [
    ({"COLONIES_CONTAINER_MOUNTS": "/no/such/dir:/data"}, "must be an existing absolute path"),
    ({"COLONIES_CONTAINER_MOUNTS": "/tmp"}, "is not HOST:CONTAINER"),
    ({"COLONIES_CONTAINER_MOUNTS": "/tmp:/colonies"}, "other than / and /colonies"),
    ({"COLONIES_CONTAINER_PULL": "maybe"}, "COLONIES_CONTAINER_PULL must be true or false"),
    ({"COLONIES_CONTAINER_MEMORY": "big"}, "COLONIES_CONTAINER_MEMORY"),
    ({"COLONIES_CONTAINER_PIDS_LIMIT": "x"}, "COLONIES_CONTAINER_PIDS_LIMIT"),
])
def test_bad_settings(variables: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        ContainerSettings.from_env(variables).checked()


def test_the_run_command_is_confined() -> None:
    options = RunOptions(name="c1", labels={"colonies.process": "p1"}, env={"A": "x y"}, network="none",
                         memory=64 * 2**20, cpus=0.5, pids_limit=100, mounts=[("/h", "/c", True)])
    command = ContainerEngine("podman").run_command(options, "img", ["echo", "hi"])
    text = " ".join(command)
    for flag in ("--init", "--network none", f"--memory {64 * 2**20}", f"--memory-swap {64 * 2**20}",
                 "--cpus 0.5", "--pids-limit 100", "--pull never", "--label colonies.process=p1",
                 "--volume /h:/c:ro", "--http-proxy=false", "--security-opt no-new-privileges"):
        assert flag in text
    assert "--privileged" not in text and command[-3:] == ["img", "echo", "hi"]
    assert command[command.index("--env") + 1] == "A=x y" and command.count("--env") == 1
    assert "--http-proxy=false" not in ContainerEngine("/usr/bin/docker").run_command(options, "img", [])


def _job(settings: ContainerSettings) -> tuple[ContainerExecutor, Job]:
    identity = Identity("dev", "box-1", "e" * 64, "container-executor", "k" * 64, registered=False)
    config = ExecutorConfig(host="127.0.0.1", port=50080, colonyname="dev", prvkey="k" * 64)
    job = Job(process=process({"cmd": "env", "docker-image": "x"}, env={"MINE": "1"}), log=_no_log,
              executor=identity, config=config, timeout=None)
    return ContainerExecutor(config, settings=settings), job


async def _no_log(line: str) -> None:
    return None


@pytest.mark.parametrize("hand_over", [False, True])
def test_the_identity_goes_in_only_when_handed_over(tmp_path: Path, hand_over: bool) -> None:
    executor, job = _job(ContainerSettings(hand_over_identity=hand_over))
    executor.settings = executor.settings.checked()
    options = executor._options(job, read_command_spec(job.process), tmp_path)
    assert options.env["MINE"] == "1" and options.env["COLONIES_PROCESS_ID"] == job.processid
    assert options.labels == {"colonies.executor": "e" * 64, "colonies.executorname": "dev/box-1",
                              "colonies.process": job.processid}
    assert options.network == "none" and options.memory == 2**30 and options.cpus == 1.0
    handed = {"COLONIES_PRVKEY": "k" * 64, "COLONIES_SERVER_PORT": "50080", "COLONIES_COLONY_NAME": "dev"}
    assert (handed.items() <= options.env.items()) is hand_over
    assert ("k" * 64 in options.env.values()) is hand_over
