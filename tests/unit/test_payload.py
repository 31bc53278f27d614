"""server.payload.load_json: the nesting limit and the text rules, with the path of the problem."""

from __future__ import annotations

import pytest

from server.payload import MAX_DEPTH, JsonRejected, load_json


def lists(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("as_bytes", [False, True])
def test_exactly_the_limit_is_accepted_and_one_more_is_not(as_bytes: bool) -> None:
    ok = '{"a": ' + lists(MAX_DEPTH - 1) + "}"
    over = '{"a": ' + lists(MAX_DEPTH) + "}"
    assert load_json(ok.encode() if as_bytes else ok)["a"] is not None
    with pytest.raises(JsonRejected) as raised:
        load_json(over.encode() if as_bytes else over)
    assert raised.value.path.startswith("a[0][0]") and "nested deeper than 100" in str(raised.value)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_deeper_than_the_decoder_goes_still_names_the_path(as_bytes: bool) -> None:
    text = '{"x": 1, "s": {"args": [1, "a,b]", {"k": ' + lists(50_000) + "}]}}"
    with pytest.raises(JsonRejected) as raised:
        load_json(text.encode() if as_bytes else text)
    assert raised.value.path.startswith("s.args[2].k[0][0]")
    assert raised.value.path.endswith("...")  # shortened


@pytest.mark.parametrize(("text", "path", "problem"), [
    ('{"a": ["ok", "x\\ud800"]}', "a[1]", "lone surrogate"),
    ('{"a": {"k\\udfff": 1}}', "a.k\\udfff", "(a key) contains a lone surrogate"),
    ('{"a": "\\u0000"}', "a", "NUL"),
    ('"\\ud800"', "", "lone surrogate"),
])
def test_text_that_cannot_be_stored_is_refused_with_its_path(text: str, path: str, problem: str) -> None:
    for raw in (text, text.encode()):
        with pytest.raises(JsonRejected) as raised:
            load_json(raw)
        assert raised.value.path == path and problem in str(raised.value)
        assert str(raised.value).isascii()


def test_raw_surrogate_bytes_are_refused_too() -> None:
    with pytest.raises(JsonRejected):
        load_json(b'{"a": "\xed\xa0\x80"}')  # json.loads decodes bytes with surrogatepass


def test_surrogate_pairs_and_other_text_are_fine() -> None:
    assert load_json('{"e": "\\ud83d\\ude00", "t": "caf\\u00e9 \\\\u0000"}') == {
        "e": "\U0001f600", "t": "café \\u0000"}


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]"])
def test_non_finite_constants_are_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        load_json(text)
