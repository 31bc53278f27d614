"""The sync plan between a directory and a label (pycolonies.filesync), without a server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pycolonies.filesync import plan_sync
from pycolonies.models import normalize_label, path_problem


def remote(files: dict[str, dict[str, bytes]]):
    """(labels, files-of-label) as a server would answer for these label -> name -> bytes."""
    listed = {label: [{"name": name, "size": len(data), "checksum": hashlib.sha256(data).hexdigest()}
                      for name, data in names.items()] for label, names in files.items()}
    return sorted(listed), lambda label: listed.get(label, [])


def names(transfers) -> list[tuple[str, str, bool]]:
    return [(t.label, t.name, t.conflict) for t in transfers]


def test_each_side_gets_what_only_the_other_has_and_the_tree_maps_onto_labels(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "a.csv").write_bytes(b"a")
    (tmp_path / "raw" / "b.csv").write_bytes(b"b")
    (tmp_path / ".hidden").write_bytes(b"h")  # dot files are not synced
    labels, files = remote({"/data": {"same.txt": b"s"}, "/data/raw/deep": {"c.csv": b"c"},
                            "/database": {"not-below.txt": b"x"}})
    (tmp_path / "same.txt").write_bytes(b"s")
    plan = plan_sync(tmp_path, "data/", True, labels, files)
    assert names(plan.uploads) == [("/data", "a.csv", False), ("/data/raw", "b.csv", False)]
    assert names(plan.downloads) == [("/data/raw/deep", "c.csv", False)]
    assert plan.downloads[0].path == tmp_path / "raw" / "deep" / "c.csv"
    assert plan.unchanged == 1 and plan.label == "/data"


def test_a_conflict_keeps_the_local_bytes_or_the_labels(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"local")
    labels, files = remote({"/d": {"x": b"remote"}})
    keep_local = plan_sync(tmp_path, "/d", True, labels, files)
    assert names(keep_local.uploads) == [("/d", "x", True)] and keep_local.downloads == []
    keep_remote = plan_sync(tmp_path, "/d", False, labels, files)
    assert names(keep_remote.downloads) == [("/d", "x", True)] and keep_remote.uploads == []


def test_a_missing_directory_downloads_everything(tmp_path: Path) -> None:
    labels, files = remote({"/d": {"x": b"1"}})
    plan = plan_sync(tmp_path / "new", "/d", True, labels, files)
    assert names(plan.downloads) == [("/d", "x", False)] and not plan.empty


def test_a_remote_file_that_would_land_outside_the_directory_stops_the_sync(tmp_path: Path) -> None:
    for label, name in (("/d/../../etc", "x"), ("/d", "..")):
        listed = [{"name": name, "size": 1, "checksum": ""}]
        with pytest.raises(ValueError, match="cannot sync into"):
            plan_sync(tmp_path, "/d", True, [label], lambda _label, listed=listed: listed)


def test_labels_and_names_that_map_onto_a_directory_tree() -> None:
    assert normalize_label("data/./x//") == "/data/x"
    assert path_problem("/data/x", "a.csv") is None
    assert "'..' segment" in (path_problem("/data/../x") or "")
    for name in ("", ".", "..", "a/b", "a\\b"):
        assert path_problem("/data", name) is not None, name
