"""Checks of the WARC files and every record in them: each file present, listed, closed and
whole; each record's bytes against the digests it declares and against the catalog's row for
it; no record the catalog does not list. Files are read through `collection.storage`."""

from __future__ import annotations

from dataclasses import dataclass

from archiver.check.findings import Report
from archiver.evidence.attestation import SIGNED_FIELDS, SIGNED_HEADERS, shared
from archiver.check.scan import FileScan, ScannedRecord
from archiver.store.catalog import Catalog
from archiver.store.database import placeholders
from archiver.store.leftovers import shared_by_machines
from archiver.store.storage import UNFINISHED_SUFFIX, ObjectState, Storage

# A record's catalog row, as _check_record reads it.
_CATALOGED = "record_id, warc_type, warc_offset, length, block_digest, payload_digest, target_uri, warc_date, truncated"
# What the checks read of each record's headers; the rest is not kept (memory, and the pipe).
VERIFY_HEADERS = frozenset({"WARC-Record-ID", "WARC-Block-Digest", "WARC-Payload-Digest", *SIGNED_HEADERS.values()})
_SIGNED_HEADER_NAMES = tuple(SIGNED_HEADERS.values())


@dataclass(frozen=True)
class ToScan:
    name: str         # as stored
    unfinished: bool  # still being written, or left so by an interrupted run
    size: int
    state: ObjectState | None = None  # a published file's size and lock, as the store told them (one look)

    @property
    def shown(self) -> str:
        return self.name + (UNFINISHED_SUFFIX if self.unfinished else "")


def plan_scans(storage: Storage, catalog: Catalog, report: Report,
               written_now: bool = False) -> tuple[dict[str, ToScan], dict[str, tuple]]:
    """The WARC files to read: every listed one present, and any unlisted one found (keyed by
    the name a report shows them under). `written_now`: another process is working on the
    collection, so a file still open may be the one it is writing."""
    listed = {}
    for row in catalog.query("SELECT name, closed_at, size, sha256 FROM warc_files"):
        if report.check("WARC file listed", isinstance(row[0], str), "warc_files", "a catalog row names no file"):
            listed[row[0]] = row
    # In a folder of its own every file is a WARC file, whatever its name (a replay indexes *.warc
    # too); a bucket's prefix may hold other objects, which doctor lists.
    local = not shared_by_machines(storage)
    found = [ToScan(name, False, state.size, state) for name in storage.names()
             if (local or name.endswith(".warc.gz") or name in listed) and (state := storage.state(name)) is not None]
    found += [ToScan(name, True, storage.unfinished_size(name)) for name in storage.unfinished()
              if local or name.endswith(".warc.gz")]
    found_by_shown = {file.shown: file for file in found}
    to_scan: dict[str, ToScan] = {}
    for name in listed:
        file = found_by_shown.get(name) or found_by_shown.get(name + UNFINISHED_SUFFIX)
        if name in found_by_shown and name + UNFINISHED_SUFFIX in found_by_shown:
            report.check("WARC file closed", False, f"warcs/{name}{UNFINISHED_SUFFIX}",
                         "an unfinished file beside the closed one of the same name: not part of the evidence; "
                         "`archiver doctor --fix` sets it aside when it is the same bytes, else a person must look")
        if local and not written_now and name in found_by_shown and not listed[name][1]:
            report.check("WARC file close recorded", False, f"warcs/{name}",
                         "closed on disk, but the catalog lists it as still being written: `archiver doctor --fix` "
                         "records its close")
        if _being_written_elsewhere(storage, catalog, listed[name], published=file is not None):
            report.not_checked.append(f"warcs/{name}: being written or uploaded on another machine now "
                                      "(the catalog lists its captures once it is uploaded)")
            continue
        if report.check("WARC file present", file is not None, f"warcs/{name}", "listed in the catalog but missing"):
            to_scan[name] = file
            report.check("WARC file closed", not file.unfinished, f"warcs/{file.shown}",
                         "still .open: being written by an archiver process working on this collection now "
                         "(verify again once it has finished)" if written_now else
                         "left unfinished by an interrupted run (still .open): `archiver doctor --fix` repairs it")
    for file in found:
        if file.name not in listed:
            report.check("WARC file listed", False, f"warcs/{file.shown}", "not in the catalog: its records are not captures of this collection")
            to_scan[file.shown] = file
    return to_scan, listed


