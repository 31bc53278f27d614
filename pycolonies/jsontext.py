"""JSON text, fast where that is exact: orjson when it is installed, the standard library otherwise.

orjson reads and writes JSON several times faster than the ``json`` module, but it has limits that
the wire protocol must not feel, so each is detected and handed to ``json`` instead:

* integers outside [-2**63, 2**64 - 1]: orjson *reads* them as floats (silently inexact) and
  refuses to write them. Text with a run of 20 digits, or a minus sign and 19 digits, is read
  by ``json``; a value orjson cannot write is written by ``json``. (A long run of digits in a
  fraction or a string takes the slower path too, harmlessly.)
* anything else orjson refuses (``NaN``, nesting past its limit, lone surrogates, keys that are not
  strings) goes to ``json``, so the errors, and what is accepted, stay the standard library's.
* orjson writes an infinite float as ``null``, silently. The only way one gets in is a number
  too large for a float (``1e400``), which orjson refuses to read; the ``json`` path reads it as
  :class:`Overflowed`, an infinite float that orjson refuses to write, so writing it goes to
  ``json`` too and gives ``Infinity``, which every strict reader (PostgreSQL's jsonb among them)
  then refuses with an error instead of storing a changed value.

Written text is compact (no spaces) and UTF-8; both are valid JSON for every reader.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a bare install working
    orjson = None  # type: ignore[assignment]

# Integers that orjson would read inexactly: beyond 2**64 - 1 (20+ digits) or below -2**63 (a
# minus and 19 digits). Found by mapping every digit to "0" and everything else but "-" to a space,
# then two substring searches: several times faster than a regular expression, which cost more
# than the whole parse.
_DIGIT_RUNS = bytes(0x30 if 0x30 <= b <= 0x39 else b if b == 0x2D else 0x20 for b in range(256))
_TWENTY_DIGITS = b"0" * 20
_MINUS_NINETEEN_DIGITS = b"-" + b"0" * 19


def _may_hold_a_wide_integer(raw: bytes | bytearray | str) -> bool:
    shape = (raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw).translate(_DIGIT_RUNS)
    return _TWENTY_DIGITS in shape or _MINUS_NINETEEN_DIGITS in shape


_INF = float("inf")


class Overflowed(float):
    """A JSON number too large for a float (read as infinity): see the module's notes."""


def _parse_float(text: str) -> float:
    value = float(text)
    return Overflowed(value) if value in (_INF, -_INF) else value


def loads(raw: bytes | bytearray | str, **json_options: Any) -> Any:
    """Parse JSON text as ``json.loads(raw, **json_options)`` would, only faster when it can.
    ``json_options`` (e.g. ``parse_constant``) apply to the standard-library path, which is the only
    one that could meet what they handle."""
    if orjson is not None and not _may_hold_a_wide_integer(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # let json decide, and word the error
    return json.loads(raw, **{"parse_float": _parse_float, **json_options})


def dumps_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # a wide integer, a non-string key, a lone surrogate ...
            pass
    return json.dumps(value, separators=(",", ":")).encode()


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return dumps_bytes(value).decode()
