"""``colonies fs`` as a real subprocess against a real server: sync both ways with the conflict
rules, list files and labels, get, remove, and snapshots."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ColonyEnv
from tests.e2e.test_cli_work import ok, run


def test_sync_up_change_and_sync_again_then_down_into_an_empty_dir(colony: ColonyEnv, tmp_path: Path) -> None:
    up = tmp_path / "up"
    (up / "raw").mkdir(parents=True)
    (up / "a.txt").write_text("one")
    (up / "raw" / "b.txt").write_text("two")
    ok(run(colony, "fs", "sync", "-d", str(up), "-l", "/data"))
    labels = ok(run(colony, "fs", "label", "ls"))
    assert "/data/raw" in labels and "/data" in labels
    (up / "a.txt").write_text("one, changed")
    dry = ok(run(colony, "fs", "sync", "-d", str(up), "-l", "/data", "--dry"))
    assert "upload (conflict)" in dry
    ok(run(colony, "fs", "sync", "-d", str(up), "-l", "/data"))  # keeplocal: a new revision
    listing = ok(run(colony, "fs", "ls", "-l", "/data"))
    assert "a.txt" in listing and " 2 " in listing  # two revisions
    down = tmp_path / "down"
    ok(run(colony, "fs", "sync", "-d", str(down), "-l", "/data"))
    assert (down / "a.txt").read_text() == "one, changed"
    assert (down / "raw" / "b.txt").read_text() == "two"
    (down / "a.txt").write_text("local edit")
    refused = run(colony, "fs", "sync", "-d", str(down), "-l", "/data", "--keepremote")
    assert refused.returncode != 0 and "aborted" in refused.stderr
    ok(run(colony, "fs", "sync", "-d", str(down), "-l", "/data", "--keepremote", "--yes"))
    assert (down / "a.txt").read_text() == "one, changed"
    nothing = run(colony, "fs", "sync", "-d", str(down), "-l", "/data")
    assert "Nothing to sync" in ok(nothing) + nothing.stderr


def test_get_remove_and_snapshots(colony: ColonyEnv, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "r.csv").write_text("v1")
    ok(run(colony, "fs", "sync", "-d", str(src), "-l", "/results"))
    created = ok(run(colony, "fs", "snapshot", "create", "-l", "/results", "-n", "v1"))
    assert created.startswith("SnapshotId: ")
    (src / "r.csv").write_text("v2")
    ok(run(colony, "fs", "sync", "-d", str(src), "-l", "/results"))
    got = tmp_path / "got"
    path = ok(run(colony, "fs", "get", "-l", "/results", "-n", "r.csv", "-d", str(got))).strip()
    assert Path(path).read_text() == "v2"
    frozen = tmp_path / "frozen"
    ok(run(colony, "fs", "snapshot", "download", "-n", "v1", "-d", str(frozen)))
    assert (frozen / "r.csv").read_text() == "v1"
    assert "v1" in ok(run(colony, "fs", "snapshot", "ls"))
    ok(run(colony, "fs", "remove", "-l", "/results", "-n", "r.csv"))
    assert "No files under label /results" in run(colony, "fs", "ls", "-l", "/results").stderr
    ok(run(colony, "fs", "snapshot", "remove", "-n", "v1"))
    assert "No snapshots found" in run(colony, "fs", "snapshot", "ls").stderr
    wrong = run(colony, "fs", "get", "-l", "/results", "-d", str(got))
    assert wrong.returncode != 0 and "give either --fileid, or --label and --name" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_put_with_metadata_and_search(colony: ColonyEnv, tmp_path: Path) -> None:
    plot = tmp_path / "beam7.png"
    plot.write_bytes(b"png")
    put = ok(run(colony, "fs", "put", "-f", str(plot), "-l", "/chime/plots", "-m", "beam=7",
                 "-m", "kind=plot"))
    assert put.startswith("FileId: ")
    found = ok(run(colony, "fs", "search", "-l", "/chime", "-m", "kind=plot"))
    assert "beam7.png" in found and '"beam": "7"' in found
    assert "No files found" in run(colony, "fs", "search", "-m", "kind=table").stderr
    bad = run(colony, "fs", "put", "-f", str(plot), "-l", "/x", "-m", "novalue")
    assert bad.returncode != 0 and "give KEY=VALUE" in bad.stderr
