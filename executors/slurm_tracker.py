"""Following many Slurm jobs with one status query per poll interval.

:meth:`Tracker.follow` waits for one job's final state while its output file is tailed into a
callback. However many jobs are followed, one loop asks Slurm about all of them at once: one
``squeue`` per round (plus one ``sacct`` in a round where a job has left the controller's memory),
never one call per job. Rounds are ``poll_min`` seconds apart while something changes, and back
off (x1.5 a quiet round) up to ``poll_max``; a new job brings the interval back to ``poll_min``
but never an extra round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from executors.lines import OutputCallback, OutputLines
from executors.slurm_cli import JobState, SlurmError, SlurmTools

log = logging.getLogger("executors")

CHUNK = 1 << 20  # bytes of one job's output read per round at most
GONE_ROUNDS = 3  # rounds a job may be missing from squeue and sacct before it counts as lost


@dataclass(eq=False)
class _Followed:
    jobid: str
    output: Path
    lines: OutputLines
    reader: asyncio.StreamReader = field(default_factory=asyncio.StreamReader)
    offset: int = 0
    state: str = ""
    missing: int = 0
    done: asyncio.Future[JobState] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Tracker:
    def __init__(self, tools: SlurmTools, poll_min: float = 1.0, poll_max: float = 10.0) -> None:
        self.tools = tools
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.rounds = 0  # status rounds so far
        self._jobs: dict[str, _Followed] = {}
        self._interval = poll_min
        self._loop: asyncio.Task[None] | None = None
        self._last_round = float("-inf")

    async def follow(self, jobid: str, output: Path, on_line: OutputCallback) -> tuple[JobState, list[str]]:
        """Wait until job ``jobid`` has ended; its final state and the last lines of its output
        (every line of which went to ``on_line`` as it came)."""
        job = _Followed(jobid, output, OutputLines(on_line, stop=lambda: None))
        pump = asyncio.create_task(job.lines.pump(job.reader))
        self._jobs[jobid] = job
        self._interval = self.poll_min
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run(), name="slurm status")
        try:
            final = await job.done
        finally:
            self._jobs.pop(jobid, None)
            job.reader.feed_eof()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pump, 10)
        return final, list(job.lines.tail)

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._jobs:
            await asyncio.sleep(max(0.0, self._last_round + self._interval - loop.time()))
            self._last_round = loop.time()
            changed = False
            try:
                changed = await self._round()
            except SlurmError as exc:
                log.warning("Slurm status query failed (retrying): %s", exc)
            except Exception:  # never let one bad round end the loop that every job waits on
                log.exception("Slurm status round failed")
            self._interval = self.poll_min if changed else min(self.poll_max, self._interval * 1.5)

    async def _round(self) -> bool:
        jobs = dict(self._jobs)
        if not jobs:
            return False
        self.rounds += 1
        states = await self.tools.states(jobs)
        missing = [jobid for jobid in jobs if jobid not in states]
        if missing:
            try:
                states.update(await self.tools.accounted(missing))
            except SlurmError as exc:  # the others' states still count
                log.warning("sacct failed for job(s) %s: %s", ",".join(missing), exc)
        await self._tail(list(jobs.values()))
        changed = False
        for jobid, job in jobs.items():
            state = states.get(jobid)
            if state is None:
                job.missing += 1
                if job.missing >= GONE_ROUNDS and not job.done.done():
                    job.done.set_result(JobState(jobid, "UNKNOWN", "the job is gone from squeue and sacct"))
                continue
            job.missing = 0
            changed |= state.state != job.state
            job.state = state.state
            if state.final and not job.done.done():
                await self._tail([job])  # what it wrote last
                job.done.set_result(state)
        return changed

    async def _tail(self, jobs: list[_Followed]) -> None:
        """Feed what each job's output file has gained to its line splitter (the reads, on a
        shared file system, in a thread)."""
        chunks = await asyncio.to_thread(_read_new, [(job.output, job.offset) for job in jobs])
        for job, chunk in zip(jobs, chunks, strict=True):
            if chunk:
                job.offset += len(chunk)
                job.reader.feed_data(chunk)
        await asyncio.sleep(0)  # let the pumps take their lines


def _read_new(files: list[tuple[Path, int]]) -> list[bytes]:
    chunks = []
    for path, offset in files:
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                chunks.append(handle.read(CHUNK))
        except OSError:  # not there yet (pending)
            chunks.append(b"")
    return chunks
