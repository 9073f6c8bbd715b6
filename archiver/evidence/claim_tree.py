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
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator

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


_CLAIM_ROWS = ("SELECT cl.document_key, cl.id, cl.text, ci.url, ci.url_key FROM claims cl"
               " LEFT JOIN citations ci ON ci.claim_id = cl.id WHERE {} ORDER BY cl.document_key, cl.id")


def claim_leaves(catalog: Catalog, keys: list[str] | None = None) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """(document key, [(claim id, leaf bytes)] in tree order) for each document, in key order,
    or for the documents named in `keys`: every leaf held, for the proofs a bundle carries."""
    for key, leaves in _documents(catalog, keys):
        yield key, list(leaves)


def claims_trees(catalog: Catalog, keys: list[str] | None = None) -> Iterator[tuple[str, dict]]:
    """(document key, its claims tree) for each document, in key order, or for those in `keys`:
    each leaf hashed as it is read and let go, so a claim sheet of 250,000 rows costs no more
    memory than a note."""
    for key, leaves in _documents(catalog, keys):
        yield key, tree_of(leaves)


def _documents(catalog: Catalog, keys: list[str] | None) -> Iterator[tuple[str, Iterator[tuple[str, bytes]]]]:
    """(document key, its (claim id, leaf bytes) as the rows are read) for each document."""
    if keys is None:
        yield from _by_document(catalog.stream(_CLAIM_ROWS.format("cl.document_key IS NOT NULL")))
        return
    # A few hundred keys a statement (one variable each: a bundle may name more documents than a
    # database binds in one), in key order, so the documents still come in key order.
    for batch in in_batches(sorted(keys)):
        yield from _by_document(catalog.stream(_CLAIM_ROWS.format(f"cl.document_key IN ({placeholders(batch)})"),
                                              tuple(batch)))


def _by_document(rows: Iterable[tuple]) -> Iterator[tuple[str, Iterator[tuple[str, bytes]]]]:
    # Each document's leaves are made as its consumer takes them: one claim's rows held at a time.
    for key, document_rows in groupby(rows, key=itemgetter(0)):
        yield key, _leaves(document_rows)


def _leaves(document_rows: Iterable[tuple]) -> Iterator[tuple[str, bytes]]:
    for claim_id, claim_rows in groupby(document_rows, key=itemgetter(1)):
        claim_rows = list(claim_rows)
        yield claim_id, claim_leaf(claim_id, claim_rows[0][2],
                                   [{"url": r[3], "url_key": r[4]} for r in claim_rows if r[3] is not None])


def tree_of(leaves: Iterable[tuple[str, bytes]]) -> dict:
    """The root and size of the tree over `leaves`, (claim id, leaf bytes) in tree order."""
    tree = merkle.Root()
    for _, leaf in leaves:
        tree.add(merkle.leaf_hash(leaf))
    return {"root": tree.hex(), "size": tree.size}


def document_entries(catalog: Catalog) -> Iterator[dict]:
    """The manifest's document entries, in key order, each with its versions and claim tree.
    Versions and trees are read alongside the documents, grouped by the same documents' key in
    the same order, rather than held for every document first."""
    versions = _Alongside(catalog.stream(
        "SELECT d.key, v.sha256, v.read_at, v.size FROM documents d JOIN document_versions v ON v.key = d.key"
        " ORDER BY d.key, v.read_at, v.sha256"), lambda rows: [{"sha256": v[1], "read_at": v[2], "size": v[3]}
                                                              for v in rows])
    trees = _Alongside(catalog.stream(
        "SELECT d.key, cl.id, cl.text, ci.url, ci.url_key FROM documents d JOIN claims cl ON cl.document_key = d.key"
        " LEFT JOIN citations ci ON ci.claim_id = cl.id ORDER BY d.key, cl.id"), lambda rows: tree_of(_leaves(rows)))
    for key, sha256, kind, encoding, date, title, warnings in catalog.stream(
            "SELECT key, sha256, kind, encoding, date, title, warnings FROM documents ORDER BY key"):
        yield {"key": key, "sha256": sha256, "kind": kind, "encoding": encoding, "date": date, "title": title,
               "warnings": json.loads(warnings), "claims_tree": trees.of(key) or tree_of([]),
               "versions": versions.of(key) or []}


class _Alongside:
    """Rows of a query joined to `documents` and ordered by its key, grouped by that key and
    taken as the documents, read in the same order, ask: a group's key is either the document
    asked or a later one (its document has no such rows), so equality alone walks them."""

    def __init__(self, rows: Iterable[tuple], make: Callable[[Iterable[tuple]], Any]) -> None:
        self._groups = groupby(rows, key=itemgetter(0))
        self._make = make
        self._pending = next(self._groups, None)

    def of(self, key: str) -> Any:
        """What `make` makes of `key`'s rows, None if it has none."""
        if self._pending is None or self._pending[0] != key:
            return None
        made = self._make(self._pending[1])
        self._pending = next(self._groups, None)
        return made


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
