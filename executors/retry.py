"""Riding out server outages: which errors are worth retrying, exponential back-off with jitter,
and one log line per outage (not one per retry)."""

from __future__ import annotations

import logging
import random
import time

from pycolonies.errors import ColoniesError, ColoniesServerError

log = logging.getLogger("executors")


def is_transient(exc: BaseException) -> bool:
    """The server could not be reached or was briefly unable to answer (connection refused or
    reset, timeout, HTTP 5xx such as 503 while its database restarts): try again later."""
    if not isinstance(exc, ColoniesError):
        return False
    if isinstance(exc, ColoniesServerError):
        return exc.status is not None and exc.status >= 500
    return exc.status is None or exc.status >= 500  # a transport failure or a reply that is no envelope


class Backoff:
    """Delays of ``first * 2**n`` seconds up to ``limit``, each scaled by a random factor in
    [0.5, 1] so that many executors do not retry in lockstep."""

    def __init__(self, first: float = 0.5, limit: float = 10.0) -> None:
        self.first = first
        self.limit = max(limit, first)
        self._attempts = 0

    def next_delay(self) -> float:
        delay = min(self.limit, self.first * 2**min(self._attempts, 30))
        self._attempts += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._attempts = 0


class Outage:
    """Logs once when the server becomes unreachable and once when it answers again."""

    def __init__(self, where: str, backoff: Backoff) -> None:
        self.where = where
        self.backoff = backoff
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failed attempt; return how long to wait before the next one."""
        self.note(exc)
        return self.backoff.next_delay()

    def note(self, exc: BaseException) -> None:
        """Note a failed attempt (the first one of an outage is logged)."""
        if self._since is None:
            self._since = time.monotonic()
            log.warning("server at %s unreachable (%s); retrying every %g-%g s until it answers",
                        self.where, exc, self.backoff.first, self.backoff.limit)

    def recovered(self) -> None:
        """Note a successful call."""
        if self._since is not None:
            log.info("server at %s answers again after %.1f s", self.where, time.monotonic() - self._since)
            self._since = None
        self.backoff.reset()
