"""What a kind of executor is given and may raise: the job types shared by the base and the work loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from executors.config import ExecutorConfig
from executors.register import Identity
from pycolonies.models import Process


class JobFailed(Exception):
    """Raise from :meth:`BaseExecutor.execute` to fail the process with ``errors`` (the message
    first, then details). Any exception with an ``errors`` list of strings is treated the same way
    (e.g. the python runner's ``ProcessFailure``); other exceptions fail the process with their
    message and traceback."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.errors: list[str] = [message, details] if details else [message]


class JobReleased(Exception):
    """Raise from :meth:`BaseExecutor.execute` to give the process back to the queue, unfailed, so
    that it runs again (e.g. the cluster preempted its job); the message says why."""


class ExecutorError(Exception):
    """The executor cannot go on (e.g. it was removed from the colony); the message says why."""


async def _no_attribute(key: str, value: str) -> None:
    return None


@dataclass(frozen=True)
class Job:
    """One process to run: what :meth:`BaseExecutor.execute` gets."""

    process: Process
    log: Callable[[str], Awaitable[None]]  # forward one output line to the process's logs
    executor: Identity  # who runs it (name, id, key, colony, type)
    config: ExecutorConfig
    timeout: float | None  # the process's maxexectime in seconds, None when it has none
    # attach an attribute (key, value) to the process, e.g. where its work runs
    attribute: Callable[[str, str], Awaitable[None]] = field(default=_no_attribute)
    # True once the executor is stopping: a detached kind then leaves its work running
    stopping: Callable[[], bool] = field(default=lambda: False)
    # the process's own directory holding its spec's fs dirs and snapshots, None when it has none
    # (see executors.process_files): the kind gives the command this directory
    fsdir: Path | None = None

    @property
    def processid(self) -> str:
        return self.process.processid

    @property
    def funcname(self) -> str:
        return self.process.spec.funcname
