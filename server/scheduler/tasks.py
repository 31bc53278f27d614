"""Stopping background tasks cooperatively."""

from __future__ import annotations

import asyncio
import contextlib


async def stop_task(task: asyncio.Task[None], grace_s: float = 5.0) -> None:
    """Wait for a task that was asked to stop; cancel it only if it overruns ``grace_s``.

    Cancelling asyncpg in the middle of connecting leaves an orphaned future behind, so tasks are
    told to stop (an event they watch at every pause) rather than cancelled outright.
    """
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
