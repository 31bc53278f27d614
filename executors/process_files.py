"""A process's files: what the executor base does with ``FunctionSpec.fs`` around every run.

::

    "fs": {"mount": "/cfs",
           "dirs": [{"label": "/water", "dir": "/water", "keepfiles": false,
                     "onconflicts": {"onstart": {"keeplocal": false}, "onclose": {"keeplocal": true}}}],
           "snapshots": [{"snapshotid": "<64 hex>", "label": "/calib", "dir": "/calib",
                          "keepfiles": false, "keepsnapshot": true}]}

Each process that has dirs or snapshots gets a directory of its own, ``<fs base>/<processid>/fs``
(:attr:`ProcessFiles.root`); a ``dir`` is a path inside it (``/water`` is ``root/water``).

* **Before the run**: each snapshot is downloaded into its dir, and each dir is synced with its
  label (the label's files come down; on a conflict ``onstart.keeplocal`` decides).
* **The run** sees the directory: the container kind mounts it at ``mount`` (default ``/cfs``),
  the python kind runs the function in it, the Slurm kind puts it on the cluster's shared
  filesystem; all of them give the command ``$COLONIES_FS_DIR``.
* **After a successful run**: each dir's new and changed files are uploaded to its label, recorded
  as produced by the process; on a conflict (the label changed meanwhile) ``onclose.keeplocal``
  decides, and it defaults to true, so a process's results are not dropped silently. A snapshot
  with ``"keepsnapshot": false`` (said explicitly) is then removed from the colony.
* **Clean-up**: the local copies go, except dirs and snapshots with ``"keepfiles": true``. When
  the upload fails, everything stays and the process fails saying where its files are.

A malformed ``fs`` section fails the process with a message naming the field.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from executors.job import JobFailed, JobReleased
from executors.register import Identity
from executors.retry import Backoff, is_transient
from pycolonies.aio import AsyncColonies
from pycolonies.errors import ColoniesError, NotFoundError
from pycolonies.models import Fs, Process, normalize_label, path_problem

log = logging.getLogger("executors")

DEFAULT_MOUNT = "/cfs"
FS_DIR_VARIABLE = "COLONIES_FS_DIR"  # what the command is told its directory is
UPLOAD_ATTEMPTS = 4  # tries of the upload after the run, while the server is unreachable


@dataclass(frozen=True)
class SyncedDir:
    label: str
    dir: PurePosixPath  # relative to the process's directory
    keepfiles: bool = False
    keeplocal_onstart: bool = False
    keeplocal_onclose: bool = True


@dataclass(frozen=True)
class SnapshotMount:
    snapshotid: str
    dir: PurePosixPath
    keepfiles: bool = False
    keepsnapshot: bool = True  # removed after the run only when the spec says false


@dataclass(frozen=True)
class FsSpec:
    mount: str = ""
    dirs: tuple[SyncedDir, ...] = ()
    snapshots: tuple[SnapshotMount, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.dirs and not self.snapshots


def read_fs_spec(fs: Fs) -> FsSpec:
    """The ``fs`` section of a spec, checked; JobFailed naming the first bad field."""
    mount = fs.mount or ""
    if not isinstance(mount, str) or (mount and (not mount.startswith("/") or ".." in mount.split("/"))):
        raise JobFailed(f"fs.mount must be an absolute path without '..', not {mount!r}")
    dirs = tuple(_synced_dir(entry, f"fs.dirs[{n}]") for n, entry in enumerate(_entries(fs.dirs, "fs.dirs")))
    snapshots = tuple(_snapshot_mount(entry, f"fs.snapshots[{n}]")
                      for n, entry in enumerate(_entries(fs.snapshots, "fs.snapshots")))
    return FsSpec(mount=mount, dirs=dirs, snapshots=snapshots)


def fs_mount(process: Process) -> str:
    """Where the container kind mounts the process's directory."""
    return process.spec.fs.mount or DEFAULT_MOUNT


def _entries(value: Any, field: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, Mapping) for entry in value):
        raise JobFailed(f"{field} must be a list of objects")
    return value


