"""A Merkle tree over a manifest's capture entries, as Certificate Transparency builds it
(RFC 6962 §2.1, RFC 9162 §2.1): a bundle can prove that the captures it carries are in the
collection's signed manifest without revealing the others."""

from __future__ import annotations

import hashlib


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _parent_level(level: list[bytes]) -> list[bytes]:
    # Pairing left to right and promoting an odd last node unhashed gives RFC 6962's tree, whose
    # left subtree is always the largest power of two: a promoted node's sibling sits higher up.
    return [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]


def root(leaves: list[bytes]) -> bytes:
    """The tree head over leaf hashes; the hash of nothing for an empty tree."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


class Root:
    """The tree head of leaf hashes added one at a time, holding O(log n) hashes: the root of
    the perfect subtree for each 1 bit of the count so far, largest first. RFC 6962 splits a
    tree at the largest power of two below its size, so its head is those subtrees joined from
    the right; a manifest's hundreds of thousands of entries then need no list of their hashes."""

    def __init__(self) -> None:
        self.size = 0
        self._subtrees: list[bytes] = []

    def add(self, leaf: bytes) -> None:
        node, self.size = leaf, self.size + 1
        # Each trailing 1 bit of the old count is a subtree of that size, now joined with its twin.
        carry = self.size
        while not carry & 1:
            node = _node(self._subtrees.pop(), node)
            carry >>= 1
        self._subtrees.append(node)

    def digest(self) -> bytes:
        """As root() of every leaf added."""
        if not self._subtrees:
            return root([])
        node = self._subtrees[-1]
        for left in reversed(self._subtrees[:-1]):
            node = _node(left, node)
        return node

    def hex(self) -> str:
        return self.digest().hex()


class Tree:
    """A tree over leaf hashes with every level kept, built once: each audit path is then read
    from it in O(log n), where building a path from the leaves alone costs O(n), and a bundle
    proves every claim of a document (or every capture of a manifest) into one tree."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.size = len(leaves)
        self._levels = [leaves]
        while len(self._levels[-1]) > 1:
            self._levels.append(_parent_level(self._levels[-1]))

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path for leaf `index` (RFC 6962 PATH), leaf-side first: the sibling at each
        level, none where the node is an odd last one promoted to the level above."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        path = []
        for level in self._levels[:-1]:
            if (index ^ 1) < len(level):
                path.append(level[index ^ 1])
            index >>= 1
        return path


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` lead from `leaf` at `index` to `expected_root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = _node(sibling, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            node = _node(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and node == expected_root
