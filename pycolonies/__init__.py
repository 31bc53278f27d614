"""pycolonies: the Python SDK for ColonyOS-compatible servers.

Example::

    from pycolonies import Colonies, func_spec, Workflow

    client = Colonies("localhost", 50080)
    process = client.submit_func_spec(func_spec("echo", ["hi"], "dev", "echo-executor"), prvkey)
"""

from typing import TYPE_CHECKING, Any

from pycolonies.client import Colonies
from pycolonies.config import ClientConfig, colonies_client
from pycolonies.crypto import Crypto
from pycolonies.errors import (
    AccessDeniedError,
    AlreadyApplied,
    BadRequestError,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesServerError,
    ColoniesTimeout,
    NotFoundError,
)
from pycolonies.functions import func_spec
from pycolonies.models import (
    Attribute,
    Conditions,
    File,
    Fs,
    FuncSpec,
    Gpu,
    Process,
    ProcessGraph,
    Reference,
    S3Object,
    Snapshot,
    Workflow,
)
from pycolonies.wire import (
    APPROVED,
    CANCELLED,
    FAILED,
    PENDING,
    REJECTED,
    RUNNING,
    SUCCESS,
    UNREGISTERED,
    WAITING,
)

if TYPE_CHECKING:
    from pycolonies.aio import AsyncColonies

SUCCESSFUL = SUCCESS  # the reference SDK's name for state 2


def __getattr__(name: str) -> Any:
    # AsyncColonies pulls in aiohttp (most of the import time), so load it on first use.
    if name == "AsyncColonies":
        from pycolonies.aio import AsyncColonies

        return AsyncColonies
    raise AttributeError(f"module 'pycolonies' has no attribute {name!r}")


__all__ = [
    "APPROVED",
    "CANCELLED",
    "FAILED",
    "PENDING",
    "REJECTED",
    "RUNNING",
    "SUCCESS",
    "SUCCESSFUL",
    "UNREGISTERED",
    "WAITING",
    "AccessDeniedError",
    "AlreadyApplied",
    "AsyncColonies",
    "Attribute",
    "BadRequestError",
    "ClientConfig",
    "Colonies",
    "ColoniesConnectionError",
    "ColoniesError",
    "ColoniesServerError",
    "ColoniesTimeout",
    "Conditions",
    "Crypto",
    "File",
    "Fs",
    "FuncSpec",
    "Gpu",
    "NotFoundError",
    "Process",
    "ProcessGraph",
    "Reference",
    "S3Object",
    "Snapshot",
    "Workflow",
    "colonies_client",
    "func_spec",
]
