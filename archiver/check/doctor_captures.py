"""Captures and imports the catalog lists but the custody log never recorded: the log's disk
was full, or the run died between the catalog's commit and the log's entry. Each is recorded
now, marked late, with the attestation the catalog holds for it."""

from __future__ import annotations

import json

from archiver.capture.warc import sha256_digest
from archiver.check.doctor_findings import Diagnosis, Finding
from archiver.evidence.keys import custody_log
from archiver.evidence.signing import SigningKey, canonical_json
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.store.database import in_batches


def unlogged_captures(collection: Collection, catalog: Catalog, key: SigningKey | None, diagnosis: Diagnosis,
                      captures_logged: set[str]) -> None:
    """Record (with `key`; without, only report) each capture the catalog lists and the log,
    whose captures are `captures_logged`, does not."""
    missing = [row for row in catalog.query(
        "SELECT c.id, c.url, c.outcome, a.envelope, c.imported_from, c.warc_file, f.sha256 FROM captures c"
        " LEFT JOIN attestations a ON a.capture_id = c.id LEFT JOIN warc_files f ON f.name = c.warc_file"
        " ORDER BY c.id") if row[0] not in captures_logged]
    imports: dict[tuple, list[str]] = {}
    events: list[tuple[str, dict]] = []
    fixed: list[Finding] = []
    for capture_id, url, outcome, envelope, imported_from, warc_file, file_sha256 in missing:
        finding = Finding("unlogged capture", f"capture {capture_id}", "cataloged, but the custody log has no entry for it")
        diagnosis.findings.append(finding)
        if key is None:
            continue
        fixed.append(finding)
        if imported_from is not None:
            imports.setdefault((warc_file, imported_from.rsplit(" sha256:", 1)[0], file_sha256), []).append(capture_id)
            continue
        attestation = sha256_digest(canonical_json(json.loads(envelope))) if envelope else None
        events.append(("capture", {"capture": capture_id, "url": url, "outcome": outcome,
                                   "attestation": attestation, "recorded_late": True}))
    events += [("import", {"file": warc_file, "source": source, "sha256": file_sha256, "captures": captures,
                           "recorded_late": True}) for (warc_file, source, file_sha256), captures in imports.items()]
    if events:
        log = custody_log(collection, key)
        # A batch at a time, under one lock and one fsync: one each was a minute for 10,000 captures.
        for batch in in_batches(events):
            log.append_many(batch)
    for finding in fixed:  # said only once the log holds them
        finding.fixed = "recorded in the custody log, marked late"
