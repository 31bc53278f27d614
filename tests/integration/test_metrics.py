"""The operators' endpoints against a real server and PostgreSQL: /metrics (parsed with the
Prometheus text parser; its counters move with traffic, its gauges follow the database), /healthz
and /readyz (the database unreachable, a migration missing)."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pycolonies import NotFoundError, wire
from server import db
from server.app import SERVICES
from server.testing import ServerThread
from tests import rawrpc
from tests.conftest import ColonyEnv
from tests.support import wait_until

WAIT_S = 20.0  # only a guard against a hang: the waits end as soon as the state is reached
DURATIONS = "colonies_request_duration_seconds_count"


def get(url: str) -> tuple[int, str, str]:
    """GET ``url``: (status, content type, body)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


class Scrape:
    """One parsed /metrics answer."""

    def __init__(self, server: ServerThread) -> None:
        status, content_type, text = get(f"{server.url}/metrics")
        assert status == 200, text
        assert content_type.startswith("text/plain"), content_type
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 if there is none: a counter not yet moved)."""
        found = [s for s in self.matching(name, **labels) if len(s.labels) == len(labels)]
        assert len(found) <= 1, found
        return found[0].value if found else 0.0


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much the sample ``name`` with exactly ``labels`` moved between two scrapes."""
    return after.value(name, **labels) - before.value(name, **labels)


def spec(colony: ColonyEnv, executortype: str | None = None) -> dict[str, Any]:
    return {"funcname": "work", "args": [], "maxwaittime": -1, "maxexectime": -1, "maxretries": 0,
            "conditions": {"colonyname": colony.colonyname,
                           "executortype": executortype or colony.executortype}}


def submit(colony: ColonyEnv, executortype: str | None = None) -> Any:
    return colony.client.submit_func_spec(spec(colony, executortype), colony.user_prvkey)


def node(colony: ColonyEnv, name: str, *deps: str) -> dict[str, Any]:
    body = spec(colony, "wf-type")
    body.update(nodename=name, funcname=name)
    body["conditions"]["dependencies"] = list(deps)
    return body


# -- /metrics: the format and the request counters -------------------------------------------------


def test_metrics_parse_and_every_family_is_named_and_explained(colony: ColonyEnv) -> None:
    scrape = Scrape(colony.server)
    expected = {
        "colonies_requests", "colonies_request_duration_seconds", "colonies_assign_wait_seconds",
        "colonies_processes", "colonies_queue_depth", "colonies_queue_oldest_waiting_seconds",
        "colonies_leader", "colonies_last_sweep_timestamp_seconds", "colonies_db_pool_size",
        "colonies_db_pool_in_use", "colonies_db_pool_idle", "colonies_db_pool_max",
        "colonies_metrics_database_up", "colonies_worker",
    }
    ours = {name for name in scrape.families if name.startswith("colonies_")}
    assert expected <= ours, expected - ours
    for name in ours:
        assert scrape.families[name].documentation, f"{name} has no HELP text"
    # Only our registry is served: none of prometheus_client's default process/platform collectors.
    assert not [n for n in scrape.families if n.startswith(("process_", "python_"))]
    assert scrape.value("colonies_metrics_database_up") == 1
    assert scrape.value("colonies_worker", pid=str(os.getpid())) == 1  # the test server runs in this process


def test_the_request_counter_moves_by_exactly_the_submits(colony: ColonyEnv) -> None:
    labels = {"payloadtype": "submitfuncspecmsg", "status": "200"}
    before = Scrape(colony.server)
    for _ in range(3):
        submit(colony)
    after = Scrape(colony.server)
    assert moved(before, after, "colonies_requests_total", **labels) == 3
    assert moved(before, after, DURATIONS, payloadtype="submitfuncspecmsg") == 3
    # The histogram's buckets run from 1 ms to 60 s.
    bounds = {s.labels["le"] for s in after.matching("colonies_request_duration_seconds_bucket",
                                                     payloadtype="submitfuncspecmsg")}
    assert {"0.001", "60.0", "+Inf"} <= bounds


def test_an_error_reply_is_counted_with_its_status(colony: ColonyEnv) -> None:
    msg = {"msgtype": "getprocessmsg", "processid": "0" * 64}
    status, _ = rawrpc.call(colony.server.url, msg, colony.user_prvkey)
    assert status >= 400
    labels = {"payloadtype": "getprocessmsg", "status": str(status)}
    before = Scrape(colony.server).value("colonies_requests_total", **labels)
    assert before >= 1
    rawrpc.call(colony.server.url, msg, colony.user_prvkey)
    assert Scrape(colony.server).value("colonies_requests_total", **labels) == before + 1


