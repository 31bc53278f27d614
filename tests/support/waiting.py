"""Wait on state, not on time: poll a predicate until it holds, with a deadline that only guards
against a hang (a slow machine makes the test slower, never wrong)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; AssertionError
    naming ``what`` if it has not after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
