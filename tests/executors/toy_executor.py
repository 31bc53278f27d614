"""A small executor kind for testing the executor base: ``python -m tests.executors.toy_executor``.

Settings come from the environment (``COLONIES_*``) and a few options (``--concurrency``,
``--grace``, ``--heartbeat``). Its functions (executortype ``toy``):

* ``echo(*args)`` returns its arguments;
* ``fail(message)`` fails with ``[message, "details of " + message]``;
* ``crash()`` raises ``RuntimeError("boom")`` (failed with the traceback);
* ``chatty(n, width=0)`` logs ``line 0`` ... ``line n-1`` (and one line of ``width`` x's if given);
* ``sleep(seconds, marker="")`` logs a tick every 50 ms (appended to the file ``marker`` too) and
  returns ``[seconds, <how many processes this executor was running when it started>]``;
* ``block(path)`` waits until the file ``path`` exists (creating ``path + ".started"`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from executors.base import BaseExecutor, ExecutorError, Job, JobFailed
from executors.config import ConfigError, ExecutorConfig

TICK = 0.05


class ToyExecutor(BaseExecutor):
    executortype = "toy"

    def __init__(self, config: ExecutorConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.active = 0

    def functions(self) -> list[tuple[str, list[str]]]:
        return [("echo", ["*args"]), ("fail", ["message"]), ("crash", []), ("chatty", ["n", "width"]),
                ("sleep", ["seconds", "marker"]), ("block", ["path"])]

    async def execute(self, job: Job) -> list[Any]:
        spec = job.process.spec
        function = getattr(self, f"_{spec.funcname}", None)
        if function is None:
            raise JobFailed(f"toy has no function {spec.funcname!r}")
        self.active += 1
        try:
            return await function(job, *spec.args, **spec.kwargs)
        finally:
            self.active -= 1

    async def _echo(self, job: Job, *args: Any) -> list[Any]:
        return list(args)

    async def _fail(self, job: Job, message: str) -> list[Any]:
        raise JobFailed(message, f"details of {message}")

    async def _crash(self, job: Job) -> list[Any]:
        raise RuntimeError("boom")

    async def _chatty(self, job: Job, n: int, width: int = 0) -> list[Any]:
        for i in range(n):
            await job.log(f"line {i}")
        if width:
            await job.log("x" * width)
        return [n]

    async def _sleep(self, job: Job, seconds: float, marker: str = "") -> list[Any]:
        active = self.active
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        tick = 0
        while loop.time() < end:
            await job.log(f"tick {tick}")
            if marker:
                with open(marker, "a") as file:
                    file.write(f"tick {tick}\n")
            tick += 1
            await asyncio.sleep(TICK)
        return [seconds, active]

    async def _block(self, job: Job, path: str) -> list[Any]:
        Path(path + ".started").touch()
        while not Path(path).exists():
            await asyncio.sleep(TICK)
        return ["unblocked"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="toy_executor")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = ExecutorConfig.from_env(concurrency=args.concurrency, grace=args.grace,
                                         heartbeat_interval=args.heartbeat)
        ToyExecutor(config, announce=lambda line: print(line, flush=True)).run_forever()
    except (ConfigError, ExecutorError) as exc:
        sys.exit(f"Error: {exc}")


if __name__ == "__main__":
    main()
