"""``FunctionSpec.fs`` in the executor base, with a small kind run in-process against a real server:
labels and snapshots come into the process's directory, results go back to labels (recorded as
the process's), directories are cleaned up, and a malformed or unusable ``fs`` section fails the
process with a message naming the field."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executors.base import BaseExecutor, Job, JobFailed
from executors.config import ExecutorConfig
from pycolonies import wire
from pycolonies.models import Process
from tests.conftest import ColonyEnv
from tests.executors.harness import log_text, wait_state
from tests.support import wait_until

FILES_TYPE = "files-toy"


class FilesKind(BaseExecutor):
    """``upper(indir, outdir)``: writes each ``indir`` file upper-cased into ``outdir``, returns the
    names it read; ``fail()`` fails after writing ``out/partial``."""

    executortype = FILES_TYPE

    def __init__(self, config: ExecutorConfig) -> None:
        super().__init__(config)
        self.seen: dict[str, Path | None] = {}
        self.prepared: list[Path] = []

    def prepare_fs(self, process_dir: Path) -> None:
        self.prepared.append(process_dir)

    async def execute(self, job: Job) -> list[Any]:
        self.seen[job.processid] = job.fsdir
        if job.funcname == "fail":
            assert job.fsdir is not None
            (job.fsdir / "out").mkdir(exist_ok=True)
            (job.fsdir / "out" / "partial").write_text("half")
            raise JobFailed("it went wrong")
        if job.fsdir is None:
            return ["no fs"]
        if job.funcname == "swap":  # the output directory becomes a link to elsewhere on the machine
            (job.fsdir / "out").rmdir()
            (job.fsdir / "out").symlink_to(job.process.spec.args[0])
            (job.fsdir / "tree").mkdir(exist_ok=True)
            (job.fsdir / "tree" / "inner").symlink_to(job.process.spec.args[0])
            (job.fsdir / "tree" / "file").symlink_to(Path(job.process.spec.args[0]) / "key.txt")
            return []
        if job.funcname == "unnameable":  # a file the colony refuses to name
            (job.fsdir / "bad\\name").write_text("x")
            return []
        indir, outdir = (job.fsdir / part for part in job.process.spec.args)
        outdir.mkdir(parents=True, exist_ok=True)
        names = sorted(p.relative_to(indir).as_posix() for p in indir.rglob("*") if p.is_file())
        for name in names:
            target = outdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text((indir / name).read_text().upper())
        return names


@pytest.fixture
def files_kind(colony: ColonyEnv, tmp_path: Path) -> Iterator[FilesKind]:
    config = ExecutorConfig(host=colony.server.host, port=colony.server.port, colonyname=colony.colonyname,
                            colony_prvkey=colony.colony_prvkey, executorname="files-toy",
                            fs_dir=str(tmp_path / "fsbase"), heartbeat_interval=0, grace=5)
    kind = FilesKind(config)
    announced = threading.Event()
    kind._announce = lambda line: announced.set() if "ready" in line else None
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(kind.run(),), daemon=True)
    thread.start()
    wait_until(lambda: announced.is_set() or not thread.is_alive(), 30, "the executor to be ready")
    assert thread.is_alive()
    yield kind
    loop.call_soon_threadsafe(kind.stop)
    thread.join(30)
    loop.close()


def submit(colony: ColonyEnv, funcname: str, fs: dict[str, Any], *args: Any) -> Process:
    spec = {"funcname": funcname, "args": list(args), "maxexectime": -1, "maxretries": 0, "fs": fs,
            "conditions": {"colonyname": colony.colonyname, "executortype": FILES_TYPE}}
    return colony.client.submit_func_spec(spec, colony.user_prvkey)


def files_under(colony: ColonyEnv, label: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in colony.client.get_files(label, colony.colonyname, colony.user_prvkey)}


def test_labels_and_snapshots_come_in_and_results_go_out(colony: ColonyEnv, files_kind: FilesKind,
                                                         tmp_path: Path) -> None:
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    client.upload_data(name, key, filename="a.txt", data=b"alpha", label="/raw")
    client.upload_data(name, key, filename="b.txt", data=b"beta", label="/raw/sub")
    client.upload_data(name, key, filename="gain.txt", data=b"gain", label="/calib")
    snapshot = client.create_snapshot(name, "/calib", "calib-v1", key)
    fs = {"mount": "/cfs",
          "dirs": [{"label": "/raw", "dir": "/in", "keepfiles": False},
                   {"label": "/results", "dir": "/out",
                    "onconflicts": {"onstart": {"keeplocal": False}, "onclose": {"keeplocal": True}}}],
          "snapshots": [{"snapshotid": snapshot["snapshotid"], "label": "/calib", "dir": "/calib",
                         "keepfiles": False, "keepsnapshot": False}]}
    process = submit(colony, "upper", fs, "in", "out")
    done = wait_state(client, process, key)
    assert done.state == wire.SUCCESS, done.errors
    assert done.output == ["a.txt", "sub/b.txt"]
    results = {label: files_under(colony, label) for label in ("/results", "/results/sub")}
    assert set(results["/results"]) == {"a.txt"} and set(results["/results/sub"]) == {"b.txt"}
    assert client.download_data(name, key, label="/results", filename="a.txt") == b"ALPHA"
    produced = client.get_file(name, key, label="/results", filename="a.txt")[0]
    assert produced["processid"] == process.processid  # recorded as the process's product
    fsdir = files_kind.seen[process.processid]
    assert fsdir is not None and fsdir.name == "fs" and fsdir.parent.name == process.processid
    assert files_kind.prepared == [fsdir.parent]
    assert not fsdir.parent.exists()  # no keepfiles: cleaned up
    log, _ = log_text(client, name, process.processid, key)
    assert "label /raw: 2 file(s) in in" in log and "label /results: 2 file(s) uploaded" in log
    assert [s["name"] for s in client.get_snapshots(name, key)] == []  # keepsnapshot false


def test_keepfiles_keeps_the_local_copy_and_a_kept_snapshot_stays(colony: ColonyEnv, files_kind: FilesKind
                                                                  ) -> None:
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    client.upload_data(name, key, filename="x.txt", data=b"x", label="/src")
    snapshot = client.create_snapshot(name, "/src", "src-v1", key)
    fs = {"dirs": [{"label": "/dst", "dir": "out", "keepfiles": True}],
          "snapshots": [{"snapshotid": snapshot["snapshotid"], "dir": "in"}]}
    process = submit(colony, "upper", fs, "in", "out")
    assert wait_state(client, process, key).state == wire.SUCCESS
    fsdir = files_kind.seen[process.processid]
    assert fsdir is not None and (fsdir / "out" / "x.txt").read_text() == "X"
    assert not (fsdir / "in").exists()  # the snapshot's copy was not kept
    assert [s["name"] for s in client.get_snapshots(name, key)] == ["src-v1"]


def test_a_failed_run_uploads_nothing_and_cleans_up(colony: ColonyEnv, files_kind: FilesKind) -> None:
    process = submit(colony, "fail", {"dirs": [{"label": "/dst", "dir": "/"}]})
    done = wait_state(colony.client, process, colony.user_prvkey)
    assert done.state == wire.FAILED and done.errors[0] == "it went wrong"
    assert files_under(colony, "/dst/out") == {}
    fsdir = files_kind.seen[process.processid]
    assert fsdir is not None and not fsdir.parent.exists()


def test_an_upload_refused_after_the_run_fails_the_process_and_keeps_its_files(
        colony: ColonyEnv, files_kind: FilesKind) -> None:
    process = submit(colony, "unnameable", {"dirs": [{"label": "/dst", "dir": "/"}]})
    done = wait_state(colony.client, process, colony.user_prvkey)
    assert done.state == wire.FAILED
    assert done.errors[0].startswith("the run succeeded but its files could not be uploaded (fs.dirs[0]")
    fsdir = files_kind.seen[process.processid]
    assert fsdir is not None and str(fsdir) in done.errors[1] and (fsdir / "bad\\name").is_file()


def test_links_to_elsewhere_are_never_uploaded(colony: ColonyEnv, files_kind: FilesKind, tmp_path: Path
                                               ) -> None:
    """What ran may leave symbolic links to the executor's machine: a dir that became a link fails
    the process without uploading; links inside a dir are skipped."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("the executor's secret")
    fs = {"dirs": [{"label": "/tree", "dir": "tree"}, {"label": "/out", "dir": "out"}]}
    done = wait_state(colony.client, submit(colony, "swap", fs, str(secret)), colony.user_prvkey)
    assert done.state == wire.FAILED
    assert done.errors[0].endswith("/fs/out is a symbolic link, so out was not uploaded to label /out")
    labels = [item["name"] for item in colony.client.get_file_labels(colony.colonyname, colony.user_prvkey)]
    assert labels == []  # nothing of the tree's links either


