"""A small Python executor for the workflow examples: it runs the functions that ``func_spec``
ships as source code, the way the ColonyOS tutorial's python executor does.

This is the examples' stand-in; the full executor (isolation, logs, cancellation, heartbeats) is
``colonies executor start --type python``. Settings come from the environment:

    COLONIES_SERVER_HOST / COLONIES_SERVER_PORT   where the server is
    COLONIES_COLONY_NAME                         the colony
    COLONIES_COLONY_PRVKEY                       if set, register a new executor with this colony key
    COLONIES_PRVKEY                              otherwise: the key of an approved executor
    EXECUTOR_TYPE (python-executor), EXECUTOR_THREADS (4)

    python examples/python_executor.py
"""

from __future__ import annotations

import base64
import inspect
import os
import signal
import sys
import threading
import traceback
from typing import Any

from pycolonies import Colonies, ColoniesError, Crypto, colonies_client, func_spec
from pycolonies.models import Process


def register(client: Colonies, colonyname: str, colony_prvkey: str, executortype: str) -> str:
    """Register and approve a fresh executor; return its private key."""
    crypto = Crypto()
    prvkey = crypto.prvkey()
    name = f"{executortype}-{crypto.id(prvkey)[:8]}"
    client.add_executor(
        {"executorid": crypto.id(prvkey), "executorname": name, "executortype": executortype,
         "colonyname": colonyname},
        colony_prvkey,
    )
    client.approve_executor(colonyname, name, colony_prvkey)
    return prvkey


def call_function(client: Colonies, process: Process, colonyname: str, prvkey: str) -> list[Any]:
    """Run the process's function; its return value becomes the output list."""
    code = process.spec.env.get("code")
    if not code:
        raise RuntimeError(f"function {process.spec.funcname!r} has no code to run (env['code'] is empty)")
    namespace: dict[str, Any] = {"colonies": client, "func_spec": func_spec, "__name__": "colonies_function"}
    exec(compile(base64.b64decode(code).decode(), f"<{process.spec.funcname}>", "exec"), namespace)
    function = namespace.get(process.spec.funcname)
    if not callable(function):
        raise RuntimeError(f"the shipped code does not define a function named {process.spec.funcname!r}")
    args = list(process.input) if process.input else list(process.spec.args)
    kwargs = dict(process.spec.kwargs)
    if "ctx" in inspect.signature(function).parameters:
        kwargs["ctx"] = {"process": process, "colonyname": colonyname,
                         "executorid": Crypto().id(prvkey), "executor_prvkey": prvkey}
    result = function(*args, **kwargs)
    if result is None:
        return []
    return list(result) if isinstance(result, tuple) else [result]


def work(client: Colonies, colonyname: str, prvkey: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            process = client.assign(colonyname, 2, prvkey)
        except ColoniesError as exc:
            if getattr(exc, "status", None) != 404:  # 404: nothing to do yet
                print(f"assign failed: {exc}", file=sys.stderr)
                stop.wait(0.5)
            continue
        try:
            output = call_function(client, process, colonyname, prvkey)
        except Exception as exc:
            try:
                errors = [f"{type(exc).__name__}: {exc}", traceback.format_exc()]
                client.fail(process.processid, errors, prvkey)
            except ColoniesError as refused:
                print(f"could not report the failure of {process.processid}: {refused}", file=sys.stderr)
            continue
        try:
            client.close(process.processid, output, prvkey)
        except ColoniesError as refused:  # e.g. the server already retried it after maxexectime
            print(f"close of {process.processid} refused: {refused}", file=sys.stderr)


def main() -> None:
    client, colonyname, colony_prvkey, _, prvkey = colonies_client()
    if not colonyname:
        sys.exit("set COLONIES_COLONY_NAME")
    executortype = os.environ.get("EXECUTOR_TYPE", "python-executor")
    if colony_prvkey:
        prvkey = register(client, colonyname, colony_prvkey, executortype)
    if not prvkey:
        sys.exit("set COLONIES_COLONY_PRVKEY (to register) or COLONIES_PRVKEY (an approved executor's key)")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threads = [threading.Thread(target=work, args=(client, colonyname, prvkey, stop), daemon=True)
               for _ in range(int(os.environ.get("EXECUTOR_THREADS", "4")))]
    for thread in threads:
        thread.start()
    print(f"python executor ready in colony {colonyname} ({len(threads)} threads)", flush=True)
    stop.wait()


if __name__ == "__main__":
    main()