def test_garbage_payloadtypes_share_one_fixed_label(colony: ColonyEnv) -> None:
    garbage = [f"garbage-{uuid.uuid4().hex}" for _ in range(3)]
    before = Scrape(colony.server).value("colonies_requests_total", payloadtype="unknown", status="403")
    for payloadtype in garbage:
        envelope = {"signature": "", "payloadtype": payloadtype,
                    "payload": wire.encode_payload({"msgtype": payloadtype})}
        status, _ = rawrpc.envelope_call(colony.server.url, envelope)
        assert status == 403
    status, _ = rawrpc.post(colony.server.url, b"{not json")  # no envelope at all: also "unknown"
    assert status == 400
    after = Scrape(colony.server)
    assert after.value("colonies_requests_total", payloadtype="unknown", status="403") == before + 3
    assert after.value("colonies_requests_total", payloadtype="unknown", status="400") >= 1
    seen = {s.labels.get("payloadtype") for s in after.samples}
    assert not seen & set(garbage)


# -- /metrics: the gauges computed from the database ----------------------------------------------


def test_process_gauges_follow_the_states(colony: ColonyEnv) -> None:
    client, executor = colony.client, colony.executor_prvkey
    submitted_at = time.time()
    for _ in range(4):
        submit(colony)
    done = client.assign(colony.colonyname, -1, executor)
    client.close(done.processid, [], executor)
    failed = client.assign(colony.colonyname, -1, executor)
    client.fail(failed.processid, ["boom"], executor)
    client.assign(colony.colonyname, -1, executor)  # stays running; one stays waiting
    submit(colony, "other-type")
    submit(colony, "other-type")
    client.cancel_process(submit(colony, "other-type").processid, colony.user_prvkey)
    # A workflow: its root is ready, its child waits for the root (waiting, but not in the queue).
    client.submit_workflow({"colonyname": colony.colonyname,
                            "functionspecs": [node(colony, "a"), node(colony, "b", "a")]}, colony.user_prvkey)

    # Live processes by executor type; ended ones per colony only (executortype "").
    expected = {
        (colony.executortype, "waiting"): 1, (colony.executortype, "running"): 1,
        ("other-type", "waiting"): 2, ("wf-type", "waiting"): 2,
        ("", "successful"): 1, ("", "failed"): 1, ("", "cancelled"): 1,
    }

    def counts() -> Scrape | None:
        scrape = Scrape(colony.server)
        found = {(s.labels["executortype"], s.labels["state"]): s.value
                 for s in scrape.matching("colonies_processes", colony=colony.colonyname)}
        return scrape if found == expected else None

    scrape = wait_until(counts, WAIT_S, f"colonies_processes to show {expected}")
    depth = {s.labels["executortype"]: s.value
             for s in scrape.matching("colonies_queue_depth", colony=colony.colonyname)}
    assert depth == {colony.executortype: 1, "other-type": 2, "wf-type": 1}
    age = scrape.value("colonies_queue_oldest_waiting_seconds", colony=colony.colonyname,
                       executortype="other-type")
    assert 0 <= age <= time.time() - submitted_at + 1.0


def test_the_oldest_waiting_age_is_the_first_submits(colony: ColonyEnv) -> None:
    """The age grows from the oldest waiting process, and drops when that one is assigned."""
    submit(colony)
    labels = {"colony": colony.colonyname, "executortype": colony.executortype}

    def aged(seconds: float) -> float:
        value = Scrape(colony.server).value("colonies_queue_oldest_waiting_seconds", **labels)
        return value if value >= seconds else 0.0

    first_age = wait_until(lambda: aged(1.5), WAIT_S, "the oldest waiting process to be 1.5 s old")
    submit(colony)  # a younger one joins
    assert aged(first_age) >= first_age  # still the first's age
    colony.client.assign(colony.colonyname, -1, colony.executor_prvkey)  # the first goes

    def young() -> bool:
        scrape = Scrape(colony.server)
        return (scrape.value("colonies_queue_depth", **labels) == 1
                and scrape.value("colonies_queue_oldest_waiting_seconds", **labels) < first_age)

    wait_until(young, WAIT_S, "the age to be the younger process's")


def test_pool_metrics_describe_both_pools(colony: ColonyEnv) -> None:
    scrape = Scrape(colony.server)
    for pool in ("main", "relaxed"):
        size = scrape.value("colonies_db_pool_size", pool=pool)
        assert size >= 1
        assert scrape.value("colonies_db_pool_in_use", pool=pool) + scrape.value(
            "colonies_db_pool_idle", pool=pool) == size
        assert scrape.value("colonies_db_pool_max", pool=pool) >= size
    assert scrape.value("colonies_db_pool_max", pool="main") == colony.server.config().db_pool_size
    assert scrape.value("colonies_db_pool_max", pool="relaxed") == 4


def test_assign_wait_is_observed_for_assigned_and_timed_out(colony: ColonyEnv) -> None:
    name = "colonies_assign_wait_seconds"
    before = Scrape(colony.server)
    submit(colony)
    colony.client.assign(colony.colonyname, 10, colony.executor_prvkey)
    with pytest.raises(NotFoundError):
        colony.client.assign(colony.colonyname, 1, colony.executor_prvkey)  # nothing left: waits 1 s
    after = Scrape(colony.server)
    assert moved(before, after, f"{name}_count", outcome="assigned") == 1
    assert moved(before, after, f"{name}_count", outcome="timeout") == 1
    assert moved(before, after, f"{name}_sum", outcome="timeout") >= 0.9  # it waited its 1 s
    # The long-poll is in the request latency too.
    assert moved(before, after, DURATIONS, payloadtype="assignprocessmsg") == 2


