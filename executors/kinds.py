"""The executor kinds ``colonies executor start --type KIND`` knows, imported only when chosen."""

from __future__ import annotations

from importlib import import_module

from executors.base import BaseExecutor
from executors.config import ConfigError

KINDS = {
    "python": "executors.python:PythonExecutor",
    "container": "executors.container:ContainerExecutor",
    "slurm": "executors.slurm:SlurmExecutor",
    "quantum": "executors.quantum:QuantumExecutor",
}


def load_kind(name: str) -> type[BaseExecutor]:
    """The executor class of kind ``name`` (ConfigError naming the known kinds if unknown)."""
    target = KINDS.get(name)
    if target is None:
        raise ConfigError(f"unknown executor type {name!r}; known: {', '.join(sorted(KINDS))}")
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)
