"""Client side of ``/pubsub`` shared by the sync and async clients (no I/O here).

``wait`` sends three ``subscribeprocessmsg`` frames on one websocket (states SUCCESS, FAILED and
CANCELLED) and returns on the first process the server pushes; the server closes the socket after
``timeout`` seconds. ``subscribe_processes`` sends one ``subscribeprocessesmsg`` frame and yields
every pushed process until the server closes the socket. ``follow_channel`` sends one
``subscribechannelmsg`` frame and yields the entries of every pushed batch until an empty batch
(the server's end) or the socket closes.
"""

from __future__ import annotations

import math
from typing import Any

from pycolonies import rpc, wire
from pycolonies.api import channel_entries
from pycolonies.errors import ColoniesConnectionError, ColoniesError, ColoniesTimeout
from pycolonies.models import Process
from pycolonies.retrying import Attempts

PATH = "/pubsub"
FINAL_STATES = (wire.SUCCESS, wire.FAILED, wire.CANCELLED)
# How long past the subscription's timeout a client waits for the server to close the socket.
CLOSE_GRACE_S = 10.0


def url(host: str, port: int, tls: bool) -> str:
    return f"{'wss' if tls else 'ws'}://{host}:{port}{PATH}"


def process_id(process: Process | str) -> str:
    return process if isinstance(process, str) else process.processid


def wait_messages(process: Process | str, timeout: float) -> list[dict[str, Any]]:
    """One ``subscribeprocessmsg`` per final state. For a process id the executortype is left
    empty (the server then uses the process's own)."""
    executortype = colonyname = ""
    if isinstance(process, Process):
        executortype = process.spec.conditions.executortype
        colonyname = process.spec.conditions.colonyname
    return [
        {
            "msgtype": "subscribeprocessmsg",
            "processid": process_id(process),
            "executortype": executortype,
            "state": state,
            "timeout": timeout,
            "colonyname": colonyname,
        }
        for state in FINAL_STATES
    ]


def processes_message(colonyname: str, executortype: str, state: int, timeout: float) -> dict[str, Any]:
    return {
        "msgtype": "subscribeprocessesmsg",
        "colonyname": colonyname,
        "executortype": executortype,
        "state": state,
        "timeout": timeout,
    }


def channel_message(processid: str, name: str, afterseq: int, timeout: float) -> dict[str, Any]:
    return {"msgtype": "subscribechannelmsg", "processid": processid, "name": name, "afterseq": afterseq,
            "timeout": timeout}


def decode_entries(text: str | bytes, where: str) -> list[dict[str, Any]]:
    """The channel entries of a pushed frame (payloads as bytes); ``[]`` ends the subscription."""
    body = text.encode() if isinstance(text, str) else text
    return channel_entries(rpc.decode_reply(body, rpc.JSON_CONTENT_TYPE, 200, where))


def decode_push(text: str | bytes, where: str) -> Process:
    """The process in a pushed frame, or the typed error an error envelope describes."""
    body = text.encode() if isinstance(text, str) else text
    return Process.from_wire(rpc.decode_reply(body, rpc.JSON_CONTENT_TYPE, 200, where))


def read_timeout(timeout: float, base: float | None) -> float:
    """How long the client waits for a frame: the subscription's timeout plus a grace for the close."""
    return max(timeout, 0.0) + (base if base is not None else CLOSE_GRACE_S)


def not_finished(processid: str, timeout: float) -> ColoniesTimeout:
    return ColoniesTimeout(f"Process <{processid}> did not finish within {timeout:g} s")


def closed_early(where: str) -> ColoniesConnectionError:
    return ColoniesConnectionError(
        f"The Colonies server at {where} closed the subscription before its timeout", retryable=True
    )


def resubscribe_pause(attempts: Attempts, where: str, left: float,
                      cause: ColoniesError | None = None) -> float:
    """The pause before subscribing again after the server closed a subscription early, or
    pushed ``cause``, an error worth retrying (a replica shutting down closes its websockets; one
    whose database fails over answers 503; behind a load balancer the next subscription reaches
    another replica, which re-checks the state first, so nothing is missed). Raises the error once
    the client's ``retry_for`` is used up, or at once without it."""
    error = cause or closed_early(where)
    pause = attempts.pause_after(error)
    if pause is None:
        raise error
    return min(pause, left)


def resubscribe_timeout(left: float) -> int:
    """The timeout of a renewed subscription, in whole seconds as the protocol has them (0: none
    left, the wait is over)."""
    return math.ceil(left) if left > 0 else 0
