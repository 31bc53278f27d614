"""The reference's command spec, as its container and HPC executors read it: what to run, in which
image, with which environment and resources; and the output such a command produces.

::

    {"funcname": "execute",
     "kwargs": {"cmd": "echo", "args": ["hello", "world"], "docker-image": "ubuntu:20.04"},
     "env": {"GREETING": "hi"},
     "conditions": {"mem": "1Gi", "cpu": "500m", "gpu": {"count": 0}, ...}}

``cmd`` may hold a whole command line (``"sleep 8"``): it is split the way a shell splits words,
never run through a shell. Every problem is a :class:`JobFailed` naming the field, so a bad spec
fails its process and never the executor.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executors.job import JobFailed
from pycolonies.models import Process

FUNCNAME = "execute"
FUNCTION_ARGS = ["cmd", "args", "docker-image"]  # what ``get_functions`` shows for ``execute``
OUTPUT_LIMIT = 1024 * 1024  # bytes of an output file read back
TAIL_LIMIT = 64 * 1024  # characters of stdout lines an output holds at most
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_MEMORY_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "b": 1, "B": 1,
                 "kb": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9}


@dataclass(frozen=True)
class CommandSpec:
    image: str  # "" when the spec names none (where an image is optional)
    argv: list[str]  # empty: the image's own command
    env: dict[str, str] = field(default_factory=dict)
    memory: int | None = None  # bytes (conditions.mem)
    cpus: float | None = None  # cores (conditions.cpu)
    gpus: int = 0  # conditions.gpu.count


def read_command_spec(process: Process, *, image_required: bool = True) -> CommandSpec:
    """The command ``process`` asks for, or :class:`JobFailed` naming the field that is wrong.
    Without ``image_required`` (the command runs on the host unless an image is named), the
    image may be missing and the command may not."""
    spec = process.spec
    if spec.funcname != FUNCNAME:
        raise JobFailed(f"function {spec.funcname!r} is not offered here: this executor runs "
                        f"{FUNCNAME!r} (kwargs cmd, args and docker-image)")
    kwargs = spec.kwargs if isinstance(spec.kwargs, dict) else {}
    conditions = spec.conditions
    return CommandSpec(
        image=_image(kwargs, image_required),
        argv=_argv(kwargs),
        env=_env(spec.env),
        memory=parse_memory(conditions.mem, "conditions.mem"),
        cpus=parse_cpus(conditions.cpu, "conditions.cpu"),
        gpus=parse_gpus(conditions.gpu.count),
    )


def _image(kwargs: dict[str, Any], required: bool) -> str:
    image = kwargs.get("docker-image", kwargs.get("image"))
    if image is None and not required:
        if not kwargs.get("cmd", kwargs.get("command")):
            raise JobFailed("kwargs['cmd'] is missing: name the command to run")
        return ""
    if image is None:
        raise JobFailed("kwargs['docker-image'] is missing: name the container image to run the command in")
    if not isinstance(image, str) or not image.strip() or image.strip() != image:
        raise JobFailed(f"kwargs['docker-image'] must be an image name, not {image!r}")
    return image


def _argv(kwargs: dict[str, Any]) -> list[str]:
    key = "cmd" if "cmd" in kwargs else "command"
    cmd = kwargs.get(key)
    argv: list[str] = []
    if cmd is not None:
        if not isinstance(cmd, str):
            raise JobFailed(f"kwargs[{key!r}] must be a string (a command line), not {type(cmd).__name__}")
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise JobFailed(f"kwargs[{key!r}] cannot be split into words: {exc}") from None
    args = kwargs.get("args")
    if args is None:
        return argv
    if not isinstance(args, list):
        raise JobFailed(f"kwargs['args'] must be a list of strings, not {type(args).__name__}")
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            raise JobFailed(f"kwargs['args'][{index}] must be a string, not {type(arg).__name__} {arg!r}")
    if args and not argv:
        raise JobFailed("kwargs['args'] is given without kwargs['cmd']: name the command to run")
    return argv + args


def _env(env: Any) -> dict[str, str]:
    if not isinstance(env, dict):
        raise JobFailed(f"env must be an object of names to strings, not {type(env).__name__}")
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise JobFailed(f"env: {name!r} is not a valid environment variable name")
        if not isinstance(value, str) or "\0" in value:
            raise JobFailed(f"env[{name!r}] must be a string without NUL characters")
    return dict(env)


def parse_memory(text: Any, where: str) -> int | None:
    """Bytes of a Kubernetes-style quantity (``"1Gi"``, ``"512Mi"``, ``"1G"``, ``"1048576"``);
    None for an empty or zero one (servers write an unset size as ``"0Mi"``)."""
    if text in ("", None, 0):
        return None
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in _MEMORY_UNITS:
        raise JobFailed(f"{where} must be a memory size such as '512Mi' or '1Gi', not {text!r}")
    size = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])
    if size == 0:
        return None
    if size < 6 * 2**20:
        raise JobFailed(f"{where} of {text!r} is too small: a container needs at least 6Mi")
    return size


def parse_cpus(text: Any, where: str) -> float | None:
    """Cores of a Kubernetes-style CPU quantity (``"500m"`` is 0.5, ``"2"`` is 2); None for an empty or
    zero one (servers write an unset cpu as ``"0m"``)."""
    if text in ("", None, 0):
        return None
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in ("", "m"):
        raise JobFailed(f"{where} must be a CPU quantity such as '500m' or '2', not {text!r}")
    cpus = float(match.group(1)) / (1000 if match.group(2) == "m" else 1)
    if cpus == 0:
        return None
    if cpus < 0:
        raise JobFailed(f"{where} must be more than zero, not {text!r}")
    return cpus


def parse_gpus(count: Any) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise JobFailed(f"conditions.gpu.count must be a whole number of GPUs, not {count!r}")
    return count


def command_output(output_file: Path, stdout_tail: Iterable[str]) -> list[Any]:
    """What a successful command closes its process with: the JSON it wrote to ``output_file`` (a
    list is the output as is, anything else becomes a one-element list), or else the last lines
    of its stdout (at most 20 of them, :data:`TAIL_LIMIT` characters in all)."""
    if not output_file.is_file():
        lines = list(stdout_tail)
        while lines and not lines[-1].strip():
            lines.pop()
        kept: list[str] = []
        size = 0
        for line in reversed(lines):  # the last lines, as many as fit
            size += len(line)
            if size > TAIL_LIMIT:
                break
            kept.insert(0, line)
        return kept
    size = output_file.stat().st_size
    if size > OUTPUT_LIMIT:
        raise JobFailed(f"the output file holds {size} bytes, more than the limit of {OUTPUT_LIMIT}")
    try:
        value = json.loads(output_file.read_bytes() or b"null")
    except ValueError as exc:
        raise JobFailed(f"the output file is not JSON: {exc}") from None
    return value if isinstance(value, list) else [value]
