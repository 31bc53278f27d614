"""Keep the keys an executor holds away from the code it runs.

* :data:`SECRET_VARIABLES` never reach a worker: its environment is built without them
  (:func:`without_secrets`), and :func:`forget_owner_keys` removes the owner keys from
  ``os.environ`` once the executor has read its configuration, so no other child inherits them.
* :func:`protect_process` makes the executor process non-dumpable on Linux
  (``prctl(PR_SET_DUMPABLE, 0)``): its ``/proc/<pid>/environ``, ``mem``, ``maps``, ``fd`` and
  ptrace are then refused to every process without ``CAP_SYS_PTRACE``, even one of the same user.
  That matters because removing a variable from ``os.environ`` does not change
  ``/proc/<pid>/environ``, which shows the environment the process started with.

See docs/executor-keys.md for the whole picture.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

OWNER_KEY_VARIABLES = ("COLONIES_COLONY_PRVKEY", "COLONIES_SERVER_PRVKEY")
# ... and the database's URL, which may carry its password.
SECRET_VARIABLES = (*OWNER_KEY_VARIABLES, "COLONIES_DB_URL")

_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3


def forget_owner_keys(environ: MutableMapping[str, str] | None = None) -> None:
    """Remove :data:`OWNER_KEY_VARIABLES` from ``environ`` (default ``os.environ``), so that no
    process started afterwards inherits them."""
    env = os.environ if environ is None else environ
    for name in OWNER_KEY_VARIABLES:
        env.pop(name, None)


def without_secrets(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) without :data:`SECRET_VARIABLES`."""
    env = os.environ if environ is None else environ
    return {key: value for key, value in env.items() if key not in SECRET_VARIABLES}


def protect_process() -> bool:
    """Make this process non-dumpable (Linux); True if it is now. Its children are dumpable again
    after their ``exec``, as usual."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    return prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
