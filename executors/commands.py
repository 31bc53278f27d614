"""The command the executors contribute to ``colonies`` (entry-point group ``colonies.commands``):
``executor start``. The executors talk to the server only over the wire, so this needs nothing but
the SDK."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Annotated

import typer

from pycolonies.cli.common import fail


def executor_start(
    kind: Annotated[str, typer.Option(
        "--type", help="Executor kind: python, container (settings: COLONIES_CONTAINER_*), slurm "
        "(settings: COLONIES_SLURM_*) or quantum (settings: COLONIES_QUANTUM_*)")] = "python",
    name: Annotated[str | None, typer.Option(
        help="Name of the new executor (default COLONIES_EXECUTOR_NAME or <type>-<8 hex>)")] = None,
    executor_type: Annotated[str | None, typer.Option(
        "--executor-type", help="Executor type (default COLONIES_EXECUTOR_TYPE or the kind's, "
        "python-executor, container-executor, hpc-executor or quantum-executor)")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="Processes run at the same time (default 1; slurm: 100 jobs in flight)")] = None,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="python, slurm: an allowed function, pkg.mod.func or pkg.mod.* (repeatable)")] = None,
    no_code: Annotated[bool, typer.Option(
        "--no-code", help="python, slurm: refuse shipped code; run only --allow functions")] = False,
    grace: Annotated[float, typer.Option(
        help="Seconds running processes may finish after SIGTERM/Ctrl-C before they are given back")] = 30.0,
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats (0: none)")] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start an executor: register it (COLONIES_COLONY_PRVKEY) or use an approved one
    (COLONIES_PRVKEY), then run processes of its type until SIGTERM or Ctrl-C (which let running
    processes finish for --grace seconds, then give them back to the queue; a second signal skips
    the wait). Server and colony: COLONIES_SERVER_HOST, COLONIES_SERVER_PORT, COLONIES_TLS,
    COLONIES_COLONY_NAME."""
    from executors.base import ExecutorError
    from executors.config import ConfigError, ExecutorConfig
    from executors.kinds import load_kind

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    options: dict[str, object] = {}
    if allow:
        options["allowed"] = tuple(allow)
    if no_code:
        options["allow_code"] = False
    if options and kind not in ("python", "slurm"):
        fail("--allow and --no-code are options of --type python and --type slurm")
    if no_code and not allow:
        fail("--no-code without --allow leaves nothing to run: add --allow pkg.module.function")
    try:
        executor_class = load_kind(kind)
        config = ExecutorConfig.from_env(
            executorname=name, executortype=executor_type, grace=grace, heartbeat_interval=heartbeat,
            concurrency=executor_class.default_concurrency if concurrency is None else concurrency,
        ).checked()
        executor = executor_class(config, announce=lambda line: print(line, flush=True), **options)
        asyncio.run(executor.run())
    except (ConfigError, ExecutorError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C before the executor's own handler was installed
        raise typer.Exit(130) from None
