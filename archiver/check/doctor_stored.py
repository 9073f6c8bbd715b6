"""On a collection whose store other machines share: what this folder holds that the store
does not, though the catalog lists it (a manifest or a file sealing it, a document copy),
left by an export or a read stopped before storing it, or by a migration made before these
were stored. Other machines cannot fetch it: with the key, doctor stores it."""

from __future__ import annotations

from archiver.check.doctor_findings import Diagnosis, Finding
from archiver.evidence.shared_manifests import store_manifests, unstored_manifests
from archiver.store.collection import Collection
from archiver.store.documents import DocumentCopies
from archiver.store.leftovers import shared_by_machines


def unstored_files(collection: Collection, fix: bool, diagnosis: Diagnosis) -> None:
    if not shared_by_machines(collection.storage):
        return
    copies = DocumentCopies(collection.root, collection.storage)
    findings = [Finding("unstored manifest file", f"manifests/{name}", "an export stopped before storing it where "
                        "other machines fetch it") for name in unstored_manifests(collection)]
    findings += [Finding("unstored document copy", copies.relative_path(sha256), "a read stopped before storing it "
                         "where other machines fetch it") for sha256 in copies.unstored(_kept_copies(collection))]
    if fix:
        store_unstored(collection)
        for finding in findings:
            finding.fixed = "stored"
    diagnosis.findings += findings


def store_unstored(collection: Collection) -> None:
    """Store each manifest file and document copy the catalog lists that only this folder holds."""
    store_manifests(collection)
    copies = DocumentCopies(collection.root, collection.storage)
    for sha256 in copies.unstored(_kept_copies(collection)):
        copies.store(sha256)


def _kept_copies(collection: Collection) -> list[str]:
    with collection:
        return [row[0] for row in collection.catalog.query(
            "SELECT DISTINCT sha256 FROM document_versions WHERE size IS NOT NULL ORDER BY sha256")]