def test_leader_gauges_and_two_apps_count_apart(colony: ColonyEnv) -> None:
    server = colony.server

    def leading() -> Scrape | None:
        scrape = Scrape(server)
        leads = (scrape.value("colonies_leader", lock="deadline_sweeper") == 1
                 and scrape.value("colonies_leader", lock="triggers") == 1
                 and scrape.value("colonies_last_sweep_timestamp_seconds") > 0)
        return scrape if leads else None

    scrape = wait_until(leading, WAIT_S, "the only replica to lead both loops and sweep")
    assert scrape.value("colonies_last_sweep_timestamp_seconds") <= time.time()
    submit(colony)
    # A second replica on the same database, in this same process: it holds neither lock, and
    # has its own counters (nothing shared through prometheus_client's global registry).
    with ServerThread(server.dsn) as second:
        other = Scrape(second)
        assert other.value("colonies_leader", lock="deadline_sweeper") == 0
        assert other.value("colonies_leader", lock="triggers") == 0
        assert other.value("colonies_last_sweep_timestamp_seconds") == 0
        submits = {"payloadtype": "submitfuncspecmsg", "status": "200"}
        assert other.value("colonies_requests_total", **submits) == 0
        assert Scrape(server).value("colonies_requests_total", **submits) == 1
        # The database's gauges are the same whichever replica is asked.
        counts = other.matching("colonies_processes", colony=colony.colonyname)
        assert [(s.labels["state"], s.value) for s in counts] == [("waiting", 1)]


def test_queues_past_the_limit_are_summed_as_other(colony: ColonyEnv) -> None:
    """A member choosing many executor types cannot grow the scrape without bound."""
    colony.server.app[SERVICES].metrics.max_queues = 2
    for executortype, n in (("big", 3), ("mid", 2), ("small-1", 1), ("small-2", 1)):
        for _ in range(n):
            submit(colony, executortype)

    def folded() -> dict[str, float] | None:
        scrape = Scrape(colony.server)
        depth = {s.labels["executortype"]: s.value
                 for s in scrape.matching("colonies_queue_depth", colony=colony.colonyname)}
        return depth if depth == {"big": 3, "mid": 2, "_other": 2} else None

    wait_until(folded, WAIT_S, "the two smallest queues to be summed as _other")


# -- /healthz and /readyz --------------------------------------------------------------------------


def test_healthz_and_readyz_on_a_migrated_database(server: ServerThread) -> None:
    assert get(f"{server.url}/healthz")[0::2] == (200, "alive")
    assert get(f"{server.url}/readyz")[0::2] == (200, "ready")
    assert get(f"{server.url}/health")[0] == 200  # what clients use, unchanged


async def _execute(dsn: str, statement: str, *args: Any, then: str = "") -> None:
    con = await asyncpg.connect(dsn)
    try:
        await con.execute(statement, *args)
        if then:
            await con.execute(then)
    finally:
        await con.close()


def test_readyz_names_a_migration_that_is_not_applied(server: ServerThread) -> None:
    last = db.load_migrations()[-1]
    asyncio.run(_execute(server.dsn, "DELETE FROM schema_migrations WHERE version = $1", last.version))
    status, _, text = get(f"{server.url}/readyz")
    assert (status, text) == (503, f"not ready: migrations not applied: {last.version:04d}")
    assert get(f"{server.url}/healthz")[0] == 200
    asyncio.run(_execute(server.dsn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                         last.version, last.name))
    assert get(f"{server.url}/readyz")[0::2] == (200, "ready")


def test_readyz_is_503_while_the_database_refuses_connections(server: ServerThread, admin_dsn: str) -> None:
    name = urlsplit(server.dsn).path.lstrip("/")
    terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    asyncio.run(_execute(admin_dsn, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false", then=terminate))
    try:
        def refused() -> str | None:
            status, _, text = get(f"{server.url}/readyz")
            return text if status == 503 else None

        text = wait_until(refused, WAIT_S, "/readyz to answer 503")
        assert text.startswith("not ready: the database is not reachable"), text
        assert get(f"{server.url}/healthz")[0::2] == (200, "alive")  # alive: no database call
        scrape = wait_until(lambda: (s := Scrape(server)).value("colonies_metrics_database_up") == 0 and s,
                            WAIT_S, "/metrics to say the database is down")
        assert not scrape.matching("colonies_processes")
    finally:
        asyncio.run(_execute(admin_dsn, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
    back = time.time()
    wait_until(lambda: get(f"{server.url}/readyz")[0] == 200, WAIT_S, "/readyz to be 200 again")
    # The deadline sweeper reconnected and leads again: its lost connection did not end it.
    wait_until(lambda: Scrape(server).value("colonies_last_sweep_timestamp_seconds") > back, WAIT_S,
               "a sweep after the database came back")
