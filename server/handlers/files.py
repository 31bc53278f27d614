"""File and snapshot RPCs (ColonyFS metadata): every one needs membership of the colony.

Compatible with the reference's shapes. Two differences on purpose: the credentials a reference
client puts in ``file.ref.s3object`` (access key, secret key, encryption key) are never stored,
so no member can read another's keys (each client uses its own configuration); and a revision a
snapshot holds stays downloadable through the snapshot after its file is removed."""

from __future__ import annotations

from typing import Any

from pycolonies.models import File, FileData, Label, Snapshot, normalize_label, path_problem
from server import auth
from server.context import Call
from server.errors import BadRequest, NotFound
from server.params import require_id
from server.store import blobs as blob_store
from server.store import files as store
from server.store import processes as process_store
from server.store.processes import new_id

SECRET_REF_FIELDS = ("accesskey", "secretkey", "encryptionkey")
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_CHARS = 128
MAX_METADATA_VALUE_CHARS = 4096
MAX_SEARCH_COUNT = 100


def _check_metadata(metadata: dict[str, str], where: str) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise BadRequest(f"Invalid {where}: at most {MAX_METADATA_KEYS} keys, not {len(metadata)}")
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise BadRequest(f"Invalid {where}: a key is 1-{MAX_METADATA_KEY_CHARS} characters, not {key!r}")
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise BadRequest(f"Invalid {where}.{key}: at most {MAX_METADATA_VALUE_CHARS} characters")


def _stored_ref(file: File) -> dict[str, Any]:
    ref = file.ref.to_wire()
    for key in SECRET_REF_FIELDS:
        ref["s3object"][key] = ""
    return ref


async def add_file(call: Call) -> Any:
    file = call.msg.model("file", File)
    await auth.require_member(call.pool, file.colonyname, call.signer)
    if not file.name:
        raise BadRequest("Invalid addfilemsg: file.name is required")
    if "/" in file.name:
        raise BadRequest(f"Invalid addfilemsg: file.name <{file.name}> must not contain '/' (put the "
                         "directory in file.label)")
    if problem := path_problem(file.label, file.name):
        raise BadRequest(f"Invalid addfilemsg: {problem} (files are synced into directories)")
    if file.size < 0:
        raise BadRequest(f"Invalid addfilemsg: file.size must not be negative, not {file.size}")
    _check_metadata(file.metadata, "addfilemsg: file.metadata")
    if file.processid:
        require_id(file.processid, "addfilemsg: file.processid")
        process = await process_store.get_row(call.pool, file.processid)
        if process is None or process["colony_name"] != file.colonyname:
            raise BadRequest(f"Invalid addfilemsg: file.processid <{file.processid}> is no process of colony "
                             f"<{file.colonyname}>")
    file.fileid = new_id()
    file.label = normalize_label(file.label)
    return await store.add(call.pool, file, _stored_ref(file))


async def _lookup(call: Call, action: str) -> tuple[str, list[File]]:
    """The revisions a request names by ``fileid`` or by ``label`` + ``name`` (newest first), in
    a colony the signer is a member of."""
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    file_id, label, name = call.msg.str("fileid"), call.msg.str("label"), call.msg.str("name")
    if file_id:
        require_id(file_id, f"{call.msg.payloadtype}: fileid")
        found = await store.get(call.pool, colony, file_id)  # also a removed one a snapshot holds
        if found is None:
            raise NotFound(f"Failed to {action}, file <{file_id}> not found")
        return colony, [found]
    if not name:
        raise BadRequest(f"Failed to {action}: give fileid, or label and name")
    revisions = await store.revisions(call.pool, colony, normalize_label(label), name)
    if not revisions:
        raise NotFound(f"Failed to {action}, no file <{name}> under label <{normalize_label(label)}>")
    return colony, revisions


async def get_file(call: Call) -> Any:
    _, revisions = await _lookup(call, "get file")
    if call.msg.str("fileid") or call.msg.bool("latest"):
        return revisions[:1]
    return revisions


