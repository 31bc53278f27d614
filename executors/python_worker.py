"""The worker subprocess of the python executor: runs one process's function and reports back.

Started by :mod:`executors.python_runner` as ``python -m executors.python_worker`` in a new
session. Protocol:

* **stdin**: one JSON job, ``{"process": <Process wire JSON>, "plan": {...}, "client": {...}}``.
  ``plan`` is the runner's decision of what to run: ``{"kind": "module", "name": "pkg.mod.func",
  "wildcard": bool}``, ``{"kind": "code", "source": str}`` or ``{"kind": "pickle", "payload": b64}``.
* **stdout** (the real fd 1 at start) carries only the result, one line of JSON:
  ``{"output": [...]}`` or ``{"error": [message, details]}``. The worker moves it aside first and
  points fd 1 at stderr, so whatever the function (or a subprocess of it) prints goes to the
  output stream and can never corrupt the result.
* **stderr**: everything the function prints, on stdout or stderr, in order.

``python -m executors.python_worker --offered`` instead reads a JSON list of allow-list entries
and answers ``{"functions": [[name, [argnames]], ...]}`` or ``{"error": [message, details]}``.

The runner uses :func:`allowed_entry` to decide the plan; the worker checks the rest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import linecache
import math
import os
import sys
import traceback
import types
from collections.abc import Callable
from importlib import import_module
from typing import Any

CODE_MODULE = "colonies_function"  # __name__ of shipped source, so `if __name__ == "__main__"` stays off


class Refused(Exception):
    """The function cannot be run as asked (not a function, a generator, a bad return value...)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


# ---------------------------------------------------------------------------------------------
# The allow-list (shared with the runner)


