"""When a cron runs next: a fixed interval, a random delay, or a cron expression (pure functions).

A cron with ``interval > 0`` runs every ``interval`` seconds, on a grid anchored at its first run
(runs missed while the server was down or the cron was blocked are skipped, not made up); with
``random`` each next run is instead a uniform random delay in [0, interval) seconds after the
last evaluation. With ``interval == -1`` the cron expression decides, evaluated in UTC:

* 6 fields, seconds first (the reference's format): ``sec min hour dom month dow``;
* 5 fields (standard cron, at second 0): ``min hour dom month dow``;
* descriptors: ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``),
  ``@hourly``, and ``@every <Go duration>`` (``@every 10s``, ``@every 1m30s``, ``@every 1.5h``),
  which runs that long after the previous evaluation, in whole seconds (at least 1 s).

Field syntax (ranges, steps, names, ``?``, ``L``, ``#``) is croniter's.
"""

from __future__ import annotations

import math
import random as random_module
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter
from croniter.croniter import CroniterError

MAX_INTERVAL_S = 2**31 - 1


class ScheduleError(ValueError):
    """The schedule cannot be used; the message says why and ``field`` names the cron field at fault
    (``interval``, ``random`` or ``cronexpression``)."""

    def __init__(self, message: str, field: str = "cronexpression") -> None:
        super().__init__(message)
        self.field = field


_GO_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> timedelta:
    """A Go ``time.ParseDuration`` string (``1h30m``, ``10s``, ``1.5m``, ``300ms``) as a timedelta."""
    body = text.strip()
    sign = 1
    if body and body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return timedelta(0)
    if not body:
        raise ScheduleError(f"invalid duration {text!r}")
    total_ns = 0.0
    pos = 0
    while pos < len(body):
        match = _GO_PART.match(body, pos)
        if match is None:
            raise ScheduleError(
                f"invalid duration {text!r}: expected a number and a unit (ns, us, ms, s, m, h), e.g. 1m30s"
            )
        total_ns += float(match.group(1)) * _GO_UNITS_NS[match.group(2)]
        pos = match.end()
    return timedelta(microseconds=sign * total_ns / 1000)


@dataclass(frozen=True)
class Every:
    """``@every <duration>``: a constant delay from each evaluation."""

    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class CronExpression:
    """A 5- or 6-field (seconds first) cron expression or an ``@daily``-style descriptor."""

    expression: str

    def next_after(self, moment: datetime) -> datetime:
        try:
            found = croniter(self.expression, moment.astimezone(UTC), ret_type=datetime,
                             second_at_beginning=True).get_next()
        except CroniterError as exc:  # e.g. "0 0 0 30 2 *": February 30th never comes
            raise ScheduleError(f"cron expression {self.expression!r} never matches: {exc}") from exc
        return found.astimezone(UTC)


Schedule = Every | CronExpression

_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def parse(expression: str) -> Schedule:
    """The schedule of a cron expression, or ScheduleError naming the problem."""
    text = " ".join(expression.split())
    if not text:
        raise ScheduleError("the cron expression is empty (use interval > 0, or a cron expression)")
    lowered = text.lower()
    if lowered.startswith("@every"):
        argument = text[len("@every"):].strip()
        if not argument:
            raise ScheduleError("@every needs a duration, e.g. '@every 10s' or '@every 1m30s'")
        delay = parse_go_duration(argument)
        if delay <= timedelta(0):
            raise ScheduleError(f"@every needs a positive duration, got {argument!r}")
        seconds = max(1, math.floor(delay.total_seconds()))
        if seconds > MAX_INTERVAL_S:
            raise ScheduleError(f"@every duration {argument!r} is too long")
        return Every(seconds)
    if lowered.startswith("@"):
        if lowered not in _DESCRIPTORS:
            raise ScheduleError(
                f"unknown descriptor {text!r} (use @every <duration>, {', '.join(_DESCRIPTORS)})"
            )
        schedule = CronExpression(lowered)
    else:
        fields = text.split(" ")
        if len(fields) not in (5, 6):
            raise ScheduleError(
                f"cron expression {text!r} has {len(fields)} fields; use 6 (sec min hour dom month dow) "
                "or 5 (min hour dom month dow)"
            )
        try:
            croniter.expand(text, second_at_beginning=True)
        except (CroniterError, ValueError) as exc:
            raise ScheduleError(f"invalid cron expression {text!r}: {exc}") from exc
        schedule = CronExpression(text)
    return schedule


def validate(*, interval: int, random: bool, expression: str) -> Schedule | None:
    """Check a cron's timing fields; the parsed expression when it is used (interval -1)."""
    if interval == 0:
        raise ScheduleError("interval 0 is not allowed: use a positive number of seconds, or -1 to "
                            "run on the cron expression", "interval")
    if interval < -1:
        raise ScheduleError(f"interval {interval} is not allowed: use a positive number of seconds, or -1 "
                            "to run on the cron expression", "interval")
    if interval > MAX_INTERVAL_S:
        raise ScheduleError(f"interval {interval} exceeds the maximum of {MAX_INTERVAL_S} seconds",
                            "interval")
    if interval > 0:
        return None
    if random:
        raise ScheduleError("random needs an interval > 0 (a random delay in [0, interval) seconds); it "
                            "cannot be combined with a cron expression (interval -1)", "random")
    return parse(expression)


def next_run(
    *,
    interval: int,
    random: bool,
    expression: str,
    now: datetime,
    previous: datetime | None = None,
    rng: random_module.Random | None = None,
) -> datetime:
    """When a cron evaluated at ``now`` runs next. ``previous`` is its current next-run time (the
    anchor of a fixed interval). Raises ScheduleError for a bad or never-matching schedule."""
    schedule = validate(interval=interval, random=random, expression=expression)
    if schedule is not None:
        return schedule.next_after(now)
    if random:
        return now + timedelta(seconds=(rng or random_module.Random()).random() * interval)
    if previous is None:
        return now + timedelta(seconds=interval)
    if previous > now:  # an early run (runcronmsg) keeps the grid
        return previous
    skipped = (now - previous) // timedelta(seconds=interval)
    return previous + (skipped + 1) * timedelta(seconds=interval)
