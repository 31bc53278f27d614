"""Resource quantities: CPU in millicores ("500m", "2"), memory in bytes ("8Gi", "512MB"), and how
stored conditions read back (as the reference writes unset ones)."""

from __future__ import annotations

import re
from typing import Any

_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m?)\s*$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000, "kb": 1000,
    "m": 1000**2, "mb": 1000**2,
    "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "ki": 1024, "kib": 1024,
    "mi": 1024**2, "mib": 1024**2,
    "gi": 1024**3, "gib": 1024**3,
    "ti": 1024**4, "tib": 1024**4,
}


def parse_cpu(text: str) -> int:
    """Millicores: ``"500m"`` is 500, ``"2"`` (cores) is 2000, ``""`` is 0."""
    if not text:
        return 0
    match = _CPU.match(text)
    if not match:
        raise ValueError(f"invalid cpu quantity {text!r} (use e.g. '500m' or '2')")
    number, milli = match.groups()
    return int(float(number)) if milli else int(float(number) * 1000)


def parse_memory(text: str) -> int:
    """Bytes: binary (Ki, Mi, Gi, Ti) or decimal (K, M, G, T, with or without B); ``""`` is 0."""
    if not text:
        return 0
    match = _MEMORY.match(text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _MEMORY_UNITS:
        raise ValueError(f"invalid memory quantity {text!r} (use e.g. '512Mi', '8Gi' or '1GB')")
    return int(float(match.group(1)) * _MEMORY_UNITS[unit])


UNSET_CPU = "0m"
UNSET_SIZE = "0Mi"


def reference_conditions(conditions: dict[str, Any]) -> dict[str, Any]:
    """Stored conditions as the reference server returns them: an unset cpu is ``"0m"``, an unset
    mem, storage or gpu.mem ``"0Mi"``, and no executor names is ``null``. Set values are kept as
    the client wrote them."""
    out = dict(conditions)
    if not out.get("cpu"):
        out["cpu"] = UNSET_CPU
    for name in ("mem", "storage"):
        if not out.get(name):
            out[name] = UNSET_SIZE
    gpu = dict(out.get("gpu") or {})
    if not gpu.get("mem"):
        gpu["mem"] = UNSET_SIZE
    out["gpu"] = gpu
    if not out.get("executornames"):
        out["executornames"] = None
    return out