def check_imported_files(catalog: Catalog, signed: dict[str, object], report: Report) -> None:
    """A file marked as imported is read as another tool's, whose records need not be captures:
    only an import entry of the custody log makes it one, and holds it to the SHA-256 it signed
    (check_scan then holds the file's bytes to the catalog's)."""
    marked = {name: sha256 for name, sha256 in catalog.query(
        "SELECT name, sha256 FROM warc_files WHERE imported_from IS NOT NULL") if isinstance(name, str)}
    for name in sorted(marked.keys() | signed.keys()):
        sha256 = marked.get(name)
        report.check("imported file in custody log", name in marked and signed.get(name) == sha256, f"warcs/{name}",
                     "its import was signed, but the catalog does not list it as imported" if name not in marked else
                     f"sha256: its import entry signed {signed[name]}, the catalog has {sha256}" if name in signed else
                     "marked as imported, but no import entry in the custody log names it")


def check_closed_files(catalog: Catalog, signed: dict[str, tuple], report: Report) -> None:
    """Each file archiver closed is held to the size and SHA-256 its close signed (check_scan
    then holds its bytes to the signed values); a file whose close nothing signed (closed before
    archiver signed closes, after the run's key was revoked, or by doctor after a crash) is held
    only to the newest manifest that lists it closed, and its records to their attestations."""
    rows = {row[0]: row[1:] for row in catalog.query("SELECT name, closed_at, size, sha256, imported_from FROM warc_files")
            if isinstance(row[0], str)}  # a row naming no file: plan_scans names it
    for name, (size, sha256) in sorted(signed.items()):  # each close signed: the catalog cannot take it back
        row = rows.get(name)
        if row is not None and not row[0] and catalog.locks.being_written(name):
            # Signed before its upload: a live writer on another machine is uploading it now.
            report.not_checked.append(f"warcs/{name}: closed and being uploaded by another machine now")
            continue
        report.check("WARC file close in custody log", row is not None and bool(row[0]) and row[1:3] == (size, sha256),
                     f"warcs/{name}", "its close was signed, but the catalog does not list the file" if row is None else
                     "its close was signed, but the catalog lists it as still being written (a run stopped, or its "
                     "upload failed, before recording it): `archiver doctor --fix` finishes it" if not row[0] else
                     f"size and sha256: its close signed {size}, {sha256}; the catalog has {row[1]}, {row[2]}")
    unsigned = [name for name, row in sorted(rows.items()) if row[0] and row[3] is None and name not in signed]
    if unsigned:
        report.not_checked.append(f"WARC files: {len(unsigned)} closed with no signed record of their SHA-256 (closed "
                                  "before archiver signed each close, by a run whose key was revoked meanwhile, or by "
                                  "`doctor --fix` after a crash: "
                                  f"{', '.join(unsigned[:3])}{', …' if len(unsigned) > 3 else ''}); each is held to "
                                  "the newest manifest that lists it closed, and each record in it to its attestation")


def _being_written_elsewhere(storage: Storage, catalog: Catalog, row: tuple, published: bool) -> bool:
    """A file another machine has open in its spool, or is uploading: listed as open, and either
    held by its live writer (catalog_locks) or, not in the store yet, holding no capture the
    catalog lists (so it holds nothing to verify)."""
    if not shared_by_machines(storage) or row[1] is not None:
        return False
    return catalog.locks.being_written(row[0]) or not published and \
        catalog.query("SELECT 1 FROM records WHERE warc_file = ? LIMIT 1", (row[0],)).fetchone() is None


