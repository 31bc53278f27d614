"""A real S3 API server for the tests: moto's, in a thread on a loopback port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pycolonies.s3 import S3Settings
from server.embedded import free_port


@contextmanager
def s3_server() -> Iterator[str]:
    """An S3 endpoint (``127.0.0.1:PORT``) for the duration of the block."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


def s3_settings(endpoint: str) -> S3Settings:
    """Credentials of the test's own (moto accepts any) and a bucket of its own."""
    return S3Settings(endpoint=endpoint, accesskey="test-access", secretkey="test-secret",
                      bucket=f"colonies-{uuid.uuid4().hex[:12]}", region="us-east-1", tls=False)
