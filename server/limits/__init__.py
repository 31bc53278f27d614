"""Limits on what a client, signed or not, can make the server hold (docs/limits.md).

``peers`` says which address a per-peer limit counts by and counts holdings against caps;
``bodies`` reads request bodies within the size, time and bytes-in-flight limits; ``connections``
is the listening socket's protocol factory: connection caps and the request-header watchdog.
Websocket limits live with the websockets (``server.realtime.endpoint``). All of them are per
server process: with ``--workers N`` each process applies them on its own.
"""

from server.limits.bodies import RequestBodies
from server.limits.connections import ConnectionGuard, ConnectionLimits, http_error_reply
from server.limits.peers import Cap, PeerCounter, peer_key

__all__ = ["Cap", "ConnectionGuard", "ConnectionLimits", "PeerCounter", "RequestBodies", "http_error_reply",
           "peer_key"]
