"""Processes as /proc shows them, for tests that check what a program started or left behind."""

from __future__ import annotations

from pathlib import Path


def pid_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def parents() -> dict[int, int]:
    """Every running process (zombies left out) and its parent."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                found[int(entry.name)] = int(fields[1])
    return found


def below(pid: int, parent_of: dict[int, int]) -> set[int]:
    """The processes below ``pid`` in ``parent_of`` (its children, theirs, ...)."""
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parent_of.items() if parent in frontier} - found
        found |= frontier
    return found


def descendants(pid: int) -> set[int]:
    """The running processes below ``pid``, as seen from here. Isolated workers see other pids
    inside their own PID namespace, so a test finds them this way."""
    return below(pid, parents())
