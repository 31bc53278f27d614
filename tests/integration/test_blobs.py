"""File bytes in the embedded blob store: streamed uploads and downloads through the SDK, checked
by SHA-256, visible only whole, collected when nothing needs them, and refused before any byte is
read unless signed by a member."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import socket
import time

import asyncpg
import pytest

from pycolonies import NotFoundError, blobs, crypto, rpc
from pycolonies.s3 import S3Unavailable
from server.scheduler.deadlines import ORPHAN_BLOB_AGE_S
from server.store import blobs as blob_store
from tests.conftest import ColonyEnv, make_colony

MIB = 1024 * 1024


def message(body: bytes) -> str:
    """The message of an error reply ("" for another reply)."""
    reply = json.loads(body)
    if not reply.get("error"):
        return ""
    return json.loads(base64.b64decode(reply["payload"]))["message"]


def put(
    colony: ColonyEnv, object_name: str, body: bytes, *, prvkey: str | None = None, size: int | None = None,
    checksum: str | None = None, headers: dict | None = None,
) -> tuple[int, str]:
    """A raw PUT /blobs request: (status, the error message or "")."""
    signed = blobs.signed_headers(
        "putblobmsg", colony.colonyname, object_name, prvkey or colony.user_prvkey,
        size=len(body) if size is None else size,
        checksum=hashlib.sha256(body).hexdigest() if checksum is None else checksum,
    )
    conn = http.client.HTTPConnection(colony.server.host, colony.server.port, timeout=30)
    try:
        conn.request("PUT", blobs.blob_path(colony.colonyname, object_name), body=body,
                     headers=signed if headers is None else headers)
        response = conn.getresponse()
        return response.status, message(response.read())
    finally:
        conn.close()


def get_status(colony: ColonyEnv, object_name: str, prvkey: str | None = None) -> int:
    signed = blobs.signed_headers("getblobmsg", colony.colonyname, object_name, prvkey or colony.user_prvkey)
    conn = http.client.HTTPConnection(colony.server.host, colony.server.port, timeout=30)
    try:
        conn.request("GET", blobs.blob_path(colony.colonyname, object_name), headers=signed)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_an_upload_that_does_not_match_what_was_signed_leaves_nothing(colony: ColonyEnv) -> None:
    status, body = put(colony, "obj1", b"hello", checksum="0" * 64)
    assert status == 400 and "Upload refused" in body
    assert get_status(colony, "obj1") == 404
    status, _ = put(colony, "obj1", b"hello")  # the name is free again
    assert status == 201 and get_status(colony, "obj1") == 200
    assert put(colony, "obj1", b"hello")[0] == 200  # the same bytes again: nothing to do
    status, body = put(colony, "obj1", b"other")
    assert status == 400 and "already has a blob <obj1> with other content" in body


def test_an_upload_cut_off_midway_leaves_nothing_and_the_name_free(colony: ColonyEnv) -> None:
    data = os.urandom(3 * MIB)
    headers = blobs.signed_headers("putblobmsg", colony.colonyname, "cut", colony.user_prvkey,
                                   size=len(data), checksum=hashlib.sha256(data).hexdigest())
    with socket.create_connection((colony.server.host, colony.server.port)) as sock:
        head = f"PUT {blobs.blob_path(colony.colonyname, 'cut')} HTTP/1.1\r\nHost: x\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(data)}\r\n\r\n"
        sock.sendall(head.encode() + data[: 2 * MIB])
    assert get_status(colony, "cut") == 404
    assert put(colony, "cut", data)[0] == 201  # waits for the broken upload's rollback, if need be


def test_blob_requests_need_a_members_fresh_signature_before_any_byte_is_read(colony: ColonyEnv) -> None:
    other = make_colony(colony.client, colony.server, "other")
    status, body = put(colony, "o", b"x", headers={})
    assert status == 400 and "needs the Colonies-Payload and Colonies-Signature headers" in body
    assert put(colony, "o", b"x", prvkey=other.user_prvkey)[0] == 403
    assert put(colony, "o", b"x", prvkey=crypto.generate_private_key())[0] == 403
    forged = blobs.signed_headers("putblobmsg", colony.colonyname, "o", colony.user_prvkey, size=1,
                                  checksum="0" * 64)
    forged[blobs.SIGNATURE_HEADER] = "00" * 65
    assert put(colony, "o", b"x", headers=forged)[0] == 403
    wrong_object = blobs.signed_headers("putblobmsg", colony.colonyname, "other-name", colony.user_prvkey,
                                        size=1, checksum=hashlib.sha256(b"x").hexdigest())
    status, body = put(colony, "o", b"x", headers=wrong_object)
    assert status == 400 and "not this putblobmsg" in body
    fields = {"msgtype": "putblobmsg", "colonyname": colony.colonyname, "object": "o", "size": 1,
              "checksum": hashlib.sha256(b"x").hexdigest()}
    stale = rpc.request_envelope(fields, colony.user_prvkey)
    payload = crypto_payload_with_time(stale, colony.user_prvkey, time.time_ns() - 3600 * 10**9)
    status, body = put(colony, "o", b"x", headers=payload)
    assert status == 403 and "behind the server's clock" in body
    status, body = put(colony, "o", b"", size=11 * 1024**3)
    assert status == 413 and "COLONIES_MAX_BLOB_BYTES" in body
    assert get_status(colony, "o", other.user_prvkey) == 403
    assert get_status(colony, "o") == 404


def crypto_payload_with_time(envelope: dict, prvkey: str, request_time: int) -> dict[str, str]:
    """Blob headers for the envelope's message, re-signed with another ``requesttime``."""
    msg = json.loads(base64.b64decode(envelope["payload"]))
    msg["requesttime"] = request_time
    payload = base64.b64encode(json.dumps(msg).encode()).decode()
    return {blobs.PAYLOAD_HEADER: payload, blobs.SIGNATURE_HEADER: crypto.sign(payload, prvkey)}


