"""Blueprint rules: what a definition and a blueprint must hold, validation of a blueprint's spec
against its definition's JSON Schema (the ``jsonschema`` library, the draft the schema names or
2020-12), when a change is a new generation, and what a reconcile process carries.

Errors are :class:`BlueprintError` with the path of the offending field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema import exceptions as schema_errors
from jsonschema import validators

DEFINITION_KIND = "BlueprintDefinition"
RECONCILE_FUNCTION = "reconcile"
CLEANUP_FUNCTION = "cleanup"
# reconciliation.action of a reconcile process (the reference's names, plus a manual reconcile).
CREATE, UPDATE, DELETE, NOOP, RECONCILE = "create", "update", "delete", "noop", "reconcile"
MAX_NAME = 256


class BlueprintError(ValueError):
    """A definition or blueprint that cannot be accepted; ``path`` names the field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Definition:
    """A checked blueprint definition: its colony, name, the kind it defines, the executor type
    and function that reconcile that kind, its schema (None: any object) and the whole object."""

    colony_name: str
    name: str
    kind: str
    executor_type: str
    function_name: str
    schema: dict[str, Any] | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Blueprint:
    """A checked blueprint as a client sent it (metadata and handler still as dicts)."""

    colony_name: str
    name: str
    kind: str
    location_name: str
    metadata: dict[str, Any]
    handler: dict[str, Any] | None
    spec: dict[str, Any]


def _object(value: Any, path: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise BlueprintError(path, "must be an object")
    return value


def _text(value: Any, path: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise BlueprintError(path, "is required")
        return ""
    if not isinstance(value, str):
        raise BlueprintError(path, "must be a string")
    if len(value) > MAX_NAME:
        raise BlueprintError(path, f"longer than {MAX_NAME} characters")
    return value


def _colony_of(metadata: dict[str, Any], path: str) -> str:
    """``metadata.colonyname``, or the older ``metadata.namespace``; they must agree."""
    colony = _text(metadata.get("colonyname"), f"{path}.colonyname", required=False)
    namespace = _text(metadata.get("namespace"), f"{path}.namespace", required=False)
    if colony and namespace and colony != namespace:
        raise BlueprintError(f"{path}.namespace", f"<{namespace}> differs from colonyname <{colony}>")
    return _text(colony or namespace, f"{path}.colonyname")


def check_schema(schema: Any, path: str) -> dict[str, Any]:
    """A JSON Schema (an object) that the validator for its ``$schema`` draft accepts."""
    schema = _object(schema, path)
    try:
        validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except schema_errors.SchemaError as exc:
        where = "".join(f"/{part}" for part in exc.path) or "/"
        raise BlueprintError(path, f"not a valid JSON Schema at {where}: {exc.message}") from None
    except schema_errors.UnknownType as exc:
        raise BlueprintError(path, f"not a valid JSON Schema: {exc}") from None
    return schema


def parse_definition(data: Any) -> Definition:
    """A definition ``{kind, metadata{name, colonyname}, spec{names{kind}, schema,
    handler{executorType, functionName}}}``; BlueprintError naming the field otherwise."""
    data = _object(data, "blueprintdefinition")
    if data.get("kind") not in (None, "", DEFINITION_KIND):
        raise BlueprintError("blueprintdefinition.kind", f"must be {DEFINITION_KIND}")
    metadata = _object(data.get("metadata"), "blueprintdefinition.metadata")
    spec = _object(data.get("spec"), "blueprintdefinition.spec")
    names = _object(spec.get("names"), "blueprintdefinition.spec.names")
    handler = _object(spec.get("handler"), "blueprintdefinition.spec.handler")
    schema = spec.get("schema")
    return Definition(
        colony_name=_colony_of(metadata, "blueprintdefinition.metadata"),
        name=_text(metadata.get("name"), "blueprintdefinition.metadata.name"),
        kind=_text(names.get("kind"), "blueprintdefinition.spec.names.kind"),
        executor_type=_text(handler.get("executorType"), "blueprintdefinition.spec.handler.executorType"),
        function_name=_text(handler.get("functionName"), "blueprintdefinition.spec.handler.functionName",
                            required=False) or RECONCILE_FUNCTION,
        schema=None if schema is None else check_schema(schema, "blueprintdefinition.spec.schema"),
        data=data,
    )


def parse_blueprint(data: Any) -> Blueprint:
    """A blueprint ``{kind, metadata{name, colonyname, locationname, labels, annotations}, handler,
    spec}``; BlueprintError naming the field otherwise. Its status is the reconciler's."""
    data = _object(data, "blueprint")
    metadata = _object(data.get("metadata"), "blueprint.metadata")
    handler = data.get("handler")
    if handler is not None:
        handler = _object(handler, "blueprint.handler")
        for key in ("executorName", "executorType"):
            _text(handler.get(key), f"blueprint.handler.{key}", required=False)
        names = handler.get("executorNames")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise BlueprintError("blueprint.handler.executorNames", "must be a list of strings")
    for key in ("labels", "annotations"):
        values = _object(metadata.get(key), f"blueprint.metadata.{key}", required=False)
        if not all(isinstance(v, str) for v in values.values()):
            raise BlueprintError(f"blueprint.metadata.{key}", "values must be strings")
    return Blueprint(
        colony_name=_colony_of(metadata, "blueprint.metadata"),
        name=_text(metadata.get("name"), "blueprint.metadata.name"),
        kind=_text(data.get("kind"), "blueprint.kind"),
        location_name=_text(metadata.get("locationname"), "blueprint.metadata.locationname", required=False),
        metadata=metadata,
        handler=handler,
        spec=_object(data.get("spec"), "blueprint.spec", required=False),
    )


def validate_spec(spec: dict[str, Any], schema: dict[str, Any] | None) -> None:
    """Refuse a spec that its definition's schema does not accept, naming the failing path
    (the most relevant error when there are several)."""
    if schema is None:
        return
    validator_class = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = schema_errors.best_match(validator_class(schema).iter_errors(spec))
    if error is not None:
        path = "blueprint.spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        raise BlueprintError(path, error.message)


def executor_type(definition: Definition, handler: dict[str, Any] | None) -> str:
    """The executor type that reconciles a blueprint: its own handler's, else its definition's."""
    own = (handler or {}).get("executorType")
    return own if isinstance(own, str) and own else definition.executor_type


def executor_names(handler: dict[str, Any] | None) -> list[str]:
    """The executors a blueprint's handler names (``executorName`` and ``executorNames``)."""
    handler = handler or {}
    names = [handler["executorName"]] if handler.get("executorName") else []
    return names + [n for n in handler.get("executorNames") or [] if n and n not in names]


def next_generation(generation: int, old_spec: Any, new_spec: Any, *, force: bool) -> int:
    """A spec that changed (or a forced change) is a new generation."""
    return generation + 1 if force or old_spec != new_spec else generation


def action(old: Any, new: Any) -> str:
    """reconciliation.action for a change from ``old`` to ``new`` (either may be None)."""
    if old is None:
        return CREATE
    if new is None:
        return DELETE
    return UPDATE if old.get("spec") != new.get("spec") else NOOP
