"""The README's quickstart (examples/quickstart.py) runs as written against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from server.testing import ServerThread

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_runs_against_a_server(server: ServerThread) -> None:
    env = {
        **os.environ,
        "COLONIES_SERVER_HOST": server.host,
        "COLONIES_SERVER_PORT": str(server.port),
        "COLONIES_SERVER_PRVKEY": server.server_prvkey,
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "submitted" in result.stdout
    assert "state 2 output ['hello', {'n': 42}]" in result.stdout


def test_run_all_workflow_examples_from_scratch() -> None:
    """``python examples/run_all.py`` as the README says: its own server on an embedded
    PostgreSQL, the example executor, and the tutorial's workflows, each checked by its output."""
    # nothing from the caller's setup may leak in
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONIES_")}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_all.py")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    examples = ("workflow_gen_sum.py", "workflow_fan_in.py", "workflow_mapreduce.py", "workflow_retries.py",
                "workflow_files.py")
    for example in examples:
        assert any(line.startswith("ok") and example in line for line in lines), result.stdout
    assert "5 of 5 examples passed" in result.stdout
