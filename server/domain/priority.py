"""Queue order: processes are assigned by priority time, then first in, first out."""

from __future__ import annotations

from pycolonies import wire
from pycolonies.models import FuncSpec


def priority_time(spec: FuncSpec, submitted_ns: int) -> int:
    """The submission time, moved one day earlier per priority point."""
    return submitted_ns - spec.priority * wire.PRIORITY_TIME_UNIT_NS
