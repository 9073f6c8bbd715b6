"""The Merkle tree against RFC 6962's own definition, and proofs that fail when altered."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import pytest
from hypothesis import given, strategies as st

from archiver.evidence.merkle import Tree, leaf_hash, root, verify_inclusion


def reference_root(entries: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1 << ((len(entries) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + reference_root(entries[:k]) + reference_root(entries[k:])).digest()


def reference_paths(leaves: list[bytes]) -> list[list[bytes]]:
    """PATH(m, D[n]) for every m, straight from RFC 6962 §2.1.1: each path built down from the
    whole tree, splitting at the largest power of two below its size (the subtrees' MTH cached,
    so that every size up to 300 is checked in a second)."""
    @lru_cache(maxsize=None)
    def mth(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaves[start]
        k = start + (1 << ((end - start - 1).bit_length() - 1))
        return hashlib.sha256(b"\x01" + mth(start, k) + mth(k, end)).digest()

    def path(m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = start + (1 << ((end - start - 1).bit_length() - 1))
        return path(m, start, k) + [mth(k, end)] if m < k else path(m, k, end) + [mth(start, k)]

    return [path(m, 0, len(leaves)) for m in range(len(leaves))]


def test_every_audit_path_read_from_the_levels_is_rfc6962s_for_every_size_to_300():
    leaves = [leaf_hash(str(i).encode()) for i in range(300)]
    for size in range(1, 301):
        tree = Tree(leaves[:size])
        assert [tree.inclusion_proof(m) for m in range(size)] == reference_paths(leaves[:size]), size


@pytest.mark.parametrize("size", [0, 1, 5])
def test_a_leaf_outside_the_tree_has_no_path(size):
    tree = Tree([leaf_hash(str(i).encode()) for i in range(size)])
    for index in (-1, size):
        with pytest.raises(IndexError):
            tree.inclusion_proof(index)


@given(st.lists(st.binary(max_size=8), max_size=40))
def test_root_is_rfc6962_mth(entries):
    assert root([leaf_hash(e) for e in entries]) == reference_root(entries)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 31, 64, 100])
def test_every_proof_verifies_and_no_altered_one_does(size):
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    head, tree = root(leaves), Tree(leaves)
    for index in range(size):
        proof = tree.inclusion_proof(index)
        assert verify_inclusion(leaves[index], index, size, proof, head)
        assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, head)
        if size > 1:
            assert not verify_inclusion(leaves[index], (index + 1) % size, size, proof, head)
        for position in range(len(proof)):
            altered = list(proof)
            altered[position] = bytes(32)
            assert not verify_inclusion(leaves[index], index, size, altered, head)
        assert not verify_inclusion(leaves[index], index, size, proof + [bytes(32)], head)
