"""Checks of the kept document copies: each version the catalog lists with a size has its copy
under documents/, whole, with the SHA-256 it is named by (archiver.store.documents)."""

from __future__ import annotations

from archiver.check.findings import Report
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.store.documents import DocumentCopies


def check_document_copies(collection: Collection, catalog: Catalog, report: Report) -> None:
    copies = DocumentCopies(collection.root)
    kept = catalog.query("SELECT sha256, MAX(size) FROM document_versions WHERE size IS NOT NULL"
                         " GROUP BY sha256 ORDER BY sha256").fetchall()
    for sha256, size in kept:
        where = copies.relative_path(sha256)
        found = copies.digest_of(sha256)
        if not report.check("document copy", found is not None, where, "missing: the catalog lists this document version"):
            continue
        report.check("document copy", found == (sha256, size), where,
                     f"sha256 and size: expected {sha256} ({size} bytes), found {found[0]} ({found[1]} bytes)")
    unread = catalog.query("SELECT COUNT(*) FROM document_versions WHERE size IS NULL").fetchone()[0]
    if unread:
        report.not_checked.append(f"documents: {unread} version(s) read before archiver kept copies of documents")
