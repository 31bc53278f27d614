"""Importable functions for the python runner's allow-list tests (``tests.executors.sample_functions``)."""

from __future__ import annotations

from os import getcwd  # noqa: F401 - imported, not defined here: a "module.*" entry must not admit it
from typing import Any


def client_info() -> dict[str, Any]:
    """What the worker injected: the ``colonies`` client and ``func_spec`` globals."""
    client = globals()["colonies"]
    return {
        "type": f"{type(client).__module__}.{type(client).__qualname__}",
        "host": client.host,
        "port": client.port,
        "tls": client.tls,
        "func_spec": globals()["func_spec"].__module__,
    }


def scale(*nums: float, factor: float = 1, ctx: dict[str, Any] | None = None) -> list[float]:
    assert ctx is not None and ctx["process"].spec.funcname.endswith(".scale")
    return [n * factor for n in nums]


async def later(value: Any) -> Any:
    return value


def _private() -> str:
    return "should not be reachable through a wildcard"
