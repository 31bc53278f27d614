"""What a kind of executor is given and may raise: the job types shared by the base and the work loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


class ExecutorError(Exception):
    """The executor cannot go on (e.g. it was removed from the colony); the message says why."""


@dataclass(frozen=True)
class Job:
    """One process to run: what :meth:`BaseExecutor.execute` gets."""

    process: Process
    log: Callable[[str], Awaitable[None]]  # forward one output line to the process's logs
    executor: Identity  # who runs it (name, id, key, colony, type)
    config: ExecutorConfig
    timeout: float | None  # the process's maxexectime in seconds, None when it has none

    @property
    def processid(self) -> str:
        return self.process.processid

    @property
    def funcname(self) -> str:
        return self.process.spec.funcname
