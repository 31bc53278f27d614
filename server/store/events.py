"""Process state-change events, published with PostgreSQL NOTIFY inside the changing statement.

Every statement that moves a process into a state publishes one notification on ``CHANNEL`` per
changed row, so it is delivered exactly when (and only if) the change commits, to every replica.
Realtime subscriptions (``/pubsub``) listen to it. The payload is
``<processid>\\x1f<state>\\x1f<colony>\\x1f<executortype>``.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNEL = "colonies_process"
_SEP = "\x1f"


def notify_sql(alias: str) -> str:
    """A ``pg_notify(...)`` call announcing the row ``alias`` (with process_id, state, colony_name
    and executor_type columns); select it once per changed row, in a CTE that the statement uses."""
    return (
        f"pg_notify('{CHANNEL}', concat_ws(chr(31), {alias}.process_id, {alias}.state::text, "
        f"{alias}.colony_name, {alias}.executor_type))"
    )


@dataclass(frozen=True)
class ProcessEvent:
    process_id: str
    state: int
    colony_name: str
    executor_type: str


def parse(payload: str) -> ProcessEvent | None:
    parts = payload.split(_SEP)
    if len(parts) != 4 or not parts[1].lstrip("-").isdigit():
        return None
    return ProcessEvent(parts[0], int(parts[1]), parts[2], parts[3])
