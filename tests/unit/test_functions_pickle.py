"""func_spec() ships lambdas, closures and source-less functions as a cloudpickle payload."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import cloudpickle
import pytest

from pycolonies import FuncSpec, func_spec


def _unpickle(spec: FuncSpec) -> Any:
    return cloudpickle.loads(base64.b64decode(spec.env["pickle"], validate=True))


def _spec(func: Any, **options: Any) -> FuncSpec:
    return func_spec(func, [], "dev", "python-executor", **options)


def module_level(a, b, ctx={}):  # noqa: B006 - the tutorial's executor convention
    return a + b


def test_lambda_is_pickled_and_named_lambda() -> None:
    spec = _spec(lambda x, y: x * y)
    assert spec.funcname == spec.nodename == "lambda"
    assert set(spec.env) == {"args_spec", "pickle"}
    assert spec.env["args_spec"] == "x,y"
    assert _unpickle(spec)(6, 7) == 42


def test_closure_is_pickled_with_its_captured_values() -> None:
    offset = 100

    def shifted(n, ctx={}):  # noqa: B006
        return n + offset

    spec = _spec(shifted)
    assert spec.funcname == spec.nodename == "shifted"
    assert set(spec.env) == {"args_spec", "pickle"}
    assert spec.env["args_spec"] == "n,ctx"
    assert _unpickle(spec)(1) == 101


def test_function_without_readable_source_is_pickled() -> None:
    namespace: dict[str, Any] = {}
    exec("def made_up(a):\n    return a * 3\n", namespace)  # no file: inspect.getsource fails
    spec = _spec(namespace["made_up"])
    assert spec.funcname == "made_up" and "code" not in spec.env
    assert _unpickle(spec)(5) == 15


def test_plain_functions_still_ship_their_source() -> None:
    spec = _spec(module_level)
    assert set(spec.env) == {"args_spec", "code"}
    assert base64.b64decode(spec.env["code"]).decode().startswith("def module_level(a, b, ctx={}):")

    def nested_without_closure(a):  # self-contained source: shipped as text, like the reference
        return a

    assert set(_spec(nested_without_closure).env) == {"args_spec", "code"}


def test_explicit_code_wins_over_pickling() -> None:
    spec = _spec(lambda: 1, code="def gen():\n    return 1\n")
    assert set(spec.env) == {"args_spec", "code"}
    assert spec.funcname == "<lambda>"  # the name is the caller's business when code= is given


def test_builtins_still_need_code() -> None:
    with pytest.raises(ValueError, match="source"):
        _spec(len)


def test_unpicklable_closure_fails_clearly() -> None:
    lock = threading.Lock()

    def guarded():
        with lock:
            return 1

    with pytest.raises(ValueError, match=r"cannot ship 'guarded'.*cloudpickle failed.*code="):
        _spec(guarded)


def test_pickle_payload_survives_the_wire() -> None:
    spec = _spec(lambda: "hi")
    wire = json.loads(json.dumps(spec.to_wire()))
    assert _unpickle(FuncSpec.from_wire(wire))() == "hi"
