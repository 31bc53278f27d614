"""Reading a spec's ``fs`` section (``executors.process_files``): the reference's forms, our
defaults, and a resumed run that keeps its directory."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath

import pytest

from executors.job import JobFailed
from executors.process_files import ProcessFiles, read_fs_spec
from executors.register import Identity
from pycolonies.aio import AsyncColonies
from pycolonies.models import Fs, Process

REFERENCE = {"mount": "/cfs",
             "dirs": [{"label": "/water", "dir": "/water", "keepfiles": True,
                       "onconflicts": {"onstart": {"keeplocal": False}, "onclose": {"keeplocal": True}}}],
             "snapshots": [{"snapshotid": "ab" * 32, "label": "/calib", "dir": "/calib/v1",
                            "keepfiles": False, "keepsnapshot": False}]}


def test_the_reference_form() -> None:
    spec = read_fs_spec(Fs.from_wire(REFERENCE))
    (synced,), (snapshot,) = spec.dirs, spec.snapshots
    assert (spec.mount, synced.label, synced.dir) == ("/cfs", "/water", PurePosixPath("water"))
    assert synced.keepfiles
    assert (synced.keeplocal_onstart, synced.keeplocal_onclose) == (False, True)
    assert snapshot.dir == PurePosixPath("calib/v1")
    assert (snapshot.keepfiles, snapshot.keepsnapshot) == (False, False)


def test_defaults_keep_results_and_snapshots() -> None:
    fs = {"dirs": [{"label": "data/"}], "snapshots": [{"snapshotid": "cd" * 32}]}
    spec = read_fs_spec(Fs.from_wire(fs))
    (synced,), (snapshot,) = spec.dirs, spec.snapshots
    assert (synced.label, synced.dir, synced.keepfiles) == ("/data", PurePosixPath("."), False)
    assert (synced.keeplocal_onstart, synced.keeplocal_onclose) == (False, True)  # results are not dropped
    assert snapshot.keepsnapshot  # removed only when the spec says false
    assert read_fs_spec(Fs.from_wire({"mount": "", "snapshots": None, "dirs": None})).empty


@pytest.mark.parametrize("dir_text", ["..", "/a/../../b", "a\\b", "a\0b"])
def test_a_dir_cannot_leave_the_process_directory(dir_text: str) -> None:
    with pytest.raises(JobFailed, match=r"fs.dirs\[0\].dir .* must stay inside"):
        read_fs_spec(Fs.from_wire({"dirs": [{"label": "/d", "dir": dir_text}]}))


def test_a_resumed_run_keeps_its_directory(tmp_path: Path) -> None:
    """A cluster job still running after the executor restarted keeps its files: no transfer (the
    client points nowhere, so any would fail)."""
    process = Process.from_wire({"processid": "ef" * 32})
    identity = Identity(executorname="e", executorid="01" * 32, prvkey="02" * 32, colonyname="dev",
                        executortype="t", registered=False)
    spec = read_fs_spec(Fs.from_wire({"dirs": [{"label": "/d", "dir": "out"}]}))

    async def resume() -> None:
        async with AsyncColonies("127.0.0.1", 9) as client:
            files = ProcessFiles(client, identity, process, spec, tmp_path, lambda line: asyncio.sleep(0))
            (files.root / "out").mkdir(parents=True)
            (files.root / "out" / "partial.txt").write_text("written by the job")
            await files.stage_in(resumed=True)
            assert (files.root / "out" / "partial.txt").read_text() == "written by the job"

    asyncio.run(resume())
