"""The SDK's file transfers, the same tests on both stores: the server's embedded blob store and
S3 (a real S3 API server, moto's, on loopback) with the client's own credentials."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from pycolonies.aio import AsyncColonies
from pycolonies.blobs import CorruptDownload
from pycolonies.errors import ColoniesConnectionError
from pycolonies.s3 import S3Settings, S3Store
from tests.conftest import ColonyEnv
from tests.integration.test_blobs import get_status
from tests.support.s3 import s3_server, s3_settings

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("moto", reason="moto[server] (in the test extra) runs the S3 API server")
    with s3_server() as endpoint:
        yield endpoint


@dataclass
class Storage:
    name: str
    exists: Callable[[dict], bool]  # are a file record's bytes still stored?
    corrupt: Callable[[dict], None]  # overwrite a file record's stored bytes
    s3: S3Settings | None = None  # a client's settings for the S3 store


@pytest.fixture(params=["embedded", "s3"])
def storage(request: pytest.FixtureRequest, colony: ColonyEnv, monkeypatch: pytest.MonkeyPatch) -> Storage:
    monkeypatch.delenv("AWS_S3_ENDPOINT", raising=False)
    if request.param == "embedded":
        return Storage("embedded", lambda record: get_status(colony, _object(record)) == 200,
                       lambda record: asyncio.run(_corrupt_embedded(colony, _object(record))))
    settings = s3_settings(request.getfixturevalue("s3_endpoint"))
    colony.client.s3 = settings
    return Storage("s3", lambda record: _in_s3(settings, record),
                   lambda record: _put_s3(settings, record, b"evil"), settings)


def _object(record: dict) -> str:
    return record["ref"]["s3object"]["object"]


async def _corrupt_embedded(colony: ColonyEnv, object_name: str) -> None:
    """Overwrite the object's first chunk with 4 bytes and drop the others: shorter than recorded
    when the object is more than 4 bytes."""
    con = await asyncpg.connect(colony.server.dsn)
    try:
        await con.execute("DELETE FROM blob_chunks WHERE object = $1 AND seq > 0", object_name)
        await con.execute("UPDATE blob_chunks SET data = 'evil'::bytea WHERE object = $1", object_name)
    finally:
        await con.close()


def _in_s3(settings: S3Settings, record: dict) -> bool:
    store = S3Store(settings)
    try:
        b"".join(store.download(settings.bucket, _object(record)))
        return True
    except Exception:
        return False


def _put_s3(settings: S3Settings, record: dict, data: bytes) -> None:
    import io

    S3Store(settings).upload(io.BytesIO(data), _object(record))


def test_bytes_go_up_and_come_back_checked(colony: ColonyEnv, storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 17)  # crosses chunk boundaries
    source = tmp_path / "up" / "big.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    record = colony.client.upload_file(colony.colonyname, colony.user_prvkey, filepath=str(source),
                                       label="/data")
    assert (record["name"], record["label"], record["size"]) == ("big.bin", "/data", len(data))
    assert record["checksum"] == hashlib.sha256(data).hexdigest()
    assert record["ref"]["protocol"] == {"embedded": "colonies", "s3": "s3"}[storage.name]
    s3object = record["ref"]["s3object"]
    assert (s3object.get("accesskey", ""), s3object.get("secretkey", "")) == ("", "")
    down = tmp_path / "down"
    down.mkdir()
    path = colony.client.download_file(colony.colonyname, colony.executor_prvkey, dst=str(down),
                                       label="/data", filename="big.bin")
    assert Path(path) == down / "big.bin" and Path(path).read_bytes() == data
    assert [p.name for p in down.iterdir()] == ["big.bin"]  # no partial file left


def test_the_latest_revision_is_downloaded_and_an_empty_file_works(colony: ColonyEnv, storage: Storage
                                                                   ) -> None:
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    client.upload_data(name, key, filename="notes.txt", data=b"old", label="/n")
    client.upload_data(name, key, filename="dir/notes.txt", data=b"new", label="/n")  # basename kept
    assert client.download_data(name, key, label="/n", filename="notes.txt") == b"new"
    client.upload_data(name, key, filename="empty", data=b"", label="/n")
    assert client.download_data(name, key, label="/n", filename="empty") == b""
    with pytest.raises(ValueError, match="Both 'fileid' and 'filename' cannot be set"):
        client.download_data(name, key, fileid="x", filename="notes.txt")


def test_bytes_are_deleted_when_no_revision_or_snapshot_needs_them(colony: ColonyEnv, storage: Storage
                                                                   ) -> None:
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    kept = client.upload_data(name, key, filename="a", data=b"A", label="/d")
    dropped = client.upload_data(name, key, filename="b", data=b"B", label="/d")
    client.create_snapshot(name, "/d", "v1", key)
    client.delete_file(name, key, label="/d", filename="a")
    assert client.download_data(name, key, fileid=kept["fileid"]) == b"A"  # the snapshot holds it
    client.remove_snapshot_by_name(name, "v1", key)  # S3: the client deletes it, with its credentials
    assert not storage.exists(kept)
    client.delete_file(name, key, fileid=dropped["fileid"])
    assert not storage.exists(dropped)


@pytest.mark.timeout(60)  # the client has no timeout: a server that waits to send more hangs it
def test_bytes_shorter_than_recorded_end_the_download_at_once(colony: ColonyEnv, storage: Storage,
                                                               tmp_path: Path) -> None:
    """Stored bytes that lost a part (a damaged store) fail the download promptly: never a hang
    waiting for bytes that will not come, never a file under its name."""
    client = colony.client
    client.timeout = None
    name, key = colony.colonyname, colony.user_prvkey
    record = client.upload_data(name, key, filename="big", data=os.urandom(MIB + 9), label="/d")
    storage.corrupt(record)
    with pytest.raises((CorruptDownload, ColoniesConnectionError)):
        client.download_file(name, key, dst=str(tmp_path), fileid=record["fileid"])
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_download_is_refused_and_leaves_no_file(colony: ColonyEnv, storage: Storage,
                                                          tmp_path: Path) -> None:
    record = colony.client.upload_data(colony.colonyname, colony.user_prvkey, filename="x", data=b"good",
                                       label="/d")
    storage.corrupt(record)
    with pytest.raises(CorruptDownload, match="is corrupt"):
        colony.client.download_data(colony.colonyname, colony.user_prvkey, fileid=record["fileid"])
    with pytest.raises(CorruptDownload):
        colony.client.download_file(colony.colonyname, colony.user_prvkey, dst=str(tmp_path),
                                    fileid=record["fileid"])
    assert list(tmp_path.iterdir()) == []


def test_sync_round_trip(colony: ColonyEnv, storage: Storage, tmp_path: Path) -> None:
    up, down = tmp_path / "up", tmp_path / "down"
    (up / "sub").mkdir(parents=True)
    (up / "a").write_bytes(b"1")
    (up / "sub" / "b").write_bytes(b"2")
    plan = colony.client.sync(str(up), "/s", True, colony.colonyname, colony.user_prvkey)
    assert len(plan.uploads) == 2
    colony.client.sync(str(down), "/s", True, colony.colonyname, colony.executor_prvkey)
    assert (down / "a").read_bytes() == b"1" and (down / "sub" / "b").read_bytes() == b"2"


def test_a_snapshot_downloads_into_its_label_tree(colony: ColonyEnv, storage: Storage,
                                                  tmp_path: Path) -> None:
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    client.upload_data(name, key, filename="top.txt", data=b"T", label="/run")
    client.upload_data(name, key, filename="deep.txt", data=b"D", label="/run/a/b")
    client.create_snapshot(name, "/run", "frozen", key)
    client.upload_data(name, key, filename="top.txt", data=b"later", label="/run")  # not in the snapshot
    written = client.download_snapshot(name, colony.executor_prvkey, str(tmp_path), name="frozen")
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in written) == ["a/b/deep.txt", "top.txt"]
    assert (tmp_path / "top.txt").read_bytes() == b"T"


def test_the_async_client_moves_the_same_bytes(colony: ColonyEnv, storage: Storage, tmp_path: Path) -> None:
    """The asyncio client's transfers against the same store: streamed both ways, checked, synced,
    snapshots downloaded, corrupt bytes refused, deletes collected."""
    data = os.urandom(2 * MIB + 5)
    source = tmp_path / "up" / "big.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    name, key = colony.colonyname, colony.user_prvkey

    async def scenario() -> None:
        async with AsyncColonies(colony.server.host, colony.server.port) as client:
            client.s3 = storage.s3
            record = await client.upload_file(name, key, filepath=str(source), label="/a",
                                              metadata={"kind": "raw"})
            assert (record["size"], record["metadata"]) == (len(data), {"kind": "raw"})
            down = tmp_path / "down"
            down.mkdir()
            path = await client.download_file(name, key, dst=str(down), label="/a", filename="big.bin")
            assert Path(path).read_bytes() == data
            small = await client.upload_data(name, key, filename="small", data=b"s", label="/a/sub")
            assert await client.download_data(name, key, fileid=small["fileid"]) == b"s"
            synced = tmp_path / "synced"
            plan = await client.sync(str(synced), "/a", False, name, key)
            assert (len(plan.downloads), len(plan.uploads)) == (2, 0)
            assert (synced / "sub" / "small").read_bytes() == b"s"
            (synced / "new.txt").write_bytes(b"n")
            plan = await client.sync(str(synced), "/a", True, name, key)
            assert [t.name for t in plan.uploads] == ["new.txt"] and plan.unchanged == 2
            await client.create_snapshot(name, "/a", "snap", key)
            frozen = tmp_path / "frozen"
            written = await client.download_snapshot(name, key, str(frozen), name="snap")
            assert len(written) == 3 and (frozen / "sub" / "small").read_bytes() == b"s"
            await asyncio.to_thread(storage.corrupt, small)
            with pytest.raises((CorruptDownload, ColoniesConnectionError)):  # 4 bytes stored for 1
                await client.download_file(name, key, dst=str(tmp_path), fileid=small["fileid"])
            assert not list(tmp_path.glob(".*partial"))
            await client.delete_file(name, key, fileid=record["fileid"])
            assert await asyncio.to_thread(storage.exists, record)  # the snapshot holds it
            await client.remove_all_snapshots(name, key)
            assert not await asyncio.to_thread(storage.exists, record)

    asyncio.run(scenario())
