"""Steady load through our SDK, for the tests that take the database or a replica away under it:
submitters and executors that only use the SDK's own retries (``retry_for``), and record every
call that still failed, what each acknowledged, and the longest call (the pause a user saw).

A ``work`` process has one argument; its executor closes it with ``[argument * 2]``, so an
output proves which close it came from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from pycolonies import AlreadyApplied, Colonies, ColoniesError, ColoniesTimeout, NotFoundError

FUNCNAME = "work"
RETRY_FOR_S = 30.0  # the SDK's default
T = TypeVar("T")


def work_spec(colonyname: str, executortype: str, argument: int, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "funcname": FUNCNAME,
        "args": [argument],
        "maxwaittime": -1,
        "maxexectime": 5,  # an assignment whose reply was lost is handed out again after this
        "maxretries": 20,
        "conditions": {"colonyname": colonyname, "executortype": executortype},
    }
    spec.update(overrides)
    return spec


@dataclass
class Calls:
    """What one thread's calls did."""

    failures: list[str] = field(default_factory=list)  # an SDK call that raised (not "nothing to do")
    already_applied: list[str] = field(default_factory=list)  # retried, refused as a replay
    longest_s: float = 0.0  # the longest submit or close (long-polls and waits are long anyway)

    def attempt(self, what: str, call: Callable[[], T], *, timed: bool = False,
                idle: tuple[type[ColoniesError], ...] = ()) -> T | None:
        """``call()``'s result, or None when it raised: ``idle`` errors ("nothing to do") quietly,
        AlreadyApplied and any other ColoniesError recorded under ``what``. ``timed``: it counts
        towards ``longest_s``."""
        started = time.monotonic()
        try:
            return call()
        except idle:
            return None
        except AlreadyApplied as exc:
            self.already_applied.append(f"{what}: {exc}")
            return None
        except ColoniesError as exc:
            self.failures.append(f"{what}: {exc!r}")
            return None
        finally:
            if timed:
                self.longest_s = max(self.longest_s, time.monotonic() - started)


class Submitter(threading.Thread):
    """Submits ``work`` processes one after another until ``stop``; every few, waits for one."""

    def __init__(self, host: str, port: int, colonyname: str, executortype: str, user_prvkey: str,
                 stop: threading.Event, first_argument: int, wait_every: int = 10) -> None:
        super().__init__(name=f"submitter-{first_argument}", daemon=True)
        self.address = (host, port)
        self.colonyname, self.executortype, self.user_prvkey = colonyname, executortype, user_prvkey
        self.stop_event = stop
        self.next_argument = first_argument
        self.wait_every = wait_every
        self.acknowledged: dict[str, int] = {}  # process id -> argument
        self.waited = 0
        self.calls = Calls()

    @property
    def unconfirmed(self) -> int:
        """Submits whose reply was lost and whose retry was refused as a replay (AlreadyApplied)."""
        return sum(1 for entry in self.calls.already_applied if entry.startswith("submit "))

    def run(self) -> None:
        with Colonies(*self.address, timeout=30, retry_for=RETRY_FOR_S) as sdk:
            while not self.stop_event.is_set():
                argument = self.next_argument
                self.next_argument += 1
                spec = work_spec(self.colonyname, self.executortype, argument)
                submit = partial(sdk.submit_func_spec, spec, self.user_prvkey)
                process = self.calls.attempt(f"submit {argument}", submit, timed=True)
                if process is None:
                    continue
                self.acknowledged[process.processid] = argument
                if argument % self.wait_every == 0:
                    self._wait(sdk, process.processid)

    def _wait(self, sdk: Colonies, processid: str) -> None:
        done = self.calls.attempt(f"wait {processid[:8]}", partial(sdk.wait, processid, 60, self.user_prvkey))
        if done is None:
            return
        if done.output != [self.acknowledged[processid] * 2]:
            self.calls.failures.append(f"wait {processid[:8]}: output {done.output!r}")
        self.waited += 1


class Worker(threading.Thread):
    """An executor: assign (long-poll), close with ``[argument * 2]``, until ``stop``."""

    def __init__(self, host: str, port: int, colonyname: str, prvkey: str, stop: threading.Event,
                 name: str, poll_s: int = 2) -> None:
        super().__init__(name=f"worker-{name}", daemon=True)
        self.address = (host, port)
        self.colonyname, self.prvkey = colonyname, prvkey
        self.stop_event = stop
        self.poll_s = poll_s
        self.closed: dict[str, list[Any]] = {}  # acknowledged closes: process id -> output
        self.calls = Calls()
        self.closed_at: list[float] = []  # monotonic time of each acknowledged close

    def run(self) -> None:
        with Colonies(*self.address, timeout=30, retry_for=RETRY_FOR_S) as sdk:
            while not self.stop_event.is_set():
                # AlreadyApplied on an assign: the process whose reply was lost comes back later
                assign = partial(sdk.assign, self.colonyname, self.poll_s, self.prvkey)
                process = self.calls.attempt("assign", assign, idle=(NotFoundError,))
                if process is None:
                    continue
                output = [process.spec.args[0] * 2]
                close = partial(sdk.close, process.processid, output, self.prvkey)
                closed = self.calls.attempt(f"close {process.processid[:8]}", close, timed=True)
                if closed is None:
                    continue
                self.closed[process.processid] = output
                self.closed_at.append(time.monotonic())


def closed_since(workers: list[Worker], moment: float) -> int:
    return sum(1 for w in workers for at in list(w.closed_at) if at > moment)


def longest_gap_s(workers: list[Worker], start: float, end: float) -> float:
    """The longest time between two acknowledged closes (of any executor) in [start, end]: the
    pause the executors saw."""
    moments = sorted(at for w in workers for at in w.closed_at if start <= at <= end)
    return max((b - a for a, b in zip(moments, moments[1:], strict=False)), default=0.0)


def stop_threads(threads: list[threading.Thread], stop: threading.Event, timeout: float = 60) -> None:
    """Set ``stop`` and join ``threads`` (AssertionError naming those still running after ``timeout`` s)."""
    stop.set()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads did not stop: {stuck}"


class Idler(threading.Thread):
    """Holds what a replica must hand back when it stops, on and on until ``stop``: a long-poll
    (assign for an executor type with no work, with the executor key ``prvkey``) or, given
    ``waits_for``, a subscription (``wait`` on a process nobody runs, as ``prvkey``, a member)."""

    def __init__(self, host: str, port: int, colonyname: str, prvkey: str, stop: threading.Event,
                 name: str, poll_s: int, waits_for: str | None = None) -> None:
        super().__init__(name=f"idler-{name}", daemon=True)
        self.address = (host, port)
        self.colonyname, self.prvkey = colonyname, prvkey
        self.stop_event = stop
        self.poll_s = poll_s
        self.waits_for = waits_for
        self.calls = Calls()
        self.rounds = 0

    def run(self) -> None:
        with Colonies(*self.address, timeout=30, retry_for=RETRY_FOR_S) as sdk:
            while not self.stop_event.is_set():
                try:
                    if self.waits_for is None:
                        process = sdk.assign(self.colonyname, self.poll_s, self.prvkey)
                        self.calls.failures.append(f"assign handed out {process.processid[:8]}")
                    else:
                        done = sdk.wait(self.waits_for, self.poll_s, self.prvkey)
                        self.calls.failures.append(f"wait returned {done.state}")
                except (NotFoundError, ColoniesTimeout):
                    self.rounds += 1  # the long-poll or the wait ran its course
                except ColoniesError as exc:
                    self.calls.failures.append(f"{'wait' if self.waits_for else 'assign'}: {exc!r}")
