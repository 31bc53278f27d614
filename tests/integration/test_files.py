"""Colony files and snapshots (metadata): the reference's message shapes, revisions, labels,
snapshots that freeze revisions, membership, and no stored credentials."""

from __future__ import annotations

from typing import Any

import pytest

from pycolonies import AccessDeniedError, BadRequestError, NotFoundError, crypto
from tests.conftest import ColonyEnv, make_colony


def a_file(colony: ColonyEnv, name: str = "data.csv", label: str = "/data", **overrides: Any) -> dict:
    """A File as the reference SDK's upload_file sends it (credentials included)."""
    file = {
        "colonyname": colony.colonyname, "label": label, "name": name, "size": 3,
        "checksum": "ab" * 32, "checksumalg": "SHA256",
        "ref": {"protocol": "s3", "s3object": {
            "server": "s3.example.org", "port": 443, "tls": True, "accesskey": "AKIAEXAMPLE",
            "secretkey": "very-secret", "region": "eu", "encryptionkey": "enc-key",
            "encryptionalg": "", "object": f"obj-{name}", "bucket": "colonies"}},
    }
    file.update(overrides)
    return file


def add(colony: ColonyEnv, name: str = "data.csv", label: str = "/data", **overrides: Any) -> dict:
    return colony.client.add_file(a_file(colony, name, label, **overrides), colony.user_prvkey)


def test_added_files_get_an_id_a_sequence_number_and_no_stored_credentials(colony: ColonyEnv) -> None:
    first = add(colony)
    assert len(first["fileid"]) == 64 and first["sequencenr"] > 0 and first["added"]
    assert first["ref"]["s3object"]["object"] == "obj-data.csv"
    stored = colony.client.get_file(colony.colonyname, colony.executor_prvkey, fileid=first["fileid"])
    assert [f["fileid"] for f in stored] == [first["fileid"]]
    for reply in (first, stored[0]):
        s3 = reply["ref"]["s3object"]
        assert (s3["accesskey"], s3["secretkey"], s3["encryptionkey"]) == ("", "", "")
        assert (s3["server"], s3["bucket"], s3["region"]) == ("s3.example.org", "colonies", "eu")


def test_adding_a_name_again_adds_a_revision_and_latest_is_the_newest(colony: ColonyEnv) -> None:
    old = add(colony, size=1)
    new = add(colony, size=2)
    assert new["sequencenr"] > old["sequencenr"]
    latest = colony.client.get_file(colony.colonyname, colony.user_prvkey, label="/data", filename="data.csv")
    assert [f["fileid"] for f in latest] == [new["fileid"]]
    every = colony.client.get_file(colony.colonyname, colony.user_prvkey, label="/data", filename="data.csv",
                                   latest=False)
    assert [f["fileid"] for f in every] == [new["fileid"], old["fileid"]]
    listed = colony.client.get_files("/data", colony.colonyname, colony.user_prvkey)
    assert listed == [{"name": "data.csv", "checksum": "ab" * 32, "size": 2, "s3filename": "obj-data.csv"}]


def test_labels_are_normalised_and_listed_with_their_file_counts(colony: ColonyEnv) -> None:
    add(colony, "a", label="data//raw/")
    add(colony, "a", label="///data/raw")  # a revision: still one file
    add(colony, "b", label="/data/raw")
    add(colony, "c", label="/data")
    add(colony, "d", label="/other")
    labels = colony.client.get_file_labels(colony.colonyname, colony.user_prvkey)
    assert labels == [{"name": "/data", "files": 1}, {"name": "/data/raw", "files": 2},
                      {"name": "/other", "files": 1}]
    assert colony.client.get_file_labels(colony.colonyname, colony.user_prvkey, name="/data") == labels[:2]
    assert colony.client.get_file_labels(colony.colonyname, colony.user_prvkey, name="/data", exact=True) == \
        labels[:1]


