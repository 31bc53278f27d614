"""colonies_client() and ClientConfig read the reference environment variables."""

from __future__ import annotations

import pytest

from pycolonies import AsyncColonies, ClientConfig, Colonies, colonies_client

ALL_VARS = (
    "COLONIES_SERVER_HOST",
    "COLONIES_SERVER_PORT",
    "COLONIES_SERVER_TLS",
    "COLONIES_TLS",
    "COLONIES_COLONY_NAME",
    "COLONIES_COLONY_PRVKEY",
    "COLONIES_EXECUTOR_NAME",
    "COLONIES_PRVKEY",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    client, colonyname, colony_prvkey, executorname, prvkey = colonies_client()
    assert isinstance(client, Colonies)
    assert client.url == "http://localhost:50080/api"
    assert (colonyname, colony_prvkey, executorname, prvkey) == (None, None, None, None)


def test_reads_every_variable(clean_env: pytest.MonkeyPatch) -> None:
    values = {
        "COLONIES_SERVER_HOST": "colonies.example",
        "COLONIES_SERVER_PORT": "443",
        "COLONIES_SERVER_TLS": "true",
        "COLONIES_COLONY_NAME": "dev",
        "COLONIES_COLONY_PRVKEY": "ck",
        "COLONIES_EXECUTOR_NAME": "worker",
        "COLONIES_PRVKEY": "pk",
    }
    for name, value in values.items():
        clean_env.setenv(name, value)
    client, colonyname, colony_prvkey, executorname, prvkey = colonies_client()
    assert client.url == "https://colonies.example:443/api"
    assert (client.host, client.port, client.tls) == ("colonies.example", 443, True)
    assert (colonyname, colony_prvkey, executorname, prvkey) == ("dev", "ck", "worker", "pk")


@pytest.mark.parametrize(
    ("server_tls", "tls", "expected"),
    [
        (None, "true", True),  # the Go CLI's variable is accepted too
        (None, "TRUE", True),
        (None, "false", False),
        ("false", "true", False),  # the SDK's own variable wins when set
        ("true", None, True),
        ("yes", None, False),
    ],
)
def test_tls_variables(
    clean_env: pytest.MonkeyPatch, server_tls: str | None, tls: str | None, expected: bool
) -> None:
    if server_tls is not None:
        clean_env.setenv("COLONIES_SERVER_TLS", server_tls)
    if tls is not None:
        clean_env.setenv("COLONIES_TLS", tls)
    assert ClientConfig.from_env().tls is expected


def test_bad_port_names_the_variable() -> None:
    with pytest.raises(ValueError, match="COLONIES_SERVER_PORT"):
        ClientConfig.from_env({"COLONIES_SERVER_PORT": "eighty"})


def test_async_client_from_config() -> None:
    client = ClientConfig(host="h", port=1).async_client()
    assert isinstance(client, AsyncColonies)
    assert client.url == "http://h:1/api"


@pytest.mark.parametrize("port", ["0", "65536", "99999", "-1"])
def test_a_port_out_of_range_names_the_variable(port: str) -> None:
    with pytest.raises(ValueError, match="COLONIES_SERVER_PORT must be a port number"):
        ClientConfig.from_env({"COLONIES_SERVER_PORT": port})


@pytest.mark.parametrize("host", ["bad host", "http://localhost", "localhost/api", "a" * 64 + ".example",
                                  "a..b", "host\n"])
def test_a_malformed_host_names_the_variable(host: str) -> None:
    with pytest.raises(ValueError, match="COLONIES_SERVER_HOST"):
        ClientConfig.from_env({"COLONIES_SERVER_HOST": host})


@pytest.mark.parametrize("host", ["localhost", "10.0.0.7", "::1", "[::1]", "colonies.example.",
                                  "bücher.example", "no-such-host.invalid"])
def test_hosts_that_may_resolve_are_kept(host: str) -> None:
    assert ClientConfig.from_env({"COLONIES_SERVER_HOST": host}).host == host
