"""The SDK depends on nothing of ours: no module of ``pycolonies`` imports ``server`` or ``executors``
(their commands reach ``colonies`` through the ``colonies.commands`` entry points instead)."""

from __future__ import annotations

import ast
from pathlib import Path

import pycolonies

ABOVE_THE_SDK = {"server", "executors"}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_sdk_module_imports_the_server_or_the_executors() -> None:
    root = Path(pycolonies.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 20
    offenders = {str(path.relative_to(root)): sorted(imported_packages(path) & ABOVE_THE_SDK)
                 for path in modules if imported_packages(path) & ABOVE_THE_SDK}
    assert offenders == {}
