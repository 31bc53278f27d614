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

A request whose handler fails is forgotten again, so the client may retry it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from server.errors import Forbidden
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

    async def admit(self, db: Db, payloadtype: str, msg: dict[str, Any], signature: str) -> str | None:
        """Record the request or refuse it; returns the key to ``forget`` if the request fails."""
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
        key = signature.lower()
        status = await db.execute(
            "INSERT INTO seen_requests (signature) VALUES ($1) ON CONFLICT DO NOTHING", key
        )
        if not status.endswith(" 1"):
            raise Forbidden("Replayed request refused: this exact signed request was already accepted")
        return key

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
