"""Prometheus metrics of one server process, in a registry that the app owns.

Nothing here is global: each ``Metrics`` has its own ``CollectorRegistry`` (never
prometheus_client's default one), so two apps in one process count apart. Counters and histograms
move with traffic (``rpc`` and the assign handler record them); gauges are computed when
``/metrics`` is scraped: the process counts by one grouped query (``store.processes
.counts_by_queue``, at most once per ``db_refresh_s``, shared by concurrent scrapes), the
leader locks, the sweep time and the pools from the objects handed to ``watch``.

Label values that clients choose are bounded: a payloadtype that is not a handler's is counted as
``unknown`` (the caller maps it), and at most ``max_queues`` (colony, executor type) pairs are
reported one by one, the rest of a colony summed as executor type ``_other``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pycolonies import wire
from server.store import processes as process_store

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN = "unknown"  # the payloadtype label of a request for no handler (or no readable envelope)
CANCELLED = "cancelled"  # the status label of a request whose client left before the reply
OTHER = "_other"  # the executortype label that sums the queues past ``max_queues``
# From 1 ms to a minute: a fast RPC lands low, a long-poll assign up to its timeout.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   20.0, 30.0, 60.0)
STATE_NAMES = {wire.WAITING: "waiting", wire.RUNNING: "running", wire.SUCCESS: "successful",
               wire.FAILED: "failed", wire.CANCELLED: "cancelled"}
MAX_QUEUES = 500
DB_REFRESH_S = 1.0  # a scrape reads the database at most this often (it is not signed)
DB_TIMEOUT_S = 5.0


class Leader(Protocol):
    is_leader: bool


class Sweeper(Leader, Protocol):
    last_sweep_at: float | None


@dataclass
class _Snapshot:
    """What the last scrape read from the database (None: it could not be read)."""

    counts: list[process_store.QueueCount] | None = None
    taken_at: float = float("-inf")  # monotonic


@dataclass
class _Watched:
    pools: Mapping[str, asyncpg.Pool] = field(default_factory=dict)
    sweeper: Sweeper | None = None
    triggers: Leader | None = None


class Metrics:
    """This process's metrics: record with ``request`` and ``assign_wait``, serve with ``render``."""

    def __init__(self, *, max_queues: int = MAX_QUEUES, db_refresh_s: float = DB_REFRESH_S) -> None:
        self.registry = CollectorRegistry()
        self.max_queues = max_queues
        self.db_refresh_s = db_refresh_s
        self._requests = Counter(
            "colonies_requests", "RPC requests answered on POST /api, by message type and HTTP status.",
            ["payloadtype", "status"], registry=self.registry,
        )
        self._latency = Histogram(
            "colonies_request_duration_seconds",
            "Time from receiving a POST /api request to its reply, by message type (long-polls included).",
            ["payloadtype"], buckets=SECONDS_BUCKETS, registry=self.registry,
        )
        self._assign_wait = Histogram(
            "colonies_assign_wait_seconds",
            "How long an assignprocessmsg waited before a process was handed out (outcome=assigned) "
            "or its timeout passed (outcome=timeout).",
            ["outcome"], buckets=SECONDS_BUCKETS, registry=self.registry,
        )
        self._watched = _Watched()
        self._snapshot = _Snapshot()
        self._refresh_lock = asyncio.Lock()
        self.registry.register(_ScrapeCollector(self))

    # -- recording ---------------------------------------------------------------------------------

    def request(self, payloadtype: str, status: int | str, seconds: float) -> None:
        """One answered /api request; ``payloadtype`` must already be a handler's or ``UNKNOWN``."""
        self._requests.labels(payloadtype, str(status)).inc()
        self._latency.labels(payloadtype).observe(seconds)

    def assign_wait(self, outcome: str, seconds: float) -> None:
        self._assign_wait.labels(outcome).observe(seconds)

    def watch(self, *, pools: Mapping[str, asyncpg.Pool], sweeper: Sweeper, triggers: Leader) -> None:
        """What the scrape reports on besides the database: pools by name and the leader loops."""
        self._watched = _Watched(dict(pools), sweeper, triggers)

    # -- scraping ----------------------------------------------------------------------------------

    async def render(self, pool: asyncpg.Pool) -> bytes:
        """The text exposition, after reading the process counts from ``pool`` if they are older
        than ``db_refresh_s`` (one query however many scrapes arrive at once)."""
        async with self._refresh_lock:
            if time.monotonic() - self._snapshot.taken_at >= self.db_refresh_s:
                try:
                    async with asyncio.timeout(DB_TIMEOUT_S), pool.acquire() as con:
                        counts = await process_store.counts_by_queue(con)
                except Exception as exc:  # reported as colonies_metrics_database_up 0
                    log.debug("metrics: cannot read the process counts: %s", exc)
                    counts = None
                self._snapshot = _Snapshot(counts, time.monotonic())
        return generate_latest(self.registry)

    def _collect_scraped(self) -> Iterator[Metric]:
        yield from self._process_families(self._snapshot.counts)
        yield from self._leader_families()
        yield from self._pool_families()
        info = GaugeMetricFamily("colonies_worker", "This server worker process (always 1), by its pid: "
                                 "a scrape describes the one worker that answered it.", labels=["pid"])
        info.add_metric([str(os.getpid())], 1)
        yield info

    def _process_families(self, counts: list[process_store.QueueCount] | None) -> Iterator[Metric]:
        up = GaugeMetricFamily("colonies_metrics_database_up",
                               "1 if this scrape read the process counts from the database, else 0.")
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        by_state: dict[tuple[str, str, str], int] = defaultdict(int)
        depth: dict[tuple[str, str], int] = defaultdict(int)
        oldest: dict[tuple[str, str], float] = {}
        totals: dict[tuple[str, str], int] = defaultdict(int)
        live = (wire.WAITING, wire.RUNNING)
        for row in (row for row in counts if row.state in live):
            totals[row.colony_name, row.executor_type] += row.count
        kept = set(sorted(totals, key=lambda q: (-totals[q], q))[: self.max_queues])
        for row in counts:
            colony, executortype = row.colony_name, row.executor_type
            if row.state in live and (colony, executortype) not in kept:
                executortype = OTHER
            by_state[colony, executortype, STATE_NAMES.get(row.state, str(row.state))] += row.count
            if row.state == wire.WAITING and not row.wait_for_parents:
                queue = (colony, executortype)
                depth[queue] += row.count
                oldest[queue] = max(oldest.get(queue, 0.0), row.oldest_age_s or 0.0)
        processes = GaugeMetricFamily(
            "colonies_processes", "Processes by colony, executor type and state. Waiting (workflow members "
            "waiting for their parents included) and running ones by executor type; ended ones "
            "(successful, failed, cancelled) per colony only, with executortype \"\".",
            labels=["colony", "executortype", "state"])
        for labels, n in sorted(by_state.items()):
            processes.add_metric(list(labels), n)
        yield processes
        queue_depth = GaugeMetricFamily(
            "colonies_queue_depth", "Waiting processes ready to be assigned (not waiting for parents), "
            "by colony and executor type.", labels=["colony", "executortype"])
        waiting_age = GaugeMetricFamily(
            "colonies_queue_oldest_waiting_seconds", "Seconds since the submission of the oldest process "
            "ready to be assigned, by colony and executor type.", labels=["colony", "executortype"])
        for queue in sorted(depth):
            queue_depth.add_metric(list(queue), depth[queue])
            waiting_age.add_metric(list(queue), max(oldest[queue], 0.0))
        yield queue_depth
        yield waiting_age

    def _leader_families(self) -> Iterator[Metric]:
        watched = self._watched
        leader = GaugeMetricFamily(
            "colonies_leader", "1 if this worker holds the advisory lock of the leader loop named by "
            "lock (deadline_sweeper: deadlines and retries; triggers: crons and generators), else 0.",
            labels=["lock"])
        for name, loop in (("deadline_sweeper", watched.sweeper), ("triggers", watched.triggers)):
            if loop is not None:
                leader.add_metric([name], 1 if loop.is_leader else 0)
        yield leader
        last = GaugeMetricFamily(
            "colonies_last_sweep_timestamp_seconds", "Unix time at which this worker last completed a "
            "deadline sweep (0 if it has not swept since it started: it is not the leader).")
        swept = watched.sweeper.last_sweep_at if watched.sweeper is not None else None
        last.add_metric([], swept or 0.0)
        yield last

    def _pool_families(self) -> Iterator[Metric]:
        families = {
            "size": GaugeMetricFamily("colonies_db_pool_size",
                                      "Open connections of this worker's database pool.", labels=["pool"]),
            "in_use": GaugeMetricFamily("colonies_db_pool_in_use",
                                        "Connections of the pool lent out right now.", labels=["pool"]),
            "idle": GaugeMetricFamily("colonies_db_pool_idle",
                                      "Open connections of the pool not lent out.", labels=["pool"]),
            "max": GaugeMetricFamily("colonies_db_pool_max",
                                     "The most connections the pool may open.", labels=["pool"]),
        }
        for name, pool in sorted(self._watched.pools.items()):
            size, idle = pool.get_size(), pool.get_idle_size()
            families["size"].add_metric([name], size)
            families["in_use"].add_metric([name], size - idle)
            families["idle"].add_metric([name], idle)
            families["max"].add_metric([name], pool.get_max_size())
        yield from families.values()


class _ScrapeCollector(Collector):
    """The gauges that ``Metrics`` computes at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._collect_scraped()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are only known at scrape time; nothing to check at registration
