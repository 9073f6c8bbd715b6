"""Documents read into a collection, and claims given on the command line (notes): a copy of each
document's bytes kept, then it and its claims listed in the catalog and signed in the custody log."""

from __future__ import annotations

import threading

from archiver.errors import StorageProblem
from archiver.evidence.citation_changes import read_changes
from archiver.evidence.claim_tree import claims_trees, tree_of
from archiver.evidence.custody import CustodyLog
from archiver.evidence.long_lists import LongList
from archiver.read.seeds import Claim, Document
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.store.documents import DocumentCopies
from archiver.capture.warc import warc_now


def record_documents(collection: Collection, custody: CustodyLog, documents: list[Document],
                     stop: threading.Event | None = None) -> None:
    """Keep a copy of each document's bytes, then list it and its claims; claims gone from a
    changed document are superseded. Once `stop` is set, no further document is started."""
    copies = DocumentCopies(collection.root, collection.storage)
    for document in documents:
        if stop is not None and stop.is_set():
            return
        try:
            copies.keep_file(document.open_content(), document.sha256)
        except OSError as exc:
            raise StorageProblem(f"cannot keep a copy of {document.key}: {exc.strerror or exc}",
                                 "free disk space or fix permissions, then run the capture again") from None
        # Its claim ids, signed below as a list, wait on disk: a sheet may have a million.
        ids, read_at = LongList(), warc_now()
        collection.catalog.record_document(document, read_at, ids.extend)
        # The document's claims tree as the catalog now holds it (each claim ever read from it,
        # with its text and what it cites): verify holds the catalog to the latest one signed.
        tree = next((tree for _, tree in claims_trees(collection.catalog, [document.key])), tree_of([]))
        # Where it was read from, and what this read changed in what its claims cite, dated as
        # the catalog dates it: verify holds the catalog's path and citation dates to them.
        custody.append("document read", {"document": document.key, "sha256": document.sha256, "path": str(document.path),
                                         "claims": ids, "claims_tree": tree,
                                         **read_changes(collection.catalog, document.key, read_at)})


def record_note(catalog: Catalog, custody: CustodyLog, claim: Claim, cited_captures: list[str]) -> None:
    """Record a claim given on the command line, citing its URLs (and, by id, `cited_captures`)."""
    at = warc_now()  # signed: when the note was recorded, and so began citing each URL new to it
    catalog.add_note(claim, at)
    custody.append("note recorded", {"claim": claim.id, "urls": [c.url for c in claim.citations], "at": at,
                                     **({"captures": cited_captures} if cited_captures else {})})
