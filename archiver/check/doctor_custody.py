"""After a crash: lines of custody.jsonl that hold no entry. One the chain passes by is an
append the crash cut short; repairing records it as torn (a TORN_LINE entry naming its line
and SHA-256), its bytes left where they are, so that verify lists it as not checked instead
of failing for good. One the chain does not pass by was a whole entry, altered since: only a
copy of the log restores it, so it is reported, never repaired."""

from __future__ import annotations

import os

from archiver.check.doctor_findings import Diagnosis, Finding
from archiver.evidence.custody import LOG_NAME, TORN_LINE, read_entries, unreadable_lines
from archiver.evidence.keys import custody_log
from archiver.evidence.signing import SigningKey
from archiver.store.collection import Collection

ALTERED_LINE = "altered custody line"  # reported for a person: doctor cannot repair it


def log_ends_torn(collection: Collection) -> bool:
    """Whether custody.jsonl ends in a line with no newline: an append cut short, found
    without reading the log (the next append would put it mid-log, found by `doctor`)."""
    try:
        with open(collection.root / LOG_NAME, "rb") as log:
            if log.seek(0, os.SEEK_END) == 0:
                return False
            log.seek(-1, os.SEEK_END)
            return log.read(1) != b"\n"
    except FileNotFoundError:
        return False


def torn_custody_lines(collection: Collection, key: SigningKey | None, diagnosis: Diagnosis) -> None:
    """Each line of custody.jsonl holding no entry that no entry records as torn; with `key`,
    each one an interrupted append left is recorded as torn."""
    if collection.config.catalog_url:
        return  # a shared collection's chain is rows of its database, written whole or not at all
    unreadable, recorded = unreadable_lines(line for _, line in read_entries(collection.root / LOG_NAME))
    for line in unreadable:
        if (line.number, line.sha256) in recorded:
            continue
        where = f"{LOG_NAME} line {line.number}"
        if not line.skipped:
            diagnosis.findings.append(Finding(ALTERED_LINE, where, "holds no entry, yet the entry after it chains to "
                                              "it: a whole entry, altered since; restore custody.jsonl from a copy"))
            continue
        finding = Finding("torn custody line", where, "an append an interrupted run cut short: it holds no entry")
        if key is not None:
            entry = custody_log(collection, key).append(TORN_LINE, {"line": line.number, "sha256": line.sha256})
            finding.fixed = f"recorded as torn by custody entry {entry.data['seq']}; its bytes stay where they are"
        diagnosis.findings.append(finding)
