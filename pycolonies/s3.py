"""File bytes in S3 (or any S3-compatible store), with the client's own credentials: the
reference's layout (``ref.protocol`` ``"s3"``, ``ref.s3object`` naming server, bucket and object),
configured by the reference's ``AWS_S3_*`` variables. The server never sees the credentials.

Needs ``boto3`` (``pip install 'colonies-py[s3]'``), imported only when S3 is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from pycolonies.errors import ColoniesError

PROTOCOL = "s3"
READ_BYTES = 1024 * 1024


class S3Unavailable(ColoniesError):
    """S3 is needed but not configured, not installed, or not reachable."""


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class S3Settings:
    endpoint: str  # host or host:port
    accesskey: str
    secretkey: str
    bucket: str
    region: str = ""
    tls: bool = True
    skipverify: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings | None:
        """The reference's AWS_S3_* settings, or None when AWS_S3_ENDPOINT is not set."""
        env = os.environ if environ is None else environ
        endpoint = env.get("AWS_S3_ENDPOINT", "").strip()
        if not endpoint:
            return None
        missing = [name for name in ("AWS_S3_ACCESSKEY", "AWS_S3_SECRETKEY", "AWS_S3_BUCKET")
                   if not env.get(name, "").strip()]
        if missing:
            raise S3Unavailable(f"AWS_S3_ENDPOINT is set but {', '.join(missing)} is not")
        return cls(endpoint=endpoint, accesskey=env["AWS_S3_ACCESSKEY"].strip(),
                   secretkey=env["AWS_S3_SECRETKEY"].strip(), bucket=env["AWS_S3_BUCKET"].strip(),
                   region=env.get("AWS_S3_REGION", "").strip(), tls=_flag(env.get("AWS_S3_TLS", "true")),
                   skipverify=_flag(env.get("AWS_S3_SKIPVERIFY", "false")))

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.endpoint.partition(":")
        return host, int(port) if port else (443 if self.tls else 80)

    def ref(self, object_name: str) -> dict[str, Any]:
        """The file's ``ref`` for an object in this bucket (no credentials)."""
        host, port = self.host_port
        return {"protocol": PROTOCOL, "s3object": {"server": host, "port": port, "tls": self.tls,
                                                   "region": self.region, "bucket": self.bucket,
                                                   "object": object_name}}


class S3Store:
    """Upload, download and delete objects of one S3 endpoint with the client's credentials."""

    def __init__(self, settings: S3Settings) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise S3Unavailable("S3 needs boto3: pip install 'colonies-py[s3]'") from None
        scheme = "https" if settings.tls else "http"
        self.settings = settings
        self._client = boto3.client(
            "s3", endpoint_url=f"{scheme}://{settings.endpoint}", aws_access_key_id=settings.accesskey,
            aws_secret_access_key=settings.secretkey, region_name=settings.region or "us-east-1",
            verify=not settings.skipverify, config=Config(s3={"addressing_style": "path"}),
        )

    def _call(self, what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action(*args, **kwargs)
        except ClientError as exc:
            raise S3Unavailable(f"S3 {what} failed at {self.settings.endpoint}: {exc}") from None
        except BotoCoreError as exc:
            raise S3Unavailable(f"S3 {what} failed, {self.settings.endpoint} is unreachable: {exc}") from None

    def upload(self, stream: BinaryIO, object_name: str) -> None:
        """Stream into ``object_name`` (multipart for large files), creating the bucket if needed
        (as the reference SDK does)."""
        from botocore.exceptions import ClientError

        bucket = self.settings.bucket
        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError:
            self._call("create bucket", self._client.create_bucket, Bucket=bucket)
        self._call("upload", self._client.upload_fileobj, stream, bucket, object_name)

    def download(self, bucket: str, object_name: str) -> Iterator[bytes]:
        body = self._call("download", self._client.get_object, Bucket=bucket or self.settings.bucket,
                          Key=object_name)["Body"]
        try:
            while block := body.read(READ_BYTES):
                yield block
        finally:
            body.close()

    def delete(self, bucket: str, object_name: str) -> None:
        self._call("delete", self._client.delete_object, Bucket=bucket or self.settings.bucket,
                   Key=object_name)
