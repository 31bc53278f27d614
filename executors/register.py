"""Who the executor is: a new executor registered with the colony owner's key, or an existing,
approved one given by its own key; and the functions it offers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from executors.config import ConfigError, ExecutorConfig
from pycolonies import crypto, wire
from pycolonies.aio import AsyncColonies
from pycolonies.errors import AccessDeniedError, BadRequestError, ColoniesError

log = logging.getLogger("executors")

_STATES = {wire.PENDING: "pending", wire.APPROVED: "approved", wire.REJECTED: "rejected",
           wire.UNREGISTERED: "unregistered"}


class RegistrationError(ConfigError):
    """The server refused the executor's identity (one line saying what to fix)."""


@dataclass(frozen=True)
class Identity:
    colonyname: str
    executorname: str
    executorid: str
    executortype: str
    prvkey: str
    registered: bool  # True: added by this run with the colony key (its key dies with the run)


async def identify(client: AsyncColonies, config: ExecutorConfig, default_type: str,
                   capabilities: dict[str, Any] | None = None) -> Identity:
    """The executor to work as (registering and approving a new one when given the colony key,
    with ``capabilities``: ``{"hardware": [...], "software": [...]}``)."""
    if config.prvkey:
        return await _existing(client, config, config.prvkey)
    assert config.colony_prvkey is not None
    return await _new(client, config, config.colony_prvkey, config.executortype or default_type,
                      capabilities or {})


async def _new(
    client: AsyncColonies, config: ExecutorConfig, colony_prvkey: str, executortype: str,
    capabilities: dict[str, Any],
) -> Identity:
    if not executortype:
        raise ConfigError("set COLONIES_EXECUTOR_TYPE: this executor kind has no default executor type")
    prvkey = crypto.generate_private_key()
    executorid = crypto.derive_id(prvkey)
    name = config.executorname or f"{executortype}-{executorid[:8]}"
    executor = {"executorid": executorid, "executorname": name, "executortype": executortype,
                "colonyname": config.colonyname}
    if capabilities:
        executor["capabilities"] = capabilities
    colony = config.colonyname
    try:
        await client.add_executor(executor, colony_prvkey)
        await client.approve_executor(colony, name, colony_prvkey)
    except AccessDeniedError as exc:
        raise RegistrationError(
            f"cannot register an executor in colony {colony!r}: COLONIES_COLONY_PRVKEY is not the key "
            f"of that colony's owner, or the colony does not exist ({exc})"
        ) from None
    except BadRequestError as exc:
        hint = "; choose another COLONIES_EXECUTOR_NAME" if "exist" in str(exc) else ""
        raise RegistrationError(
            f"cannot register executor {name!r} in colony {colony!r}: {exc}{hint}"
        ) from None
    return Identity(colony, name, executorid, executortype, prvkey, registered=True)


async def _existing(client: AsyncColonies, config: ExecutorConfig, prvkey: str) -> Identity:
    colony = config.colonyname
    executorid = crypto.derive_id(prvkey)
    try:
        executors = await client.list_executors(colony, prvkey)
    except AccessDeniedError:
        executors = []
    found = next((e for e in executors if e.get("executorid") == executorid), None)
    if found is None:
        raise RegistrationError(
            f"COLONIES_PRVKEY (id {executorid[:12]}...) is not the key of an executor of colony "
            f"{colony!r}: register the executor first, or set COLONIES_COLONY_PRVKEY instead to "
            "register a new one"
        )
    name, state = found.get("executorname", ""), found.get("state")
    if state != wire.APPROVED:
        raise RegistrationError(
            f"executor {name!r} of colony {colony!r} is {_STATES.get(state, f'in state {state}')}, not "
            "approved: the colony owner must approve it (approveexecutormsg) before it can take work"
        )
    executortype = found.get("executortype", "")
    for setting, wanted, actual in (("COLONIES_EXECUTOR_TYPE", config.executortype, executortype),
                                    ("COLONIES_EXECUTOR_NAME", config.executorname, name)):
        if wanted and wanted != actual:
            raise RegistrationError(
                f"{setting} is {wanted!r}, but the executor of COLONIES_PRVKEY is registered with "
                f"{actual!r}: unset it or use another key"
            )
    return Identity(colony, name, executorid, executortype, prvkey, registered=False)


async def offer(client: AsyncColonies, identity: Identity, functions: list[tuple[str, list[str]]]) -> None:
    """Register the functions the executor offers (``addfunctionmsg``; idempotent)."""
    for funcname, args in functions:
        await client.add_function(identity.colonyname, identity.executorname, funcname, identity.prvkey,
                                  args=args)


async def unregister(client: AsyncColonies, identity: Identity, colony_prvkey: str) -> None:
    """Remove an executor this run registered: its generated key ends with the run (best effort)."""
    try:
        await client.remove_executor(identity.colonyname, identity.executorname, colony_prvkey)
    except ColoniesError as exc:
        log.warning("could not remove executor %s from colony %s: %s", identity.executorname,
                    identity.colonyname, exc)