def whole_files(listed: dict[str, tuple], closed: dict[str, tuple], imported: dict[str, object]) -> dict[str, tuple]:
    """Of each file known whole, (size or None, SHA-256) as its bytes must be: as the custody
    log signed them when it was closed or imported, else as the catalog recorded its close."""
    whole = {name: (row[2], row[3]) for name, row in listed.items() if row[1]}
    whole.update((name, (None, sha256)) for name, sha256 in imported.items() if isinstance(sha256, str))
    whole.update(closed)
    return whole


def check_scan(file: ToScan, scan: FileScan, whole: tuple | None, report: Report) -> None:
    """A file read: readable to its end, and, when it is known whole (`whole`: see
    whole_files), its size and SHA-256 as they must be."""
    where = f"warcs/{file.shown}"
    report.check("WARC file readable", scan.error is None, where, scan.error or "")
    if whole is not None:
        size, sha256 = whole
        if size is not None:
            report.check("WARC file size", scan.size == size, where, f"size: expected {size}, found {scan.size}")
        report.check("WARC file SHA-256", scan.sha256 == sha256, where, f"sha256: expected {sha256}, found {scan.sha256}")


class RecordChecks:
    """Each WARC file's records, as soon as the file is read, against the catalog's rows for
    it; of each record only the digests found are kept, for the attestations."""

    def __init__(self, catalog: Catalog, imported: set[str], report: Report) -> None:
        self.catalog = catalog
        self.imported = imported
        self.report = report
        self.warcinfo_ids = dict(catalog.query("SELECT name, warcinfo_id FROM warc_files"))
        self.found: dict[str, tuple] = {}  # record id → as found_values gives it

    def check_file(self, name: str, scan: FileScan) -> None:
        report = self.report
        in_file: dict[str, ScannedRecord] = {}
        repeated: list[ScannedRecord] = []  # a record whose id an earlier one of the file has
        found = self.found
        for record in scan.records:
            if record.id in in_file:
                repeated.append(in_file[record.id])
            in_file[record.id] = record
            _check_self_consistent(name, record, report)
            found[record.id] = found_values(record)
        imported = name in self.imported
        # Tens of thousands of records a file, nearly all as cataloged: such a record's checks
        # are counted as passed together; any other goes through them one by one (_check_record).
        whole = payloads = headers_held = 0
        for row in self.catalog.query(f"SELECT {_CATALOGED} FROM records WHERE warc_file = ? ORDER BY warc_offset", (name,)):
            record_id, warc_type, offset, length, block_digest, payload_digest, target_uri, warc_date, truncated = row
            record = in_file.pop(record_id, None)
            payload_checked = warc_type != "revisit" and payload_digest is not None
            declared_payload = payload_digest if not imported else None  # we catalog sha256, they wrote sha1
            expected_headers = tuple((header, value) for header, value in (
                ("WARC-Type", warc_type), ("WARC-Target-URI", target_uri), ("WARC-Date", warc_date),
                ("WARC-Payload-Digest", declared_payload)) if value is not None) + (("WARC-Truncated", truncated),)
            # WARC-Truncated is held to the catalog's either way: a record cut short, or not, as a listing says.
            if record is not None and record.offset == offset and record.length == length and \
                    record.block_digest == block_digest and (not payload_checked or record.payload_digest == payload_digest) and \
                    all(record.headers.get(header) == value for header, value in expected_headers):
                whole += 1
                payloads += payload_checked
                headers_held += len(expected_headers)
            else:
                _check_record(f"warcs/{name} {record_id}", record, row, payload_checked, expected_headers, report)
        for check, count in (("record present", whole), ("record position", whole), ("record block digest", whole),
                             ("record payload digest", payloads), ("record header", headers_held)):
            if count:
                report.count_passed(check, count)
        if imported:  # another tool's records, not captures: the file is held to the SHA-256 its import signed
            return
        for record in repeated:  # a replay may show either: only the one at the cataloged offset was checked
            report.check("record listed", False, f"warcs/{name} {record.id}",
                         f"a {record.type} record with the WARC-Record-ID of a later record of this file")
        for record_id, record in in_file.items():  # in the file, but not cataloged as in it
            if record.type == "warcinfo":
                report.check("warcinfo listed", record_id == self.warcinfo_ids.get(name), f"warcs/{name} {record_id}",
                             "a warcinfo record other than the one the catalog lists for this file")
                continue
            elsewhere = self.catalog.query("SELECT warc_file FROM records WHERE record_id = ?", (record_id,)).fetchone()
            report.check("record listed", False, f"warcs/{name} {record_id}",
                         f"a {record.type} record the catalog lists in {elsewhere[0]}, not in this file" if elsewhere else
                         f"a {record.type} record the catalog does not list claims to be a capture")

    def check_unread(self, read: set[str]) -> None:
        """Records cataloged in files that could not be read at all (missing)."""
        unread = f"warc_file NOT IN ({placeholders(read)})" if read else "TRUE"  # PostgreSQL has no `IN ()`
        for record_id, warc_file in self.catalog.query(
                f"SELECT record_id, warc_file FROM records WHERE {unread} ORDER BY warc_file, warc_offset", tuple(read)):
            self.report.check("record present", False, f"warcs/{warc_file} {record_id}",
                              "cataloged but not found in its WARC file")


