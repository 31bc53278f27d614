"""File transfers of the asyncio client (:class:`~pycolonies.aio.AsyncColonies`): the same methods,
arguments and results as the sync client's, awaited.

Bytes for the server's embedded store stream over the client's aiohttp session (1 MiB blocks; a
large file never sits in memory). S3 transfers use boto3 in a worker thread, so they never block
the event loop. Hashing and writing local files happen in worker threads too.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from pycolonies import blobs, rpc
from pycolonies.api import JSONDict
from pycolonies.errors import NotFoundError
from pycolonies.filesync import SyncPlan, Transfer, labels_below, plan_sync, snapshot_target
from pycolonies.models import path_problem
from pycolonies.s3 import PROTOCOL as S3_PROTOCOL
from pycolonies.s3 import S3Settings, S3Store, S3Unavailable


class AsyncFileTransfers:
    """Mixed into :class:`~pycolonies.aio.AsyncColonies`, which provides the RPCs (``get_file``,
    ``add_file``, ...), the session and the error wording used here."""

    s3: S3Settings | None
    url: str
    timeout: float | None
    _where: str

    # provided by AsyncColonies / ColoniesApi
    _get_session: Callable[[], aiohttp.ClientSession]
    _unreachable: Callable[[BaseException], Exception]
    get_file: Callable[..., Any]
    get_files: Callable[..., Any]
    get_file_labels: Callable[..., Any]
    add_file: Callable[..., Any]
    remove_file: Callable[..., Any]
    get_snapshot_by_id: Callable[..., Any]
    get_snapshot_by_name: Callable[..., Any]
    get_snapshots: Callable[..., Any]

    async def upload_file(self, colonyname: str, prvkey: str, filepath: str | None = None,
                          label: str | None = None, metadata: dict[str, str] | None = None,
                          processid: str = "") -> JSONDict:
        """Upload ``filepath`` as a new revision of its name under ``label`` (streamed), then record
        it with ``metadata`` and the producing ``processid``; the file record."""
        path = Path(filepath or "")
        with path.open("rb") as stream:
            checksum, size = await asyncio.to_thread(blobs.sha256_of, stream)
            stream.seek(0)
            record = blobs.file_record(colonyname, label or "/", path.name, size, checksum, "", metadata,
                                       processid)
            return await self._upload(prvkey, stream, record)

    async def upload_data(self, colonyname: str, prvkey: str, filename: str | None = None,
                          data: bytes | None = None, label: str | None = None,
                          metadata: dict[str, str] | None = None, processid: str = "") -> JSONDict:
        """Upload ``data`` as a new revision of ``basename(filename)`` under ``label``."""
        payload = bytes(data or b"")
        record = blobs.file_record(colonyname, label or "/", Path(filename or "").name, len(payload),
                                   hashlib.sha256(payload).hexdigest(), "", metadata, processid)
        return await self._upload(prvkey, io.BytesIO(payload), record)

    async def download_file(
        self, colonyname: str, prvkey: str, dst: str | None = None, label: str | None = None,
        fileid: str | None = None, filename: str | None = None, latest: bool = True,
    ) -> str:
        """Download a file into the directory ``dst``; its path. The bytes are checked against the
        recorded SHA-256 before the file appears under its name."""
        blobs.lookup_args(fileid, filename)
        file = await self._file_to_fetch(colonyname, prvkey, label, fileid, filename, latest)
        if problem := path_problem("/", file["name"]):
            raise ValueError(f"cannot download into {dst or '.'}: the {problem}")
        target = Path(dst or ".") / file["name"]
        partial = blobs.partial_path(target)
        try:
            with partial.open("wb") as out:
                await self._download(colonyname, prvkey, file, out)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return str(target)

    async def download_data(
        self, colonyname: str, prvkey: str, label: str | None = None, fileid: str | None = None,
        filename: str | None = None, latest: bool = True,
    ) -> bytes:
        """A file's bytes (checked against the recorded SHA-256)."""
        blobs.lookup_args(fileid, filename)
        file = await self._file_to_fetch(colonyname, prvkey, label, fileid, filename, latest)
        out = io.BytesIO()
        await self._download(colonyname, prvkey, file, out)
        return out.getvalue()

    async def delete_file(
        self, colonyname: str, prvkey: str, label: str | None = None, fileid: str | None = None,
        filename: str | None = None,
    ) -> JSONDict:
        """Remove a revision (``fileid``) or every revision of ``filename`` under ``label``."""
        blobs.lookup_args(fileid, filename)
        revisions = await self.get_file(colonyname, prvkey, label=label, fileid=fileid, filename=filename,
                                        latest=False)
        removed = await self.remove_file(colonyname, prvkey, label=label, fileid=fileid, filename=filename)
        await self._delete_s3_objects(colonyname, prvkey, revisions)
        return removed

    async def remove_snapshot_by_id(self, colonyname: str, snapshotid: str, prvkey: str) -> JSONDict:
        """Remove a snapshot; with S3 configured, also delete the objects of the revisions only it
        held (the server has no S3 credentials to do so)."""
        held = await self._s3_held(colonyname, prvkey, snapshotid=snapshotid)
        removed = await super().remove_snapshot_by_id(colonyname, snapshotid, prvkey)  # type: ignore[misc]
        await self._delete_s3_objects(colonyname, prvkey, held)
        return removed

    async def remove_snapshot_by_name(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        """Remove a snapshot (and, with S3 configured, the objects only it held)."""
        held = await self._s3_held(colonyname, prvkey, name=name)
        removed = await super().remove_snapshot_by_name(colonyname, name, prvkey)  # type: ignore[misc]
        await self._delete_s3_objects(colonyname, prvkey, held)
        return removed

    async def remove_all_snapshots(self, colonyname: str, prvkey: str) -> JSONDict:
        """Remove every snapshot of the colony (and, with S3 configured, the objects only they held)."""
        held = await self._s3_held(colonyname, prvkey)
        removed = await super().remove_all_snapshots(colonyname, prvkey)  # type: ignore[misc]
        await self._delete_s3_objects(colonyname, prvkey, held)
        return removed

    async def _s3_held(self, colonyname: str, prvkey: str, snapshotid: str = "",
                       name: str = "") -> list[JSONDict]:
        """The S3 revisions a snapshot (by id or name; else every snapshot) holds, read before its
        removal (see the sync client's)."""
        if self._s3_settings() is None:
            return []
        try:
            if snapshotid:
                snapshots = [await self.get_snapshot_by_id(colonyname, snapshotid, prvkey)]
            elif name:
                snapshots = [await self.get_snapshot_by_name(colonyname, name, prvkey)]
            else:
                snapshots = await self.get_snapshots(colonyname, prvkey)
            fileids = sorted({fileid for snapshot in snapshots for fileid in snapshot.get("fileids") or []})
            held = [(await self.get_file(colonyname, prvkey, fileid=fileid))[0] for fileid in fileids]
            return blobs.in_s3(held)
        except NotFoundError:
            return []

    async def _delete_s3_objects(self, colonyname: str, prvkey: str, revisions: list[JSONDict]) -> None:
        """Delete the S3 objects of removed revisions that no snapshot still holds."""
        in_s3 = blobs.in_s3(revisions)
        settings = self._s3_settings() if in_s3 else None
        if settings is None:
            return
        store = await asyncio.to_thread(S3Store, settings)  # boto3 loads its models: not on the loop
        for revision in in_s3:
            try:
                await self.get_file(colonyname, prvkey, fileid=revision["fileid"])
                continue  # a snapshot holds it
            except NotFoundError:
                pass
            s3object = revision["ref"]["s3object"]
            await asyncio.to_thread(store.delete, s3object.get("bucket", ""), s3object["object"])

    async def sync_plan(self, dir: str, label: str, keeplocal: bool, colonyname: str,
                        prvkey: str) -> SyncPlan:
        """What :meth:`sync` would transfer (a dry run)."""
        labels = [item["name"] for item in await self.get_file_labels(colonyname, prvkey, name=label)]
        remote = {sub: await self.get_files(sub, colonyname, prvkey) for sub in labels_below(labels, label)}
        return await asyncio.to_thread(plan_sync, Path(dir), label, keeplocal, list(remote),
                                       remote.__getitem__)

    async def sync(self, dir: str, label: str, keeplocal: bool, colonyname: str, prvkey: str,
                   progress: Callable[[Transfer], None] | None = None) -> SyncPlan:
        """Make the directory ``dir`` and the label ``label`` hold the same files (see the sync
        client's :meth:`~pycolonies.client.Colonies.sync`)."""
        plan = await self.sync_plan(dir, label, keeplocal, colonyname, prvkey)
        return await self.apply_sync(plan, colonyname, prvkey, progress)

    async def apply_sync(self, plan: SyncPlan, colonyname: str, prvkey: str,
                         progress: Callable[[Transfer], None] | None = None,
                         processid: str = "") -> SyncPlan:
        """Carry out a plan from :meth:`sync_plan`; uploads record ``processid`` as their producer."""
        for transfer in plan.uploads:
            if progress:
                progress(transfer)
            await self.upload_file(colonyname, prvkey, filepath=str(transfer.path), label=transfer.label,
                                   processid=processid)
        for transfer in plan.downloads:
            if progress:
                progress(transfer)
            transfer.path.parent.mkdir(parents=True, exist_ok=True)
            await self.download_file(colonyname, prvkey, dst=str(transfer.path.parent), label=transfer.label,
                                     filename=transfer.name)
        return plan

    async def download_snapshot(self, colonyname: str, prvkey: str, dir: str, snapshotid: str | None = None,
                                name: str | None = None) -> list[str]:
        """Download every file a snapshot holds into ``dir``, in its label's tree below the
        snapshot's label; the paths written."""
        snapshot = await (self.get_snapshot_by_id(colonyname, snapshotid, prvkey) if snapshotid
                          else self.get_snapshot_by_name(colonyname, name or "", prvkey))
        written = []
        for fileid in snapshot.get("fileids") or []:
            file = (await self.get_file(colonyname, prvkey, fileid=fileid))[0]
            target = snapshot_target(Path(dir), snapshot["label"], file)
            target.mkdir(parents=True, exist_ok=True)
            written.append(await self.download_file(colonyname, prvkey, dst=str(target), fileid=fileid))
        return written

    # -- the bytes --------------------------------------------------------------------------------

    def _s3_settings(self) -> S3Settings | None:
        return self.s3 or S3Settings.from_env()

    async def _file_to_fetch(self, colonyname: str, prvkey: str, label: str | None, fileid: str | None,
                             filename: str | None, latest: bool) -> JSONDict:
        found = await self.get_file(colonyname, prvkey, label=label, fileid=fileid, filename=filename,
                                    latest=latest)
        return blobs.chosen_file(found, f"file {fileid or filename!r}")

    def _blob_url(self, colonyname: str, object_name: str) -> str:
        return self.url.removesuffix("/api") + blobs.blob_path(colonyname, object_name)

    def _transfer_timeout(self) -> aiohttp.ClientTimeout:
        """No bound on a whole transfer, only on connecting and on each read."""
        return aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)

    async def _upload(self, prvkey: str, stream: BinaryIO, record: JSONDict) -> JSONDict:
        colonyname, size = record["colonyname"], record["size"]
        if not colonyname:
            raise ValueError("colonyname is required to upload a file")
        object_name = blobs.new_object_name()
        settings = self._s3_settings()
        if settings is not None:
            store = await asyncio.to_thread(S3Store, settings)
            await asyncio.to_thread(store.upload, stream, object_name)
            record["ref"] = settings.ref(object_name)
            return await self.add_file(record, prvkey)
        record["ref"] = blobs.embedded_ref(object_name)
        headers = blobs.signed_headers("putblobmsg", colonyname, object_name, prvkey, size=size,
                                       checksum=record["checksum"])
        headers.update({"Content-Length": str(size), "Content-Type": "application/octet-stream"})
        try:
            async with self._get_session().put(self._blob_url(colonyname, object_name), data=stream,
                                               headers=headers, timeout=self._transfer_timeout()) as response:
                data = await response.read()
                if response.status not in (200, 201):
                    rpc.decode_reply(data, response.headers.get("Content-Type", ""), response.status,
                                     self._where)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return await self.add_file(record, prvkey)

    async def _download(self, colonyname: str, prvkey: str, file: JSONDict, out: BinaryIO) -> None:
        s3object = file["ref"]["s3object"]
        if file["ref"]["protocol"] == S3_PROTOCOL:
            settings = self._s3_settings()
            if settings is None:
                raise S3Unavailable(f"file {file['name']!r} is in S3 (bucket {s3object.get('bucket')!r} at "
                                    f"{s3object.get('server')!r}); set AWS_S3_ENDPOINT and its credentials")
            store = await asyncio.to_thread(S3Store, settings)
            blocks = store.download(s3object.get("bucket", ""), s3object["object"])
            digest, size = await asyncio.to_thread(blobs.write_blocks, blocks, out)
            blobs.check_download(file, None, digest, size)
            return
        object_name = s3object["object"]
        headers = blobs.signed_headers("getblobmsg", colonyname, object_name, prvkey)
        digest, size = hashlib.sha256(), 0
        try:
            async with self._get_session().get(self._blob_url(colonyname, object_name), headers=headers,
                                               timeout=self._transfer_timeout()) as response:
                if response.status != 200:
                    rpc.decode_reply(await response.read(), response.headers.get("Content-Type", ""),
                                     response.status, self._where)
                async for block in response.content.iter_chunked(blobs.READ_BYTES):
                    digest.update(block)
                    size += len(block)
                    await asyncio.to_thread(out.write, block)
                checksum = response.headers.get(blobs.CHECKSUM_HEADER)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unreachable(exc) from exc
        blobs.check_download(file, checksum, digest.hexdigest(), size)
