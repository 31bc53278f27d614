"""The Python executor: runs the process's Python function in an isolated worker subprocess.

What it may run (see :mod:`executors.python_runner`):

* with ``allow_code`` (the default), functions shipped with the process by ``func_spec`` (their
  source in ``env["code"]``, or a cloudpickled callable in ``env["pickle"]``): anyone who may
  submit to the colony can run any code on this machine. Colonies that do not trust all their
  submitters should run ``--no-code`` with an allow-list;
* functions of installed modules named in ``allowed``: ``"pkg.mod.func"`` or ``"pkg.mod.*"`` (every
  public function defined in that module), submitted with ``funcname="pkg.mod.func"``. They are
  registered with the server at start, so ``get_functions`` lists them.

A spec with an ``fs`` section runs its function in the process's fs directory (also
``$COLONIES_FS_DIR``; see :mod:`executors.process_files`). The function gets ``colonies`` (a
client) and ``func_spec`` as globals, and ``ctx`` (the process, colony name, executor id and key)
if it takes a ``ctx`` argument, as in the ColonyOS tutorial.
Workers are isolated as :mod:`executors.isolation` decides at start (``isolation``, default from
the environment), so that the executor's key is the only one the function can get.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from executors.base import BaseExecutor, Job
from executors.config import ConfigError, ExecutorConfig
from executors.isolation import Isolation, IsolationSettings, blocking, resolve
from executors.python_runner import ClientInfo, RunnerSettings, offered_functions, run_process, worker_env
from executors.register import Identity
from executors.warm_workers import WarmWorkers, WorkerSettings, ZygoteError

log = logging.getLogger("executors")


class PythonExecutor(BaseExecutor):
    executortype = "python-executor"

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        allow_code: bool = True,
        allowed: Iterable[str] = (),
        python: str = sys.executable,
        isolation: IsolationSettings | None = None,
        workers: WorkerSettings | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, announce=announce)
        self.settings = RunnerSettings(allow_code=allow_code, allowed=tuple(allowed), python=python)
        self.isolation_settings = isolation
        self.worker_settings = workers
        self.warm: WarmWorkers | None = None  # the zygote that forks the workers, once started
        self._owner: tuple[int, int] | None = None  # who the workers run as, if not the executor's user

    def setup(self) -> None:
        settings = self.isolation_settings or IsolationSettings.from_env()
        isolation = resolve(settings, self.settings.python, worker_env(), runs_code=self.settings.allow_code)
        workers = self.worker_settings or WorkerSettings.from_env()
        self.worker_settings = workers
        self.settings = dataclasses.replace(self.settings, launcher=isolation.launcher, memory=workers.memory,
                                            files=workers.files, preload=workers.preload)
        self._owner = isolation.owner
        self._check_fs_base(isolation)
        self._announce(f"Workers: {isolation.summary}; {workers.summary}")
        if isolation.warning:
            log.warning("%s", isolation.warning)

    def _check_fs_base(self, isolation: Isolation) -> None:
        """Refuse an fs directory the workers cannot reach: hidden from them, or behind a directory
        their user may not pass through."""
        base = os.path.realpath(self.fs_base())
        for hidden in isolation.hidden:
            if base == hidden or base.startswith(hidden.rstrip("/") + "/"):
                raise ConfigError(f"the workers cannot see the fs directory {base}: it is under {hidden}, "
                                  "which they do not see; set COLONIES_EXECUTOR_FS_DIR elsewhere")
        if isolation.owner is not None and (blocked := blocking(base, *isolation.owner)):
            raise ConfigError(f"the workers' user (uid {isolation.owner[0]}) cannot reach the fs directory "
                              f"{base}: it may not pass through {blocked}; set COLONIES_EXECUTOR_FS_DIR "
                              "elsewhere")

    def prepare_fs(self, process_dir: Path) -> None:
        """Workers of another user (the executor is root) get the process's directory as theirs."""
        if self._owner is None:
            return
        uid, gid = self._owner
        os.chown(process_dir, uid, gid)
        for path in process_dir.rglob("*"):
            os.chown(path, uid, gid, follow_symlinks=False)

    async def started(self, identity: Identity) -> None:
        """Start the warm workers' zygote (unless turned off): the executor refuses to start when
        it cannot, e.g. a module it preloads fails to import."""
        assert self.worker_settings is not None
        if not self.worker_settings.warm:
            return
        warm = WarmWorkers(self.settings.zygote_command(), worker_env())
        try:
            await warm.start()
        except ZygoteError as exc:
            raise ConfigError(f"{exc} (set COLONIES_WORKER_WARM=false to start a fresh worker per "
                              "process instead)") from None
        self.warm = warm

    async def stopped(self) -> None:
        if self.warm is not None:
            await self.warm.close()
            self.warm = None

    async def execute(self, job: Job) -> list[Any]:
        config, me = job.config, job.executor
        client = ClientInfo(host=config.host, port=config.port, tls=config.tls, colonyname=me.colonyname,
                            executorid=me.executorid, executor_prvkey=me.prvkey)
        return await run_process(job.process, self.settings, client, job.log, job.timeout, fsdir=job.fsdir,
                                 warm=self.warm)

    def functions(self) -> list[tuple[str, list[str]]]:
        return offered_functions(self.settings)
