"""Run every workflow example against a real server, with the example python executor.

    python examples/run_all.py

Starts a server on an embedded PostgreSQL in a temporary directory (or uses the one given by
COLONIES_SERVER_HOST, COLONIES_SERVER_PORT and COLONIES_SERVER_PRVKEY), creates a colony with a
user, starts the python executor (``colonies executor start --type python``, registered with the
colony key), runs each example as its own process (as a user would) and checks its result. Exits
non-zero if any example fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pycolonies import Colonies, Crypto

HERE = Path(__file__).resolve().parent
# example file -> the line it must print
EXAMPLES = {
    "workflow_gen_sum.py": "result: 3",
    "workflow_fan_in.py": "result: 30",
    "workflow_mapreduce.py": "result: 15",
    "workflow_retries.py": "result: succeeded on attempt 2",
    "workflow_files.py": "result: 6 words, a snapshot of 4 files",
}
EXAMPLE_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    """``colonies server start`` on an embedded PostgreSQL; wait until it is healthy."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pycolonies.cli.main", "server", "start", "--host", "127.0.0.1",
         "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            sys.exit(f"the server exited with code {server.returncode}; "
                     "run `colonies server start` to see why")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            sys.exit("the server did not become healthy within 120 s")
        time.sleep(0.2)
    return server, port, (data_dir / "server.prvkey").read_text().strip()


def run_examples(host: str, port: int, server_prvkey: str) -> int:
    client = Colonies(host, port, tls=False)
    crypto = Crypto()
    colony_prvkey, user_prvkey = crypto.prvkey(), crypto.prvkey()
    colonyname = "examples-" + crypto.id(colony_prvkey)[:8]
    client.add_colony({"colonyid": crypto.id(colony_prvkey), "name": colonyname}, server_prvkey)
    client.add_user({"colonyname": colonyname, "userid": crypto.id(user_prvkey), "name": "examples",
                     "email": "", "phone": ""}, colony_prvkey)
    base_env = {**os.environ, "COLONIES_SERVER_HOST": host, "COLONIES_SERVER_PORT": str(port),
                "COLONIES_COLONY_NAME": colonyname}
    executor = subprocess.Popen(
        [sys.executable, "-m", "pycolonies.cli.main", "executor", "start", "--type", "python",
         "--concurrency", "4", "--grace", "5"],
        env={**base_env, "COLONIES_COLONY_PRVKEY": colony_prvkey},
    )
    failures = 0
    try:
        for example, expected in EXAMPLES.items():
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, str(HERE / example)], env={**base_env, "COLONIES_PRVKEY": user_prvkey},
                capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S, check=False,
            )
            elapsed = time.monotonic() - started
            ok = result.returncode == 0 and expected in result.stdout.splitlines()
            print(f"{'ok  ' if ok else 'FAIL'} {example:26} {elapsed:5.1f} s  {expected if ok else ''}")
            if not ok:
                failures += 1
                print(f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}", file=sys.stderr)
    finally:
        executor.terminate()
        executor.wait(timeout=10)
        client.del_colony(colonyname, server_prvkey)
    return failures


def main() -> None:
    host = os.environ.get("COLONIES_SERVER_HOST")
    server_prvkey = os.environ.get("COLONIES_SERVER_PRVKEY")
    if host and server_prvkey:
        failures = run_examples(host, int(os.environ.get("COLONIES_SERVER_PORT", "50080")), server_prvkey)
    else:
        with tempfile.TemporaryDirectory(prefix="colonies-examples-") as data_dir:
            server, port, server_prvkey = start_server(Path(data_dir))
            try:
                failures = run_examples("127.0.0.1", port, server_prvkey)
            finally:
                server.terminate()
                server.wait(timeout=60)
    print(f"{len(EXAMPLES) - failures} of {len(EXAMPLES)} examples passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