async def get_files(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    latest = await store.latest_under_label(call.pool, colony, normalize_label(call.msg.str("label")))
    return [FileData(name=f.name, checksum=f.checksum, size=f.size, s3filename=f.ref.s3object.object)
            for f in latest]


async def get_file_labels(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    name = call.msg.str("name")
    exact = call.msg.bool("exact")
    prefix = normalize_label(name) if (exact or name) else "/"
    found = await store.labels(call.pool, colony, prefix, exact)
    return [Label(name=label, files=count) for label, count in found]


async def remove_file(call: Call) -> Any:
    colony, revisions = await _lookup(call, "remove file")
    file_ids = [r.fileid for r in revisions]
    async with call.pool.acquire() as con, con.transaction():
        await store.lock_colony_files(con, colony)
        objects = await store.embedded_objects(con, colony, file_ids)
        await store.remove_revisions(con, colony, file_ids)
        await blob_store.collect(con, colony, objects)
    return {}


async def create_snapshot(call: Call) -> Any:
    colony, name = call.msg.str("colonyname"), call.msg.str("name")
    await auth.require_member(call.pool, colony, call.signer)
    if not name:
        raise BadRequest("Failed to create snapshot, name is required")
    label = normalize_label(call.msg.str("label"))
    async with call.pool.acquire() as con, con.transaction():
        await store.lock_colony_files(con, colony)
        snapshot = await store.create_snapshot(con, new_id(), colony, label, name)
    if snapshot is None:
        raise BadRequest(f"Failed to create snapshot, colony <{colony}> already has a snapshot <{name}>")
    return snapshot


async def _snapshot(call: Call, action: str) -> tuple[str, Snapshot]:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    snapshot_id, name = call.msg.str("snapshotid"), call.msg.str("name")
    if snapshot_id:
        require_id(snapshot_id, f"{call.msg.payloadtype}: snapshotid")
        snapshot = await store.get_snapshot(call.pool, colony, snapshot_id)
    elif name:
        snapshot = await store.get_snapshot_by_name(call.pool, colony, name)
    else:
        raise BadRequest(f"Failed to {action}: give snapshotid or name")
    if snapshot is None:
        raise NotFound(f"Failed to {action}, snapshot <{snapshot_id or name}> not found")
    return colony, snapshot


async def get_snapshot(call: Call) -> Any:
    return (await _snapshot(call, "get snapshot"))[1]


async def get_snapshots(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    return await store.list_snapshots(call.pool, colony)


async def remove_snapshot(call: Call) -> Any:
    colony, snapshot = await _snapshot(call, "remove snapshot")
    async with call.pool.acquire() as con, con.transaction():
        await store.lock_colony_files(con, colony)
        await _remove_snapshots(con, colony, [snapshot])
    return {}


async def remove_all_snapshots(call: Call) -> Any:
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    async with call.pool.acquire() as con, con.transaction():
        await store.lock_colony_files(con, colony)
        await _remove_snapshots(con, colony, await store.list_snapshots(con, colony))
    return {}


async def _remove_snapshots(con: Any, colony: str, snapshots: list[Snapshot]) -> None:
    """With the colony's files locked: remove the snapshots, then the blobs of the revisions that
    went with them (removed files only they held)."""
    file_ids = [file_id for snapshot in snapshots for file_id in snapshot.fileids]
    objects = await store.embedded_objects(con, colony, file_ids)
    await store.remove_snapshots(con, colony, [s.snapshotid for s in snapshots])
    await blob_store.collect(con, colony, objects)


async def search_files(call: Call) -> Any:
    """Our extension: revisions by label (and below), name, metadata and producing process."""
    colony = call.msg.str("colonyname")
    await auth.require_member(call.pool, colony, call.signer)
    metadata = call.msg.data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadRequest("Invalid searchfilesmsg: metadata must be an object of strings")
    _check_metadata(metadata, "searchfilesmsg: metadata")
    count = call.msg.int("count", MAX_SEARCH_COUNT)
    if not 1 <= count <= MAX_SEARCH_COUNT:
        raise BadRequest(f"Invalid searchfilesmsg: count must be 1-{MAX_SEARCH_COUNT}, not {count}")
    label, process_id = call.msg.str("label"), call.msg.str("processid")
    if process_id:
        require_id(process_id, "searchfilesmsg: processid")
    return await store.search(call.pool, colony, label=normalize_label(label) if label else "",
                              name=call.msg.str("name"), metadata=metadata, process_id=process_id,
                              count=count)


HANDLERS = {
    "searchfilesmsg": search_files,
    "addfilemsg": add_file,
    "getfilemsg": get_file,
    "getfilesmsg": get_files,
    "getfilelabelsmsg": get_file_labels,
    "removefilemsg": remove_file,
    "createsnapshotmsg": create_snapshot,
    "getsnapshotmsg": get_snapshot,
    "getsnapshotsmsg": get_snapshots,
    "removesnapshotmsg": remove_snapshot,
    "removeallsnapshotmsg": remove_all_snapshots,
}
