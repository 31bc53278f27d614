"""Forwarding a running process's output lines to the server as process logs, without letting a
chatty function flood it.

Lines arriving within ``linger`` seconds of each other go out together as one ``addlogmsg``; a line
longer than ``max_line`` characters is cut; while the server is slower than the function, at most
``max_pending`` characters wait and further lines are dropped (and counted); after ``max_total``
characters per process nothing more is forwarded. Logs are best effort: a failed send is dropped,
never retried, and never fails the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("executors")

LINGER = 0.05
MAX_LINE = 8 * 1024
MAX_BATCH = 64 * 1024
MAX_PENDING = 1024 * 1024
MAX_TOTAL = 16 * 1024 * 1024


class LogForwarder:
    """``await forwarder.log(line)`` queues a line (it never blocks on the server and never
    raises); ``await forwarder.close()`` sends what is left (or drops it with ``discard=True``)."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[Any]],
        *,
        linger: float = LINGER,
        max_line: int = MAX_LINE,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        max_total: int = MAX_TOTAL,
    ) -> None:
        self._send = send
        self._linger = linger
        self._max_line = max_line
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._max_total = max_total
        self._lines: deque[str] = deque()
        self._pending = 0  # characters queued
        self._accepted = 0  # characters accepted in total
        self._dropped = 0  # lines dropped since the last note about it
        self._limit_noted = False
        self._closed = False
        self._flusher: asyncio.Task[None] | None = None
        self.sent_batches = 0
        self.failed_batches = 0

    @property
    def pending(self) -> int:
        """Characters queued and not sent yet."""
        return self._pending

    async def log(self, line: str) -> None:
        if self._closed:
            return
        line = line.rstrip("\n")
        if len(line) > self._max_line:
            line = f"{line[: self._max_line]}... [{len(line) - self._max_line} more characters cut]"
        size = len(line) + 1
        if self._accepted + size > self._max_total:
            if not self._limit_noted:
                self._limit_noted = True
                self._queue(f"[executor: the log limit of {self._max_total} characters per process is "
                            "reached; further output is not forwarded]")
            return
        if self._pending + size > self._max_pending:
            self._dropped += 1
            return
        self._note_dropped()
        self._accepted += size
        self._queue(line)

    def _note_dropped(self) -> None:
        """Say where lines were dropped, in their place in the output."""
        if self._dropped:
            self._queue(f"[executor: {self._dropped} lines dropped: the output came faster than the "
                        "server took it]")
            self._dropped = 0

    def _queue(self, line: str) -> None:
        self._lines.append(line)
        self._pending += len(line) + 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(self._linger))

    async def close(self, discard: bool = False) -> None:
        """Stop accepting lines; send the queued ones (unless ``discard``) and wait for that."""
        self._closed = True
        if discard:
            self._lines.clear()
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
            return
        self._note_dropped()
        if self._flusher is not None:
            await self._flusher
        if self._lines:
            await self._flush(0)

    async def _flush(self, linger: float) -> None:
        if linger > 0:
            await asyncio.sleep(linger)
        while self._lines:
            batch = self._take_batch()
            try:
                await self._send(batch)
                self.sent_batches += 1
            except Exception as exc:  # best effort: the server may be away or the process gone
                self.failed_batches += 1
                log.debug("a log batch was not forwarded: %s", exc)

    def _take_batch(self) -> str:
        parts: list[str] = []
        size = 0
        while self._lines and (not parts or size + len(self._lines[0]) + 1 <= self._max_batch):
            line = self._lines.popleft()
            self._pending -= len(line) + 1
            parts.append(line)
            size += len(line) + 1
        return "\n".join(parts) + "\n"
