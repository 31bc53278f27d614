"""The fast JSON text codec reads and writes what the standard library does, exactly."""

from __future__ import annotations

import json
import random

import pytest

from pycolonies import jsontext
from server.payload import JsonRejected, load_json

WIDE = [2**64, 2**64 - 1, -(2**63), -(2**63) - 1, 10**30, -(10**30), 2**200]


@pytest.mark.parametrize("number", WIDE)
def test_integers_beyond_64_bits_stay_exact_both_ways(number: int) -> None:
    text = jsontext.dumps({"n": number, "list": [number]})
    assert json.loads(text) == {"n": number, "list": [number]}
    assert jsontext.loads(text) == {"n": number, "list": [number]}
    assert type(jsontext.loads(text)["n"]) is int
    assert jsontext.loads(text.encode()) == {"n": number, "list": [number]}


def test_a_nanosecond_timestamp_is_read_exactly() -> None:
    assert jsontext.loads(b'{"requesttime": 1764619200123456789}') == {"requesttime": 1764619200123456789}


def test_what_orjson_refuses_is_left_to_the_standard_library() -> None:
    assert jsontext.dumps({1: "int key"}) == '{"1":"int key"}'
    assert json.loads(jsontext.dumps({"s": "\ud800"})) == {"s": "\ud800"}
    with pytest.raises(ValueError):
        jsontext.loads("[1,")
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        jsontext.loads("[NaN]", parse_constant=refuse)


def test_the_payload_checks_still_apply() -> None:
    with pytest.raises(JsonRejected, match="NUL"):
        load_json(b'{"spec": {"funcname": "a\\u0000b"}}')
    with pytest.raises(JsonRejected, match="nested deeper"):
        load_json(b"[" * 150 + b"]" * 150)
    with pytest.raises(ValueError, match="Infinity is not valid JSON"):
        load_json(b'{"x": Infinity}')
    assert load_json(b'{"x": 123456789012345678901234567890}') == {"x": 123456789012345678901234567890}


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**64 - 1, rng.randrange(-(10**25), 10**25)])
    if kind == 2:
        return rng.choice([0.1, -2.5, 1e16, 1e-7, rng.random()])
    if kind in (3, 4):
        return "".join(rng.choice("aé✓𝄞\"\\\n\t 0123456789") for _ in range(rng.randrange(12)))
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}{rng.choice('é✓ ')}": _value(rng, depth + 1) for i in range(rng.randrange(4))}


def test_random_documents_round_trip_like_the_standard_library() -> None:
    rng = random.Random(19)
    for _ in range(2000):
        value = _value(rng)
        text = jsontext.dumps(value)
        assert jsontext.loads(text) == json.loads(text) == value
        assert jsontext.loads(json.dumps(value)) == value


def test_a_number_too_large_for_a_float_is_never_written_as_null() -> None:
    value = jsontext.loads(b'{"args": [1e400, -1e400, 1.5]}')
    assert value["args"][0] == float("inf") and value["args"][1] == float("-inf")
    assert jsontext.dumps(value) == '{"args":[Infinity,-Infinity,1.5]}'  # refused by strict readers
