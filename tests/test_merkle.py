"""The Merkle tree against RFC 6962's own definition, and proofs that fail when altered."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st

from archiver.evidence.merkle import inclusion_proof, leaf_hash, root, verify_inclusion


def reference_root(entries: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + reference_root(entries[:k]) + reference_root(entries[k:])).digest()


@given(st.lists(st.binary(max_size=8), max_size=40))
def test_root_is_rfc6962_mth(entries):
    assert root([leaf_hash(e) for e in entries]) == reference_root(entries)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 31, 64, 100])
def test_every_proof_verifies_and_no_altered_one_does(size):
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    head = root(leaves)
    for index in range(size):
        proof = inclusion_proof(index, leaves)
        assert verify_inclusion(leaves[index], index, size, proof, head)
        assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, head)
        if size > 1:
            assert not verify_inclusion(leaves[index], (index + 1) % size, size, proof, head)
        for position in range(len(proof)):
            altered = list(proof)
            altered[position] = bytes(32)
            assert not verify_inclusion(leaves[index], index, size, altered, head)
        assert not verify_inclusion(leaves[index], index, size, proof + [bytes(32)], head)
