"""The executor base: a kind of executor is one small class on :class:`BaseExecutor`.

::

    class EchoExecutor(BaseExecutor):
        executortype = "echo"

        async def execute(self, job: Job) -> list[Any]:
            await job.log(f"echoing {job.process.spec.args}")
            return list(job.process.spec.args)

        def functions(self) -> list[tuple[str, list[str]]]:
            return [("echo", ["*args"])]

    EchoExecutor(ExecutorConfig.from_env()).run_forever()

The base registers the executor (or uses an approved one), registers its functions, long-polls
for processes with bounded concurrency, forwards log lines, closes each process with the output
of :meth:`BaseExecutor.execute` (or fails it with the errors of the exception it raised), stops a
run whose process was cancelled or taken away, sends heartbeats, rides out server outages with
back-off, and shuts down gracefully on SIGTERM/SIGINT (see :mod:`executors.worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from executors.config import ConfigError, ExecutorConfig
from executors.job import ExecutorError, Job, JobFailed, JobReleased
from executors.process_files import FilesPlace, prepare_base
from executors.protect import forget_owner_keys, protect_process
from executors.register import Identity, identify, offer, unregister
from executors.retry import Backoff, Outage, is_transient
from executors.worker import Worker
from pycolonies import wire
from pycolonies.aio import AsyncColonies
from pycolonies.errors import ColoniesError
from pycolonies.models import Process

__all__ = ["BaseExecutor", "ExecutorError", "Job", "JobFailed", "JobReleased"]

log = logging.getLogger("executors")

T = TypeVar("T")

REQUEST_TIMEOUT = 30.0  # seconds per request (an assign long-poll gets its own timeout on top)


class BaseExecutor:
    """Subclass it: set :attr:`executortype`, implement :meth:`execute` (and :meth:`functions`).

    ``await executor.run()`` works until stopped (SIGTERM/SIGINT when run in the main thread, or
    :meth:`stop`); :meth:`run_forever` is the same for synchronous code. ``announce`` receives the
    startup lines (the executor's name, "ready"); by default they are logged.
    """

    executortype: ClassVar[str] = ""
    default_concurrency: ClassVar[int] = 1  # processes at a time when the command line does not say
    # True: the work outlives the executor (a cluster's batch job). A stop leaves it running, its
    # processes assigned; the next start hands them to :meth:`resume` to take up again.
    detached: ClassVar[bool] = False

    def __init__(
        self, config: ExecutorConfig | None = None, *, announce: Callable[[str], None] | None = None
    ) -> None:
        self.config = config if config is not None else ExecutorConfig.from_env()
        self.identity: Identity | None = None
        self._announce = announce or log.info
        self._worker: Worker | None = None  # the work loop, while running
        self._stop_requested: asyncio.Event | None = None
        self._signals = 0
        self._files: FilesPlace | None = None  # where the processes' fs directories go, once set up

    # -- what a kind implements -----------------------------------------------------------------

    async def execute(self, job: Job) -> list[Any]:
        """Run the process and return its output list; raise to fail it. Cancelled (``CancelledError``)
        when the process is cancelled or the executor gives it back: stop the work then."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def setup(self) -> None:
        """Prepare to run work, once, before registering (e.g. decide how to isolate it). Called in
        a thread, so it may block; raise :class:`~executors.config.ConfigError` to refuse to start."""

    def functions(self) -> list[tuple[str, list[str]]]:
        """(funcname, argument names) of the functions this executor offers, registered at start.
        Called in a thread after :meth:`setup`, so it may block (e.g. import modules in a subprocess)."""
        return []

    def capabilities(self) -> dict[str, Any]:
        """What a new executor registers as its capabilities (``{"hardware": [...], "software":
        [...]}``, shown by ``getexecutormsg``); called after :meth:`setup`. An approved executor
        started with its own key keeps the capabilities it was registered with."""
        return {}

    async def started(self, identity: Identity) -> None:
        """Called once the executor knows who it is, before it takes work: e.g. clean up what a
        crashed run of the same executor left behind. Raise ConfigError to refuse to start."""

    async def stopped(self) -> None:
        """Called once the executor has stopped taking and running work (also after a failed
        start): e.g. stop helper processes :meth:`started` started."""

    def fs_base(self) -> Path:
        """Where the processes' fs directories go (see :mod:`executors.process_files`): the
        configured ``fs_dir``, else ``<tmp>/colonies-fs-<uid>``. Called after :meth:`setup`."""
        if self.config.fs_dir:
            return Path(self.config.fs_dir)
        return Path(tempfile.gettempdir()) / f"colonies-fs-{os.geteuid()}"

    def prepare_fs(self, process_dir: Path) -> None:
        """Make a process's directory usable by what runs the process (called in a thread, after
        its files came in and before :meth:`execute`), e.g. give it to the workers' user."""

    async def resume(self, identity: Identity, running: list[Process]) -> list[Process]:
        """A :attr:`detached` kind: of the processes still assigned to this executor (``running``,
        left by an earlier run of it), those it carries on with; they are run first (``execute``
        gets them as usual), the others are given back to the queue."""
        return []

    # -- running --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Run until stopped (blocking)."""
        asyncio.run(self.run())

    async def run(self) -> None:
        """Register, then take and run processes until stopped; returns after a graceful shutdown.

        Raises :class:`~executors.config.ConfigError` for missing or refused settings and
        :class:`ExecutorError` when the executor cannot go on.

        The process is made non-dumpable (Linux) and the owner keys are removed from
        ``os.environ``, so no process the executor starts can read them (see
        :mod:`executors.protect`). The colony key stays in this process's memory only, to remove a
        registered executor again when it stops.
        """
        config = self.config.checked()
        protect_process()
        forget_owner_keys()
        self._stop_requested = asyncio.Event()
        self._signals = 0
        remove_handlers = self._install_signal_handlers()
        client = AsyncColonies(config.host, config.port, config.tls, timeout=REQUEST_TIMEOUT)
        try:
            prepared = await self._until_stopped(self._prepare(client, config))
            if prepared is None:
                return
            self.identity = prepared
            await self.started(prepared)
            resumed = await self._resume(client, prepared) if self.detached else []
            worker = Worker(self.execute, client, prepared, config, detached=self.detached, resume=resumed,
                            files=self._files)
            self._worker = worker
            if self._signals:
                worker.stop(immediate=self._signals > 1)
            self._announce(f"Executor {prepared.executorname} ready (colony {prepared.colonyname}, "
                           f"type {prepared.executortype}, up to {config.concurrency} at a time)")
            await worker.run()
            if worker.fatal:
                raise ExecutorError(worker.fatal)
        finally:
            self._worker = None
            remove_handlers()
            await self.stopped()
            if self.identity is not None and self.identity.registered and config.colony_prvkey:
                await unregister(client, self.identity, config.colony_prvkey)
            await client.close()

    def stop(self, immediate: bool = False) -> None:
        """Stop taking work; let running processes finish within the grace period (at once with
        ``immediate``), then give the rest back to the queue. Call it from the event loop's thread."""
        self._signals += 2 if immediate else 1
        if self._stop_requested is not None:
            self._stop_requested.set()
        if self._worker is not None:
            self._worker.stop(immediate=self._signals > 1)

    # -- startup --------------------------------------------------------------------------------

    async def _prepare(self, client: AsyncColonies, config: ExecutorConfig) -> Identity:
        try:
            await asyncio.to_thread(self.setup)
            self._files = await asyncio.to_thread(self._files_place)
            functions = await asyncio.to_thread(self.functions)
            capabilities = self.capabilities()
        except ConfigError:
            raise
        except ValueError as exc:
            message, _, details = str(exc).strip().partition("\n")
            if details:
                log.debug("%s", details)
                message += " (details with --verbose)"
            raise ConfigError(message) from None
        outage = Outage(f"{config.host}:{config.port}", Backoff(config.backoff_min, config.backoff_max))
        identity = await _retrying(outage, lambda: identify(client, config, self.executortype,
                                                              capabilities))
        if identity.registered:
            self.identity = identity  # removed again at exit
            self._announce(f"Registered executor {identity.executorname} "
                           f"(type {identity.executortype}) in colony {identity.colonyname}")
        await _retrying(outage, lambda: offer(client, identity, functions))
        return identity

    def _files_place(self) -> FilesPlace:
        base = self.fs_base()
        try:
            return FilesPlace(prepare_base(base), self.prepare_fs)
        except OSError as exc:
            raise ConfigError(f"cannot use {base} for the processes' fs directories (set "
                              f"COLONIES_EXECUTOR_FS_DIR): {exc}") from None

    async def _resume(self, client: AsyncColonies, identity: Identity) -> list[Process]:
        """Hand the processes still assigned to this executor to :meth:`resume`; release the rest."""
        me = identity
        outage = Outage(f"{self.config.host}:{self.config.port}",
                        Backoff(self.config.backoff_min, self.config.backoff_max))
        listed = await _retrying(outage, lambda: client.list_processes(me.colonyname, wire.MAX_COUNT,
                                                                       wire.RUNNING, me.prvkey))
        running: list[Process] = []
        for entry in listed:
            if entry.get("assignedexecutorid") == me.executorid:
                with contextlib.suppress(ColoniesError):  # it ended meanwhile
                    running.append(await client.get_process(entry["processid"], me.prvkey))
        kept = await self.resume(identity, running) if running else []
        kept_ids = {process.processid for process in kept}
        for process in running:
            if process.processid not in kept_ids:
                with contextlib.suppress(ColoniesError):
                    await client.release_process(process.processid, identity.prvkey)
                    log.info("%s: given back to the queue (left by an earlier run, nothing to take up)",
                             process.processid[:8])
        return kept

    async def _until_stopped(self, work: Awaitable[Identity]) -> Identity | None:
        """``work``'s result, or None if a stop is requested first (``work`` is then cancelled)."""
        assert self._stop_requested is not None
        task = asyncio.ensure_future(work)
        stopped = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return None if task.cancelled() else task.result()

    def _install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM/SIGINT stop the executor (the second one at once); a no-op outside the main thread."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal(signum: signal.Signals) -> None:
            if self._signals:
                log.warning("%s: stopping now", signum.name)
            else:
                log.warning("%s: stopping; running processes get %g s to finish (signal again to skip)",
                            signum.name, self.config.grace)
            self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (RuntimeError, ValueError, NotImplementedError):  # not the main thread / platform
                continue
            installed.append(signum)

        def remove() -> None:
            for signum in installed:
                loop.remove_signal_handler(signum)

        return remove


async def _retrying(outage: Outage, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, again after a back-off while the server is unreachable."""
    while True:
        try:
            result = await call()
        except ColoniesError as exc:
            if not is_transient(exc):
                raise ExecutorError(f"cannot start the executor: {exc}") from None
            await asyncio.sleep(outage.failed(exc))
            continue
        outage.recovered()
        return result
