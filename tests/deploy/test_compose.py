"""The deployment as shipped: the Containerfile's image, built here from a local base, and
deploy/compose.yaml brought up with podman-compose (PostgreSQL from a local image, three server
replicas, the colony job and a python executor), then the workflow tutorial run through it from
this machine with the SDK: submitted to one replica, waited for on another, executed by the
compose file's executor (which talks to a third). Everything is on 127.0.0.1 (host network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycolonies import Colonies, crypto
from pycolonies.errors import AccessDeniedError, ColoniesConnectionError
from server.embedded import free_port
from tests.support.images import build_image, build_postgres, build_python_base, remove_image, require_podman
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.podman, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "compose.yaml"
PROJECT_LABEL = "io.podman.compose.project"
READY_TIMEOUT_S = 120


@dataclass
class Deployment:
    project: str
    ports: list[int]  # replicas 1, 2 and 3
    colony: str
    colony_prvkey: str

    def client(self, replica: int, *, retry_for: float = 0) -> Colonies:
        """A client of one replica; by default one that never sends a call again (each replica
        is checked on its own)."""
        return Colonies("127.0.0.1", self.ports[replica - 1], tls=False, retry_for=retry_for)


def _podman_compose() -> list[str]:
    """podman-compose from this environment (the test extra), else from PATH; skip (fail in CI)."""
    beside = Path(sys.executable).with_name("podman-compose")
    found = str(beside) if beside.exists() else shutil.which("podman-compose")
    if found is None:
        reason = "podman-compose is not installed (pip install -e '.[test]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (in CI, with CI=true, this fails)")
    return [found]


def _write_env_file(path: Path, image: str, postgres_image: str, ports: list[int], colony: str,
                    colony_prvkey: str) -> None:
    server_prvkey = crypto.generate_private_key()
    settings = {
        "COLONIES_IMAGE": image,
        "COLONIES_POSTGRES_IMAGE": postgres_image,
        "COLONIES_DB_PASSWORD": uuid.uuid4().hex,
        "COLONIES_DB_PORT": ports[3],
        "COLONIES_SERVER_ID": crypto.derive_id(server_prvkey),
        "COLONIES_SERVER_PRVKEY": server_prvkey,
        "COLONIES_COLONY_NAME": colony,
        "COLONIES_COLONY_PRVKEY": colony_prvkey,
        "COLONIES_SERVER_PORT_1": ports[0],
        "COLONIES_SERVER_PORT_2": ports[1],
        "COLONIES_SERVER_PORT_3": ports[2],
        "COLONIES_LISTEN_HOST": "127.0.0.1",
    }
    path.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    path.chmod(0o600)


class Compose:
    """``podman-compose --env-file F -f deploy/compose.yaml -p PROJECT ...`` with a clean environment
    (nothing of the caller's COLONIES_* may leak into the file's variables)."""

    def __init__(self, project: str, env_file: Path) -> None:
        self.base = [*_podman_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "-p", project]
        self.project = project
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
        if "CONTAINERS_CONF" in os.environ:
            self.env["CONTAINERS_CONF"] = os.environ["CONTAINERS_CONF"]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"podman-compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def logs(self) -> str:
        lines = []
        for name in _podman_lines("ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.project}",
                                  "--format", "{{.Names}}"):
            out = subprocess.run(["podman", "logs", "--tail", "30", name], capture_output=True, text=True,
                                 timeout=30)
            lines.append(f"--- {name}\n{out.stdout}{out.stderr}")
        return "\n".join(lines)


def _podman_lines(*args: str) -> list[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=60)
    return done.stdout.split()


def _answers(client: Colonies) -> bool:
    try:
        client.server_version()
    except ColoniesConnectionError:
        return False
    return True


def _executor_ready(deployment: Deployment) -> bool:
    try:
        executors = deployment.client(1).list_executors(deployment.colony, deployment.colony_prvkey)
    except AccessDeniedError:  # the colony job has not created the colony yet
        return False
    return any(e.get("executortype") == "python-executor" and e.get("state") == 1 for e in executors)


def _wait_ready(deployment: Deployment, compose: Compose) -> None:
    try:
        for replica in (1, 2, 3):
            wait_until(lambda r=replica: _answers(deployment.client(r)), READY_TIMEOUT_S,
                       f"replica {replica} on port {deployment.ports[replica - 1]}", interval=0.2)
        wait_until(lambda: _executor_ready(deployment), READY_TIMEOUT_S,
                   "the compose file's python executor to register", interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{compose.logs()}") from None


def _leftovers(project: str, image: str) -> list[str]:
    return [*_podman_lines("ps", "-a", "-q", "--filter", f"label={PROJECT_LABEL}={project}"),
            *_podman_lines("volume", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={project}"),
            *_podman_lines("images", "-q", image)]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_podman()
    _podman_compose()
    project = f"colonies-deploy-{uuid.uuid4().hex[:8]}"
    image = f"localhost/colonies-test/colonies:{project}"
    base, postgres = build_python_base(), build_postgres()
    started = time.monotonic()
    try:
        build_image(REPO, image, base)
        print(f"\nbuilt {image} in {time.monotonic() - started:.1f} s")
        ports = [free_port() for _ in range(4)]
        colony, colony_prvkey = "tutorial", crypto.generate_private_key()
        env_file = tmp_path_factory.mktemp("deploy") / "colonies.env"
        _write_env_file(env_file, image, postgres, ports, colony, colony_prvkey)
        compose = Compose(project, env_file)
        try:
            compose.run("up", "-d")
            deployment = Deployment(project, ports[:3], colony, colony_prvkey)
            _wait_ready(deployment, compose)
            print(f"deployment ready {time.monotonic() - started:.1f} s after the build started")
            yield deployment
        finally:
            compose.run("down", "-v", "-t", "40")
    finally:
        remove_image(image)
    assert _leftovers(project, image) == [], "containers, volumes or the image outlived the test"


@pytest.fixture(scope="module")
def member_prvkey(deployment: Deployment) -> str:
    """A user of the colony (the tutorial's ``prvkey``), added by the colony owner via replica 1."""
    prvkey = crypto.generate_private_key()
    deployment.client(1).add_user({"colonyname": deployment.colony, "userid": crypto.derive_id(prvkey),
                                   "name": "tutorial-user", "email": "", "phone": ""},
                                  deployment.colony_prvkey)
    return prvkey


def test_the_replicas_share_one_database(deployment: Deployment) -> None:
    """The colony the compose file's job created via replica 1 is seen by replicas 2 and 3."""
    for replica in (2, 3):
        executors = deployment.client(replica).list_executors(deployment.colony, deployment.colony_prvkey)
        assert [e["executortype"] for e in executors] == ["python-executor"]


# The tutorial's workflow examples as users run them, and the line each must print.
EXAMPLES = {"workflow_gen_sum.py": "result: 3", "workflow_fan_in.py": "result: 30",
            "workflow_mapreduce.py": "result: 15"}
EXAMPLE_TIMEOUT_S = 150


def test_tutorial_workflows_run_through_the_deployment(deployment: Deployment, member_prvkey: str) -> None:
    """The tutorial's three workflows, each example script run as a user runs it against another
    replica: gen_nums -> sum_nums (3), fetch_a + fetch_b -> merge (30), and the MapReduce whose
    map adds five children at run time (15). The compose file's executor works through replica 2."""
    for replica, (example, line) in zip((1, 2, 3), EXAMPLES.items(), strict=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
        env.update(COLONIES_SERVER_HOST="127.0.0.1", COLONIES_TLS="false",
                   COLONIES_SERVER_PORT=str(deployment.ports[replica - 1]),
                   COLONIES_COLONY_NAME=deployment.colony, COLONIES_PRVKEY=member_prvkey)
        done = subprocess.run([sys.executable, str(REPO / "examples" / example)], env=env,
                              capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and line in done.stdout, f"{example}:\n{done.stdout}\n{done.stderr}"