def test_a_snapshot_freezes_the_latest_revisions_under_its_label(colony: ColonyEnv) -> None:
    add(colony, "a", label="/data")
    a2 = add(colony, "a", label="/data")
    b = add(colony, "b", label="/data/raw")
    add(colony, "x", label="/database")  # not under /data
    snapshot = colony.client.create_snapshot(colony.colonyname, "/data", "v1", colony.user_prvkey)
    assert sorted(snapshot["fileids"]) == sorted([a2["fileid"], b["fileid"]])
    assert (snapshot["name"], snapshot["label"], len(snapshot["snapshotid"])) == ("v1", "/data", 64)
    add(colony, "a", label="/data")  # later revisions do not change it
    by_name = colony.client.get_snapshot_by_name(colony.colonyname, "v1", colony.executor_prvkey)
    by_id = colony.client.get_snapshot_by_id(colony.colonyname, snapshot["snapshotid"], colony.user_prvkey)
    assert by_name == by_id == snapshot
    with pytest.raises(BadRequestError, match="already has a snapshot <v1>"):
        colony.client.create_snapshot(colony.colonyname, "/data", "v1", colony.user_prvkey)
    assert [s["name"] for s in colony.client.get_snapshots(colony.colonyname, colony.user_prvkey)] == ["v1"]


def test_a_removed_file_leaves_its_label_but_stays_readable_through_its_snapshot(colony: ColonyEnv) -> None:
    kept = add(colony, "a")
    gone = add(colony, "b")
    snapshot = colony.client.create_snapshot(colony.colonyname, "/data", "v1", colony.user_prvkey)
    colony.client.remove_file(colony.colonyname, colony.user_prvkey, label="/data", filename="a")
    colony.client.remove_file(colony.colonyname, colony.user_prvkey, fileid=gone["fileid"])
    assert colony.client.get_files("/data", colony.colonyname, colony.user_prvkey) == []
    with pytest.raises(NotFoundError):
        colony.client.get_file(colony.colonyname, colony.user_prvkey, label="/data", filename="a")
    for file_id in snapshot["fileids"]:
        found = colony.client.get_file(colony.colonyname, colony.user_prvkey, fileid=file_id)
        assert [f["fileid"] for f in found] == [file_id]
    colony.client.remove_snapshot_by_name(colony.colonyname, "v1", colony.user_prvkey)
    with pytest.raises(NotFoundError):
        colony.client.get_file(colony.colonyname, colony.user_prvkey, fileid=kept["fileid"])
    with pytest.raises(NotFoundError):
        colony.client.get_snapshot_by_name(colony.colonyname, "v1", colony.user_prvkey)