def test_a_process_without_fs_gets_no_directory(colony: ColonyEnv, files_kind: FilesKind) -> None:
    process = submit(colony, "upper", {"mount": "", "snapshots": None, "dirs": None})
    done = wait_state(colony.client, process, colony.user_prvkey)
    assert (done.state, done.output) == (wire.SUCCESS, ["no fs"])


@pytest.mark.parametrize(("fs", "message"), [
    ({"dirs": [{"label": "/d", "dir": "../../etc"}]}, "fs.dirs[0].dir '../../etc' must stay inside"),
    ({"dirs": [{"label": "", "dir": "/d"}]}, "fs.dirs[0].label must name a colony label"),
    ({"dirs": [{"label": "/a/../b", "dir": "/d"}]}, "fs.dirs[0].label: label '/a/../b' has a '..' segment"),
    ({"dirs": [{"label": "/d", "keepfiles": "yes"}]}, "fs.dirs[0].keepfiles must be true or false"),
    ({"dirs": [{"label": "/d", "onconflicts": {"onclose": {"keeplocal": 1}}}]},
     "fs.dirs[0].onconflicts.onclose.keeplocal must be true or false"),
    ({"dirs": ["/d"]}, "fs.dirs must be a list of objects"),
    ({"snapshots": [{"snapshotid": "nope", "dir": "/s"}]},
     "fs.snapshots[0].snapshotid must be a snapshot id"),
    ({"snapshots": [{"snapshotid": "ab" * 32, "dir": "/s"}]}, f"fs.snapshots[0]: colony dev has no snapshot "
                                                              f"{'ab' * 32}"),
    ({"mount": "relative", "dirs": [{"label": "/d"}]}, "fs.mount must be an absolute path"),
])
def test_a_bad_fs_section_fails_the_process_naming_the_field(colony: ColonyEnv, files_kind: FilesKind,
                                                              fs: dict[str, Any], message: str) -> None:
    process = submit(colony, "upper", fs, "in", "out")
    done = wait_state(colony.client, process, colony.user_prvkey)
    assert done.state == wire.FAILED
    assert done.errors[0].startswith(message), done.errors
    assert process.processid not in files_kind.seen  # the kind never ran it
    assert not (Path(files_kind.config.fs_dir or "") / process.processid).exists()  # nothing left
