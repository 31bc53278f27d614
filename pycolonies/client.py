"""The synchronous client: ``Colonies(host, port)``.

One keep-alive ``http.client`` connection per thread; a request that fails on a reused connection
before any reply bytes arrive (the server closed the idle connection) is resent once on a fresh
connection; a call the server could not answer is sent again for a while (``retry_for``, see
:mod:`pycolonies.retrying`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from pycolonies import blobs, pubsub, retrying, rpc
from pycolonies.api import JSONDict, Parse, children_specs
from pycolonies.base import API_PATH, HttpClientBase
from pycolonies.errors import AccessDeniedError, ColoniesError, NotFoundError, unsupported
from pycolonies.filesync import SyncPlan, Transfer, plan_sync, snapshot_target
from pycolonies.models import FuncSpec, Process, path_problem
from pycolonies.s3 import PROTOCOL as S3_PROTOCOL
from pycolonies.s3 import S3Settings, S3Store, S3Unavailable
from pycolonies.websocket import WebSocket, WebSocketError

# Failures that mean "the idle keep-alive connection was already closed by the server".
# http.client.RemoteDisconnected is a ConnectionResetError.
_STALE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
# A connection that was opened and then lost before the whole reply arrived: the call may be
# sent again (a refused connection or a timeout is not one of these).
_CUT_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    *_STALE_CONNECTION_ERRORS,
    ConnectionAbortedError,
    http.client.IncompleteRead,
)


class Colonies(HttpClientBase):
    """Blocking Colonies client; every RPC of :class:`~pycolonies.api.ColoniesApi` returns its value.

    ``Colonies(host, port, tls=False, native_crypto=False, *, use_msgpack=False, timeout=None)``,
    see :class:`~pycolonies.base.HttpClientBase` for the options.
    """

    def _init_transport(self) -> None:
        # Where uploads go: S3 with these settings, else (None) AWS_S3_* if set, else the server's
        # embedded blob store. Downloads follow each file's ref.
        self.s3: S3Settings | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()

    def __enter__(self) -> Colonies:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_transport()

    def find_process(self, nodename: str, processids: list[str], prvkey: str) -> Process | None:
        """The first process among ``processids`` whose ``spec.nodename`` is ``nodename``."""
        for processid in processids:
            process = self.get_process(processid, prvkey)
            if process.spec.nodename == nodename:
                return process
        return None

    def wait(self, process: Process | str, timeout: float, prvkey: str) -> Process:
        """Block until the process (a :class:`Process` or its id) is SUCCESS, FAILED or CANCELLED
        and return it, re-read from the server; wait at most ``timeout`` seconds (<= 0: only look).

        Raises :class:`~pycolonies.errors.ColoniesTimeout` when time runs out, and the usual
        server errors (e.g. ``AccessDeniedError`` for a non-member, ``NotFoundError``).
        """
        processid = pubsub.process_id(process)
        if timeout > 0:
            deadline = time.monotonic() + timeout
            early_closes = retrying.Attempts(self.retry_for)
            left = timeout
            while left > 0:
                messages = pubsub.wait_messages(process, left)
                cause: ColoniesError | None = None
                try:
                    with contextlib.closing(self._pushes(messages, left, prvkey)) as pushes:
                        pushed = next(pushes, None)
                except ColoniesError as exc:
                    if not retrying.worth_retrying(exc):
                        raise
                    pushed, cause = None, exc
                if pushed is not None:
                    return self.get_process(processid, prvkey)
                left = deadline - time.monotonic()
                if left > 0:  # closed early or a 503 (a replica shutting down): subscribe again
                    time.sleep(pubsub.resubscribe_pause(early_closes, self._where, left, cause))
                    left = pubsub.resubscribe_timeout(deadline - time.monotonic())
        else:
            current = self.get_process(processid, prvkey)
            if current.state in pubsub.FINAL_STATES:
                return current
        raise pubsub.not_finished(processid, timeout)

    def subscribe_processes(
        self, colonyname: str, executortype: str, state: int, timeout: float, prvkey: str
    ) -> Iterator[Process]:
        """Yield each process of ``executortype`` in the colony that enters ``state``, for
        ``timeout`` seconds (the iteration then ends). The websocket answers the server's pings
        only while the iteration waits for the next process, so do not spend more than about 30 s
        on one item (the server then drops the socket and the iteration raises)."""
        yield from self._pushes([pubsub.processes_message(colonyname, executortype, state, timeout)],
                                timeout, prvkey)

    def follow_channel(self, processid: str, name: str, prvkey: str, afterseq: int = 0,
                       timeout: float = 30) -> Iterator[JSONDict]:
        """Yield the entries of channel ``name`` of a process after sequence ``afterseq`` (those
        already there first), each as it is appended, for ``timeout`` seconds or until the process
        ends; entries as :meth:`channel_read` returns them. As with :meth:`subscribe_processes`,
        do not spend more than about 30 s on one entry."""
        message = pubsub.channel_message(processid, name, afterseq, timeout)
        with contextlib.closing(self._pushes([message], timeout, prvkey, pubsub.decode_entries)) as pushes:
            for entries in pushes:
                if not entries:
                    return
                yield from entries

    def add_children(self, processgraphid: str, parentprocessid: str, childprocessid: str,
                     funcspecs: list[FuncSpec | JSONDict], nodenames: list[str] | None, insert: bool,
                     prvkey: str) -> list[JSONDict]:
        """Add many children below the running parent in one request and one transaction (all or
        none): the first as ``add_child`` with ``insert`` would, the others beside it, each also a
        parent of ``childprocessid`` when given, as a map step's loop of ``add_child`` calls does.
        ``nodenames[i]`` names ``funcspecs[i]`` (None: their own nodenames). Returns the new
        processes. Our extension (``addchildrenmsg``): against a server without it, the children are
        added one ``add_child`` at a time (then not in one transaction)."""
        specs = children_specs(funcspecs, nodenames)
        try:
            return self._add_children(processgraphid, parentprocessid, childprocessid, specs, insert, prvkey)
        except AccessDeniedError as exc:
            if not unsupported(exc):
                raise
        return [self.add_child(processgraphid, parentprocessid, childprocessid, spec, spec["nodename"],
                               insert and index == 0, prvkey) for index, spec in enumerate(specs)]

    # -- file bytes (the server's embedded blob store) ------------------------------------------

    def upload_file(self, colonyname: str, prvkey: str, filepath: str | None = None,
                    label: str | None = None, metadata: dict[str, str] | None = None,
                    processid: str = "") -> JSONDict:
        """Upload ``filepath`` as a new revision of its name under ``label`` (streamed, never held
        in memory), then record it (``addfilemsg``) with ``metadata`` and the producing
        ``processid`` if given (our extensions); the file record."""
        path = Path(filepath or "")
        with path.open("rb") as stream:
            checksum, size = blobs.sha256_of(stream)
            stream.seek(0)
            record = blobs.file_record(colonyname, label or "/", path.name, size, checksum, "", metadata,
                                       processid)
            return self._upload(prvkey, stream, record)

    def upload_data(self, colonyname: str, prvkey: str, filename: str | None = None,
                    data: bytes | None = None, label: str | None = None,
                    metadata: dict[str, str] | None = None, processid: str = "") -> JSONDict:
        """Upload ``data`` as a new revision of ``basename(filename)`` under ``label``."""
        payload = bytes(data or b"")
        record = blobs.file_record(colonyname, label or "/", Path(filename or "").name, len(payload),
                                   hashlib.sha256(payload).hexdigest(), "", metadata, processid)
        return self._upload(prvkey, io.BytesIO(payload), record)

    def download_file(
        self, colonyname: str, prvkey: str, dst: str | None = None, label: str | None = None,
        fileid: str | None = None, filename: str | None = None, latest: bool = True,
    ) -> str:
        """Download a file (by ``fileid``, or the latest revision of ``filename`` under ``label``)
        into the directory ``dst``; its path. The bytes are checked against the recorded SHA-256
        before the file appears under its name."""
        blobs.lookup_args(fileid, filename)
        file = self._file_to_fetch(colonyname, prvkey, label, fileid, filename, latest)
        if problem := path_problem("/", file["name"]):
            raise ValueError(f"cannot download into {dst or '.'}: the {problem}")
        target = Path(dst or ".") / file["name"]
        partial = blobs.partial_path(target)
        try:
            with partial.open("wb") as out:
                self._download(colonyname, prvkey, file, out)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return str(target)

    def download_data(
        self, colonyname: str, prvkey: str, label: str | None = None, fileid: str | None = None,
        filename: str | None = None, latest: bool = True,
    ) -> bytes:
        """A file's bytes (checked against the recorded SHA-256)."""
        blobs.lookup_args(fileid, filename)
        file = self._file_to_fetch(colonyname, prvkey, label, fileid, filename, latest)
        out = io.BytesIO()
        self._download(colonyname, prvkey, file, out)
        return out.getvalue()

    def delete_file(
        self, colonyname: str, prvkey: str, label: str | None = None, fileid: str | None = None,
        filename: str | None = None,
    ) -> JSONDict:
        """Remove a revision (``fileid``) or every revision of ``filename`` under ``label``; the
        server deletes the bytes no revision or snapshot needs any more."""
        blobs.lookup_args(fileid, filename)
        revisions = self.get_file(colonyname, prvkey, label=label, fileid=fileid, filename=filename,
                                  latest=False)
        removed = self.remove_file(colonyname, prvkey, label=label, fileid=fileid, filename=filename)
        self._delete_s3_objects(colonyname, prvkey, revisions)
        return removed

    def _delete_s3_objects(self, colonyname: str, prvkey: str, revisions: list[JSONDict]) -> None:
        """Delete the S3 objects of removed revisions that no snapshot still holds (the server
        deletes embedded-store bytes itself; it has no S3 credentials)."""
        in_s3 = blobs.in_s3(revisions)
        settings = self._s3_settings() if in_s3 else None
        if settings is None:
            return
        store = S3Store(settings)
        for revision in in_s3:
            try:
                self.get_file(colonyname, prvkey, fileid=revision["fileid"])
                continue  # a snapshot holds it
            except NotFoundError:
                pass
            s3object = revision["ref"]["s3object"]
            store.delete(s3object.get("bucket", ""), s3object["object"])

    def remove_snapshot_by_id(self, colonyname: str, snapshotid: str, prvkey: str) -> JSONDict:
        """Remove a snapshot; with S3 configured, also delete the objects of the revisions only it
        held (the server has no S3 credentials to do so)."""
        held = self._s3_held(colonyname, prvkey, snapshotid=snapshotid)
        removed = super().remove_snapshot_by_id(colonyname, snapshotid, prvkey)
        self._delete_s3_objects(colonyname, prvkey, held)
        return removed

    def remove_snapshot_by_name(self, colonyname: str, name: str, prvkey: str) -> JSONDict:
        """Remove a snapshot (and, with S3 configured, the objects only it held)."""
        held = self._s3_held(colonyname, prvkey, name=name)
        removed = super().remove_snapshot_by_name(colonyname, name, prvkey)
        self._delete_s3_objects(colonyname, prvkey, held)
        return removed

    def remove_all_snapshots(self, colonyname: str, prvkey: str) -> JSONDict:
        """Remove every snapshot of the colony (and, with S3 configured, the objects only they held)."""
        held = self._s3_held(colonyname, prvkey)
        removed = super().remove_all_snapshots(colonyname, prvkey)
        self._delete_s3_objects(colonyname, prvkey, held)
        return removed

    def _s3_held(self, colonyname: str, prvkey: str, snapshotid: str = "", name: str = "") -> list[JSONDict]:
        """The S3 revisions a snapshot (by id or name; else every snapshot) holds, read before its
        removal. None without S3 settings, or when it does not exist (the removal says so)."""
        if self._s3_settings() is None:
            return []
        try:
            if snapshotid or name:
                snapshots = [self.get_snapshot_by_id(colonyname, snapshotid, prvkey) if snapshotid
                             else self.get_snapshot_by_name(colonyname, name, prvkey)]
            else:
                snapshots = self.get_snapshots(colonyname, prvkey)
            fileids = sorted({fileid for snapshot in snapshots for fileid in snapshot.get("fileids") or []})
            return blobs.in_s3([self.get_file(colonyname, prvkey, fileid=fileid)[0] for fileid in fileids])
        except NotFoundError:
            return []

    def sync_plan(self, dir: str, label: str, keeplocal: bool, colonyname: str, prvkey: str) -> SyncPlan:
        """What :meth:`sync` would transfer (a dry run)."""
        labels = [item["name"] for item in self.get_file_labels(colonyname, prvkey, name=label)]
        return plan_sync(Path(dir), label, keeplocal, labels,
                         lambda sub: self.get_files(sub, colonyname, prvkey))

    def sync(self, dir: str, label: str, keeplocal: bool, colonyname: str, prvkey: str,
             progress: Callable[[Transfer], None] | None = None) -> SyncPlan:
        """Make the directory ``dir`` and the label ``label`` hold the same files (the reference's
        signature; rules in :mod:`pycolonies.filesync`): upload what only ``dir`` has, download
        what only the label has, and on a conflict keep the local bytes when ``keeplocal``. Returns
        the plan it carried out; ``progress`` is called before each transfer."""
        return self.apply_sync(self.sync_plan(dir, label, keeplocal, colonyname, prvkey), colonyname, prvkey,
                               progress)

    def apply_sync(self, plan: SyncPlan, colonyname: str, prvkey: str,
                   progress: Callable[[Transfer], None] | None = None, processid: str = "") -> SyncPlan:
        """Carry out a plan from :meth:`sync_plan`; uploads record ``processid`` as their producer."""
        for transfer in plan.uploads:
            if progress:
                progress(transfer)
            self.upload_file(colonyname, prvkey, filepath=str(transfer.path), label=transfer.label,
                             processid=processid)
        for transfer in plan.downloads:
            if progress:
                progress(transfer)
            transfer.path.parent.mkdir(parents=True, exist_ok=True)
            self.download_file(colonyname, prvkey, dst=str(transfer.path.parent), label=transfer.label,
                               filename=transfer.name)
        return plan

    def download_snapshot(self, colonyname: str, prvkey: str, dir: str, snapshotid: str | None = None,
                          name: str | None = None) -> list[str]:
        """Download every file a snapshot (by ``snapshotid`` or ``name``) holds into ``dir``, in its
        label's tree below the snapshot's label; the paths written."""
        snapshot = (self.get_snapshot_by_id(colonyname, snapshotid, prvkey) if snapshotid
                    else self.get_snapshot_by_name(colonyname, name or "", prvkey))
        written = []
        for fileid in snapshot.get("fileids") or []:
            file = self.get_file(colonyname, prvkey, fileid=fileid)[0]
            target = snapshot_target(Path(dir), snapshot["label"], file)
            target.mkdir(parents=True, exist_ok=True)
            written.append(self.download_file(colonyname, prvkey, dst=str(target), fileid=fileid))
        return written

    def _file_to_fetch(self, colonyname: str, prvkey: str, label: str | None, fileid: str | None,
                       filename: str | None, latest: bool) -> JSONDict:
        found = self.get_file(colonyname, prvkey, label=label, fileid=fileid, filename=filename,
                              latest=latest)
        return blobs.chosen_file(found, f"file {fileid or filename!r}")

    def _s3_settings(self) -> S3Settings | None:
        return self.s3 or S3Settings.from_env()

    def _upload(self, prvkey: str, stream: Any, record: JSONDict) -> JSONDict:
        """Put the bytes of ``stream`` in S3 (when configured) or the embedded store, then record
        ``record`` for them."""
        colonyname, size = record["colonyname"], record["size"]
        if not colonyname:
            raise ValueError("colonyname is required to upload a file")
        object_name = blobs.new_object_name()
        settings = self._s3_settings()
        if settings is not None:
            S3Store(settings).upload(stream, object_name)
            record["ref"] = settings.ref(object_name)
            return self.add_file(record, prvkey)
        record["ref"] = blobs.embedded_ref(object_name)
        headers = blobs.signed_headers("putblobmsg", colonyname, object_name, prvkey, size=size,
                                       checksum=record["checksum"])
        headers.update({"Content-Length": str(size), "Content-Type": "application/octet-stream"})
        path = blobs.blob_path(colonyname, object_name)
        status, content_type, data = self._transfer("PUT", path, headers, body=stream)
        if status not in (200, 201):
            rpc.decode_reply(data, content_type, status, self._where)
        return self.add_file(record, prvkey)

    def _download(self, colonyname: str, prvkey: str, file: JSONDict, out: Any) -> None:
        s3object = file["ref"]["s3object"]
        if file["ref"]["protocol"] == S3_PROTOCOL:
            settings = self._s3_settings()
            if settings is None:
                raise S3Unavailable(f"file {file['name']!r} is in S3 (bucket {s3object.get('bucket')!r} at "
                                    f"{s3object.get('server')!r}); set AWS_S3_ENDPOINT and its credentials")
            digest, size = blobs.write_blocks(S3Store(settings).download(s3object.get("bucket", ""),
                                                                          s3object["object"]), out)
            blobs.check_download(file, None, digest, size)
            return
        object_name = s3object["object"]
        headers = blobs.signed_headers("getblobmsg", colonyname, object_name, prvkey)
        conn = self._new_connection()
        try:
            _set_timeout(conn, self.timeout)
            conn.request("GET", blobs.blob_path(colonyname, object_name), headers=headers)
            response = conn.getresponse()
            if response.status != 200:
                rpc.decode_reply(response.read(), response.getheader("Content-Type") or "", response.status,
                                 self._where)
            blocks = iter(lambda: response.read(blobs.READ_BYTES), b"")
            digest, size = blobs.write_blocks(blocks, out)
            blobs.check_download(file, response.getheader(blobs.CHECKSUM_HEADER), digest, size)
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        finally:
            conn.close()

    def _transfer(self, method: str, path: str, headers: dict[str, str],
                  body: Any = None) -> tuple[int, str, bytes]:
        conn = self._new_connection()
        try:
            _set_timeout(conn, self.timeout)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        finally:
            conn.close()

    # -- transport ------------------------------------------------------------------------------

    def _invoke(self, msg: JSONDict, prvkey: str | None, parse: Parse) -> Any:
        envelope = rpc.request_envelope(msg, prvkey)
        body, headers = rpc.encode_request(envelope, self.use_msgpack)
        timeout = rpc.http_timeout(msg, self.timeout)
        attempts = retrying.Attempts(self.retry_for)
        while True:
            try:
                status, content_type, data = self._post(body, headers, timeout)
                reply = rpc.decode_reply(data, content_type, status, self._where)
            except ColoniesError as exc:
                pause = attempts.pause_after(exc)
                if pause is None:
                    attempts.raise_final(exc)
                time.sleep(pause)
                continue
            return parse(reply)

    def _pushes(self, messages: list[JSONDict], timeout: float, prvkey: str,
                decode: Callable[[str, str], Any] = pubsub.decode_push) -> Iterator[Any]:
        """Send the subscription frames on one websocket and yield every pushed process (or what
        ``decode`` makes of a frame) until the server closes it (or ``timeout`` plus a grace has
        passed)."""
        deadline = time.monotonic() + pubsub.read_timeout(timeout, self.timeout)
        try:
            ws = WebSocket.connect(self.pubsub_url, self.timeout)
        except OSError as exc:
            # refused (nobody there) or timed out: raised; closed or refused in the handshake
            # (a replica shutting down, behind a load balancer): worth subscribing again
            raise self._unreachable(exc, cut=isinstance(exc, WebSocketError)) from exc
        with ws:
            try:
                for msg in messages:
                    ws.send_text(json.dumps(rpc.request_envelope(msg, prvkey)))
                while (text := ws.receive_text(deadline - time.monotonic())) is not None:
                    yield decode(text, self._where)
            except TimeoutError:
                return
            except OSError as exc:  # the socket was open: it was cut
                raise self._unreachable(exc, cut=True) from exc

    def _close_transport(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()

    def _new_connection(self) -> http.client.HTTPConnection:
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, context=ssl.create_default_context(),
                                               blocksize=blobs.READ_BYTES)
        return http.client.HTTPConnection(self.host, self.port, blocksize=blobs.READ_BYTES)

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_connection()
            self._local.conn = conn
            with self._lock:
                self._connections.add(conn)
        return conn

    def _post(self, body: bytes, headers: dict[str, str], timeout: float | None) -> tuple[int, str, bytes]:
        conn = self._connection()
        for attempt in (1, 2):
            reused = conn.sock is not None  # a closed connection reopens itself on request()
            _set_timeout(conn, timeout)
            try:
                conn.request("POST", API_PATH, body=body, headers=headers)
                response = conn.getresponse()
            except _STALE_CONNECTION_ERRORS as exc:
                conn.close()
                if reused and attempt == 1:
                    continue
                raise self._unreachable(exc, cut=True) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self._unreachable(exc, cut=isinstance(exc, _CUT_CONNECTION_ERRORS)) from exc
            except BaseException:
                conn.close()
                raise
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self._unreachable(exc, cut=isinstance(exc, _CUT_CONNECTION_ERRORS)) from exc
            except BaseException:
                conn.close()
                raise
            return response.status, response.getheader("Content-Type") or "", data
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


def _set_timeout(conn: http.client.HTTPConnection, timeout: float | None) -> None:
    conn.timeout = timeout
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
