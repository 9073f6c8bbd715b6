"""What `doctor` reports on a shared collection, beyond an interrupted run's leftovers: capture
jobs whose worker stopped beating, objects in the store that no catalog row names, WARC files a
stopped worker left unuploaded on its machine, manifests only the machine that exported them
holds, and worker keys (key files, custody entries, attestations) that no custody entry
announces. These are reported for a person to judge and never repaired: an object in a WORM
store is never deleted, the live workers take stalled jobs again, and only the collection's key
can announce a key."""

from __future__ import annotations

import json

from archiver.check.doctor_findings import Finding
from archiver.evidence.custody import parse_entry
from archiver.evidence.key_status import key_statuses_in
from archiver.evidence.keys import custody_lines
from archiver.evidence.signing import grouped
from archiver.evidence.shared_manifests import MANIFESTS, listed_files
from archiver.evidence.worker_keys import this_machines_worker_key, worker_key_path
from archiver.store.collection import Collection
from archiver.store.documents import FOLDER as DOCUMENTS
from archiver.store.s3 import COLLECTION_MARKER


def shared_findings(collection: Collection) -> list[Finding]:
    """The findings above that apply: jobs and keys on a PostgreSQL catalog, objects on an S3 store."""
    findings = []
    if collection.config.catalog_url:
        findings += _stalled_jobs(collection) + _unannounced_keys(collection)
    if collection.config.storage.url:
        findings += _orphaned_objects(collection)
        if collection.config.catalog_url:
            findings += _left_by_a_stopped_writer(collection)
        findings += _manifests_held_elsewhere(collection)
    return findings


def _manifests_held_elsewhere(collection: Collection) -> list[Finding]:
    """Manifests the catalog lists that neither the store nor this folder holds: the export that
    made one stopped before storing it, and only its machine's folder has it (doctor there stores it)."""
    with collection:
        if collection.catalog.locks.being_exported():  # listed, not stored yet: an export under way
            return []
        listed = [row[0] for row in collection.catalog.query("SELECT file FROM manifests ORDER BY sequence")]
    held = set(collection.storage.shared_names(MANIFESTS))  # after the catalog: what it listed is stored by now
    return [Finding("manifest on another machine only", f"manifests/{name}",
                    "listed in the catalog, but neither the store nor this folder holds it: the export that made it "
                    "stopped before storing it. Run `archiver doctor --fix` in the folder it was exported from")
            for name in listed if name not in held and not (collection.root / MANIFESTS / name).exists()]


def _left_by_a_stopped_writer(collection: Collection) -> list[Finding]:
    """WARC files the catalog lists as being written that no live process writes and the store
    does not hold, nor this folder: a worker on another machine stopped before uploading one.
    Its captures are in no one's reach until that machine's folder finishes it."""
    storage = collection.storage
    here = set(storage.unfinished())
    with collection:
        catalog = collection.catalog
        open_files = [row[0] for row in catalog.query("SELECT name FROM warc_files WHERE closed_at IS NULL ORDER BY name")]
        left = [name for name in open_files if name not in here and not catalog.locks.being_written(name)
                and storage.state(name) is None]
    return [Finding("WARC file left on another machine", f"warcs/{name}",
                    "listed as being written, but no archiver process writes it and the store does not hold it: "
                    "the worker writing it stopped before uploading it. Start `archiver worker` (or run "
                    "`archiver doctor --fix`) in that machine's folder; until then the captures in it are on that "
                    "machine alone")
            for name in left]


def _stalled_jobs(collection: Collection) -> list[Finding]:
    from archiver.capture.queue import STALLED_AFTER, TAKEN_AGAIN, queue_location, stalled_jobs  # procrastinate: only when shared

    return [Finding("stalled job", f"job {job}", f"capturing {url}, its worker's last heartbeat at {beat or 'never'} "
                    f"(over {STALLED_AFTER:g} s ago): it is {TAKEN_AGAIN}")
            for job, url, beat in stalled_jobs(queue_location(collection))]


def _orphaned_objects(collection: Collection) -> list[Finding]:
    storage = collection.storage
    with collection:
        cataloged = {row[0] for row in collection.catalog.query("SELECT name FROM warc_files")}
        cataloged |= {f"{DOCUMENTS}/{row[0]}" for row in collection.catalog.query("SELECT sha256 FROM document_versions")}
    cataloged |= {f"{MANIFESTS}/{name}" for name in listed_files(collection)} | {COLLECTION_MARKER}
    return [Finding("orphaned object", storage.object_url(name),
                    "in the store but named by no catalog row (an upload whose catalog commit never came, or put "
                    "there by hand); kept: doctor never deletes an object")
            for name in storage.object_names() if name not in cataloged]  # at any depth below the prefix


def _unannounced_keys(collection: Collection) -> list[Finding]:
    """This machine's worker key file, custody entries and attestations, each by a key no custody entry announces."""
    entries = [parse_entry(line) for line in custody_lines(collection)]
    announced = {fp for fp, status in key_statuses_in(entries).items() if status.announced_at is not None}
    findings = []
    worker = this_machines_worker_key(collection)
    if worker is not None and worker.fingerprint not in announced:
        findings.append(Finding("unannounced worker key", str(worker_key_path(collection)),
                                f"key {grouped(worker.fingerprint)} is announced by no custody entry; "
                                "`archiver worker --key COLLECTION-KEY` announces it"))
    for number, entry in enumerate(entries, 1):
        if entry is not None and entry.get("key") not in announced:
            findings.append(Finding("unannounced worker key", f"custody.jsonl line {number}",
                                    f"signed by key {str(entry.get('key'))[:16]}, which no custody entry announces"))
    with collection:
        rows = collection.catalog.query("SELECT capture_id, envelope FROM attestations ORDER BY capture_id").fetchall()
    for capture_id, envelope in rows:
        signers = {s.get("keyid") for s in json.loads(envelope).get("signatures", []) if isinstance(s, dict)}
        if not signers & announced:
            findings.append(Finding("unannounced worker key", f"capture {capture_id}",
                                    f"its attestation is signed by {', '.join(map(str, sorted(signers, key=str)))[:40]}, "
                                    "no key a custody entry announces"))
    return findings