def test_a_file_in_s3_without_s3_settings_says_what_to_set(colony: ColonyEnv,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_S3_ENDPOINT", raising=False)
    ref = {"protocol": "s3", "s3object": {"object": "o", "bucket": "b"}}
    colony.client.add_file({"colonyname": colony.colonyname, "label": "/s3", "name": "f", "size": 1,
                            "checksum": "", "ref": ref}, colony.user_prvkey)
    with pytest.raises(S3Unavailable, match="is in S3 .* set AWS_S3_ENDPOINT"):
        colony.client.download_data(colony.colonyname, colony.user_prvkey, label="/s3", filename="f")
    with pytest.raises(NotFoundError):
        colony.client.download_data(colony.colonyname, colony.user_prvkey, label="/s3", filename="nope")
    with pytest.raises(ValueError, match="colonyname is required"):
        colony.client.upload_data("", colony.user_prvkey, filename="f", data=b"x")


def test_an_upload_never_recorded_as_a_file_is_collected_after_an_hour(colony: ColonyEnv) -> None:
    assert put(colony, "orphan", b"o")[0] == 201
    assert put(colony, "young-orphan", b"y")[0] == 201
    recorded = colony.client.upload_data(colony.colonyname, colony.user_prvkey, filename="f", data=b"f")

    async def age_and_collect() -> int:
        con = await asyncpg.connect(colony.server.dsn)
        try:
            await con.execute(
                "UPDATE blobs SET added = now() - interval '2 hours' WHERE object <> 'young-orphan'"
            )
            return await blob_store.collect_orphans(con, ORPHAN_BLOB_AGE_S)
        finally:
            await con.close()

    assert asyncio.run(age_and_collect()) == 1
    assert get_status(colony, "orphan") == 404
    assert get_status(colony, "young-orphan") == 200
    kept = colony.client.download_data(colony.colonyname, colony.user_prvkey, fileid=recorded["fileid"])
    assert kept == b"f"
