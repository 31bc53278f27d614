"""Replay protection for state-changing requests.

The signature covers only the payload, so a captured request stays valid forever. The rule:

* A state-changing request that carries ``requesttime`` (Unix ns, inside the signed payload;
  our SDK always adds it with a random ``requestnonce``) must be at most ``window`` seconds
  behind the server's clock and at most ``future_skew`` seconds ahead of it, and its signature is
  accepted once. Its record is kept ``window + future_skew`` seconds, which outlives every moment
  at which its ``requesttime`` is still acceptable, so such a request can never be replayed.
* A state-changing request without ``requesttime`` (the reference clients, which sign
  deterministically and send no nonce) is refused if the identical signed request was accepted
  within the window, except for the types whose byte-identical repeats are those clients'
  everyday use: the work they repeat (``LEGACY_REPEATED_WORK``: assign polls, identical log
  lines, resubmitting the same spec, a reconciler's unchanged blueprint status, reconciling a
  blueprint again ...) and the owner's grants (``LEGACY_GRANTS``: adding a
  colony, executor, user or function, approving an executor), which are re-issued byte for byte
  after a removal or a rejection. Revocations (remove, reject, cancel ...) and closes stay
  one-per-window, so a captured revocation cannot undo the owner's later re-grant, and a captured
  close cannot close a later run. ``require_request_time`` refuses such requests outright.
* Read-only requests are never recorded.

A request whose handler fails is forgotten again, so the client may retry it. Hot handlers
(``records_replay``) record the request inside their own statement (a CTE), saving a round
trip; the others are recorded before they run. The SQL is in ``server.store.seen_requests``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from server.errors import Forbidden

READ_ONLY = frozenset(
    {"versionmsg", "searchlogsmsg", "searchfilesmsg", "resolvegeneratormsg", "channelreadmsg"}
)
LEGACY_REPEATED_WORK = frozenset(
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
        "updateblueprintstatusmsg",
        "reconcileblueprintmsg",
    }
)
LEGACY_GRANTS = frozenset(
    {"addcolonymsg", "addexecutormsg", "approveexecutormsg", "addusermsg", "addfunctionmsg",
     "addlocationmsg"}
)
LEGACY_REPEATABLE = LEGACY_REPEATED_WORK | LEGACY_GRANTS
DEFAULT_FUTURE_SKEW_S = 60


def is_read_only(payloadtype: str) -> bool:
    return payloadtype.startswith("get") or payloadtype in READ_ONLY


@dataclass(frozen=True)
class ReplayGuard:
    window_s: int = 300
    require_request_time: bool = False
    future_skew_s: int = DEFAULT_FUTURE_SKEW_S

    @property
    def retention_s(self) -> int:
        """How long a record is kept: past the last moment its requesttime could be accepted."""
        return self.window_s + self.future_skew_s

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
            self.check_fresh(request_time)
        return signature.lower()

    def check_fresh(self, request_time: Any) -> None:
        """Refuse (403) a ``requesttime`` outside the window, naming how far off it is."""
        if not isinstance(request_time, int) or isinstance(request_time, bool):
            raise Forbidden("Request refused: requesttime must be an integer (Unix time in nanoseconds)")
        behind_s = (time.time_ns() - request_time) / 1e9
        if behind_s > self.window_s:
            raise Forbidden(
                f"Request refused: requesttime is {behind_s:.0f} s behind the server's clock (the replay "
                f"window is {self.window_s} s); check the client's clock"
            )
        if -behind_s > self.future_skew_s:
            raise Forbidden(
                f"Request refused: requesttime is {-behind_s:.0f} s ahead of the server's clock (at most "
                f"{self.future_skew_s} s ahead is accepted, the replay window's future skew); check the "
                "client's clock"
            )


def records_replay(handler):  # noqa: ANN001, ANN201 - decorator keeps the handler's type
    """Mark a handler that records its request's replay key in its own statement."""
    handler.records_replay = True
    return handler
