"""User RPCs: the colony owner adds and removes users; members read them."""

from __future__ import annotations

from typing import Any

from pycolonies.models import User
from server import auth
from server.context import Call
from server.errors import BadRequest, NotFound
from server.params import require_id, require_name
from server.store import users as store


async def add_user(call: Call) -> Any:
    user = call.msg.model("user", User)
    await auth.require_colony_owner(call.pool, user.colonyname, call.signer)
    require_name(user.name, "user.name")
    require_id(user.userid, "user.userid")
    if not await store.add(call.pool, user):
        if await store.get(call.pool, user.colonyname, user.name):
            raise BadRequest(f"A user with name <{user.name}> already exists in Colony <{user.colonyname}>")
        raise BadRequest(f"A user with userid <{user.userid}> already exists in Colony <{user.colonyname}>")
    return user


async def list_users(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    return await store.list_for_colony(call.pool, colony)


async def get_user(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.str("name")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    user = await store.get(call.pool, colony, name)
    if user is None:
        raise NotFound(f"Failed to get user, no user with name <{name}> in Colony <{colony}>")
    return user


async def get_user_by_id(call: Call) -> Any:
    colony, user_id = call.msg.str("colonyname"), call.msg.str("userid")
    await auth.require_member(call.pool, colony, call.signer, approved=False)
    user = await store.get_by_id(call.pool, colony, user_id)
    if user is None:
        raise NotFound(f"Failed to get user, no user with id <{user_id}> in Colony <{colony}>")
    return user


async def remove_user(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.required_str("name")
    await auth.require_colony_owner(call.pool, colony, call.signer)
    if not await store.remove(call.pool, colony, name):
        raise BadRequest(f"Failed to remove user, no user with name <{name}> in Colony <{colony}>")
    return {}


HANDLERS = {
    "addusermsg": add_user,
    "getusersmsg": list_users,
    "getusermsg": get_user,
    "getuserbyidmsg": get_user_by_id,
    "removeusermsg": remove_user,
}
