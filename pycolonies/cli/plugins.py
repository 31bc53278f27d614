"""The commands other packages contribute to ``colonies``, found through an entry-point group.

The SDK's command line holds the client commands only. ``server`` and ``executors`` register
theirs (``server start``, ``database``, ``dev``, ``executor start``) in the distribution's metadata
under :data:`GROUP`; the entry point's name is the command's path with dots (``server.start``) and
its object a typer app (a group) or a function (a command). An entry point may name the extras it
needs (``server.commands:start [server]``): when one of their requirements is not installed, the
command is still listed but only says, in one line, what to install; the SDK never imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import typer

from pycolonies.cli.common import fail

GROUP = "colonies.commands"
DISTRIBUTION = "colonies-py"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirements(dist: metadata.Distribution | None, extras: list[str]) -> list[str]:
    """The requirements of ``extras`` (as the distribution declares them) that are not installed."""
    if dist is None or not extras:
        return []
    wanted = {_normalize(extra) for extra in extras}
    missing: list[str] = []
    for requirement in dist.requires or []:
        spec, _, marker = requirement.partition(";")
        extra = _EXTRA.search(marker)
        name = _NAME.match(spec.strip())
        if extra is None or name is None or _normalize(extra.group(1)) not in wanted:
            continue
        try:
            metadata.distribution(name.group(0))
        except metadata.PackageNotFoundError:
            missing.append(name.group(0))
    return missing


def _unavailable(path: str, reason: str) -> Callable[..., None]:
    """A command standing for one that cannot run here: it fails with ``reason`` whatever its arguments."""

    def command(ctx: typer.Context) -> None:
        fail(f"'colonies {path}' {reason}")

    command.__doc__ = f"Not available here: {reason}."
    return command


_ANY_ARGUMENTS = {"allow_extra_args": True, "ignore_unknown_options": True}


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add every contributed command to ``app``; ``groups`` are its existing groups by name (a
    contribution ``executor.start`` goes into ``groups["executor"]``)."""
    for entry in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        *parents, name = entry.name.split(".")
        parent = groups.get(".".join(parents)) if parents else app
        if parent is None:
            continue  # a contribution to a group this CLI does not have
        path = " ".join(entry.name.split("."))
        extras = list(entry.extras)
        missing = missing_requirements(getattr(entry, "dist", None), extras)
        target: Any = None
        reason = "is not a command or a group"
        if missing:
            needed = ",".join(extras)
            reason = (f"needs the {needed} extra ({', '.join(missing)} not installed): "
                      f"install {DISTRIBUTION}[{needed}]")
        else:
            try:
                target = entry.load()
            except ImportError as exc:
                reason = f"cannot be loaded ({exc}): install {DISTRIBUTION}[{','.join(extras) or 'server'}]"
        if isinstance(target, typer.Typer):
            parent.add_typer(target, name=name)
            continue
        if callable(target):
            parent.command(name)(target)
        else:
            parent.command(name, context_settings=_ANY_ARGUMENTS)(_unavailable(path, reason))
        # What a group is for (start the server, start an executor) comes first in its help.
        parent.registered_commands.insert(0, parent.registered_commands.pop())