def _check_record(where: str, record: ScannedRecord | None, row: tuple, payload_checked: bool,
                  expected_headers: tuple[tuple[str, str], ...], report: Report) -> None:
    """One record against its catalog row (_CATALOGED), check by check, each failure with its text."""
    _, _, offset, length, block_digest, payload_digest, _, _, _ = row
    if not report.check("record present", record is not None, where, "cataloged but not found in its WARC file"):
        return
    report.check("record position", record.offset == offset and record.length == length, where,
                 f"offset/length: expected {offset}/{length}, found {record.offset}/{record.length}")
    report.check("record block digest", record.block_digest == block_digest, where,
                 f"WARC-Block-Digest: expected {block_digest} (catalog), found {record.block_digest} (computed)")
    if payload_checked:
        report.check("record payload digest", record.payload_digest == payload_digest, where,
                     f"WARC-Payload-Digest: expected {payload_digest} (catalog), found {record.payload_digest} (computed)")
    for header, expected in expected_headers:
        report.check("record header", record.headers.get(header) == expected, where,
                     f"{header}: expected {expected}, found {record.headers.get(header)}")


def found_values(record: ScannedRecord) -> tuple:
    """What an attestation signed of a record, as its bytes have it, in the order of
    SIGNED_FIELDS: a record found as signed equals its statement's signed_values (a revisit's
    payload is elsewhere: its declared payload digest is what was signed)."""
    headers = record.headers
    payload = record.payload_digest if record.type != "revisit" else headers.get("WARC-Payload-Digest")
    return (shared(record.block_digest), shared(payload), *[shared(headers.get(header)) for header in _SIGNED_HEADER_NAMES])


def found_record(record: ScannedRecord) -> dict:
    """found_values() keyed as a statement's record is (with its id), for statement_problems."""
    return dict(zip(("id", *SIGNED_FIELDS), (record.id, *found_values(record))))


def _check_self_consistent(name: str, record: ScannedRecord, report: Report) -> None:
    """The digests a record declares against those of its bytes, whatever the catalog says."""
    for header, computed, check in (("WARC-Block-Digest", record.block_digest, "declared block digest"),
                                    ("WARC-Payload-Digest", record.payload_digest, "declared payload digest")):
        declared = record.headers.get(header)
        # Other algorithms (sha1 from other tools) were checked when the file was imported.
        if computed is not None and declared is not None and declared.startswith("sha256:"):
            if declared == computed:  # as nearly always: counted without formatting the failure's text
                report.count_passed(check)
            else:
                report.check(check, False, f"warcs/{name} {record.id}", f"{header}: declared {declared}, computed {computed}")
