"""Realtime: websocket subscriptions to process state changes (``GET /pubsub``).

``listener`` keeps this replica's one LISTEN connection and dispatches events in memory; ``feeds``
says what each subscription request means and who may make it; ``endpoint`` runs the websockets.
"""

from server.realtime.endpoint import PubSubEndpoint
from server.realtime.listener import ProcessListener

__all__ = ["ProcessListener", "PubSubEndpoint"]
