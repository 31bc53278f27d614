"""Cron schedules (server/scheduler/cron_schedule.py): 6-field expressions with seconds first,
5-field expressions, descriptors, ``@every <Go duration>``, fixed and random intervals."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.cron_schedule import (
    CronExpression,
    Every,
    ScheduleError,
    next_run,
    parse,
    parse_go_duration,
    validate,
)

NOW = datetime(2026, 3, 10, 12, 0, 0, 300_000, tzinfo=UTC)  # a Tuesday


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "first", "second"),
    [
        ("* * * * * *", at(2026, 3, 10, 12, 0, 1), at(2026, 3, 10, 12, 0, 2)),
        ("*/5 * * * * *", at(2026, 3, 10, 12, 0, 5), at(2026, 3, 10, 12, 0, 10)),
        ("30 0 3 * * *", at(2026, 3, 11, 3, 0, 30), at(2026, 3, 12, 3, 0, 30)),  # seconds come first
        ("0 0 12 ? * MON-FRI", at(2026, 3, 11, 12, 0, 0), at(2026, 3, 12, 12, 0, 0)),
        ("0 */2 * * *", at(2026, 3, 10, 14, 0, 0), at(2026, 3, 10, 16, 0, 0)),  # 5 fields: minute first
        ("@hourly", at(2026, 3, 10, 13, 0, 0), at(2026, 3, 10, 14, 0, 0)),
        ("@daily", at(2026, 3, 11), at(2026, 3, 12)),
        ("@midnight", at(2026, 3, 11), at(2026, 3, 12)),
        ("@weekly", at(2026, 3, 15), at(2026, 3, 22)),
        ("@monthly", at(2026, 4, 1), at(2026, 5, 1)),
        ("@yearly", at(2027, 1, 1), at(2028, 1, 1)),
        ("@annually", at(2027, 1, 1), at(2028, 1, 1)),
        ("  0   0  3 *  * *  ", at(2026, 3, 11, 3), at(2026, 3, 12, 3)),  # extra blanks are fine
    ],
)
def test_expressions(expression: str, first: datetime, second: datetime) -> None:
    schedule = parse(expression)
    assert isinstance(schedule, CronExpression)
    assert schedule.next_after(NOW) == first
    assert schedule.next_after(first) == second


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m30s", 90), ("1.5h", 5400), ("2h45m", 9900), ("1500ms", 1), ("300ms", 1), ("90s", 90),
     ("1h0m0s", 3600)],
)
def test_every_takes_a_go_duration_in_whole_seconds(text: str, seconds: int) -> None:
    schedule = parse(f"@every {text}")
    assert schedule == Every(seconds)
    assert schedule.next_after(NOW) == NOW + timedelta(seconds=seconds)


def test_go_durations() -> None:
    assert parse_go_duration("1m30s") == timedelta(seconds=90)
    assert parse_go_duration("-1.5h") == timedelta(hours=-1.5)
    assert parse_go_duration("250ms") == timedelta(milliseconds=250)
    assert parse_go_duration("10us") == timedelta(microseconds=10)
    assert parse_go_duration("0") == timedelta(0)
    for bad in ("", "10", "s", "1d", "1m30", "ten seconds", "1.2.3s"):
        with pytest.raises(ScheduleError):
            parse_go_duration(bad)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("* * * *", "4 fields"),
        ("1 2 3 4 5 6 7", "7 fields"),
        ("60 * * * * *", "invalid cron expression"),
        ("* 60 * * * *", "invalid cron expression"),
        ("a b c d e", "invalid cron expression"),
        ("@every", "needs a duration"),
        ("@every 10", "invalid duration"),
        ("@every -5s", "positive"),
        ("@every 0s", "positive"),
        ("@fortnightly", "unknown descriptor"),
        ("H * * * * *", "invalid cron expression"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(expression: str, fragment: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse(expression)
    assert fragment in str(info.value)
    assert info.value.field == "cronexpression"


def test_an_expression_that_never_matches_fails_when_evaluated() -> None:
    schedule = parse("0 0 0 30 2 *")  # February 30th
    with pytest.raises(ScheduleError, match="never matches"):
        schedule.next_after(NOW)


@pytest.mark.parametrize(
    ("interval", "is_random", "field"),
    [(0, False, "interval"), (-2, False, "interval"), (2**31, False, "interval"), (-1, True, "random")],
)
def test_bad_timing_fields(interval: int, is_random: bool, field: str) -> None:
    with pytest.raises(ScheduleError) as info:
        validate(interval=interval, random=is_random, expression="* * * * * *")
    assert info.value.field == field


def test_an_interval_ignores_the_expression() -> None:
    assert validate(interval=10, random=False, expression="not an expression") is None
    assert next_run(interval=10, random=False, expression="", now=NOW) == NOW + timedelta(seconds=10)


def test_the_expression_is_used_with_interval_minus_one() -> None:
    expected = at(2026, 3, 10, 12, 0, 5)
    assert next_run(interval=-1, random=False, expression="*/5 * * * * *", now=NOW) == expected
    with pytest.raises(ScheduleError):
        next_run(interval=-1, random=False, expression="bad", now=NOW)


def test_a_fixed_interval_stays_on_its_grid() -> None:
    previous = NOW
    # fired a little late: the next run is still one interval after the scheduled one
    assert next_run(interval=10, random=False, expression="", now=NOW + timedelta(seconds=0.4),
                    previous=previous) == NOW + timedelta(seconds=10)
    # after a long pause (blocked, or no server), missed runs are skipped, not made up
    assert next_run(interval=10, random=False, expression="", now=NOW + timedelta(seconds=35),
                    previous=previous) == NOW + timedelta(seconds=40)
    # an early manual run keeps the schedule
    assert next_run(interval=10, random=False, expression="", now=NOW - timedelta(seconds=3),
                    previous=previous) == previous


def test_random_gives_a_uniform_delay_below_the_interval() -> None:
    rng = random.Random(7)
    delays = [
        (next_run(interval=10, random=True, expression="", now=NOW, previous=NOW, rng=rng) - NOW)
        .total_seconds()
        for _ in range(2000)
    ]
    assert all(0 <= d < 10 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 9.5
    assert 4.5 < sum(delays) / len(delays) < 5.5
