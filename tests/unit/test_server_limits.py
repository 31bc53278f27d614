"""The limit settings (COLONIES_* variables, validation) and the peer accounting they rest on."""

from __future__ import annotations

import pytest

from server.config import LIMITS, MIB, ServerConfig
from server.errors import TooManyRequests, Unavailable
from server.limits import Cap, PeerCounter, peer_key


def test_defaults_are_valid_and_leave_room_for_the_largest_body() -> None:
    config = ServerConfig.from_env({})
    assert config.max_body_bytes == 16 * MIB
    assert config.max_body_bytes_in_flight == 128 * MIB
    assert config.max_body_bytes_in_flight_per_peer == 32 * MIB
    assert (config.header_timeout_s, config.body_timeout_s, config.keepalive_timeout_s) == (10, 60, 75)
    assert config.drain_timeout_s == 2
    assert (config.max_headers, config.max_header_field_bytes) == (32, 8190)
    assert 1 <= config.max_connections <= 4096
    assert (config.max_connections_per_peer, config.max_websockets_per_peer) == (256, 128)
    assert config.pubsub_subscribe_timeout_s == 10


def test_every_limit_is_read_from_its_variable() -> None:
    env = {limit.env: str(100 + number) for number, limit in enumerate(LIMITS)}
    config = ServerConfig.from_env(env)
    for limit in LIMITS:
        assert getattr(config, limit.name) == int(env[limit.env]), limit.env


def test_timeouts_take_fractions_of_a_second() -> None:
    config = ServerConfig.from_env({"COLONIES_HEADER_TIMEOUT": "0.25", "COLONIES_DRAIN_TIMEOUT": "0"})
    assert (config.header_timeout_s, config.drain_timeout_s) == (0.25, 0)


def test_a_larger_body_limit_raises_the_default_in_flight_caps() -> None:
    config = ServerConfig.from_env({"COLONIES_MAX_BODY_BYTES": str(64 * MIB)})
    assert config.max_body_bytes_in_flight == 256 * MIB
    assert config.max_body_bytes_in_flight_per_peer == 64 * MIB


def test_per_peer_caps_can_be_turned_off() -> None:
    config = ServerConfig.from_env({"COLONIES_MAX_CONNECTIONS_PER_PEER": "0",
                                    "COLONIES_MAX_WEBSOCKETS_PER_PEER": "0",
                                    "COLONIES_MAX_BODY_BYTES_IN_FLIGHT_PER_PEER": "0"})
    assert config.max_connections_per_peer == config.max_websockets_per_peer == 0
    assert config.max_body_bytes_in_flight_per_peer == 0


@pytest.mark.parametrize(("env", "fragments"), [
    ({"COLONIES_HEADER_TIMEOUT": "soon"}, ("COLONIES_HEADER_TIMEOUT", "number of seconds", "'soon'")),
    ({"COLONIES_BODY_TIMEOUT": "inf"}, ("COLONIES_BODY_TIMEOUT", "finite")),
    ({"COLONIES_KEEPALIVE_TIMEOUT": "0"}, ("COLONIES_KEEPALIVE_TIMEOUT", "at least")),
    ({"COLONIES_DRAIN_TIMEOUT": "-1"}, ("COLONIES_DRAIN_TIMEOUT", "at least 0")),
    ({"COLONIES_MAX_CONNECTIONS": "0"}, ("COLONIES_MAX_CONNECTIONS", "at least 1")),
    ({"COLONIES_MAX_CONNECTIONS": "many"}, ("COLONIES_MAX_CONNECTIONS", "integer")),
    ({"COLONIES_MAX_WEBSOCKETS_PER_PEER": "-2"}, ("COLONIES_MAX_WEBSOCKETS_PER_PEER", "0 (off)")),
    ({"COLONIES_MAX_BODY_BYTES_IN_FLIGHT": str(MIB)},
     ("COLONIES_MAX_BODY_BYTES_IN_FLIGHT", "smaller than COLONIES_MAX_BODY_BYTES", "never be read")),
    ({"COLONIES_MAX_BODY_BYTES_IN_FLIGHT_PER_PEER": "1000"},
     ("COLONIES_MAX_BODY_BYTES_IN_FLIGHT_PER_PEER", "smaller than COLONIES_MAX_BODY_BYTES")),
    ({"COLONIES_REPLAY_WINDOW": "0"}, ("COLONIES_REPLAY_WINDOW", "at least 1")),
    ({"COLONIES_REPLAY_FUTURE_SKEW": "-5"}, ("COLONIES_REPLAY_FUTURE_SKEW", "negative")),
    ({"COLONIES_REPLAY_FUTURE_SKEW": "soon"}, ("COLONIES_REPLAY_FUTURE_SKEW", "integer")),
    ({"COLONIES_DB_WAIT": "-1"}, ("COLONIES_DB_WAIT", "negative")),
    ({"COLONIES_DB_WAIT": "a while"}, ("COLONIES_DB_WAIT",)),
])
def test_a_limit_that_cannot_work_is_refused_by_name(env: dict[str, str], fragments: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as raised:
        ServerConfig.from_env(env)
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_settings_made_in_code_are_checked_too() -> None:
    config = ServerConfig(header_timeout_s=-1)
    with pytest.raises(ValueError, match="COLONIES_HEADER_TIMEOUT"):
        config.check_limits()


@pytest.mark.parametrize(("host", "key"), [
    ("10.1.2.3", "10.1.2.3"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    (None, "unknown"),
    ("not-an-address", "not-an-address"),
])
def test_peers_are_counted_by_ipv4_address_or_ipv6_64(host: str | None, key: str) -> None:
    assert peer_key(host) == key


def test_peer_counter_refuses_past_the_total_with_503_and_past_a_share_with_429() -> None:
    counter = PeerCounter("widgets", Cap(5, "TOTAL_VAR"), Cap(3, "PEER_VAR"))
    counter.acquire("a", 3)
    with pytest.raises(TooManyRequests, match="Too many widgets from a: at most 3 .*PEER_VAR"):
        counter.acquire("a")
    counter.acquire("b", 2)
    with pytest.raises(Unavailable, match="Server busy: widgets would exceed the limit of 5 .*TOTAL_VAR"):
        counter.acquire("c")
    assert (counter.total, counter.held_by("a"), counter.held_by("b")) == (5, 3, 2)
    counter.release("a", 3)
    counter.release("b", 2)
    assert (counter.total, counter.held_by("a")) == (0, 0)


def test_a_zero_cap_is_no_cap() -> None:
    counter = PeerCounter("widgets", Cap(0, ""), Cap(0, ""))
    counter.acquire("a", 10**9)
    assert counter.total == 10**9
