#!/usr/bin/env python3
"""File benchmark: ``--files`` small files synced into a label and back out, through the SDK's
``sync`` against the server's embedded blob store (or S3 when AWS_S3_* is set).

Run from the repository root with the project installed (``pip install -e '.[server]'``)::

    python bench/files.py                       # 1,000 files of 4 KiB, on a private embedded PostgreSQL
    python bench/files.py --files 200 --size 1048576

Reports for each direction the wall time, files/s and MB/s, and checks that every byte came back.
Uses the same environment handling as ``bench/load.py`` (it starts and stops everything it
needs). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Environment, add_environment_options, create_colony  # noqa: E402

from pycolonies import Colonies  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="how many files")
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    add_environment_options(parser)
    args = parser.parse_args(argv)
    args.cprofile = os.environ.get("BENCH_CPROFILE")
    return args


def user_key(env: Environment) -> tuple[str, str]:
    """A colony with one user; (colony name, the user's key)."""
    async def make() -> tuple[str, str]:
        colony = await create_colony(env.url, env.server_prvkey, executors=0, submitters=1)
        for client in (colony.owner, *colony.submitters):
            await client.aclose()
        return colony.name, colony.submitters[0].prvkey

    return asyncio.run(make())


def phase(name: str, seconds: float, files: int, size: int) -> dict[str, Any]:
    return {"phase": name, "files": files, "seconds": round(seconds, 3),
            "files_per_s": round(files / seconds, 1), "mb_per_s": round(files * size / seconds / 1e6, 2)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = Environment(args)
    results: list[dict[str, Any]] = []
    try:
        env.start()
        colonyname, prvkey = user_key(env)
        parts = urlsplit(env.url)
        with Colonies(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60) as client, \
                tempfile.TemporaryDirectory(prefix="colonies-bench-files-") as scratch:
            up, down = Path(scratch) / "up", Path(scratch) / "down"
            up.mkdir()
            for i in range(args.files):
                (up / f"file-{i:05d}.bin").write_bytes(os.urandom(args.size))
            started = time.perf_counter()
            plan = client.sync(str(up), "/bench", True, colonyname, prvkey)
            results.append(phase("sync in", time.perf_counter() - started, len(plan.uploads), args.size))
            started = time.perf_counter()
            plan = client.sync(str(down), "/bench", True, colonyname, prvkey)
            results.append(phase("sync out", time.perf_counter() - started, len(plan.downloads), args.size))
            same = all((down / p.name).read_bytes() == p.read_bytes() for p in up.iterdir())
            results.append({"phase": "check", "all_bytes_back": same})
    finally:
        env.stop()
    for result in results:
        print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if results and results[-1].get("all_bytes_back") else 1


if __name__ == "__main__":
    sys.exit(main())
