"""Page cursors: where a page of a listing ends, as an opaque string a client hands back.

A cursor is ``<key>.<id>``: the last row's order key as an integer (a number as it is, a time as
microseconds since the Unix epoch) and its 64-hex id. Rows are read with a keyset condition, so a
page costs the same however deep it is, and rows added meanwhile never shift the pages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CURSOR = re.compile(r"^(-?[0-9]{1,20})\.([0-9a-f]{64})$")


class BadCursor(ValueError):
    pass


def encode(key: int | datetime, row_id: str) -> str:
    if isinstance(key, datetime):
        key = (key - _EPOCH) // _MICROSECOND
    return f"{key}.{row_id}"


def decode(cursor: str, *, as_time: bool) -> tuple[int | datetime, str]:
    """The key and id a cursor holds; the key is a time when ``as_time``."""
    match = _CURSOR.match(cursor)
    if match is None:
        raise BadCursor("not a cursor this server gave out (expected <number>.<64 hex id>)")
    number = int(match.group(1))
    if not -(2**63) <= number < 2**63:
        raise BadCursor("its key is out of range")
    if not as_time:
        return number, match.group(2)
    try:
        return _EPOCH + number * _MICROSECOND, match.group(2)
    except OverflowError as exc:
        raise BadCursor("its time is out of range") from exc
