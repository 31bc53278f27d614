"""Keys, ids and signatures against fixed test vectors."""

from __future__ import annotations

import hashlib

import pytest

from pycolonies import Crypto, crypto

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

KEY_VECTORS = [
    (
        "6d2fb6f546bacfd98c68769e61e0b44a697a30596c018a50e28200aa59b01c0a",
        "4fef2b5a82d134d058c1883c72d6d9caf77cd59ca82d73105017590dea3dcb87",
    ),
    (
        "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d",
        "039231c7644e04b6895471dd5335cf332681c54e27f81fac54f9067b3f2c0103",
    ),
    (
        "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514",
        "4787a5071856a4acf702b2ffcea422e3237a679c681314113d86139461290cf4",
    ),
    (
        "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05",
        "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac",
    ),
    (
        "d6eb959e9aec2e6fdc44b5862b269e987b8a4d6f2baca542d8acaa97ee5e74f6",
        "5d6568f883451ae2e407d1a0a7992e414f2a67b69d0e6e9176d353b98f06f696",
    ),
]

PUBKEY_0 = (
    "0408e903276ee7973666dceeefa5335e5c4b6b5989821906db98f8de8acf8f8538"
    "24ca3234a8602200baa2d75f30cb2050cda18602824c3eb2da654a93a01a7ad4"
)

HELLO_KEY = KEY_VECTORS[4][0]
HELLO_ID = KEY_VECTORS[4][1]
HELLO_SIG_COINCURVE = (
    "e713a1bb015fecabb5a084b0fe6d6e7271fca6f79525a634183cfdb175fe6924"
    "1f4da161779d8e6b761200e1cf93766010a19072fa778f9643363e2cfadd640900"
)
HELLO_SIG_GO = (
    "997eca36736d465e0e8d64e6d657ff4c939c8f5cad4272797ea0fe372bfd8d09"
    "53d21b3d06ded5dd80aee8cfa3a9be7ce615ce690eb64184fe15962943fe541300"
)

COLONY_KEY = KEY_VECTORS[2][0]
COLONY_ID = KEY_VECTORS[2][1]
ENVELOPE = {
    "signature": (
        "6445d52dc29332e0c2f298013b1bf5f2b66a492fb3303dcdd960cd4ca780afa5"
        "7977c75ecb1e25ed4d167d0b426cff002b68453380f627eaa3367492cb9eece800"
    ),
    "payloadtype": "getcolonymsg",
    "payload": "eyJjb2xvbnluYW1lIjoiZGV2IiwibXNndHlwZSI6ImdldGNvbG9ueW1zZyJ9",
}


def test_sha3_is_fips_sha3_not_keccak() -> None:
    assert crypto.sha3_hex("hello world") == (
        "644bcc7e564373040999aac89e7622f3ca71fba1d972fd94a31c3bfbf24e3938"
    )
    assert crypto.sha3_hex(b"hello") == ("3338be694f50c5f338814986cdf0686453a888b84f424d792af4b9202398f392")


@pytest.mark.parametrize(("prvkey", "expected_id"), KEY_VECTORS)
def test_id_vectors(prvkey: str, expected_id: str) -> None:
    assert crypto.derive_id(prvkey) == expected_id
    assert Crypto().id(prvkey) == expected_id


def test_public_key_and_id_is_hash_of_hex_text() -> None:
    prvkey = KEY_VECTORS[0][0]
    assert crypto.public_key_hex(prvkey) == PUBKEY_0
    assert crypto.derive_id(prvkey) == hashlib.sha3_256(PUBKEY_0.encode()).hexdigest()
    assert crypto.id_from_public_key(bytes.fromhex(PUBKEY_0)) == KEY_VECTORS[0][1]


def test_sign_hello_matches_pycolonies_vector() -> None:
    assert crypto.sign("hello", HELLO_KEY) == HELLO_SIG_COINCURVE
    assert Crypto().sign("hello", HELLO_KEY) == HELLO_SIG_COINCURVE


@pytest.mark.parametrize("signature", [HELLO_SIG_COINCURVE, HELLO_SIG_GO])
def test_both_hello_signatures_recover_to_the_same_id(signature: str) -> None:
    assert crypto.recover_id("hello", signature) == HELLO_ID
    assert Crypto().recid("hello", signature) == HELLO_ID


def test_signature_for_another_message_recovers_another_id() -> None:
    assert crypto.recover_id("hellO", HELLO_SIG_COINCURVE) != HELLO_ID


def test_full_envelope_vector_recovers_colony_id() -> None:
    assert crypto.recover_id(ENVELOPE["payload"], ENVELOPE["signature"]) == COLONY_ID


def test_full_envelope_signed_fresh_recovers_colony_id() -> None:
    signature = crypto.sign(ENVELOPE["payload"], COLONY_KEY)
    assert len(signature) == 130
    assert crypto.recover_id(ENVELOPE["payload"], signature) == COLONY_ID


def test_fresh_keys_round_trip() -> None:
    seen = set()
    for _ in range(5):
        prvkey = Crypto().prvkey()
        assert len(prvkey) == 64
        assert prvkey == prvkey.lower()
        assert 0 < int(prvkey, 16) < _N
        signature = crypto.sign("payload", prvkey)
        assert len(signature) == 130
        assert int(signature[64:128], 16) <= _N // 2  # low-S
        assert signature[128:] in ("00", "01")
        assert crypto.recover_id("payload", signature) == crypto.derive_id(prvkey)
        seen.add(prvkey)
    assert len(seen) == 5


def _high_s(signature: str) -> str:
    r = signature[:64]
    s = int(signature[64:128], 16)
    v = int(signature[128:], 16)
    return r + (_N - s).to_bytes(32, "big").hex() + f"{v ^ 1:02x}"


def test_high_s_signature_is_rejected() -> None:
    malleated = _high_s(HELLO_SIG_COINCURVE)
    assert int(malleated[64:128], 16) > _N // 2
    with pytest.raises(crypto.SignatureError, match="over half the order"):
        crypto.recover_id("hello", malleated)


@pytest.mark.parametrize(
    ("signature", "match"),
    [
        ("zz" * 65, "not hex"),
        (HELLO_SIG_COINCURVE[:-2], "length"),
        (HELLO_SIG_COINCURVE + "00", "length"),
        ("", "length"),
        (HELLO_SIG_COINCURVE[:128] + "02", "recovery id"),
        ("00" * 32 + "00" * 32 + "00", "half the order"),
    ],
)
def test_malformed_signatures_are_rejected(signature: str, match: str) -> None:
    with pytest.raises(crypto.SignatureError, match=match):
        crypto.recover_id("hello", signature)


def test_signature_error_is_a_value_error() -> None:
    assert issubclass(crypto.SignatureError, ValueError)


@pytest.mark.parametrize(
    "prvkey",
    [
        "xyz",
        "g" * 64,
        "ab" * 31,  # 31 bytes
        "ab" * 33,  # 33 bytes
        "00" * 32,  # zero scalar
        _N.to_bytes(32, "big").hex(),  # == n, out of range
    ],
)
def test_bad_private_keys_are_rejected(prvkey: str) -> None:
    with pytest.raises(ValueError):
        crypto.derive_id(prvkey)
    with pytest.raises(ValueError):
        crypto.sign("hello", prvkey)