def allowed_entry(funcname: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    """The allow-list entry that admits ``funcname``: the exact ``"pkg.mod.func"``, or a
    ``"pkg.mod.*"`` whose module is ``funcname``'s and whose function name is public."""
    module, _, name = funcname.rpartition(".")
    if not module or not name:
        return None
    if funcname in allowed:
        return funcname
    wildcard = f"{module}.*"
    if wildcard in allowed and name.isidentifier() and not name.startswith("_"):
        return wildcard
    return None


def is_public_function(module: types.ModuleType, name: str, obj: Any) -> bool:
    """What a ``"module.*"`` entry admits: a public function defined in that very module (not
    one it merely imported, like ``from subprocess import run``)."""
    return (
        not name.startswith("_")
        and inspect.isfunction(obj)
        and getattr(obj, "__module__", None) == module.__name__
    )


def _split_entry(entry: str) -> tuple[str, str]:
    module, _, name = entry.rpartition(".")
    if not module or not name or not (name == "*" or name.isidentifier()):
        raise Refused(f"allow-list entry {entry!r} is not 'pkg.module.function' or 'pkg.module.*'")
    return module, name


def _import(module_name: str, entry: str) -> types.ModuleType:
    try:
        return import_module(module_name)
    except Exception as exc:
        raise Refused(
            f"cannot import module {module_name!r} of allowed function {entry!r}: "
            f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
        ) from exc


def _argnames(func: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [prefix.get(p.kind, "") + p.name for p in params if p.name != "ctx"]


def offered(allowed: list[str]) -> list[list[Any]]:
    """``[[funcname, argnames], ...]`` for the allow-list, ``"module.*"`` expanded."""
    functions: list[list[Any]] = []
    for entry in allowed:
        module_name, name = _split_entry(entry)
        module = _import(module_name, entry)
        if name == "*":
            found = [(n, f) for n, f in vars(module).items() if is_public_function(module, n, f)]
            if not found:
                raise Refused(f"allow-list entry {entry!r}: module {module_name!r} has no public functions")
        else:
            func = getattr(module, name, None)
            if not callable(func):
                raise Refused(f"allow-list entry {entry!r}: module {module_name!r} has no function {name!r}")
            found = [(name, func)]
        functions.extend([f"{module_name}.{n}", _argnames(f)] for n, f in found)
    return functions


# ---------------------------------------------------------------------------------------------
# Finding the function


def _load(plan: dict[str, Any], funcname: str, injected: dict[str, Any]) -> Callable[..., Any]:
    kind = plan["kind"]
    if kind == "module":
        return _load_module_function(plan["name"], bool(plan.get("wildcard")), injected)
    if kind == "code":
        return _load_source(plan["source"], funcname, injected)
    if kind == "pickle":
        return _load_pickle(plan["payload"], funcname, injected)
    raise Refused(f"unknown plan {kind!r}")


def _load_module_function(funcname: str, wildcard: bool, injected: dict[str, Any]) -> Callable[..., Any]:
    module_name, name = _split_entry(funcname)
    module = _import(module_name, funcname)
    func = getattr(module, name, None)
    if wildcard and not is_public_function(module, name, func):
        raise Refused(f"{funcname!r} is not a public function defined in module {module_name!r}")
    if not callable(func):
        raise Refused(f"module {module_name!r} has no function {name!r}")
    for key, value in injected.items():  # only where the module does not define the name itself
        if not hasattr(module, key):
            setattr(module, key, value)
    return func


def _load_source(source: str, funcname: str, injected: dict[str, Any]) -> Callable[..., Any]:
    module = types.ModuleType(CODE_MODULE)
    module.__dict__.update(injected)
    sys.modules[CODE_MODULE] = module  # dataclasses, pickle and friends look the module up
    filename = f"<colonies function {funcname}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # tracebacks
    exec(compile(source, filename, "exec"), module.__dict__)
    func = module.__dict__.get(funcname)
    if not callable(func):
        raise Refused(f"the shipped code does not define a function named {funcname!r}")
    return func


def _load_pickle(payload: str, funcname: str, injected: dict[str, Any]) -> Callable[..., Any]:
    import cloudpickle  # only when needed: it is the slowest import of the worker

    try:
        func = cloudpickle.loads(base64.b64decode(payload))
    except Exception as exc:
        raise Refused(
            f"cannot unpickle function {funcname!r} ({type(exc).__name__}: {exc}); "
            "cloudpickle payloads need the same Python version on both sides"
        ) from exc
    if not callable(func):
        raise Refused(f"the pickled payload of {funcname!r} is a {type(func).__name__}, not a function")
    namespace = getattr(func, "__globals__", None)
    if isinstance(namespace, dict):
        for key, value in injected.items():
            namespace.setdefault(key, value)
    return func


# ---------------------------------------------------------------------------------------------
# Calling it


def _accepts_ctx(func: Callable[..., Any]) -> bool:
    code = getattr(func, "__code__", None)
    if isinstance(code, types.CodeType) and not hasattr(func, "__wrapped__"):  # a plain function: cheap
        named = code.co_varnames[code.co_posonlyargcount:code.co_argcount + code.co_kwonlyargcount]
        return "ctx" in named or bool(code.co_flags & inspect.CO_VARKEYWORDS)
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "ctx" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in params
    )


def _call(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], funcname: str) -> Any:
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise Refused(f"function {funcname!r} is a generator; return a list or a tuple instead of yielding")
    result = func(*args, **kwargs)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        raise Refused(f"function {funcname!r} returned a generator; return a list or a tuple instead")
    return result


def to_output(result: Any) -> list[Any]:
    """The process output for a return value: None -> [], a tuple -> its items, else [result];
    refused unless it survives a JSON round trip unchanged."""
    output = [] if result is None else list(result) if type(result) is tuple else [result]
    try:
        for index, item in enumerate(output):
            _check_json(item, f"output[{index}]", set())
    except RecursionError:
        raise Refused("the return value is nested too deeply to send as JSON") from None
    return output


_SCALARS = (str, int, bool, type(None))


