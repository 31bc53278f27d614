"""The named queries of the store: the ``.sql`` file format, and that every store module runs
its SQL from its file as written (no SQL built in Python)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from server.store import queries

STORE = Path(queries.__file__).parent
SQL_FILES = sorted(STORE.glob("*.sql"))
_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s")
_SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|FROM|RETURNING)\b")


def test_a_file_is_named_statements_with_their_comments() -> None:
    parsed = queries.parse("demo", """-- A header comment.

-- name: first
-- What it does.
SELECT 1;

-- name: second_one
SELECT $1::text
  FROM x
""")
    assert dict(parsed) == {"first": "-- What it does.\nSELECT 1", "second_one": "SELECT $1::text\n  FROM x"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 1\n-- name: a\nSELECT 2", "SQL before the first"),
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2", "defined twice"),
        ("-- name: Bad-Name\nSELECT 1", "bad query name"),
        ("-- name:\nSELECT 1", "bad query name"),
        ("-- name: empty\n-- only a comment\n", "has no SQL"),
    ],
)
def test_a_malformed_file_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(queries.QueryFileError, match=problem):
        queries.parse("demo", text)


def test_an_unknown_query_name_says_which_file_it_was_looked_up_in() -> None:
    with pytest.raises(KeyError, match=r"no query 'nope' in server/store/demo\.sql"):
        queries.parse("demo", "-- name: a\nSELECT 1")["nope"]


def _names_used(module: Path) -> set[str]:
    return set(re.findall(r'SQL\["([a-z0-9_]+)"\]', module.read_text()))


@pytest.mark.parametrize("sql_file", SQL_FILES, ids=lambda p: p.name)
def test_every_query_is_used_by_its_module_and_every_use_exists(sql_file: Path) -> None:
    defined = set(queries.load(sql_file.stem))
    module = sql_file.with_suffix(".py")
    assert module.exists(), f"{sql_file.name} has no store module beside it"
    used = _names_used(module)
    assert used - defined == set(), f"{module.name} uses queries {sql_file.name} does not define"
    assert defined - used == set(), f"{sql_file.name} defines queries {module.name} never runs"


def _sql_in_python(module: Path) -> list[str]:
    """SQL written in a module: string literals that are statements, and f-strings or .format()
    calls with SQL words in them (docstrings are prose and may name SQL)."""
    tree = ast.parse(module.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    skip = docstrings | {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if _SQL_WORD.search(text):
                found.append(f"line {node.lineno}: f-string SQL")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if _SQL_START.match(node.value):
                found.append(f"line {node.lineno}: SQL literal")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            template = node.func.value
            if (node.func.attr == "format" and isinstance(template, ast.Constant)
                    and _SQL_WORD.search(str(template.value))):
                found.append(f"line {node.lineno}: .format() SQL")
    return found


@pytest.mark.parametrize("module", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_store_modules_keep_their_sql_in_the_sql_files(module: Path) -> None:
    assert _sql_in_python(module) == []


def test_the_check_finds_sql_built_in_python(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        't = "x"\nA = f"SELECT {t} FROM y"\nB = "UPDATE t SET a = 1"\nC = "{x} WHERE".format(x=1)\n'
    )
    assert [f.split(": ")[1] for f in _sql_in_python(bad)] == [
        "f-string SQL", "SQL literal", ".format() SQL",
    ]
