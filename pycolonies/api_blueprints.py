"""The blueprint RPCs (declarative resources and their reconcilers), for the sync and the async
client alike: :class:`~pycolonies.api.ColoniesApi` inherits them, so each returns its value from
:class:`~pycolonies.client.Colonies` and an awaitable of it from
:class:`~pycolonies.aio.AsyncColonies`.

Names and arguments follow the reference SDK. Objects are plain dicts:
a definition ``{"kind": "BlueprintDefinition", "metadata": {"name", "colonyname"}, "spec": {"names":
{"kind"}, "schema": <JSON Schema>, "handler": {"executorType", "functionName"}}}``, a blueprint
``{"kind", "metadata": {"name", "colonyname", "locationname"}, "handler"?, "spec", "status"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JSONDict = dict[str, Any]


def _raw(reply: Any) -> Any:
    return reply


def _as_list(reply: Any) -> list[Any]:
    return [] if reply is None else list(reply)


class BlueprintsApi:
    """Mixed into ``ColoniesApi``, which provides ``_invoke``."""

    _invoke: Callable[[JSONDict, str | None, Callable[[Any], Any]], Any]

    # -- definitions (adding and removing them needs the colony key) -----------------------------

    def add_blueprint_definition(self, definition: JSONDict, prvkey: str) -> JSONDict:
        """Define a kind: its spec's JSON Schema and the executor type that reconciles it."""
        msg = {"msgtype": "addblueprintdefinitionmsg", "blueprintdefinition": definition}
        return self._invoke(msg, prvkey, _raw)

    def get_blueprint_definition(self, colony_name: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getblueprintdefinitionmsg", "colonyname": colony_name, "name": name}
        return self._invoke(msg, prvkey, _raw)

    def get_blueprint_definitions(self, colony_name: str, prvkey: str) -> list[JSONDict]:
        msg = {"msgtype": "getblueprintdefinitionsmsg", "colonyname": colony_name}
        return self._invoke(msg, prvkey, _as_list)

    def remove_blueprint_definition(self, colony_name: str, name: str, prvkey: str) -> JSONDict:
        """Remove a definition that no blueprint uses any more."""
        msg = {"msgtype": "removeblueprintdefinitionmsg", "namespace": colony_name, "name": name}
        return self._invoke(msg, prvkey, _raw)

    # -- blueprints -------------------------------------------------------------------------------

    def add_blueprint(self, blueprint: JSONDict, prvkey: str) -> JSONDict:
        """Add a blueprint (its spec checked against its kind's schema); a reconcile process is
        submitted with it. The stored blueprint (generation 1)."""
        return self._invoke({"msgtype": "addblueprintmsg", "blueprint": blueprint}, prvkey, _raw)

    def get_blueprint(self, colony_name: str, name: str, prvkey: str) -> JSONDict:
        msg = {"msgtype": "getblueprintmsg", "namespace": colony_name, "name": name}
        return self._invoke(msg, prvkey, _raw)

    def get_blueprints(self, colony_name: str, prvkey: str, kind: str | None = None,
                       location: str | None = None) -> list[JSONDict]:
        """The colony's blueprints, of ``kind`` and at ``location`` when given."""
        msg: JSONDict = {"msgtype": "getblueprintsmsg", "namespace": colony_name}
        if kind:
            msg["kind"] = kind
        if location:
            msg["locationname"] = location
        return self._invoke(msg, prvkey, _as_list)

    def update_blueprint(self, blueprint: JSONDict, prvkey: str, force_generation: bool = False) -> JSONDict:
        """Replace a blueprint's spec (and metadata); a changed spec, or ``force_generation``, is a
        new generation. A reconcile process is submitted with it. The stored blueprint."""
        msg = {"msgtype": "updateblueprintmsg", "blueprint": blueprint, "forcegeneration": force_generation}
        return self._invoke(msg, prvkey, _raw)

    def remove_blueprint(self, colony_name: str, name: str, prvkey: str) -> JSONDict:
        """Remove a blueprint; a ``cleanup`` process is submitted to its reconciler."""
        msg = {"msgtype": "removeblueprintmsg", "namespace": colony_name, "name": name}
        return self._invoke(msg, prvkey, _raw)

    def update_blueprint_status(self, colony_name: str, name: str, status: JSONDict, prvkey: str) -> JSONDict:
        """The reconciler's report: the blueprint's status, replaced as a whole (members only)."""
        msg = {"msgtype": "updateblueprintstatusmsg", "colonyname": colony_name, "blueprintname": name,
               "status": status}
        return self._invoke(msg, prvkey, _raw)

    def reconcile_blueprint(self, colony_name: str, name: str, prvkey: str, force: bool = False) -> JSONDict:
        """Submit a reconcile process for the blueprint as it is now (``force``: as a new
        generation); the process."""
        msg = {"msgtype": "reconcileblueprintmsg", "namespace": colony_name, "name": name, "force": force}
        return self._invoke(msg, prvkey, _raw)

    def get_blueprint_history(
        self, blueprint_id: str, prvkey: str, limit: int | None = None
    ) -> list[JSONDict]:
        """The blueprint's changes, latest first (at most ``limit``, default 100)."""
        msg = {"msgtype": "getblueprinthistorymsg", "blueprintid": blueprint_id, "limit": limit or 0}
        return self._invoke(msg, prvkey, _as_list)
