"""What a bundle carries of the documents its claims come from.

Every claim read from a document travels with an inclusion proof into its document's claim
tree, and every such document with its manifest leaf (key, versions, claim tree) and an
inclusion proof into the signed checkpoint's `documents_merkle_root` (see
archiver.evidence.claim_tree), all in `evidence/documents.json`. A disclosed document (one
whose claims were chosen by --all, --url or --document) also travels whole: each version kept,
byte for byte, as `evidence/document-<sha256>`. A document whose claims were chosen one by one
(--claim) does not, so its other claims' text stays out of the bundle, yet each chosen claim is
proven to be one of its claims."""

from __future__ import annotations

import hashlib
import json

from archiver.errors import UsageProblem
from archiver.evidence.claim_tree import Inclusions, claim_leaves, document_leaf, tree_of
from archiver.evidence.signing import canonical_json
from archiver.store.catalog import Catalog
from archiver.store.documents import DocumentCopies
from archiver.store.rows import ClaimRow

PROOFS = "evidence/documents.json"
COPY_PREFIX = "evidence/document-"  # WACZ allows extra files one folder deep: hence no documents/ folder


class DocumentEntries:
    """Collects, while the manifest is read, the document entries a bundle needs (`on_document`
    is a read_manifest handler), with every document's leaf for the proofs."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.leaves: list[bytes] = []
        self.found: dict[str, tuple[int, dict]] = {}

    def on_document(self, entry: dict, raw: bytes) -> None:
        if entry["key"] in self.wanted:
            self.found[entry["key"]] = (len(self.leaves), entry)
        self.leaves.append(document_leaf(entry))


def document_evidence(catalog: Catalog, copies: DocumentCopies, entries: DocumentEntries, sequence: int,
                      claims: list[ClaimRow], disclosed: set[str]) -> dict[str, bytes]:
    """The bundle files proving `claims` come from their documents, and the copies of the
    `disclosed` documents. Raises UsageProblem when the catalog no longer matches manifest
    `sequence` (a capture changed it meanwhile) or a kept copy is damaged."""
    chosen = {c.id for c in claims}
    keys = sorted({c.document_key for c in claims if c.document_key})
    files: dict[str, bytes] = {}
    documents, proven_claims = [], []
    into_documents = Inclusions(entries.leaves)
    for key, leaves in claim_leaves(catalog, keys):
        index, entry = entries.found.get(key, (None, None))
        if entry is None or entry["claims_tree"] != tree_of(leaves):
            raise UsageProblem(f"the claims of {key} changed since manifest {sequence} was made",
                               "run the bundle again")
        carried = []
        if key in disclosed:
            for version in entry["versions"]:
                if version["size"] is not None and version["sha256"] not in carried:
                    files[COPY_PREFIX + version["sha256"]] = _copy(copies, version["sha256"])
                    carried.append(version["sha256"])
        documents.append({"entry": json.loads(document_leaf(entry)), "copies": carried, **into_documents.of(index)})
        into_claims = Inclusions([leaf for _, leaf in leaves])
        proven_claims += [{"claim": claim_id, "document": key, **into_claims.of(i)}
                          for i, (claim_id, _) in enumerate(leaves) if claim_id in chosen]
    files[PROOFS] = canonical_json({"manifest_sequence": sequence, "documents": documents, "claims": proven_claims})
    return files


def _copy(copies: DocumentCopies, sha256: str) -> bytes:
    try:
        data = copies.read(sha256)
    except OSError as exc:
        raise UsageProblem(f"cannot read the kept document copy {copies.relative_path(sha256)}: {exc.strerror or exc}",
                           "run `archiver verify` to see what is missing") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UsageProblem(f"the kept document copy {copies.relative_path(sha256)} is damaged (its SHA-256 differs)",
                           "run `archiver verify`; restore the file from a backup")
    return data
