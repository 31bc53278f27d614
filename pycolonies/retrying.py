"""Sending a call again when the server could not answer it (no I/O here: the sync and async
clients loop over :class:`Attempts`).

Worth another attempt: a 502, 503 or 504 (a replica shutting down hands its long-polls back with
503, a database failover answers 503 until the new primary is found, a load balancer answers 502
or 504 while no replica is up), and a connection cut after it was opened (reset, or closed before
the reply: a replica that went away under a load balancer). Not retried: a refused connection (no
server there: say so at once), the caller's own timeout, and every other reply.

A retry sends the identical signed envelope (the same ``requestnonce`` and ``requesttime``), so
the server's replay protection refuses it if an earlier attempt took effect after all; that
refusal, after a retry, is raised as :class:`~pycolonies.errors.AlreadyApplied`. The server
forgets a request that failed, so a retry of one that did not take effect is accepted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import NoReturn

from pycolonies.errors import (
    AccessDeniedError,
    AlreadyApplied,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesServerError,
)

DEFAULT_RETRY_FOR_S = 30.0
RETRY_STATUSES = frozenset({502, 503, 504})
FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 1.0
REPLAYED = "Replayed request refused"  # the server's message for an identical signed request


def worth_retrying(exc: ColoniesError) -> bool:
    """The call may be sent again as it is (see the module's notes)."""
    if isinstance(exc, ColoniesServerError):
        return exc.status in RETRY_STATUSES
    if isinstance(exc, ColoniesConnectionError):
        return exc.retryable or exc.status in RETRY_STATUSES  # e.g. a proxy's own 502 page
    return False


class Attempts:
    """The attempts of one call: the pause before each retry (doubling from ``FIRST_PAUSE_S`` to
    ``MAX_PAUSE_S``, with jitter), until ``retry_for`` seconds have passed since the first."""

    def __init__(self, retry_for: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + max(retry_for, 0.0)
        self.retries = 0

    def pause_after(self, exc: ColoniesError) -> float | None:
        """How long to wait before sending the call again after ``exc``; None: raise it."""
        if not worth_retrying(exc):
            return None
        left = self._deadline - self._clock()
        if left <= 0:
            return None
        pause = min(MAX_PAUSE_S, FIRST_PAUSE_S * 2 ** min(self.retries, 20)) * random.uniform(0.5, 1.0)
        self.retries += 1
        return min(pause, left)

    def raise_final(self, exc: ColoniesError) -> NoReturn:
        """Raise the call's final error ``exc`` (from inside its ``except``): a replay refusal of a
        retry becomes AlreadyApplied."""
        if self.retries and isinstance(exc, AccessDeniedError) and REPLAYED in exc.message:
            raise AlreadyApplied(
                f"{exc.message} (a retry after a lost reply: the first attempt took effect)", exc.status
            ) from exc
        raise exc
