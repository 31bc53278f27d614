"""Syncing a local directory with a colony label, as the reference's ``fs sync`` does.

The directory's tree maps onto the label's: ``DIR/raw/a.csv`` is file ``a.csv`` under label
``LABEL/raw``. A plan compares each side's files by SHA-256:

* a file only in the directory is uploaded, one only under the label is downloaded;
* a file on both sides with other bytes is a conflict: ``keeplocal`` uploads the local bytes as a
  new revision, otherwise the label's latest revision replaces the local file;
* files with the same bytes are left alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pycolonies.models import normalize_label, path_problem


@dataclass(frozen=True)
class Transfer:
    label: str
    name: str
    path: Path
    size: int
    conflict: bool = False  # the other side had other bytes


@dataclass
class SyncPlan:
    directory: Path
    label: str
    keeplocal: bool
    uploads: list[Transfer] = field(default_factory=list)
    downloads: list[Transfer] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not self.uploads and not self.downloads


def _local_files(directory: Path, label: str) -> dict[tuple[str, str], Path]:
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and not path.is_symlink():
            relative = PurePosixPath(path.relative_to(directory).as_posix())
            sub = str(relative.parent) if str(relative.parent) != "." else ""
            found[(normalize_label(f"{label}/{sub}"), path.name)] = path
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def labels_below(labels: list[str], label: str) -> list[str]:
    """Those of ``labels`` that are ``label`` or below it (``/a/b`` is below ``/a``, ``/ab`` is not)."""
    label = normalize_label(label)
    return [sub for sub in labels if sub == label or sub.startswith(label.rstrip("/") + "/")]


def snapshot_target(directory: Path, snapshot_label: str, file: dict[str, Any]) -> Path:
    """Where a snapshot's ``file`` goes when the snapshot is downloaded into ``directory``: the
    directory holding it, in the label's tree below the snapshot's label."""
    if problem := path_problem(file.get("label") or "/", file.get("name") or ""):
        raise ValueError(f"cannot download into {directory}: the snapshot has a file whose {problem}")
    base, label = normalize_label(snapshot_label), normalize_label(file["label"])
    below = label[len(base):] if label == base or label.startswith(base.rstrip("/") + "/") else label
    below = below.strip("/")
    return directory.joinpath(*PurePosixPath(below).parts) if below else directory


def plan_sync(
    directory: Path,
    label: str,
    keeplocal: bool,
    remote_labels: list[str],
    remote_files: Callable[[str], list[dict[str, Any]]],
) -> SyncPlan:
    """What a sync would transfer. ``remote_labels`` are the label and the labels below it;
    ``remote_files(label)`` their latest files (``getfilesmsg``)."""
    label = normalize_label(label)
    plan = SyncPlan(directory=directory, label=label, keeplocal=keeplocal)
    local = _local_files(directory, label) if directory.is_dir() else {}
    remote: dict[tuple[str, str], dict[str, Any]] = {}
    for sub in labels_below(remote_labels, label):
        for file in remote_files(sub):
            if problem := path_problem(sub, file["name"]):
                raise ValueError(f"cannot sync into {directory}: the colony has a file whose {problem}")
            remote[(sub, file["name"])] = file
    for key in sorted(local.keys() | remote.keys()):
        sub, name = key
        target = directory.joinpath(*PurePosixPath(sub[len(label):].lstrip("/")).parts, name)
        path, file = local.get(key), remote.get(key)
        if file is None and path is not None:
            plan.uploads.append(Transfer(sub, name, path, path.stat().st_size))
        elif path is None and file is not None:
            plan.downloads.append(Transfer(sub, name, target, int(file.get("size") or 0)))
        elif path is not None and file is not None:
            if sha256_file(path) == file.get("checksum"):
                plan.unchanged += 1
            elif keeplocal:
                plan.uploads.append(Transfer(sub, name, path, path.stat().st_size, conflict=True))
            else:
                plan.downloads.append(Transfer(sub, name, target, int(file.get("size") or 0), conflict=True))
    return plan
