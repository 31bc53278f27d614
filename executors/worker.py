"""The work loop of a registered executor.

* **Poll**: while a slot is free (``concurrency``), long-poll ``assign``; 404 is "nothing yet";
  unreachable server or 5xx: back off (one log line per outage); 403: the executor was removed
  or unapproved, stop.
* **Run**: each process runs ``kind.execute(job)`` in a task, with its output lines forwarded as
  process logs; the output closes the process, an exception fails it.
* **Watch**: every ``cancel_check_interval`` s the process is read; once it is cancelled, removed,
  ended or assigned elsewhere (the server requeued it after maxexectime), the task is cancelled
  and the process is left alone.
* **Heartbeat** every ``heartbeat_interval`` s.
* **Stop**: no new work; running processes get ``grace`` s to finish, then they are cancelled and
  released (``releaseprocessmsg``) so another executor runs them. A *detached* kind's work (a
  cluster's batch job) outlives the executor: its runs are cancelled at once with
  ``job.stopping()`` true and their processes stay assigned, for the next start to take up
  (``resume``: processes the worker runs first, without an assign).
* A kind that raises :class:`~executors.job.JobReleased` gives its process back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from executors.config import ExecutorConfig
from executors.job import Job, JobFailed, JobReleased
from executors.logs import LogForwarder
from executors.process_files import FilesPlace, ProcessFiles, read_fs_spec
from executors.register import Identity
from executors.retry import Backoff, Outage, is_transient
from pycolonies import wire
from pycolonies.aio import AsyncColonies
from pycolonies.errors import (
    AccessDeniedError,
    AlreadyApplied,
    ColoniesError,
    ColoniesServerError,
    NotFoundError,
    unsupported,
)
from pycolonies.models import Process

log = logging.getLogger("executors")

DELIVERY_PATIENCE = 300.0  # seconds a close may be retried while the server is unreachable
_STATE_NAMES = {wire.WAITING: "waiting", wire.RUNNING: "running", wire.SUCCESS: "successful",
                wire.FAILED: "failed", wire.CANCELLED: "cancelled"}


@dataclass(eq=False)
class _Run:
    process: Process
    started: float
    task: asyncio.Task[None] | None = None
    work: asyncio.Task[Any] | None = None
    give_back: bool = False  # set when stopping: cancel the work and release the process
    resumed: bool = False  # taken up from an earlier run of a detached executor
    handed_over: bool = False  # its slot went to the process its close took (closeassignmsg)

    @property
    def label(self) -> str:
        return f"{self.process.processid[:8]} {self.process.spec.funcname}"


Execute = Callable[[Job], Awaitable[list[Any]]]  # a kind's execute(): run one job, return its outputs


class Worker:
    """Takes and runs processes for ``identity``, each through ``execute`` (the kind's
    :meth:`~executors.base.BaseExecutor.execute`), until stopped."""

    def __init__(
        self, execute: Execute, client: AsyncColonies, identity: Identity, config: ExecutorConfig,
        *, detached: bool = False, resume: list[Process] | None = None, files: FilesPlace | None = None,
    ) -> None:
        self.execute = execute
        self.files = files  # where processes' fs directories go (None: a spec with fs fails)
        self.detached = detached  # on stop, leave running work to itself (see the module's doc)
        self._resume = list(resume or ())
        self._left: set[str] = set()  # processes left running at the stop (detached), still ours
        self.client = client
        self.identity = identity
        self.config = config
        self.fatal: str | None = None  # why the executor had to stop, if it had to
        self._slots = asyncio.Semaphore(config.concurrency)
        self._runs: set[_Run] = set()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._outage = Outage(f"{config.host}:{config.port}", Backoff(config.backoff_min, config.backoff_max))
        self._poll_cut = False  # an assign was interrupted: the server may have assigned a process
        self._combined = True  # close and take the next process in one round trip, until refused
        self._lost_assign = False  # a close-and-assign went unanswered: it may have assigned a process

    def stop(self, immediate: bool = False) -> None:
        self._stopping.set()
        if immediate:
            self._hurry.set()

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeats())
        poller = asyncio.create_task(self._poll())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({poller, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if poller.done() and not poller.cancelled() and poller.exception() is not None:
                exc = poller.exception()
                log.error("the work loop failed", exc_info=exc)
                self.fatal = f"the work loop failed: {type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            self._hurry.set()
            raise
        finally:
            stopping.cancel()
            await _cancel(poller)
            try:
                await self._drain()
                if self._poll_cut:
                    await self._release_orphans()
            finally:
                await _cancel(heartbeat)

    # -- taking work ------------------------------------------------------------------------------

    async def _poll(self) -> None:
        while self._resume and not self._stopping.is_set():  # taken up from an earlier run
            await self._slots.acquire()
            self._start(self._resume.pop(0), resumed=True)
        while not self._stopping.is_set():
            await self._slots.acquire()
            try:
                process = await self._assign()
            except BaseException:
                self._slots.release()
                raise
            if process is None:
                self._slots.release()
            else:
                self._start(process)

    async def _assign(self) -> Process | None:
        me = self.identity
        try:
            process = await self.client.assign(me.colonyname, self.config.poll_timeout, me.prvkey)
        except asyncio.CancelledError:
            self._poll_cut = True
            raise
        except NotFoundError:  # nothing to do yet
            self._outage.recovered()
            return None
        except ColoniesError as exc:
            if isinstance(exc, ColoniesServerError) and exc.status == 408:  # colony assignments paused
                self._outage.recovered()
            elif is_transient(exc):
                await self._pause(self._outage.failed(exc))
            elif isinstance(exc, AccessDeniedError):
                self.fatal = (f"executor {me.executorname} may no longer take work in colony "
                              f"{me.colonyname} (removed or not approved?): {exc}")
                log.error("%s", self.fatal)
                self.stop()
            else:
                log.warning("assign refused: %s", exc)
                await self._pause(self._outage.backoff.next_delay())
            return None
        self._outage.recovered()
        return process

    async def _pause(self, seconds: float) -> None:
        """Sleep, but no longer than until the executor stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _start(self, process: Process, resumed: bool = False) -> None:
        """Run ``process`` in a slot already taken (given back when its run ends)."""
        run = _Run(process, asyncio.get_running_loop().time(), resumed=resumed)
        run.give_back = self._stopping.is_set()  # taken as the executor stops: back to the queue
        self._runs.add(run)
        run.task = asyncio.create_task(self._handle(run), name=f"process {process.processid}")

        def finished(task: asyncio.Task[None]) -> None:
            self._runs.discard(run)
            if not run.handed_over:
                self._slots.release()
            if not task.cancelled() and task.exception() is not None:
                log.error("%s: the executor failed handling it", run.label, exc_info=task.exception())

        run.task.add_done_callback(finished)

    # -- running one process ----------------------------------------------------------------------

    async def _handle(self, run: _Run) -> None:
        process, me = run.process, self.identity
        logs = LogForwarder(lambda text: self.client.add_log(process.processid, text, me.prvkey))
        if run.give_back:  # stopped before it started
            await self._give_back(run)
            return
        maxexectime = process.spec.maxexectime
        job = Job(process=process, log=logs.log, executor=me, config=self.config,
                  timeout=float(maxexectime) if maxexectime > 0 else None,
                  attribute=lambda key, value: self.client.add_attribute(process.processid, key, value,
                                                                         me.prvkey),
                  stopping=self._stopping.is_set)
        run.work = work = asyncio.create_task(self._run_job(job, run))
        watch = asyncio.create_task(self._watch(process))
        lost: str | None = None
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if watch.done() and not watch.cancelled() and watch.exception() is None:
                lost = watch.result()
            watch.cancel()
            if lost is not None or not work.done():  # lost, or this handler was cancelled
                work.cancel()
            await asyncio.wait({work, watch})  # the kind stops its work (e.g. kills the worker)
        seconds = asyncio.get_running_loop().time() - run.started
        elapsed = f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
        if lost is not None:
            await logs.close(discard=True)
            log.info("%s: stopped after %s: %s", run.label, elapsed, lost)
            return
        await logs.close()
        succeeded = not work.cancelled() and work.exception() is None
        if run.give_back and not succeeded and self.detached:
            self._left.add(process.processid)
            log.info("%s: left running (the executor is stopping; its next start takes it up)", run.label)
        elif run.give_back and not succeeded or isinstance(_exception(work), JobReleased):
            await self._give_back(run, None if run.give_back else str(work.exception()))
        elif succeeded:
            await self._close(run, work.result(), elapsed)
        else:
            await self._fail(run, _errors_of(work), elapsed)

    async def _run_job(self, job: Job, run: _Run) -> list[Any]:
        """The kind's ``execute``, with the process's fs directory brought in before and its files
        taken out after (:mod:`executors.process_files`)."""
        spec = read_fs_spec(job.process.spec.fs)
        if spec.empty:
            return await self.execute(job)
        if self.files is None:
            raise JobFailed("this executor does not run processes with an fs section")
        files = ProcessFiles(self.client, self.identity, job.process, spec, self.files.base, job.log)
        keep_all = False
        try:
            await files.stage_in(resumed=run.resumed)
            await asyncio.to_thread(self.files.prepare, files.process_dir)
            output = await self.execute(dataclasses.replace(job, fsdir=files.root))
            try:
                await files.stage_out()
            except JobFailed:
                keep_all = True
                raise
            return output
        except asyncio.CancelledError:
            keep_all = self.detached and job.stopping()  # the cluster job goes on in the directory
            raise
        finally:
            if not keep_all:
                await asyncio.to_thread(files.clean_up)

    async def _close(self, run: _Run, output: Any, elapsed: str) -> None:
        if not isinstance(output, list):
            await self._fail(run, [f"the executor's execute() returned a {type(output).__name__}, "
                                   "not a list of outputs"], elapsed)
            return
        pid, prvkey = run.process.processid, self.identity.prvkey
        try:
            combine = self._combined and not self._stopping.is_set()
            if combine and await self._close_and_take(run, output, elapsed):
                return
            if await self._deliver(run, "close", lambda: self.client.close_process(pid, output, prvkey)):
                log.info("%s: succeeded in %s", run.label, elapsed)
            if self._lost_assign:
                self._lost_assign = False
                await self._release_orphans()
        except (TypeError, ValueError) as exc:  # the output cannot be encoded as JSON
            await self._fail(run, [f"the output cannot be sent as JSON: {exc}"], elapsed)

    async def _close_and_take(self, run: _Run, output: list[Any], elapsed: str) -> bool:
        """Close the run and take the next ready process in the same round trip
        (``closeassignmsg``), which then runs in this run's slot. True when that is done (or the
        close was refused); False to close the plain way: a server without the message (it is
        not asked again), or one that could not be reached (the plain close's retries then tell
        whether this close went through, and a process it may have assigned is given back)."""
        me = self.identity
        try:
            process = await self.client.close_and_assign(run.process.processid, output, me.colonyname,
                                                         me.prvkey)
        except AlreadyApplied:
            # A retry after a lost reply: the close went through, and it may have assigned a
            # process whose reply was lost with it; that one goes back to the queue.
            log.info("%s: succeeded in %s (the close's reply was lost; its retry confirmed it)",
                     run.label, elapsed)
            await self._release_orphans()
            return True
        except ColoniesError as exc:
            if unsupported(exc):
                self._combined = False
                log.info("the server has no closeassignmsg: closing and assigning separately")
                return False
            if is_transient(exc):
                self._lost_assign = True
                return False
            self._refused(run, "close", exc)
            return True
        log.info("%s: succeeded in %s", run.label, elapsed)
        if process is not None:
            run.handed_over = True
            self._start(process)
        return True

    async def _fail(self, run: _Run, errors: list[str], elapsed: str) -> None:
        pid, prvkey = run.process.processid, self.identity.prvkey
        if await self._deliver(run, "fail", lambda: self.client.fail(pid, errors, prvkey)):
            log.info("%s: failed in %s: %s", run.label, elapsed, errors[0] if errors else "")

    async def _deliver(self, run: _Run, what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """``call()``, retried while the server is unreachable (not past DELIVERY_PATIENCE, nor
        once the executor must stop at once); a refusal (lease expired, cancelled) is logged."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DELIVERY_PATIENCE
        backoff = Backoff(self.config.backoff_min, self.config.backoff_max)
        while True:
            try:
                await call()
            except AlreadyApplied:  # a retry after a lost reply: the first attempt went through
                log.info("%s: the %s's reply was lost; its retry confirmed it", run.label, what)
                self._outage.recovered()
                return True
            except ColoniesError as exc:
                if is_transient(exc) and not self._hurry.is_set() and loop.time() < deadline:
                    self._outage.note(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._hurry.wait(), backoff.next_delay())
                    continue
                self._refused(run, what, exc)
                return False
            self._outage.recovered()
            return True

    def _refused(self, run: _Run, what: str, exc: ColoniesError) -> None:
        if "maxexectime" in str(exc):  # the server's deadline passed first: its retry rule decides
            log.info("%s: maxexectime passed; the server retries or fails the process", run.label)
        else:
            log.warning("%s: %s refused: %s", run.label, what, exc)

    async def _give_back(self, run: _Run, why: str | None = None) -> None:
        try:
            await self.client.release_process(run.process.processid, self.identity.prvkey)
        except ColoniesError as exc:
            log.warning("%s: could not give the process back to the queue: %s", run.label, exc)
            return
        log.info("%s: given back to the queue (%s)", run.label, why or "the executor is stopping")

    async def _watch(self, process: Process) -> str:
        """Return why the process is no longer this executor's to run (never, while it is)."""
        interval = self.config.cancel_check_interval
        if interval <= 0:
            await asyncio.Event().wait()
        me = self.identity
        while True:
            await asyncio.sleep(interval)
            try:
                current = await self.client.get_process(process.processid, me.prvkey)
            except NotFoundError:
                return "the process was removed"
            except Exception as exc:  # unreachable for now, or a refusal the close will report
                log.debug("checking process %s failed: %s", process.processid[:8], exc)
                continue
            if current.state == wire.CANCELLED:
                return "the process was cancelled"
            if (current.state != wire.RUNNING or current.assignedexecutorid != me.executorid
                    or current.starttime != process.starttime):
                state = _STATE_NAMES.get(current.state, str(current.state))
                return f"the process is no longer assigned to this executor (it is {state} now)"

    # -- heartbeat and shutdown -----------------------------------------------------------------

    async def _heartbeats(self) -> None:
        interval = self.config.heartbeat_interval
        if interval <= 0:
            return
        me = self.identity
        while True:
            await asyncio.sleep(interval)
            try:
                await self.client.heartbeat(me.colonyname, me.prvkey)
            except ColoniesError as exc:
                log.debug("heartbeat failed: %s", exc)

    async def _drain(self) -> None:
        """Give running processes the grace period, then cancel and release the rest."""
        loop = asyncio.get_running_loop()
        if self._runs and not self._hurry.is_set() and self.config.grace > 0 and not self.detached:
            log.info("stopping: waiting up to %g s for %d running process(es)", self.config.grace,
                     len(self._runs))
            deadline = loop.time() + self.config.grace
            hurry = asyncio.create_task(self._hurry.wait())
            try:
                while self._runs and not self._hurry.is_set() and loop.time() < deadline:
                    tasks = {run.task for run in self._runs if run.task is not None}
                    await asyncio.wait(tasks | {hurry}, timeout=deadline - loop.time(),
                                       return_when=asyncio.FIRST_COMPLETED)
            finally:
                hurry.cancel()
        if self._runs:
            log.info("stopping: giving %d running process(es) back to the queue", len(self._runs))
        while self._runs:  # a run ending now may have taken the next process: give that back too
            for run in list(self._runs):
                run.give_back = True
                if run.work is not None:
                    run.work.cancel()
            tasks = {run.task for run in self._runs if run.task is not None}
            if not tasks:
                break
            await asyncio.wait(tasks)

    async def _release_orphans(self) -> None:
        """An assign cut short (by the stop, or a lost reply) may have been granted after all:
        release any running process assigned to this executor that it is not running (executor
        keys are not shared)."""
        me = self.identity
        try:
            running = await self.client.list_processes(me.colonyname, wire.MAX_COUNT, wire.RUNNING, me.prvkey)
        except ColoniesError:
            return
        ours = self._left | {run.process.processid for run in self._runs}
        for process in running:
            if process.get("assignedexecutorid") == me.executorid and process["processid"] not in ours:
                with contextlib.suppress(ColoniesError):
                    await self.client.release_process(process["processid"], me.prvkey)
                    log.info("%s: given back to the queue (assigned as the executor stopped)",
                             str(process["processid"])[:8])


def _exception(work: asyncio.Task[Any]) -> BaseException | None:
    return None if work.cancelled() else work.exception()


def _errors_of(work: asyncio.Task[Any]) -> list[str]:
    """The errors to fail a process with, for a kind's task that raised or was cancelled."""
    if work.cancelled():
        return ["the executor cancelled the run"]
    exc = work.exception()
    assert exc is not None
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return errors
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return [message, "".join(traceback.format_exception(exc))]


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its own exception is not raised here)."""
    task.cancel()
    await asyncio.wait({task})
