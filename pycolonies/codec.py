"""Typed JSON <-> dataclass conversion with Go-style zero values and field-naming errors.

Decoding follows the reference server's JSON rules: a missing field or ``null`` takes the
field's default (Go's zero value), unknown fields are ignored, and a value of the wrong type is
an error that names the field path (``spec.conditions.executortype must be a string``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

from pycolonies import wire

T = TypeVar("T")


class FieldError(ValueError):
    """A JSON value has the wrong type for the field it fills."""

    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path} must be {expected}")
        self.path = path
        self.expected = expected


def wire_name(field: dataclasses.Field) -> str:
    return field.metadata.get("wire", field.name)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def coerce(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it; raise FieldError otherwise."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        concrete = [opt for opt in options if opt is not type(None)]
        if len(concrete) == 1:
            return coerce(concrete[0], value, path)
        for opt in concrete:
            try:
                return coerce(opt, value, path)
            except FieldError:
                continue
        raise FieldError(path, " or ".join(_describe(o) for o in concrete))
    if hint is str:
        if isinstance(value, str):
            return value
        raise FieldError(path, "a string")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise FieldError(path, "a boolean")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise FieldError(path, "an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise FieldError(path, "a number")
    if hint is datetime:
        if isinstance(value, str):
            try:
                return wire.parse_time(value)
            except ValueError as exc:
                raise FieldError(path, "an RFC 3339 timestamp") from exc
        raise FieldError(path, "an RFC 3339 timestamp")
    if origin is list:
        if not isinstance(value, list):
            raise FieldError(path, "a list")
        (item_hint,) = get_args(hint) or (Any,)
        if item_hint is Any:
            return list(value)
        return [coerce(item_hint, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise FieldError(path, "an object")
        _, value_hint = get_args(hint) or (str, Any)
        if value_hint is Any:
            return dict(value)
        return {k: coerce(value_hint, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_wire(hint, value, path)
    raise TypeError(f"unsupported type hint {hint!r} at {path}")


def _describe(hint: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", float: "a number"}
    if hint in names:
        return names[hint]
    origin = get_origin(hint)
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "an object"
    return str(hint)


def from_wire(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from decoded JSON, with zero values for missing/null fields."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise FieldError(path or cls.__name__, "an object")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        key = wire_name(field)
        value = data.get(key)
        if value is None:
            continue
        kwargs[field.name] = coerce(hints[field.name], value, f"{path}.{key}" if path else key)
    return cls(**kwargs)


class WireDict(dict):
    """A dict that is already in wire form (JSON-ready): ``to_wire`` returns it as it is."""


def to_wire(obj: Any) -> Any:
    """Dataclass (or nested containers of them) to JSON-ready values, using wire names."""
    if isinstance(obj, WireDict):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        custom = getattr(obj, "to_wire", None)
        if custom is not None:
            return custom()
        return dataclass_to_wire(obj)
    if isinstance(obj, list):
        return [to_wire(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    if isinstance(obj, datetime):
        return wire.format_time(obj)
    return obj


def dataclass_to_wire(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    hints = _hints(type(obj))
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if value is None and hints[field.name] == (datetime | None):
            out[wire_name(field)] = wire.ZERO_TIME
        elif field.metadata.get("omitempty") and not value:
            continue
        else:
            out[wire_name(field)] = to_wire(value)
    return out
