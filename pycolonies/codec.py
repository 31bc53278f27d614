"""Typed JSON <-> dataclass conversion with Go-style zero values and field-naming errors.

Decoding follows the reference server's JSON rules: a missing field or ``null`` takes the
field's default (Go's zero value), unknown fields are ignored, and a value of the wrong type is
an error that names the field path (``spec.conditions.executortype must be a string``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
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


class _Bad(Exception):
    """Raised inside the compiled decoders; ``parts`` is the path below the failing decoder."""

    def __init__(self, expected: str) -> None:
        self.expected = expected
        self.parts: list[str] = []


Decoder = Callable[[Any], Any]


def _simple(kind: type, expected: str) -> Decoder:
    def decode(value: Any) -> Any:
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        raise _Bad(expected)

    return decode


def _decode_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Bad("an integer")


def _decode_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _Bad("a number")


def _decode_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return wire.parse_time(value)
        except ValueError:
            pass
    raise _Bad("an RFC 3339 timestamp")


def _decode_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return list(value)
    raise _Bad("a list")


def _decode_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    raise _Bad("an object")


def _prefixed(bad: _Bad, part: str) -> _Bad:
    bad.parts.insert(0, part)
    return bad


@cache
def _decoder(hint: Any) -> Decoder:
    """A function that checks a decoded JSON value against ``hint`` and converts it (compiled once
    per type: the hot path does no type introspection and builds no path strings)."""
    origin = get_origin(hint)
    if hint is Any:
        return lambda value: value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        optional = type(None) in options
        concrete = [_decoder(opt) for opt in options if opt is not type(None)]
        expected = " or ".join(_describe(o) for o in options if o is not type(None))

        def decode_union(value: Any) -> Any:
            if value is None and optional:
                return None
            for decode in concrete:
                try:
                    return decode(value)
                except _Bad as bad:
                    if len(concrete) == 1:
                        raise bad from None
            raise _Bad(expected)

        return decode_union
    simple = {str: _simple(str, "a string"), bool: _simple(bool, "a boolean"), int: _decode_int,
              float: _decode_float, datetime: _decode_time}
    if hint in simple:
        return simple[hint]
    if origin is list:
        (item_hint,) = get_args(hint) or (Any,)
        if item_hint is Any:
            return _decode_list
        decode_item = _decoder(item_hint)

        def decode_list(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise _Bad("a list")
            out = []
            for i, item in enumerate(value):
                try:
                    out.append(decode_item(item))
                except _Bad as bad:
                    raise _prefixed(bad, f"[{i}]") from None
            return out

        return decode_list
    if origin is dict:
        _, value_hint = get_args(hint) or (str, Any)
        if value_hint is Any:
            return _decode_dict
        decode_value = _decoder(value_hint)

        def decode_dict(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _Bad("an object")
            out = {}
            for key, item in value.items():
                try:
                    out[key] = decode_value(item)
                except _Bad as bad:
                    raise _prefixed(bad, f".{key}") from None
            return out

        return decode_dict
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    raise TypeError(f"unsupported type hint {hint!r}")


def _dataclass_decoder(cls: type) -> Decoder:
    hints = _hints(cls)
    plan: list[tuple[str, str, Decoder | None]] = []
    # other keys a field is read from when its wire key is absent (metadata "aliases")
    aliases = {wire_name(f): tuple(f.metadata["aliases"]) for f in dataclasses.fields(cls)
               if f.metadata.get("aliases")}

    def decode_object(value: Any) -> Any:
        if not plan:  # compiled on first use, so self-referencing classes work
            plan.extend((f.name, wire_name(f), _decoder(hints[f.name])) for f in dataclasses.fields(cls))
        if not isinstance(value, dict):
            raise _Bad("an object")
        kwargs: dict[str, Any] = {}
        for name, key, decode in plan:
            item = value.get(key)
            if item is None and key in aliases:
                found = [alias for alias in aliases[key] if value.get(alias) is not None]
                if found:
                    key, item = found[0], value[found[0]]
            if item is None:
                continue
            try:
                kwargs[name] = decode(item)  # type: ignore[misc]
            except _Bad as bad:
                raise _prefixed(bad, f".{key}") from None
        return cls(**kwargs)

    return decode_object


def coerce(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert it; raise FieldError otherwise."""
    try:
        return _decoder(hint)(value)
    except _Bad as bad:
        raise FieldError(_join(path, bad.parts), bad.expected) from None


def _join(path: str, parts: list[str]) -> str:
    joined = path + "".join(parts)
    return joined[1:] if not path and joined.startswith(".") else joined


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
    return coerce(cls, data, path)


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


_PLAIN = (str, int, float, bool, type(None))


@cache
def _encoder_plan(cls: type) -> list[tuple[str, str, bool, bool]]:
    """Per field: attribute, wire key, omitempty, and whether None means Go's zero time."""
    hints = _hints(cls)
    return [
        (f.name, wire_name(f), bool(f.metadata.get("omitempty")), hints[f.name] == (datetime | None))
        for f in dataclasses.fields(cls)
    ]


def dataclass_to_wire(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, key, omitempty, zero_time in _encoder_plan(type(obj)):
        value = getattr(obj, name)
        if value is None and zero_time:
            out[key] = wire.ZERO_TIME
        elif omitempty and not value:
            continue
        elif isinstance(value, _PLAIN):
            out[key] = value
        else:
            out[key] = to_wire(value)
    return out
