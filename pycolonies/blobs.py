"""File bytes in the server's embedded blob store (``PUT``/``GET /blobs/{colony}/{object}``), for
servers without S3: the signed headers, checksums and names the transfers need (no I/O on the
network here; the clients do that).

A file whose ``ref.protocol`` is ``"colonies"`` lives in the embedded store under
``ref.s3object.object``; ``"s3"`` is the reference's S3 layout (:mod:`pycolonies.s3`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from pycolonies import rpc
from pycolonies.errors import ColoniesError

EMBEDDED = "colonies"  # ref.protocol of a file in the server's embedded blob store
PAYLOAD_HEADER = "Colonies-Payload"
SIGNATURE_HEADER = "Colonies-Signature"
CHECKSUM_HEADER = "Colonies-Checksum"
READ_BYTES = 1024 * 1024


class CorruptDownload(ColoniesError):
    """The bytes downloaded are not the file's: another size or SHA-256 than recorded."""


def blob_path(colonyname: str, object_name: str) -> str:
    return f"/blobs/{colonyname}/{object_name}"


def new_object_name() -> str:
    """A random object name, as the reference SDK gives each upload (64 hex digits)."""
    return hashlib.sha256(os.urandom(32)).hexdigest()


def signed_headers(
    msgtype: str, colonyname: str, object_name: str, prvkey: str, **fields: Any
) -> dict[str, str]:
    """The two headers that sign a blob request (``putblobmsg`` with size and checksum, or
    ``getblobmsg``), fresh each time (request time and nonce)."""
    msg = {"msgtype": msgtype, "colonyname": colonyname, "object": object_name, **fields}
    envelope = rpc.request_envelope(msg, prvkey)
    return {PAYLOAD_HEADER: envelope["payload"], SIGNATURE_HEADER: envelope["signature"]}


def sha256_of(stream: BinaryIO) -> tuple[str, int]:
    """The SHA-256 (hex) and length of what ``stream`` holds from where it is, read in blocks."""
    digest, size = hashlib.sha256(), 0
    while block := stream.read(READ_BYTES):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def embedded_ref(object_name: str) -> dict[str, Any]:
    return {"protocol": EMBEDDED, "s3object": {"object": object_name}}


def file_record(
    colonyname: str, label: str, name: str, size: int, checksum: str, object_name: str,
    metadata: dict[str, str] | None = None, processid: str = "",
) -> dict[str, Any]:
    """The ``addfilemsg`` file for bytes put in the embedded store under ``object_name``."""
    return {"colonyname": colonyname, "label": label, "name": name, "size": size, "checksum": checksum,
            "checksumalg": "SHA256", "ref": embedded_ref(object_name), "metadata": dict(metadata or {}),
            "processid": processid}


def chosen_file(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The one file a ``get_file`` lookup gave, stored where this SDK can fetch it."""
    file = found[0]
    protocol = (file.get("ref") or {}).get("protocol")
    if protocol not in (EMBEDDED, "s3"):
        raise NotImplementedError(f"{what} is stored with protocol {protocol!r}, which this SDK cannot read "
                                  f"(it reads {EMBEDDED!r} and 's3')")
    return file


def check_download(file: dict[str, Any], header: str | None, digest: str, size: int) -> None:
    """Refuse bytes that are not the file's: size and SHA-256 against what was recorded."""
    expected, name = file.get("checksum", ""), file.get("name")
    if header and header != f"sha256:{expected}":
        raise CorruptDownload(f"download of {name!r}: the server holds checksum {header}, the file records "
                              f"sha256:{expected}")
    if size != file.get("size") or digest != expected:
        raise CorruptDownload(f"download of {name!r} is corrupt: {size} bytes with SHA-256 {digest}, "
                              f"expected {file.get('size')} bytes with {expected}")


def in_s3(revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The revisions whose bytes are in S3 (the client deletes those; the server the embedded ones)."""
    return [r for r in revisions if (r.get("ref") or {}).get("protocol") == "s3"]


def lookup_args(fileid: str | None, filename: str | None) -> None:
    """The reference SDK's check, before any I/O."""
    if fileid and filename:
        raise ValueError(
            "Both 'fileid' and 'filename' cannot be set at the same time. Please provide only one."
        )


def write_blocks(blocks: Iterable[bytes], target: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for block in blocks:
        digest.update(block)
        size += len(block)
        target.write(block)
    return digest.hexdigest(), size


def partial_path(path: Path) -> Path:
    """Where a download is written until its checksum has been verified."""
    return path.with_name(f".{path.name}.partial")
