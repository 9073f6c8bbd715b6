"""PublicKey.verify (libsodium for small messages, OpenSSL for large ones) gives the verdict
OpenSSL gives on every signature this program makes and on every one-bit change of it, its
message or its key."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.evidence.signing import SMALL_MESSAGE, PublicKey

PRIVATE = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


def openssl_verdict(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
        return True
    except InvalidSignature:
        return False


def flipped(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=600), bit=st.integers(0, 8 * 600), where=st.sampled_from(["signature", "data", "key"]),
       large=st.booleans())
def test_a_signature_and_each_one_bit_change_of_it_get_openssls_verdict(data: bytes, bit: int, where: str, large: bool) -> None:
    data = data * (SMALL_MESSAGE // len(data) + 1) if large else data
    signature, public = PRIVATE.sign(data), PRIVATE.public_key()
    assert PublicKey(public).verify(signature, data)
    if where == "signature":
        signature = flipped(signature, bit)
    elif where == "data":
        data = flipped(data, bit)
    else:
        public = Ed25519PublicKey.from_public_bytes(flipped(public.public_bytes_raw(), bit))
    assert PublicKey(public).verify(signature, data) is openssl_verdict(public, signature, data) is False


@pytest.mark.parametrize("data", [b"claim", b"claim" * SMALL_MESSAGE], ids=["small", "large"])
@pytest.mark.parametrize("signature", [b"", b"\0" * 63, b"\0" * 65, None], ids=["empty", "short", "long", "other key"])
def test_a_signature_of_the_wrong_length_or_by_another_key_is_refused(signature: bytes | None, data: bytes) -> None:
    assert PublicKey(PRIVATE.public_key()).verify(OTHER.sign(data) if signature is None else signature, data) is False
