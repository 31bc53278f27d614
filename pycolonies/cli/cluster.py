"""``colonies cluster``: the server processes (replicas) sharing the colonies database."""

from __future__ import annotations

from typing import Any

import typer

from pycolonies.cli.common import JsonOption, format_time, info, pick, print_json, print_table, session

app = typer.Typer(no_args_is_help=True, help="Inspect the server cluster.")


def _time(node: dict[str, Any], key: str) -> str:
    try:
        return format_time(node.get(key))
    except (TypeError, ValueError):
        return str(node.get(key, ""))


@app.command("info")
def cluster_info(json_output: JsonOption = False) -> None:
    """List the live server processes sharing the database, and the leader (COLONIES_SERVER_PRVKEY).

    Each server process records itself with a heartbeat; the leader runs the deadline sweeper."""
    with session() as (settings, client):
        cluster = client.get_cluster(settings.server_key())
    if json_output:
        print_json(cluster)
        return
    nodes = cluster.get("nodes") or []
    if not nodes:
        info("No server processes found")
        return
    leader = cluster.get("leader") or {}

    def is_leader(node: dict[str, Any]) -> str:
        same = leader and (node.get("name"), node.get("pid")) == (leader.get("name"), leader.get("pid"))
        return "True" if same else "False"

    print_table(nodes, [("Name", pick("name")), ("Host", pick("host")), ("APIPort", pick("apiport")),
                        ("PID", pick("pid")), ("Started", lambda n: _time(n, "started")),
                        ("Last heartbeat", lambda n: _time(n, "lastheartbeat")), ("Leader", is_leader)])
