"""What a handler gets: the shared services and the verified request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from server.config import ServerConfig
from server.limits import RequestBodies
from server.metrics import Metrics
from server.params import Msg
from server.replay import ReplayGuard
from server.scheduler.wakeups import Wakeups


@dataclass
class Services:
    pool: asyncpg.Pool
    # For bookkeeping whose loss in a PostgreSQL crash is harmless (replay records, liveness
    # stamps): commits without waiting for the WAL flush. Never for process or identity state.
    relaxed_pool: asyncpg.Pool
    wakeups: Wakeups
    config: ServerConfig
    replay: ReplayGuard
    started_at: str = ""
    # This process's Prometheus metrics (its own registry: nothing is shared between apps).
    metrics: Metrics = field(default_factory=Metrics)
    # Request-body limits of this process and its bookkeeping of body bytes in flight.
    bodies: RequestBodies = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = RequestBodies.from_config(self.config)


@dataclass
class Call:
    services: Services
    signer: str
    msg: Msg
    replay_key: str | None = None  # set for requests that replay protection records

    @property
    def pool(self) -> asyncpg.Pool:
        return self.services.pool


Handler = Callable[[Call], Awaitable[Any]]


def replies_as(payloadtype: str) -> Callable[[Handler], Handler]:
    """Mark a handler whose reply envelope carries ``payloadtype`` instead of the request's (the
    reference answers ``getpausestatusmsg`` with ``pausestatusreplymsg``)."""

    def mark(handler: Handler) -> Handler:
        handler.reply_type = payloadtype  # type: ignore[attr-defined]
        return handler

    return mark


def reply_type(handler: Handler | None, payloadtype: str) -> str:
    """The payloadtype of the reply envelope to a request of ``payloadtype``."""
    return getattr(handler, "reply_type", payloadtype)
