"""``func_spec()``: build a :class:`FuncSpec` from a function name or a Python callable."""

from __future__ import annotations

import base64
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from pycolonies.models import Conditions, Fs, FuncSpec

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def func_spec(
    func: str | Callable[..., Any],
    args: list[Any],
    colonyname: str,
    executortype: str,
    executorname: str | None = None,
    priority: int = 1,
    maxexectime: int = -1,
    maxretries: int = -1,
    maxwaittime: int = -1,
    code: str | None = None,
    kwargs: dict[str, Any] | None = None,
    fs: Fs | None = None,
) -> FuncSpec:
    """A function spec for ``func`` on an executor of ``executortype`` in ``colonyname``.

    * ``func`` as a **name**: ``nodename = funcname = func``; if ``code`` is given its base64 goes
      to ``env["code"]`` (for code-running executors).
    * ``func`` as a **callable**: ``nodename = funcname = func.__name__``; its dedented source goes
      base64-encoded to ``env["code"]`` and its positional parameter names, comma-joined, to
      ``env["args_spec"]`` (``"n1,n2,ctx"``).
    * a Python function whose source is not self-contained or not available, that is a **lambda**
      (named ``"lambda"``), a **closure** (it uses variables of an enclosing function) or a
      function ``inspect.getsource`` cannot read (defined in a REPL or by ``exec``), is shipped as
      ``env["pickle"] = base64(cloudpickle.dumps(func))`` instead of ``env["code"]``
      (``env["args_spec"]`` as above). Only this SDK's python executor runs such payloads, with
      code shipping on, and cloudpickle needs the same Python version on both sides. Pass
      ``code=`` to ship source text instead.
    * ``executorname`` restricts the process to that executor (``conditions.executornames``).

    ``args`` and ``kwargs`` may hold any JSON values, and ``fs`` is honoured in both forms.
    """
    env: dict[str, str] = {}
    if isinstance(func, str):
        name = func
        if code is not None:
            env["code"] = _b64(code)
    elif callable(func):
        name = func.__name__
        env["args_spec"] = _args_spec(func)
        if code is None and _needs_pickle(func):
            name = "lambda" if name == "<lambda>" else name
            env["pickle"] = _pickle(func)
        else:
            env["code"] = _b64(code if code is not None else _source(func))
    else:
        raise TypeError(f"func must be a function name or a callable, not {type(func).__name__}")

    conditions = Conditions(colonyname=colonyname, executortype=executortype)
    if executorname is not None:
        conditions.executornames = [executorname]
    return FuncSpec(
        nodename=name,
        funcname=name,
        args=list(args) if args is not None else [],
        kwargs=dict(kwargs) if kwargs is not None else {},
        priority=priority,
        maxwaittime=maxwaittime,
        maxexectime=maxexectime,
        maxretries=maxretries,
        conditions=conditions,
        fs=fs if fs is not None else Fs(),
        env=env,
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _needs_pickle(func: Callable[..., Any]) -> bool:
    """A Python function whose source text alone would not recreate it."""
    if not inspect.isfunction(func):
        return False  # builtins and other callables: the source path (and its error) as before
    if func.__name__ == "<lambda>" or func.__closure__:
        return True
    try:
        inspect.getsource(func)
    except (OSError, TypeError):
        return True
    return False


def _pickle(func: Callable[..., Any]) -> str:
    import cloudpickle  # imported on first use: most programs never pickle a function

    try:
        payload = cloudpickle.dumps(func)
    except Exception as exc:  # e.g. it uses a global that cannot be pickled (a lock, a connection)
        raise ValueError(
            f"cannot ship {func.__name__!r}: its source is not self-contained and cloudpickle failed "
            f"({type(exc).__name__}: {exc}); pass code= explicitly"
        ) from exc
    return base64.b64encode(payload).decode("ascii")


def _source(func: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise ValueError(f"cannot read the source of {func.__name__!r}; pass code= explicitly") from exc


def _args_spec(func: Callable[..., Any]) -> str:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return ""
    return ",".join(p.name for p in params if p.kind in _POSITIONAL)