def _flag(entry: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
    value = entry.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise JobFailed(f"{field}.{key} must be true or false, not {value!r}")
    return value


def _relative_dir(entry: Mapping[str, Any], field: str) -> PurePosixPath:
    text = entry.get("dir", "")
    if not isinstance(text, str):
        raise JobFailed(f"{field}.dir must be a path, not {text!r}")
    parts = [part for part in text.split("/") if part and part != "."]
    if ".." in parts or "\\" in text or "\0" in text:
        raise JobFailed(f"{field}.dir {text!r} must stay inside the process's directory (no '..')")
    return PurePosixPath(*parts)


def _synced_dir(entry: Mapping[str, Any], field: str) -> SyncedDir:
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip("/ "):
        raise JobFailed(f"{field}.label must name a colony label such as '/data', not {label!r}")
    if problem := path_problem(normalize_label(label)):
        raise JobFailed(f"{field}.label: {problem}")
    conflicts = entry.get("onconflicts") or {}
    if not isinstance(conflicts, Mapping):
        raise JobFailed(f"{field}.onconflicts must be an object with onstart and onclose")
    rules = {}
    for moment, default in (("onstart", False), ("onclose", True)):
        rule = conflicts.get(moment) or {}
        if not isinstance(rule, Mapping):
            raise JobFailed(f"{field}.onconflicts.{moment} must be an object such as {{\"keeplocal\": true}}")
        rules[moment] = _flag(rule, "keeplocal", f"{field}.onconflicts.{moment}", default)
    return SyncedDir(label=normalize_label(label), dir=_relative_dir(entry, field),
                     keepfiles=_flag(entry, "keepfiles", field, False),
                     keeplocal_onstart=rules["onstart"], keeplocal_onclose=rules["onclose"])


def _snapshot_mount(entry: Mapping[str, Any], field: str) -> SnapshotMount:
    snapshotid = entry.get("snapshotid")
    if not isinstance(snapshotid, str) or len(snapshotid) != 64 or not all(c in "0123456789abcdef"
                                                                            for c in snapshotid):
        raise JobFailed(f"{field}.snapshotid must be a snapshot id (64 hex digits), not {snapshotid!r}")
    return SnapshotMount(snapshotid=snapshotid, dir=_relative_dir(entry, field),
                         keepfiles=_flag(entry, "keepfiles", field, False),
                         keepsnapshot=_flag(entry, "keepsnapshot", field, True))


Logger = Callable[[str], Awaitable[None]]


class ProcessFiles:
    """The directory of one process and its transfers (see the module's doc)."""

    def __init__(self, client: AsyncColonies, identity: Identity, process: Process, spec: FsSpec,
                 base: Path, log_line: Logger) -> None:
        self.client, self.identity, self.process, self.spec = client, identity, process, spec
        self.process_dir = base / process.processid
        self.root = self.process_dir / "fs"
        self._log = log_line

    def path(self, relative: PurePosixPath) -> Path:
        return self.root.joinpath(*relative.parts)

    async def stage_in(self, resumed: bool = False) -> None:
        """Make the directory and bring the files in. A resumed run (a cluster job still running
        from before a restart) keeps the directory it has."""
        if resumed and self.root.is_dir():
            return
        await asyncio.to_thread(self._fresh_directory)
        me, colony = self.identity, self.identity.colonyname
        for n, snapshot in enumerate(self.spec.snapshots):
            target = self.path(snapshot.dir)
            try:
                written = await self.client.download_snapshot(colony, me.prvkey, str(target),
                                                               snapshotid=snapshot.snapshotid)
            except NotFoundError:
                raise JobFailed(f"fs.snapshots[{n}]: colony {colony} has no snapshot "
                                f"{snapshot.snapshotid}") from None
            except (ColoniesError, OSError, ValueError) as exc:
                raise self._refusal(f"fs.snapshots[{n}]: cannot download snapshot {snapshot.snapshotid}",
                                    exc) from None
            await self._log(f"[executor: snapshot {snapshot.snapshotid[:8]}: {len(written)} file(s) "
                            f"in {snapshot.dir}]")
        for n, synced in enumerate(self.spec.dirs):
            target = self.path(synced.dir)
            try:
                await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
                plan = await self.client.sync_plan(str(target), synced.label, synced.keeplocal_onstart,
                                                   colony, me.prvkey)
                # only downloads: what is here already (a snapshot in the same dir) goes up after the run
                await self.client.apply_sync(dataclasses.replace(plan, uploads=[]), colony, me.prvkey)
            except (ColoniesError, OSError, ValueError) as exc:
                raise self._refusal(f"fs.dirs[{n}]: cannot sync label {synced.label} into "
                                    f"{synced.dir}", exc) from None
            await self._log(f"[executor: label {synced.label}: {len(plan.downloads)} file(s) in "
                            f"{synced.dir}]")

    async def stage_out(self) -> None:
        """Upload each dir's new and changed files to its label, then drop the snapshots the spec
        does not keep. Failing, the process fails and its files stay where they are."""
        me, colony = self.identity, self.identity.colonyname
        for n, synced in enumerate(self.spec.dirs):
            source = self.path(synced.dir)
            await self._with_retries(f"fs.dirs[{n}]: uploading {synced.dir} to label {synced.label}",
                                     lambda s=synced, d=source: self._upload(s, d))
        for snapshot in self.spec.snapshots:
            if not snapshot.keepsnapshot:
                try:
                    await self.client.remove_snapshot_by_id(colony, snapshot.snapshotid, me.prvkey)
                except NotFoundError:
                    pass
                except ColoniesError as exc:
                    await self._log(f"[executor: could not remove snapshot {snapshot.snapshotid[:8]} "
                                    f"(keepsnapshot false): {exc}]")

    async def _upload(self, synced: SyncedDir, source: Path) -> None:
        me = self.identity
        if link := self._link_on_the_way(synced.dir):
            # what ran may have swapped a directory for a link to elsewhere on this machine: the
            # executor (perhaps root) must not upload what the link points to
            raise JobFailed(f"{link} is a symbolic link, so {synced.dir} was not uploaded to label "
                            f"{synced.label}")
        if not source.is_dir():
            await self._log(f"[executor: {synced.dir} is gone: nothing to upload to {synced.label}]")
            return
        plan = await self.client.sync_plan(str(source), synced.label, synced.keeplocal_onclose, me.colonyname,
                                           me.prvkey)
        kept_remote = [t.name for t in plan.downloads if t.conflict]
        uploads = dataclasses.replace(plan, downloads=[])
        await self.client.apply_sync(uploads, me.colonyname, me.prvkey, processid=self.process.processid)
        await self._log(f"[executor: label {synced.label}: {len(plan.uploads)} file(s) uploaded from "
                        f"{synced.dir}]")
        if kept_remote:
            await self._log(f"[executor: label {synced.label} changed meanwhile; kept its revision of "
                            f"{', '.join(kept_remote)} (onclose.keeplocal is false)]")

    async def _with_retries(self, what: str, attempt: Callable[[], Awaitable[None]]) -> None:
        backoff = Backoff()
        for tries in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                await attempt()
                return
            except (ColoniesError, OSError, ValueError) as exc:
                if is_transient(exc) and tries < UPLOAD_ATTEMPTS:
                    await asyncio.sleep(backoff.next_delay())
                    continue
                raise JobFailed(f"the run succeeded but its files could not be uploaded ({what}): {exc}",
                                f"the files stay on the executor's machine in {self.root}") from None

    def _link_on_the_way(self, relative: PurePosixPath) -> Path | None:
        """The first symbolic link from the process's directory down to ``relative``, if any.
        Links below it are never followed (:mod:`pycolonies.filesync` skips them)."""
        path = self.process_dir
        for part in ("fs", *relative.parts):
            path = path / part
            if path.is_symlink():
                return path
        return None

    def clean_up(self) -> None:
        """Remove the local copies the spec does not keep (``keepfiles``)."""
        kept = [self.path(d.dir) for d in self.spec.dirs if d.keepfiles]
        kept += [self.path(s.dir) for s in self.spec.snapshots if s.keepfiles]
        if not kept:
            _remove(self.process_dir)
            return
        for entry in (*self.spec.dirs, *self.spec.snapshots):
            target = self.path(entry.dir)
            if not entry.keepfiles and not any(target == k or target in k.parents for k in kept):
                _remove(target)
        log.info("%s: files kept in %s (keepfiles)", self.process.processid[:8], self.root)

    def _fresh_directory(self) -> None:
        _remove(self.process_dir)  # left by a crash, or kept from an earlier run of the process
        self.process_dir.mkdir(mode=0o700)
        self.root.mkdir(mode=0o700)

    def _refusal(self, what: str, exc: BaseException) -> Exception:
        if is_transient(exc):
            return JobReleased(f"{what}: {exc}; given back to the queue")
        return JobFailed(f"{what}: {exc}")


def _remove(path: Path) -> None:
    """Remove a file or a tree; what cannot be removed (e.g. written by a container's own user)
    is logged and left."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)


def prepare_base(base: Path) -> Path:
    """The directory per-process directories go into, made (mode 0711: workers of another user may
    pass through to their own process's directory, nobody may list it) and checked to be this
    user's own directory, not a link someone else placed."""
    base = Path(os.path.abspath(os.path.expanduser(str(base))))
    base.mkdir(parents=True, exist_ok=True, mode=0o711)
    info = os.lstat(base)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise OSError(f"{base} is not a directory of this user (uid {os.geteuid()})")
    os.chmod(base, 0o711)
    return base


@dataclass(frozen=True)
class FilesPlace:
    """Where an executor puts its processes' directories, and what its kind does to one before a
    run (e.g. hand it to the user its workers run as); ``prepare`` runs in a thread."""

    base: Path
    prepare: Callable[[Path], None] = lambda process_dir: None
