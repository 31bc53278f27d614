"""Reading typed fields out of a decoded request message, with errors that name the field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pycolonies.codec import FieldError, coerce, from_wire
from server.errors import BadRequest

T = TypeVar("T")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Msg:
    """A request message: ``msg.str("colonyname")`` etc. Missing or null fields are zero values."""

    def __init__(self, payloadtype: str, data: dict[str, Any]) -> None:
        self.payloadtype = payloadtype
        self.data = data

    def _get(self, key: str, hint: Any, default: Any) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return coerce(hint, value, key)
        except FieldError as exc:
            raise BadRequest(f"Invalid {self.payloadtype}: {exc}") from exc

    def str(self, key: str) -> str:
        return self._get(key, str, "")

    def int(self, key: str, default: int = 0) -> int:
        return self._get(key, int, default)

    def bool(self, key: str) -> bool:
        return self._get(key, bool, False)

    def list(self, key: str) -> list[Any]:
        return self._get(key, list[Any], [])

    def str_list(self, key: str) -> list[str]:
        return self._get(key, list[str], [])

    def model(self, key: str, cls: type[T], *, required: bool = True) -> T:
        value = self.data.get(key)
        if value is None:
            if required:
                raise BadRequest(f"Invalid {self.payloadtype}: {key} is required")
            return cls()
        try:
            return from_wire(cls, value, key)
        except FieldError as exc:
            raise BadRequest(f"Invalid {self.payloadtype}: {exc}") from exc

    def required_str(self, key: str) -> str:
        value = self.str(key)
        if not value:
            raise BadRequest(f"Invalid {self.payloadtype}: {key} is required")
        return value


def require_id(value: str, field: str) -> str:
    """A key-derived or generated id: 64 lowercase hex characters."""
    if not _HEX64.match(value or ""):
        raise BadRequest(f"Invalid {field}: must be 64 lowercase hex characters")
    return value


def require_name(value: str, field: str) -> str:
    if not value:
        raise BadRequest(f"Invalid {field}: must not be empty")
    if len(value) > 256:
        raise BadRequest(f"Invalid {field}: longer than 256 characters")
    return value


def require_count(value: int, field: str, maximum: int) -> int:
    if value < 0:
        raise BadRequest(f"Invalid {field}: must not be negative")
    if value > maximum:
        raise BadRequest(f"Invalid {field}: {value} exceeds the maximum of {maximum}")
    return value
