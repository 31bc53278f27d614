"""The client's S3 settings from the reference's AWS_S3_* variables."""

from __future__ import annotations

import pytest

from pycolonies.s3 import S3Settings, S3Unavailable

BASE = {"AWS_S3_ENDPOINT": "s3.example.org:9000", "AWS_S3_ACCESSKEY": "ak", "AWS_S3_SECRETKEY": "sk",
        "AWS_S3_BUCKET": "data"}


def test_no_endpoint_means_no_s3() -> None:
    assert S3Settings.from_env({}) is None


def test_settings_and_the_ref_they_give_which_holds_no_credentials() -> None:
    settings = S3Settings.from_env({**BASE, "AWS_S3_TLS": "false", "AWS_S3_REGION": "eu"})
    assert settings is not None and settings.host_port == ("s3.example.org", 9000) and not settings.tls
    assert settings.ref("obj") == {"protocol": "s3", "s3object": {
        "server": "s3.example.org", "port": 9000, "tls": False, "region": "eu", "bucket": "data",
        "object": "obj"}}
    default_port = S3Settings.from_env({**BASE, "AWS_S3_ENDPOINT": "s3.example.org"})
    assert default_port is not None and default_port.host_port == ("s3.example.org", 443)


@pytest.mark.parametrize("missing", ["AWS_S3_ACCESSKEY", "AWS_S3_SECRETKEY", "AWS_S3_BUCKET"])
def test_an_endpoint_without_its_credentials_is_refused_naming_them(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(S3Unavailable, match=f"AWS_S3_ENDPOINT is set but {missing} is not"):
        S3Settings.from_env(env)
