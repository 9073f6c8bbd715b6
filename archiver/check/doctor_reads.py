"""Documents and notes the catalog lists but the custody log never recorded: the run died, or
the log's disk filled, between the catalog's commit and the log's entry. A document version is
read again from its kept copy, and what that reading gives is recorded, marked late: a claim
the catalog holds but the copy does not make stays unrecorded, and verify names it. A note has
no copy: its claim and URLs are recorded as the catalog holds them, marked late."""

from __future__ import annotations

import dataclasses

from archiver.check.doctor_findings import Diagnosis, Finding
from archiver.errors import UsageProblem
from archiver.evidence.citation_changes import read_changes
from archiver.evidence.claim_tree import claims_trees, tree_of
from archiver.evidence.keys import custody_log
from archiver.evidence.signing import SigningKey
from archiver.read.model import Document
from archiver.read.seeds import NotADocument, parse_document
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.store.documents import DocumentCopies


def unlogged_reads(collection: Collection, catalog: Catalog, key: SigningKey | None, diagnosis: Diagnosis,
                   documents_read: set[str], claims_read: set[str]) -> None:
    """Record (with `key`; without, only report) each document version and note unrecorded:
    `documents_read` are the SHA-256 of the versions the log records, `claims_read` its claims."""
    copies = DocumentCopies(collection.root, collection.storage)
    for document_key, sha256, path, read_at in catalog.query(
            "SELECT v.key, v.sha256, d.path, v.read_at FROM document_versions v JOIN documents d ON d.key = v.key"
            " WHERE v.size IS NOT NULL ORDER BY v.read_at, v.key").fetchall():
        if sha256 in documents_read:
            continue
        finding = Finding("unlogged document read", f"document {document_key} (sha256 {sha256[:16]}…)",
                          "cataloged, but the custody log has no entry reading it")
        diagnosis.findings.append(finding)
        if key is None:
            continue
        try:
            document = parse_document(copies.read(sha256), path, document_key)
        except (OSError, ValueError, UsageProblem, NotADocument) as exc:
            finding.detail += f"; its kept copy cannot be read again ({exc}): read the document again"
            continue
        if document.sha256 != sha256:
            finding.detail += "; its kept copy is not the version read: read the document again"
            continue
        # Claims of repeated words have the ids that reading paired them to (store/claim_pairing.py).
        document = dataclasses.replace(document, claims=tuple(catalog.recorded_claims(document)))
        if problem := _unjustified(catalog, document, claims_read):
            finding.detail += f"; {problem}: read the document again"
            continue
        tree = next((tree for _, tree in claims_trees(catalog, [document_key])), tree_of([]))
        # The read's time is its version's: the read that went unlogged is the one that added it.
        custody_log(collection, key).append("document read", {
            "document": document_key, "sha256": sha256, "path": path, "claims": [claim.id for claim in document.claims],
            "claims_tree": tree, **read_changes(catalog, document_key, read_at), "recorded_late": True})
        documents_read.add(sha256)
        claims_read.update(claim.id for claim in document.claims)
        finding.fixed = "read again from its kept copy and recorded in the custody log, marked late"
    notes: dict[str, list[str]] = {}
    for claim_id, url in catalog.query("SELECT cl.id, ci.url FROM claims cl LEFT JOIN citations ci ON ci.claim_id = cl.id"
                                       " WHERE cl.document_key IS NULL ORDER BY cl.id, ci.url"):
        if claim_id not in claims_read:
            notes.setdefault(claim_id, []).extend([url] if url is not None else [])
    for claim_id, urls in notes.items():
        finding = Finding("unlogged note", f"claim {claim_id}", "cataloged, but the custody log has no entry recording it")
        diagnosis.findings.append(finding)
        if key is not None:
            custody_log(collection, key).append("note recorded", {"claim": claim_id, "urls": urls, "recorded_late": True})
            finding.fixed = "recorded in the custody log as the catalog holds it, marked late"


def _unjustified(catalog: Catalog, document: Document, claims_read: set[str]) -> str | None:
    """Why the catalog's claims of `document` are not what reading its copy, and the reads the
    log signed before, account for; None when they are, and the claims tree may be signed."""
    current = {claim.id: {citation.normalised for citation in claim.citations} for claim in document.claims}
    cataloged: dict[str, set[str]] = {}
    for claim_id, superseded_at, url_key in catalog.query(
            "SELECT cl.id, cl.superseded_at, ci.url_key FROM claims cl LEFT JOIN citations ci ON ci.claim_id = cl.id"
            " WHERE cl.document_key = ?", (document.key,)):
        if superseded_at is None or claim_id in current:
            cataloged.setdefault(claim_id, set()).update([url_key] if url_key is not None else [])
        elif claim_id not in claims_read:
            return f"the catalog holds claim {claim_id} of it that no signed read made"
    if cataloged != current:
        return "the catalog's claims of it, or what they cite, are not what its kept copy makes"
    return None
