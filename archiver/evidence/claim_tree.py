"""Merkle trees over each document's claims, so a bundle can prove that a claim comes from a
document without disclosing the document's other text.

Two levels, both RFC 6962 trees (archiver.evidence.merkle):
- per document, a tree over all the claims ever read from it (superseded ones too), in claim
  id order; a leaf is the canonical JSON of `claim_leaf`:
      {"citations": [{"url": <as written>, "url_key": <normalised>}, … sorted], "id": …, "text": …}
- over the documents, in key order, a tree whose leaves are the canonical JSON of
  `document_leaf`: {"claims_tree": {"root": <hex>, "size": N}, "key": …,
  "versions": [{"sha256": …, "size": <bytes, null if no copy was kept>}, … in reading order]}
  Its root is the manifest's `documents_merkle_root` and is in the signed checkpoint.

A leaf holds a claim's id, text and citations only: its span, kind and the document's title
stay out, since they would tell of text the bundle does not carry."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Iterable, Iterator

from archiver.evidence import merkle
from archiver.evidence.signing import canonical_json
from archiver.store.catalog import Catalog
from archiver.store.database import in_batches, placeholders


def claim_leaf(claim_id: str, text: str, citations: Iterable[dict]) -> bytes:
    """The leaf bytes of a claim; `citations` are dicts with at least `url` and `url_key`."""
    cited = sorted(({"url": c["url"], "url_key": c["url_key"]} for c in citations),
                   key=lambda c: (c["url_key"], c["url"]))
    return canonical_json({"citations": cited, "id": claim_id, "text": text})


def document_leaf(entry: dict) -> bytes:
    """The leaf bytes of a document: from its manifest entry, or the same fields a bundle carries."""
    return canonical_json({"claims_tree": entry["claims_tree"], "key": entry["key"],
                           "versions": [{"sha256": v["sha256"], "size": v["size"]} for v in entry["versions"]]})


def claim_leaves(catalog: Catalog, keys: list[str] | None = None) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """(document key, [(claim id, leaf bytes)] in tree order) for each document, in key order,
    or for the documents named in `keys`."""
    query = ("SELECT cl.document_key, cl.id, cl.text, ci.url, ci.url_key FROM claims cl"
             " LEFT JOIN citations ci ON ci.claim_id = cl.id WHERE {} ORDER BY cl.document_key, cl.id")
    if keys is None:
        yield from _by_document(catalog.query(query.format("cl.document_key IS NOT NULL")))
        return
    # A few hundred keys a statement (one variable each: a bundle may name more documents than a
    # database binds in one), in key order, so the documents still come in key order.
    for batch in in_batches(sorted(keys)):
        yield from _by_document(catalog.query(query.format(f"cl.document_key IN ({placeholders(batch)})"), tuple(batch)))


def _by_document(rows: Iterable[tuple]) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    for key, document_rows in groupby(rows, key=lambda row: row[0]):
        leaves = []
        for claim_id, claim_rows in groupby(document_rows, key=lambda row: row[1]):
            claim_rows = list(claim_rows)
            leaves.append((claim_id, claim_leaf(claim_id, claim_rows[0][2],
                                                [{"url": r[3], "url_key": r[4]} for r in claim_rows if r[3] is not None])))
        yield key, leaves


def tree_of(leaves: list[tuple[str, bytes]]) -> dict:
    return {"root": merkle.root([merkle.leaf_hash(leaf) for _, leaf in leaves]).hex(), "size": len(leaves)}


def document_entries(catalog: Catalog) -> Iterator[dict]:
    """The manifest's document entries, in key order, each with its versions and claim tree."""
    versions = {key: list(rows) for key, rows in groupby(catalog.query(
        "SELECT key, sha256, read_at, size FROM document_versions ORDER BY key, read_at, sha256"), key=lambda r: r[0])}
    trees = {key: tree_of(leaves) for key, leaves in claim_leaves(catalog)}
    for key, sha256, kind, encoding, date, title, warnings in catalog.query(
            "SELECT key, sha256, kind, encoding, date, title, warnings FROM documents ORDER BY key"):
        yield {"key": key, "sha256": sha256, "kind": kind, "encoding": encoding, "date": date, "title": title,
               "warnings": json.loads(warnings), "claims_tree": trees.get(key, tree_of([])),
               "versions": [{"sha256": v[1], "read_at": v[2], "size": v[3]} for v in versions.get(key, [])]}


class Inclusions:
    """Proofs into the tree over `leaves`, hashed and built once for all the proofs asked of it."""

    def __init__(self, leaves: list[bytes]) -> None:
        self._tree = merkle.Tree([merkle.leaf_hash(leaf) for leaf in leaves])

    def of(self, index: int) -> dict:
        """Where leaf `index` is, and its audit path, as a bundle carries them."""
        return {"index": index, "size": self._tree.size, "proof": [h.hex() for h in self._tree.inclusion_proof(index)]}


def proven(leaf: bytes, item: dict, tree: dict) -> bool:
    """Whether `item`'s index and audit path (hex) lead from `leaf` to `tree`'s root and size."""
    try:
        return item["size"] == tree["size"] and merkle.verify_inclusion(
            merkle.leaf_hash(leaf), item["index"], tree["size"], [bytes.fromhex(h) for h in item["proof"]],
            bytes.fromhex(tree["root"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
