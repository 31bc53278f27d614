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
