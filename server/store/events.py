"""Process state-change events, published with PostgreSQL NOTIFY inside the changing statement.

Every statement that moves a process into a state calls the SQL function
``notify_process_changed`` (migration 0005) once per changed row, which notifies ``CHANNEL``, so
the event is delivered exactly when (and only if) the change commits, to every replica.
Realtime subscriptions (``/pubsub``) listen to it. The payload is
``<processid>\\x1f<state>\\x1f<colony>\\x1f<executortype>``.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNEL = "colonies_process"  # as notify_process_changed sends it
_SEP = "\x1f"


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
