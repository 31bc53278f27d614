"""Decoding untrusted JSON text into values the rest of the server can handle safely.

Every JSON document a client sends (a request payload, a cron's or generator's workflow spec)
goes through :func:`load_json`, which refuses, with an error naming the field:

* nesting deeper than :data:`MAX_DEPTH` levels of objects and lists (deeper values would make
  every recursive step after decoding - the codec, the NUL check, the database's JSON encoding -
  a stack-depth hazard; no real spec comes close);
* strings and keys that cannot be stored or encoded: a NUL character (PostgreSQL text cannot
  hold it) and lone UTF-16 surrogates such as ``"\\ud800"`` (not valid Unicode, so not valid
  UTF-8 either);
* ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pycolonies import jsontext

MAX_DEPTH = 100
_MAX_PATH_SHOWN = 80
_TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels of objects and lists (the limit for JSON values)"

# Raw-text patterns that can produce a NUL or a surrogate in a decoded string: the escapes, and
# the UTF-8-like bytes of a surrogate (json.loads decodes bytes with "surrogatepass").
_SUSPECT_BYTES = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SUSPECT_TEXT = re.compile(r"\\u0000|\\u[dD][89a-fA-F]|[\ud800-\udfff\x00]")


class JsonRejected(ValueError):
    """The JSON text is not acceptable; ``path`` names where (empty for the document itself)."""

    def __init__(self, path: str, problem: str) -> None:
        path = printable(path)
        if len(path) > _MAX_PATH_SHOWN:
            path = path[:_MAX_PATH_SHOWN] + "..."
        super().__init__(f"{path} {problem}" if path else problem)
        self.path = path
        self.problem = problem


class _Found(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.parts: list[str] = []


def load_json(raw: bytes | str) -> Any:
    """Parse JSON text and check it as described above; JsonRejected (a ValueError) if it is not
    acceptable. Invalid JSON raises ``ValueError`` (or ``UnicodeDecodeError``) as json.loads does."""
    try:
        data = jsontext.loads(raw, parse_constant=_reject_constant)
    except RecursionError:  # deeper than the decoder itself goes (about 1,000 levels)
        raise JsonRejected(_path_of_too_deep(raw), _TOO_DEEP) from None
    as_bytes = isinstance(raw, bytes | bytearray)
    if as_bytes:  # two memchr-speed looks spare most payloads the regular expression
        check_strings = (b"\\u" in raw or b"\xed" in raw) and _SUSPECT_BYTES.search(raw) is not None
    else:
        check_strings = _SUSPECT_TEXT.search(raw) is not None
    # Fewer opening brackets than the limit cannot nest past it: most payloads skip the walk.
    openers = raw.count(b"[") + raw.count(b"{") if as_bytes else raw.count("[") + raw.count("{")
    if isinstance(data, dict | list) and (check_strings or (openers > MAX_DEPTH and _too_deep(data))):
        try:
            _check(data, 1, check_strings)
        except _Found as found:
            raise JsonRejected(_join(found.parts), found.problem) from None
    elif check_strings and isinstance(data, str):
        problem = text_problem(data)
        if problem:
            raise JsonRejected("", problem)
    return data


def printable(text: str) -> str:
    """``text`` safe to echo in an error reply: NULs and lone surrogates written as escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(data: dict | list) -> bool:
    """Whether ``data`` nests deeper than MAX_DEPTH: a level-by-level walk over the containers only
    (several times faster than :func:`_check`, which then finds the path)."""
    level: list[Any] = [data]
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        append = below.append
        for value in level:
            for item in value.values() if type(value) is dict else value:
                kind = type(item)
                if kind is dict or kind is list:
                    append(item)
        if not below:
            return False
        level = below
    return True


def _check(value: dict | list, depth: int, check_strings: bool) -> None:
    if depth > MAX_DEPTH:
        raise _Found(_TOO_DEEP)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        try:
            if check_strings and isinstance(key, str):
                problem = text_problem(key)
                if problem:
                    raise _Found(f"(a key) {problem}")
            if isinstance(item, dict | list):
                _check(item, depth + 1, check_strings)
            elif check_strings and isinstance(item, str):
                problem = text_problem(item)
                if problem:
                    raise _Found(problem)
        except _Found as found:
            found.parts.insert(0, f".{key}" if isinstance(key, str) else f"[{key}]")
            raise


def text_problem(value: str) -> str:
    """Why ``value`` cannot be stored as text ("" when it can)."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    if value.isascii():
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return ""


_TOKEN_BYTES = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
_TOKEN_TEXT = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def _path_of_too_deep(raw: bytes | str) -> str:
    """The path of the first value nested deeper than MAX_DEPTH, found by a scan of the text's
    strings and punctuation (only on this error path, when json.loads itself gave up)."""
    pattern = _TOKEN_BYTES if isinstance(raw, bytes | bytearray) else _TOKEN_TEXT
    text = isinstance(raw, str)
    open_, close, comma, colon = ("{[", "}]", ",", ":") if text else (b"{[", b"}]", b",", b":")
    parts: list[str] = []  # one entry per open container: its key or index within its parent
    stack: list[list[Any]] = []  # [kind, index or last key] per open container
    last_string: bytes | str = ""
    for match in pattern.finditer(raw):
        token = match.group()
        if token[:1] in (b'"', '"'):
            last_string = token
        elif token in open_:
            if stack:
                parts.append(f"[{stack[-1][1]}]" if stack[-1][0] == "list" else f".{stack[-1][1]}")
            stack.append(["object" if token in ("{", b"{") else "list", 0 if token in ("[", b"[") else ""])
            if len(stack) > MAX_DEPTH:
                return _join(parts)
        elif token in close:
            if stack:
                stack.pop()
            if parts:
                parts.pop()
        elif token == colon and stack and stack[-1][0] == "object":
            stack[-1][1] = _key_text(last_string)
        elif token == comma and stack and stack[-1][0] == "list":
            stack[-1][1] += 1
    return ""


def _key_text(token: bytes | str) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        return "?"
    return key if isinstance(key, str) else "?"


def _join(parts: list[str]) -> str:
    path = "".join(parts)
    return path[1:] if path.startswith(".") else path
