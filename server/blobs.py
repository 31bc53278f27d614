"""``PUT /blobs/{colony}/{object}`` and ``GET /blobs/{colony}/{object}``: a file's bytes in the
embedded blob store (PostgreSQL), for installations without S3.

A request is signed like an RPC, in two headers: ``Colonies-Payload`` (base64 JSON of
``{"msgtype": "putblobmsg" | "getblobmsg", "colonyname", "object", "size", "checksum",
"requesttime", "requestnonce"}``) and ``Colonies-Signature``. The server checks the signature, the
request time and the signer's membership before it reads a byte of the body, so an unsigned
client cannot make it hold anything. An upload streams into its own transaction in 1 MiB chunks
and commits only if its size and SHA-256 match what was signed: a broken upload leaves nothing.
A download says the checksum (``Colonies-Checksum: sha256:<hex>``) for the client to verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from aiohttp import web

from server import auth
from server.context import Services
from server.envelope import decode_message, error_reply, recover_signer
from server.errors import BadRequest, NotFound, PayloadTooLarge, RequestTimeout, RpcError
from server.store import blobs as store

log = logging.getLogger(__name__)

PAYLOAD_HEADER = "Colonies-Payload"
SIGNATURE_HEADER = "Colonies-Signature"
CHECKSUM_HEADER = "Colonies-Checksum"
_OBJECT = re.compile(r"[A-Za-z0-9._-]{1,200}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def put(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, self._put)

    async def get(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, self._get)

    async def _answer(self, request: web.Request, serve: Any) -> web.StreamResponse:
        try:
            return await serve(request)
        except RpcError as exc:
            body, status = error_reply(exc)
            return web.json_response(body, status=status)

    async def _signed(self, request: web.Request, msgtype: str) -> tuple[str, str, dict[str, Any]]:
        """The (colony, object) of a signed request whose signer is a member of the colony, and
        the signed message."""
        payload = request.headers.get(PAYLOAD_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not payload or not signature:
            raise BadRequest(f"Bad request, a blob request needs the {PAYLOAD_HEADER} and {SIGNATURE_HEADER} "
                             "headers")
        signer = recover_signer({"payloadtype": msgtype, "payload": payload, "signature": signature})
        msg = decode_message(payload, msgtype)
        colony, name = request.match_info["colony"], request.match_info["object"]
        if (msg.get("msgtype"), msg.get("colonyname"), msg.get("object")) != (msgtype, colony, name):
            raise BadRequest(f"Bad request, the signed {PAYLOAD_HEADER} is a {msg.get('msgtype')!r} for "
                             f"{msg.get('colonyname')!r}/{msg.get('object')!r}, not this {msgtype} for "
                             f"{colony!r}/{name!r}")
        if not _OBJECT.fullmatch(name):
            raise BadRequest("Bad request, a blob's object name is 1-200 of A-Z a-z 0-9 . _ -")
        self.services.replay.check_fresh(msg.get("requesttime"))
        await auth.require_member(self.services.pool, colony, signer)
        return colony, name, msg

    async def _put(self, request: web.Request) -> web.StreamResponse:
        colony, name, msg = await self._signed(request, "putblobmsg")
        size, checksum = msg.get("size"), msg.get("checksum")
        limit = self.services.config.max_blob_bytes
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest("Invalid putblobmsg: size must be a non-negative integer (bytes)")
        if size > limit:
            raise PayloadTooLarge(f"Blob too large: {size} bytes, at most {limit} (COLONIES_MAX_BLOB_BYTES)")
        if not isinstance(checksum, str) or not _SHA256.fullmatch(checksum):
            raise BadRequest("Invalid putblobmsg: checksum must be the SHA-256 of the bytes, 64 hex digits")
        if request.content_length is not None and request.content_length != size:
            raise BadRequest(f"Bad request, Content-Length {request.content_length} is not the signed size "
                             f"{size}")
        async with self.services.pool.acquire() as con, con.transaction():
            if not await store.begin(con, colony, name, size, checksum):
                existing = await store.get(con, colony, name)
                if existing is not None and existing["checksum"] == checksum and existing["size"] == size:
                    return web.json_response({"object": name, "size": size, "checksum": checksum})
                raise BadRequest(f"Colony <{colony}> already has a blob <{name}> with other content")
            digest, received = await self._receive(request, con, colony, name, size)
            if received != size or digest != checksum:
                raise BadRequest(f"Upload refused: received {received} bytes with SHA-256 {digest}, signed "
                                 f"{size} bytes with {checksum}")
        return web.json_response({"object": name, "size": size, "checksum": checksum}, status=201)

    async def _receive(
        self, request: web.Request, con: Any, colony: str, name: str, size: int
    ) -> tuple[str, int]:
        """Stream the body into chunks; its SHA-256 and length (reading stops past ``size``)."""
        digest = hashlib.sha256()
        received, seq = 0, 0
        buffer = bytearray()
        timeout = self.services.config.body_timeout_s
        while True:
            try:
                data = await asyncio.wait_for(request.content.read(store.CHUNK_BYTES), timeout)
            except TimeoutError:
                raise RequestTimeout(f"Upload refused: no bytes for {timeout:g} s") from None
            received += len(data)
            if received > size:
                raise BadRequest(f"Upload refused: more than the signed {size} bytes")
            digest.update(data)
            buffer += data
            while len(buffer) >= store.CHUNK_BYTES or (not data and buffer):
                await store.add_chunk(con, colony, name, seq, bytes(buffer[:store.CHUNK_BYTES]))
                del buffer[:store.CHUNK_BYTES]
                seq += 1
            if not data:
                return digest.hexdigest(), received

    async def _get(self, request: web.Request) -> web.StreamResponse:
        colony, name, _ = await self._signed(request, "getblobmsg")
        blob = await store.get(self.services.pool, colony, name)
        if blob is None:
            raise NotFound(f"Colony <{colony}> has no blob <{name}>")
        response = web.StreamResponse(headers={CHECKSUM_HEADER: f"sha256:{blob['checksum']}",
                                               "Content-Type": "application/octet-stream"})
        response.content_length = blob["size"]
        await response.prepare(request)
        seq = sent = 0
        while (data := await store.chunk(self.services.pool, colony, name, seq)) is not None:
            if sent + len(data) > blob["size"]:
                break
            await response.write(data)
            seq, sent = seq + 1, sent + len(data)
        if sent != blob["size"]:  # the stored chunks are not the blob: end the reply short, never hang
            log.error("blob %s of colony %s: its stored chunks do not add up to its size of %d bytes; "
                      "download aborted after %d bytes", name, colony, blob["size"], sent)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response
