"""func_spec(): the reference helper's behaviour, plus fs for callables and any-JSON arguments."""

from __future__ import annotations

import base64
import json

import pytest

from pycolonies import Fs, FuncSpec, func_spec


def _decode(text: str) -> str:
    return base64.b64decode(text).decode()


def sum_nums(n1, n2, ctx={}):  # noqa: B006 - the tutorial's executor convention
    return n1 + n2


def test_string_function_defaults() -> None:
    spec = func_spec("echo", ["hello"], "dev", "echo-executor")
    assert isinstance(spec, FuncSpec)
    assert spec.nodename == spec.funcname == "echo"
    assert spec.args == ["hello"]
    assert spec.kwargs == {}
    assert (spec.priority, spec.maxexectime, spec.maxretries, spec.maxwaittime) == (1, -1, -1, -1)
    assert spec.conditions.colonyname == "dev"
    assert spec.conditions.executortype == "echo-executor"
    assert spec.conditions.executornames is None
    assert spec.conditions.dependencies == []
    assert spec.env == {}
    assert spec.fs == Fs()
    assert spec.label == ""


def test_string_function_with_code_puts_base64_source_in_env() -> None:
    code = "def gen_nums(ctx={}):\n    return 1, 2"
    spec = func_spec("gen_nums", [], "dev", "python-executor", code=code)
    assert set(spec.env) == {"code"}
    assert _decode(spec.env["code"]) == code


def test_callable_sends_dedented_source_and_args_spec() -> None:
    spec = func_spec(sum_nums, [1, 2], "dev", "python-executor", maxexectime=100, maxwaittime=50)
    assert spec.nodename == spec.funcname == "sum_nums"
    assert spec.env["args_spec"] == "n1,n2,ctx"
    source = _decode(spec.env["code"])
    assert source.startswith("def sum_nums(n1, n2, ctx={}):")
    namespace: dict = {}
    exec(source, namespace)  # the executor runs exactly this
    assert namespace["sum_nums"](2, 3) == 5
    assert (spec.maxexectime, spec.maxwaittime) == (100, 50)


def test_nested_callable_source_is_dedented() -> None:
    def inner(a, *rest, ctx=None):
        return a

    spec = func_spec(inner, [], "dev", "python-executor")
    source = _decode(spec.env["code"])
    assert source.startswith("def inner(a, *rest, ctx=None):")
    assert spec.env["args_spec"] == "a"  # positional parameters only, like the reference


def test_callable_without_source_needs_code() -> None:
    with pytest.raises(ValueError, match="source"):
        func_spec(len, [], "dev", "python-executor")
    spec = func_spec(len, [], "dev", "python-executor", code="len = len")
    assert _decode(spec.env["code"]) == "len = len"


def test_executorname_targets_one_executor() -> None:
    spec = func_spec("echo", [], "dev", "cli", executorname="worker-7")
    assert spec.conditions.executornames == ["worker-7"]
    assert spec.to_wire()["conditions"]["executornames"] == ["worker-7"]


def test_explicit_priority_and_limits() -> None:
    spec = func_spec("f", [], "dev", "cli", priority=-5, maxexectime=10, maxretries=2, maxwaittime=3)
    assert (spec.priority, spec.maxexectime, spec.maxretries, spec.maxwaittime) == (-5, 10, 2, 3)


def test_any_json_args_and_kwargs() -> None:
    args = [1.5, {"a": [1, 2]}, None, "s", True]
    kwargs = {"threshold": 0.25, "opts": {"deep": [1]}}
    spec = func_spec("f", args, "dev", "cli", kwargs=kwargs)
    wire = json.loads(json.dumps(spec.to_wire()))
    assert wire["args"] == args
    assert wire["kwargs"] == kwargs
    assert FuncSpec.from_wire(wire).args == args


def test_args_are_copied_not_aliased() -> None:
    args = [1]
    spec = func_spec("f", args, "dev", "cli")
    args.append(2)
    assert spec.args == [1]


@pytest.mark.parametrize("func", ["echo", sum_nums])
def test_fs_is_honoured_for_both_forms(func) -> None:
    fs = Fs(mount="/cfs", dirs=[{"label": "/data", "dir": "/data"}])
    spec = func_spec(func, [], "dev", "python-executor", fs=fs)
    assert spec.fs == fs
    assert spec.to_wire()["fs"]["mount"] == "/cfs"


def test_specs_do_not_share_conditions() -> None:
    a = func_spec("a", [], "dev", "cli")
    b = func_spec("b", [], "dev", "cli")
    b.conditions.dependencies.append("a")
    assert a.conditions.dependencies == []


def test_rejects_non_callable_func() -> None:
    with pytest.raises(TypeError):
        func_spec(42, [], "dev", "cli")  # type: ignore[arg-type]