def _check_json(value: Any, where: str, path: set[int]) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is float:
        if not math.isfinite(value):
            raise Refused(f"{where} is {value!r}, which JSON cannot carry")
        return
    if kind not in (list, dict):
        hint = " (return a list instead)" if isinstance(value, tuple | set | frozenset) else ""
        raise Refused(f"{where} is a {kind.__qualname__}, which JSON cannot carry unchanged{hint}")
    if id(value) in path:
        raise Refused(f"{where} refers back to itself (a reference cycle)")
    path.add(id(value))
    if kind is list:
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", path)
    else:
        for key, item in value.items():
            if type(key) is not str:
                raise Refused(f"{where} has a {type(key).__qualname__} key {key!r}; JSON keys are str")
            _check_json(item, f"{where}[{key!r}]", path)
    path.discard(id(value))


def run_job(job: dict[str, Any]) -> list[Any]:
    """Load, call and convert; raises for anything that must fail the process."""
    from pycolonies import Colonies, func_spec
    from pycolonies.models import Process

    wire = job["process"]
    spec = wire.get("spec") or {}
    info = job["client"]
    injected = {"colonies": Colonies(info["host"], info["port"], tls=info["tls"]), "func_spec": func_spec}
    funcname = spec.get("funcname") or ""
    func = _load(job["plan"], funcname, injected)
    args = list(wire.get("in") or spec.get("args") or [])
    kwargs = dict(spec.get("kwargs") or {})
    if _accepts_ctx(func):
        kwargs["ctx"] = {
            "process": Process.from_wire(wire),  # decoded only for a function that takes ctx
            "colonyname": info["colonyname"],
            "executorid": info["executorid"],
            "executor_prvkey": info["executor_prvkey"],
        }
    return to_output(_call(func, args, kwargs, funcname))


# ---------------------------------------------------------------------------------------------
# The process boundary


def describe(exc: BaseException) -> list[str]:
    """``[message, details]`` for a failure: "ExcType: text" and the traceback without our frames."""
    if isinstance(exc, Refused):
        return [str(exc), exc.details]
    if isinstance(exc, SystemExit):
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        return [f"the function called sys.exit({exc.code!r}) (exit code {code}) instead of returning", ""]
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    details = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
    return [message, details]


def _take_result_channel() -> int:
    """Move the real stdout aside for the result; fd 1 (and sys.stdout) now write to stderr."""
    sys.stdout.flush()
    result_fd = os.dup(1)  # not inheritable: subprocesses of the function never get it
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the job was stdin; the function reads nothing
    os.close(devnull)
    return result_fd


def _answer(result_fd: int, answer: dict[str, Any]) -> None:
    data = json.dumps(answer, allow_nan=False).encode() + b"\n"  # one line: JSON escapes newlines
    view = memoryview(data)
    while view:
        view = view[os.write(result_fd, view) :]
    os.close(result_fd)


def main(argv: list[str], before_exit: Callable[[], None] | None = None) -> None:
    """Run the job on stdin; ``before_exit`` runs after the answer is sent (a warm child kills what
    the function left running, see :mod:`executors.python_zygote`)."""
    job = json.loads(sys.stdin.buffer.read())
    result_fd = _take_result_channel()
    try:
        if argv[1:] == ["--offered"]:
            answer: dict[str, Any] = {"functions": offered(job)}
        else:
            answer = {"output": run_job(job)}
    except BaseException as exc:  # everything the function does is reported, SystemExit too
        answer = {"error": describe(exc)}
    _answer(result_fd, answer)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the function may have closed or replaced them
            stream.flush()
    if before_exit is not None:
        before_exit()
    os._exit(0)  # no waiting for threads the function left behind; the runner ends its group


if __name__ == "__main__":
    # one module, not two: functions that raise Refused (importing it by name) are told apart
    sys.modules.setdefault("executors.python_worker", sys.modules[__name__])
    main(sys.argv)
