"""RPC handlers, one module per domain; each exports ``HANDLERS: payloadtype -> handler``."""

from __future__ import annotations

from server.context import Handler
from server.handlers import (
    attributes,
    blueprints,
    channels,
    cluster,
    colonies,
    crons,
    executors,
    files,
    functions,
    generators,
    graphs,
    locations,
    logs,
    nodes,
    overview,
    pause,
    processes,
    security,
    serverinfo,
    users,
)


def routing_table() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    for module in (colonies, executors, users, functions, processes, graphs, crons, generators, logs,
                   attributes, files, serverinfo, overview, pause, channels, locations, security, cluster,
                   nodes, blueprints):
        for payloadtype, handler in module.HANDLERS.items():
            if payloadtype in table:
                raise RuntimeError(f"two handlers for {payloadtype}")
            table[payloadtype] = handler
    return table
