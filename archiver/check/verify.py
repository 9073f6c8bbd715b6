"""Offline verification of a collection: every check that the evidence is what was received
and that nothing was changed, added or dropped since, run in one pass that reads each WARC
file once. Each family of checks is its own module; this one runs them in order and
collects their findings in one Report (check/findings.py). Nothing here prints.

Checks, in the order they are reported:
- custody log (check/custody_log.py): chain of hashes, sequence, signatures, keys trusted at
  each entry's time; each public key file exactly the PEM the log announced;
- WARC files and records (check/records.py): files present, listed, whole (size and SHA-256
  of closed files, as signed when each was closed or imported), none left unfinished; every byte
  read; no record header given twice; block and payload digests as computed, as declared in
  the WARC header and as cataloged all agree; positions match; no unlisted record, and no
  record id twice;
- attestations (check/attestations.py): signature by a collection key trusted at capture
  time; every record it names present with the digests it signed; the WARC copy identical
  to the catalog's; every capture in the log is in the catalog and the reverse;
- what was read (check/documents.py): each document version read is kept, whole, under its
  SHA-256; each claim in the catalog was read, as a signed custody entry says, and is current
  exactly when its document's latest read found it; each document's path and when each claim
  was first found and began or stopped citing each URL are what the signed reads say
  (check/citation_dates.py);
- manifests (check/manifests.py): signature, key status at signing time, sequence and
  previous-hash chain, manifest.json the newest, RFC 3161 token (imprint, TSA signature,
  chain to trusted roots, the file's SHA-256 as logged), every manifest the custody log signed
  present, and the newest signed manifest's entries still as the catalog holds them;
- object retention (check/retention.py): on an S3 store, each object's lock mode and
  retain-until date still what the catalog recorded at upload."""

from __future__ import annotations

from typing import Callable

from archiver.check.attestations import (OpenedInOrder, check_attestations, check_attested_records,
                                         check_records_attested, listing_problems, open_attestations, opening_parts)
from archiver.check.citation_dates import check_citation_dates
from archiver.check.custody_log import announced_keys, check_custody, check_key_files
from archiver.check.documents import (check_claims, check_claims_current, check_claims_trees, check_document_copies,
                                      check_document_paths)
from archiver.check.findings import Report
from archiver.check.manifests import check_manifests
from archiver.check.reading import PIECES_PER_WORKER, Parallelism, Reading
from archiver.check.records import (RecordChecks, check_closed_files, check_imported_files, check_scan, plan_scans,
                                    whole_files)
from archiver.check.retention import check_retention
from archiver.evidence.custody import read_entries
from archiver.evidence.key_status import key_event_entries, key_statuses_in
from archiver.evidence.keys import export_custody
from archiver.evidence.shared_manifests import fetch_manifests
from archiver.evidence.signing import collection_public_keys
from archiver.store.collection import Collection
from archiver.store.crash_points import MID_VERIFY, crash_point


def verify_collection(collection: Collection, workers: int = 2, parallelism: Parallelism | None = None,
                      written_now: bool = False, on_read: Callable[[int, int], None] | None = None) -> Report:
    """Every check above; the WARC files are read by `workers` processes (or as `parallelism`
    says). `written_now`: another process is working on the collection (its open file is its
    work in progress, not a leftover). `on_read(bytes, of_bytes)` is told as each file's
    records have been checked, for a progress bar."""
    report = Report()
    log = export_custody(collection)  # first: on a shared collection it also publishes the collection's keys
    fetch_manifests(collection, every=True)  # on a shared collection: the store's, whatever this folder holds
    keys = collection_public_keys(collection.root / "keys")
    with collection:
        catalog = collection.catalog
        to_scan, listed = plan_scans(collection.storage, catalog, report, written_now)
        # Files made by other tools: their other records are not captures, their digests may be sha1.
        imported = {row[0] for row in catalog.query("SELECT name FROM warc_files WHERE imported_from IS NOT NULL")}
        parallelism = parallelism or Parallelism(workers)
        # The attestations are opened and their signatures checked, in parts, by every key that
        # could count (which do is known once the log is checked, below), each part by whichever
        # is free first: a worker done reading, or this process waiting for a file's scan.
        key_events = list(key_event_entries(line for _, line in read_entries(log)))
        candidates = {fingerprint: public.pem() for fingerprint, public in (keys | announced_keys(key_events)).items()}
        opening = [(open_attestations, (catalog.location, first, end, candidates))
                   for first, end in opening_parts(catalog, parallelism.workers * PIECES_PER_WORKER)]
        # The files are read in worker processes while this one checks the log's signatures,
        # which need no WARC bytes. The findings are reported in this order: custody log, key
        # files, attestations, records (files), then the rest (after_records).
        files, after_records = Report(), Report()
        records = RecordChecks(catalog, imported, files)
        with Reading(collection.storage, catalog, to_scan, parallelism, ahead=opening) as reading:
            statuses = key_statuses_in(key_events)
            custody = check_custody(collection, keys, statuses, report)
            crash_point(MID_VERIFY)
            check_key_files(collection, custody, report)
            check_imported_files(catalog, custody.imported_files, report)
            check_closed_files(catalog, custody.closed_files, report)
            whole = whole_files(listed, custody.closed_files, custody.imported_files)
            # Before the records, of which what was found is kept: the manifest is read whole
            # (its signature covers every byte) while less is held.
            check_document_copies(collection, catalog, custody, after_records)
            check_claims(catalog, custody, after_records)
            check_claims_trees(catalog, custody, after_records)
            check_claims_current(catalog, custody, after_records)
            check_citation_dates(catalog, custody, after_records)
            check_document_paths(catalog, custody, after_records)
            check_manifests(collection, catalog, keys, statuses, custody, after_records)
            check_retention(collection, catalog, to_scan, after_records)
            attested = None
            read, of_bytes = 0, sum(file.size for file in to_scan.values())
            for name in reading.order:  # each file's records are checked, then let go, as soon as it is read
                scan = reading.scan(name)
                check_scan(to_scan[name], scan, whole.get(to_scan[name].name) if not to_scan[name].unfinished else None,
                           files)
                records.check_file(name, scan)
                del scan
                read += to_scan[name].size
                if on_read is not None:
                    on_read(read, of_bytes)
                if attested is None and reading.ahead_ready():  # now, not after the last file is read
                    attested = _check_attestations(reading, catalog, keys, statuses, custody, report)
            statements, listing = attested or _check_attestations(reading, catalog, keys, statuses, custody, report)
        records.check_unread(set(to_scan))
        report.extend(files)
        check_attested_records(statements, listing, records.found, report)
        check_records_attested(catalog, report)
        del statements, records
        report.extend(after_records)
    return report


def _check_attestations(reading: Reading, catalog, keys, statuses, custody, report: Report) -> tuple[dict, dict]:
    """check_attestations() on the attestations opened ahead of (or while) reading: the
    statements, and their listing_problems()."""
    statements = check_attestations(catalog, OpenedInOrder(reading.ahead()), keys, statuses, custody, report)
    return statements, listing_problems(catalog, statements)
