"""Check a workflow's shape and lay it out as a DAG before anything is written.

Pure functions: node names must be non-empty and unique, dependencies must name other nodes of
the workflow, and the dependencies must not form a cycle. The plan gives every node its parents
(in dependency order, which is the order parent outputs reach a child's input) and children.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pycolonies.models import FuncSpec


class PlanError(ValueError):
    """The workflow cannot be a DAG; the message names the offending node."""


@dataclass
class Node:
    index: int
    name: str
    parents: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    @property
    def is_root(self) -> bool:
        return not self.parents


def plan_workflow(specs: Sequence[FuncSpec], path: str = "spec.functionspecs") -> list[Node]:
    """The nodes of the workflow in spec order, or PlanError."""
    if not specs:
        raise PlanError(f"Invalid {path}: a workflow needs at least one function spec")
    index_by_name: dict[str, int] = {}
    for i, spec in enumerate(specs):
        name = spec.nodename
        if not name:
            raise PlanError(
                f"Invalid {path}[{i}].nodename: every function spec of a workflow needs a nodename"
            )
        if name in index_by_name:
            raise PlanError(
                f"Invalid {path}[{i}].nodename: duplicate nodename <{name}> "
                f"(also {path}[{index_by_name[name]}])"
            )
        index_by_name[name] = i
    nodes = [Node(i, spec.nodename) for i, spec in enumerate(specs)]
    for i, spec in enumerate(specs):
        seen: set[str] = set()
        for dependency in spec.conditions.dependencies:
            where = f"{path}[{i}].conditions.dependencies"
            if dependency in seen:
                raise PlanError(f"Invalid {where}: <{spec.nodename}> depends on <{dependency}> twice")
            seen.add(dependency)
            parent = index_by_name.get(dependency)
            if parent is None:
                raise PlanError(
                    f"Invalid {where}: <{spec.nodename}> depends on <{dependency}>, which is not a "
                    "nodename of this workflow"
                )
            if parent == i:
                raise PlanError(f"Invalid {where}: <{spec.nodename}> depends on itself")
            nodes[i].parents.append(parent)
            nodes[parent].children.append(i)
    cycle = find_cycle(nodes)
    if cycle:
        names = " -> ".join(nodes[i].name for i in cycle)
        raise PlanError(f"Invalid {path}: the dependencies form a cycle: {names}")
    return nodes


def find_cycle(nodes: Sequence[Node]) -> list[int]:
    """A cycle as a closed list of node indexes (first == last), or [] for a DAG. Iterative, so
    deep graphs do not hit the recursion limit."""
    white, grey, black = 0, 1, 2
    colour = [white] * len(nodes)
    for start in range(len(nodes)):
        if colour[start] != white:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        colour[start] = grey
        while stack:
            node, next_child = stack[-1]
            children = nodes[node].children
            if next_child == len(children):
                colour[node] = black
                stack.pop()
                continue
            stack[-1] = (node, next_child + 1)
            child = children[next_child]
            if colour[child] == grey:
                path = [n for n, _ in stack]
                return [*path[path.index(child):], child]
            if colour[child] == white:
                colour[child] = grey
                stack.append((child, 0))
    return []


def reachable_order(roots: Iterable[str], children: Mapping[str, Sequence[str]]) -> list[str]:
    """Process ids reachable from ``roots`` through ``children``, depth first (the reference's
    ``processids`` order), each once; ids not reachable are appended by the caller if wanted."""
    order: list[str] = []
    seen: set[str] = set()
    for root in roots:
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            order.append(pid)
            stack.extend(reversed(children.get(pid, ())))
    return order


def depths(roots: Iterable[str], children: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Longest distance from a root, for drawing levels (Kahn's order, so each edge once)."""
    indegree: dict[str, int] = {}
    for pid, kids in children.items():
        indegree.setdefault(pid, 0)
        for kid in kids:
            indegree[kid] = indegree.get(kid, 0) + 1
    depth = {pid: 0 for pid in roots}
    ready = [pid for pid, n in indegree.items() if n == 0]
    while ready:
        pid = ready.pop()
        depth.setdefault(pid, 0)
        for kid in children.get(pid, ()):
            depth[kid] = max(depth.get(kid, 0), depth[pid] + 1)
            indegree[kid] -= 1
            if indegree[kid] == 0:
                ready.append(kid)
    return depth
