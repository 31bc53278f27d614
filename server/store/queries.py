"""Named SQL queries, kept in a ``.sql`` file beside each store module.

A file holds statements, each under a ``-- name: <query_name>`` line; the comment lines right
after it say what the statement does and what its ``$n`` parameters are. A statement is used as
written: nothing is formatted into it, so what you read in the file is what PostgreSQL runs.
SQL that several statements share is a function or view created by a migration
(``migrations/0005_sql_functions.sql``), e.g. ``state_waiting()`` for the state numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import resources

_NAME_LINE = re.compile(r"^-- name: *(\S*) *$", re.MULTILINE)
_VALID_NAME = re.compile(r"[a-z][a-z0-9_]*")


class QueryFileError(ValueError):
    """A ``.sql`` file of the store is malformed (raised at import, so a bad file cannot ship)."""


class Queries(Mapping[str, str]):
    """The statements of one ``<domain>.sql`` file, by name."""

    def __init__(self, domain: str, statements: dict[str, str]) -> None:
        self.domain = domain
        self._statements = statements

    def __getitem__(self, name: str) -> str:
        try:
            return self._statements[name]
        except KeyError:
            raise KeyError(f"no query {name!r} in server/store/{self.domain}.sql") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._statements)

    def __len__(self) -> int:
        return len(self._statements)


def parse(domain: str, text: str) -> Queries:
    """The named statements of ``text`` (the contents of ``<domain>.sql``)."""
    parts = _NAME_LINE.split(text)
    if parts[0].strip() and not all(line.startswith("--") for line in parts[0].strip().splitlines()):
        raise QueryFileError(f"{domain}.sql: SQL before the first '-- name:' line")
    statements: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if not _VALID_NAME.fullmatch(name):
            raise QueryFileError(f"{domain}.sql: bad query name {name!r} (lower_case_with_underscores)")
        if name in statements:
            raise QueryFileError(f"{domain}.sql: query {name!r} defined twice")
        sql = body.strip().removesuffix(";").rstrip()
        if not any(line.strip() and not line.lstrip().startswith("--") for line in sql.splitlines()):
            raise QueryFileError(f"{domain}.sql: query {name!r} has no SQL")
        statements[name] = sql
    return Queries(domain, statements)


def load(domain: str) -> Queries:
    """The queries of ``server/store/<domain>.sql``."""
    text = resources.files("server.store").joinpath(f"{domain}.sql").read_text(encoding="utf-8")
    return parse(domain, text)
