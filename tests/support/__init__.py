"""Helpers shared by every test directory (waiting on state instead of sleeping)."""

from tests.support.waiting import wait_until

__all__ = ["wait_until"]
