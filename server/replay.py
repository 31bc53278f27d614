"""Replay protection for state-changing requests.

The signature covers only the payload, so a captured request stays valid forever. The rule:

* A state-changing request that carries ``requesttime`` (Unix ns, inside the signed payload;
  our SDK always adds it with a random ``requestnonce``) must be within ``window`` seconds of
  the server's clock, and its signature is accepted once. Such a request can never be replayed.
* A state-changing request without ``requesttime`` (the reference clients) is refused if the
  identical signed request was accepted within the window; after the window it is accepted
  again. The reference clients sign deterministically, so the message types they legitimately
  repeat byte-for-byte (assign polls, repeated log lines, resubmitting the same spec...) are not
  de-duplicated for them. ``require_request_time`` refuses such requests outright instead.
* Read-only requests are never recorded.

A request whose handler fails is forgotten again, so the client may retry it. Hot handlers
(``records_replay``) record the request inside their own statement (``SEEN_CTE``), saving a round
trip; the others are recorded before they run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from server.errors import Forbidden, Replayed
from server.store import Executor as Db

READ_ONLY = frozenset({"versionmsg", "searchlogsmsg", "resolvegeneratormsg", "channelreadmsg"})
LEGACY_REPEATABLE = frozenset(
    {
        "assignprocessmsg",
        "addlogmsg",
        "addexecutorlogmsg",
        "setoutputmsg",
        "submitfuncspecmsg",
        "submitworkflowspecmsg",
        "addchildmsg",
        "packgeneratormsg",
        "channelappendmsg",
        "runcronmsg",
        "reportallocationmsg",
        "updateexecutormsg",
    }
)


def is_read_only(payloadtype: str) -> bool:
    return payloadtype.startswith("get") or payloadtype in READ_ONLY


@dataclass(frozen=True)
class ReplayGuard:
    window_s: int = 300
    require_request_time: bool = False

    def key_for(self, payloadtype: str, msg: dict[str, Any], signature: str) -> str | None:
        """The key under which this request must be recorded, or None if it is not recorded;
        refuses a stale or (when required) missing ``requesttime``."""
        if is_read_only(payloadtype):
            return None
        request_time = msg.get("requesttime")
        if request_time is None:
            if self.require_request_time:
                raise Forbidden(
                    "Request refused: this server requires requesttime in signed requests "
                    "(replay protection); use a client that sends it"
                )
            if payloadtype in LEGACY_REPEATABLE:
                return None
        else:
            self._check_fresh(request_time)
        return signature.lower()

    @staticmethod
    async def record(db: Db, key: str) -> None:
        """Record an accepted request, or refuse it as a replay."""
        status = await db.execute(
            "INSERT INTO seen_requests (signature) VALUES ($1) ON CONFLICT DO NOTHING", key
        )
        if not status.endswith(" 1"):
            raise Replayed()

    def _check_fresh(self, request_time: Any) -> None:
        if not isinstance(request_time, int) or isinstance(request_time, bool):
            raise Forbidden("Request refused: requesttime must be an integer (Unix time in nanoseconds)")
        skew_s = abs(time.time_ns() - request_time) / 1e9
        if skew_s > self.window_s:
            raise Forbidden(
                f"Request refused: requesttime is {skew_s:.0f} s away from the server's clock (the replay "
                f"window is {self.window_s} s); check the client's clock"
            )

    @staticmethod
    async def forget(db: Db, key: str | None) -> None:
        if key is not None:
            await db.execute("DELETE FROM seen_requests WHERE signature = $1", key)


async def expire(db: Db, window_s: int) -> int:
    """Forget requests older than the window (called by the deadline sweeper)."""
    status = await db.execute(
        "DELETE FROM seen_requests WHERE seen_at < now() - make_interval(secs => $1)", float(window_s)
    )
    return int(status.split()[-1])


# A CTE that records the request ``{key}`` (a text parameter, NULL when not recorded); the
# statement's state change must also require ``REQUEST_IS_FRESH`` and report ``SEEN_COUNT``.
SEEN_CTE = """seen AS (
    INSERT INTO seen_requests (signature) SELECT {key}::text WHERE {key}::text IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1)"""
REQUEST_IS_FRESH = "({key}::text IS NULL OR EXISTS (SELECT 1 FROM seen))"


def records_replay(handler):  # noqa: ANN001, ANN201 - decorator keeps the handler's type
    """Mark a handler that records its request's replay key in its own statement."""
    handler.records_replay = True
    return handler


def check_recorded(row: Any, key: str | None) -> None:
    """After a statement with ``SEEN_CTE``: refuse the request if it was a replay."""
    if key is not None and row["seen"] == 0:
        raise Replayed()
