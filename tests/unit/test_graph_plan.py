"""Workflow shape checks and layout helpers (server/scheduler/graph_plan.py)."""

from __future__ import annotations

import pytest

from pycolonies.models import Conditions, FuncSpec
from server.domain.graph_plan import PlanError, depths, find_cycle, plan_workflow, reachable_order


def spec(name: str, *deps: str) -> FuncSpec:
    return FuncSpec(nodename=name, funcname=name, conditions=Conditions(dependencies=list(deps)))


def test_parents_follow_the_dependency_order_and_children_are_linked() -> None:
    nodes = plan_workflow([spec("a"), spec("b"), spec("merge", "b", "a")])
    assert nodes[2].parents == [1, 0]
    assert nodes[0].children == [2] and nodes[1].children == [2]
    assert [n.is_root for n in nodes] == [True, True, False]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([spec("a"), spec("a")], "functionspecs[1].nodename: duplicate nodename <a>"),
        ([spec("a", "x")], "functionspecs[0].conditions.dependencies: <a> depends on <x>"),
        ([spec("a", "b"), spec("b", "a")], "cycle: a -> b -> a"),
        ([spec("a", "a")], "depends on itself"),
        ([spec("a"), spec("b", "a", "a")], "depends on <a> twice"),
        ([spec("")], "functionspecs[0].nodename"),
        ([], "at least one"),
    ],
)
def test_bad_shapes_name_the_offending_field(specs: list[FuncSpec], message: str) -> None:
    with pytest.raises(PlanError) as info:
        plan_workflow(specs)
    assert message in str(info.value)


def test_a_deep_chain_is_checked_without_recursion() -> None:
    chain = [spec("n0")] + [spec(f"n{i}", f"n{i - 1}") for i in range(1, 20_000)]
    nodes = plan_workflow(chain)
    assert find_cycle(nodes) == []
    children = {f"n{i}": [f"n{i + 1}"] for i in range(19_999)}
    assert reachable_order(["n0"], children)[-1] == "n19999"
    assert depths(["n0"], children)["n19999"] == 19_999


def test_reachable_order_is_depth_first_and_visits_shared_children_once() -> None:
    children = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    assert reachable_order(["a"], children) == ["a", "b", "d", "c"]
    assert depths(["a"], children) == {"a": 0, "b": 1, "c": 1, "d": 2}
