"""Reading a child process's output as lines, with a bounded tail (shared by the kinds that run
children: the python worker, containers)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

MAX_LINE = 64 * 1024  # longer output lines are passed on in pieces of this many bytes
TAIL_LINES = 20  # output lines kept to quote when the child fails

OutputCallback = Callable[[str], Awaitable[None]]


class OutputLines:
    """Splits a child's output into lines for ``on_line`` (a failing callback calls ``stop``, to
    stop the child) and keeps the last ``tail_lines`` lines, to quote when the child fails. Lines
    longer than :data:`MAX_LINE` bytes are passed on in pieces, so memory stays bounded whatever
    the child writes."""

    def __init__(
        self, on_line: OutputCallback, stop: Callable[[], None], tail_lines: int = TAIL_LINES
    ) -> None:
        self.on_line = on_line
        self.stop = stop
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.waiting_since: float | None = None  # when it began waiting for data, if it is

    def stalled(self, seconds: float) -> bool:
        """Waited for data (not for the callback) for at least ``seconds``."""
        since = self.waiting_since
        return since is not None and asyncio.get_running_loop().time() - since >= seconds

    async def pump(self, stream: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        pending = b""
        try:
            while True:
                self.waiting_since = loop.time()
                chunk = await stream.read(MAX_LINE)
                self.waiting_since = None
                if not chunk:
                    break
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    await self._emit(line)
                while len(pending) >= MAX_LINE:
                    await self._emit(pending[:MAX_LINE])
                    pending = pending[MAX_LINE:]
            if pending:
                await self._emit(pending)
        except Exception:
            self.stop()
            raise

    async def _emit(self, line: bytes) -> None:
        text = line.removesuffix(b"\r").decode("utf-8", errors="replace")
        self.tail.append(text)
        await self.on_line(text)