def test_remove_all_snapshots_removes_only_that_colonys(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    add(colony, "a")
    add(other, "a")
    for name in ("v1", "v2"):
        colony.client.create_snapshot(colony.colonyname, "/data", name, colony.user_prvkey)
    other.client.create_snapshot(other.colonyname, "/data", "v1", other.user_prvkey)
    colony.client.remove_all_snapshots(colony.colonyname, colony.user_prvkey)
    assert colony.client.get_snapshots(colony.colonyname, colony.user_prvkey) == []
    assert [s["name"] for s in other.client.get_snapshots(other.colonyname, other.user_prvkey)] == ["v1"]
    with pytest.raises(NotFoundError):
        colony.client.remove_snapshot_by_id(colony.colonyname, "0" * 64, colony.user_prvkey)


def test_another_colonys_member_and_a_stranger_are_refused(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    file = add(colony)
    colony.client.create_snapshot(colony.colonyname, "/data", "v1", colony.user_prvkey)
    stranger = crypto.generate_private_key()
    client = colony.client
    calls = [
        lambda key: client.add_file(a_file(colony), key),
        lambda key: client.get_file(colony.colonyname, key, fileid=file["fileid"]),
        lambda key: client.get_files("/data", colony.colonyname, key),
        lambda key: client.get_file_labels(colony.colonyname, key),
        lambda key: client.remove_file(colony.colonyname, key, fileid=file["fileid"]),
        lambda key: client.create_snapshot(colony.colonyname, "/data", "v2", key),
        lambda key: client.get_snapshot_by_name(colony.colonyname, "v1", key),
        lambda key: client.get_snapshots(colony.colonyname, key),
        lambda key: client.remove_snapshot_by_name(colony.colonyname, "v1", key),
        lambda key: client.remove_all_snapshots(colony.colonyname, key),
    ]
    for call in calls:
        for key in (other.user_prvkey, stranger):
            with pytest.raises(AccessDeniedError):
                call(key)
    assert client.get_file(colony.colonyname, colony.user_prvkey, fileid=file["fileid"])
    assert client.get_snapshots(colony.colonyname, colony.user_prvkey)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "file.name is required"),
        ({"name": "a/b"}, "must not contain '/'"),
        ({"size": -1}, "file.size must not be negative"),
        ({"colonyname": ""}, "Empty Colony name"),
        ({"name": ".."}, "is not a single path segment"),
        ({"label": "/data/../../etc"}, "has a '..' segment"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field(colony: ColonyEnv, overrides: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        colony.client.add_file(a_file(colony, **overrides), colony.user_prvkey)
    assert colony.client.get_file_labels(colony.colonyname, colony.user_prvkey) == []


def test_lookups_without_an_id_or_name_and_of_missing_things(colony: ColonyEnv) -> None:
    client, name, key = colony.client, colony.colonyname, colony.user_prvkey
    with pytest.raises(BadRequestError, match="give fileid, or label and name"):
        client.get_file(name, key, label="/data")
    with pytest.raises(NotFoundError, match="file <" + "0" * 64 + "> not found"):
        client.get_file(name, key, fileid="0" * 64)
    with pytest.raises(NotFoundError, match="no file <x> under label </data>"):
        client.remove_file(name, key, label="data", filename="x")
    with pytest.raises(BadRequestError, match="give snapshotid or name"):
        client.get_snapshot_by_name(name, "", key)
    with pytest.raises(NotFoundError, match="snapshot <nope> not found"):
        client.remove_snapshot_by_name(name, "nope", key)
    with pytest.raises(BadRequestError, match="name is required"):
        client.create_snapshot(name, "/data", "", key)


def test_removing_a_colony_removes_its_files_and_snapshots(colony: ColonyEnv) -> None:
    add(colony)
    colony.client.create_snapshot(colony.colonyname, "/data", "v1", colony.user_prvkey)
    colony.client.del_colony(colony.colonyname, colony.server_prvkey)
    again = make_colony(colony.client, colony.server, colony.colonyname)  # same name, new colony
    assert again.client.get_file_labels(again.colonyname, again.user_prvkey) == []
    assert again.client.get_snapshots(again.colonyname, again.user_prvkey) == []


def test_files_are_found_by_label_name_metadata_and_producing_process(colony: ColonyEnv) -> None:
    conditions = {"colonyname": colony.colonyname, "executortype": colony.executortype}
    process = colony.client.submit_func_spec({"funcname": "f", "conditions": conditions}, colony.user_prvkey)
    plot = add(colony, "plot.png", label="/chime/2026/plots", metadata={"kind": "plot", "beam": "7"},
               processid=process.processid)
    add(colony, "plot.png", label="/other", metadata={"kind": "plot"})
    add(colony, "table.csv", label="/chime/2026", metadata={"kind": "table", "beam": "7"})
    search = colony.client.search_files
    key, name = colony.user_prvkey, colony.colonyname
    plots = search(name, key, label="/chime", metadata={"kind": "plot"})
    assert [f["fileid"] for f in plots] == [plot["fileid"]]
    assert [f["name"] for f in search(name, key, metadata={"beam": "7"})] == ["table.csv", "plot.png"]
    assert [f["label"] for f in search(name, key, name="plot.png")] == ["/other", "/chime/2026/plots"]
    found = search(name, key, processid=process.processid)
    assert [f["fileid"] for f in found] == [plot["fileid"]]
    assert found[0]["metadata"] == {"kind": "plot", "beam": "7"}
    assert found[0]["processid"] == process.processid
    assert search(name, key, label="/chim") == []  # a label, not a string prefix
    assert len(search(name, key, count=1)) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metadata": {"k": 1}}, "file.metadata.k must be a string"),
        ({"metadata": {"": "v"}}, "a key is 1-128 characters"),
        ({"metadata": {f"k{i}": "v" for i in range(65)}}, "at most 64 keys"),
        ({"processid": "0" * 64}, "is no process of colony"),
    ],
)
def test_bad_metadata_or_process_is_refused(colony: ColonyEnv, overrides: dict, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        colony.client.add_file(a_file(colony, **overrides), colony.user_prvkey)


def test_a_bad_search_is_refused(colony: ColonyEnv) -> None:
    with pytest.raises(BadRequestError, match="count must be 1-100"):
        colony.client.search_files(colony.colonyname, colony.user_prvkey, count=0)
    with pytest.raises(AccessDeniedError):
        colony.client.search_files(colony.colonyname, crypto.generate_private_key())
