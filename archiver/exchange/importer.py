"""Importing captures made by other tools (wget, Browsertrix, ArchiveWeb.page): a WARC or the
WARCs inside a WACZ are checked (every declared digest, whatever its algorithm), copied byte
for byte into warcs/ under a name made from their SHA-256, and each page (import_pages) becomes
a capture marked as imported, with where it came from, so claims can cite it; its subresources
are its records. Nothing is imported from a file that fails a check."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from archiver.store.leftovers import IMPORTED_PREFIX
from archiver.store.database import in_batches, placeholders
from archiver.store.rows import NO_PAYLOAD, CaptureRow
from archiver.store.collection import Collection
from archiver.evidence.custody import now
from archiver.errors import UsageProblem
from archiver.evidence.keys import custody_log
from archiver.check.scan import FileScan, ScannedRecord, scan_warc
from archiver.evidence.signing import SigningKey
from archiver.read.urls import normalise_url
from archiver.check.findings import Report
from archiver.exchange.wacz import check_signature
from archiver.exchange.wacz_package import check_package
from archiver.exchange.wacz_warcs import DECHUNKED_PAYLOAD, check_warc
from archiver.exchange.import_pages import (Page, RecordFacts, artifact_role, group_pages, is_fetched, listed_resources,
                                           wacz_pages)
from archiver.exchange.import_revisits import original, resolved_by
from archiver.exchange.zipreader import open_wacz
from archiver.capture.warc import software
from archiver.store.rows import StoredRecord
from archiver.store.storage import StoredFile


@dataclass(frozen=True)
class Imported:
    file: str
    source: str
    captures: list[CaptureRow]
    already: bool = False
    # Payload digests that match the body with its chunked transfer coding removed, not the bytes stored.
    dechunked: int = 0
    # Revisits imported before whose original response this file brought: (their capture, the original's).
    resolved: tuple[tuple[str, str], ...] = ()


def import_path(collection: Collection, key: SigningKey, path: Path,
                on_step: Callable[[str], None] = lambda step: None) -> list[Imported]:
    """Import a .warc, .warc.gz or .wacz; refuses the whole file when any check fails.
    `on_step` is told each step as it starts."""
    with collection.in_use(), collection.importing(), collection:
        return _import_path(collection, key, path, on_step)


def _import_path(collection: Collection, key: SigningKey, path: Path, on_step: Callable[[str], None]) -> list[Imported]:
    if path.suffix.lower() == ".wacz":
        return _import_wacz(collection, key, path, on_step)
    if not path.name.lower().endswith((".warc", ".warc.gz")):
        raise UsageProblem(f"cannot import {path.name}", "give a .warc, .warc.gz or .wacz file")
    report = Report()
    on_step(f"checking every digest of {path.name}")
    scan = check_warc(lambda: open(path, "rb"), path.name, report)
    _refuse_unless_ok(path.name, report)
    with open(path, "rb") as source:
        return [_import_warc(collection, key, source, scan, f"{path.name}", on_step, report.passed[DECHUNKED_PAYLOAD])]


def _import_wacz(collection: Collection, key: SigningKey, path: Path, on_step: Callable[[str], None]) -> list[Imported]:
    report = Report()
    with open_wacz(path) as wacz:
        check_signature(wacz, check_package(wacz, report), report)  # a signature there must hold, as any digest
        pages = wacz_pages(wacz)
        names = [n for n in wacz.names() if n.startswith("archive/") and n.endswith((".warc", ".warc.gz"))]
        scans, dechunked = [], []
        for name in names:
            on_step(f"checking every digest of {name}")
            before = report.passed[DECHUNKED_PAYLOAD]
            scans.append(check_warc(lambda name=name: wacz.open(name), name, report))
            dechunked.append(report.passed[DECHUNKED_PAYLOAD] - before)
        _refuse_unless_ok(path.name, report)
        imported = []
        for name, scan, count in zip(names, scans, dechunked):
            with wacz.open(name) as source:
                imported.append(_import_warc(collection, key, source, scan, f"{path.name}!{name}", on_step, count, pages))
        return imported


def _refuse_unless_ok(name: str, report: Report) -> None:
    if not report.ok:
        first = report.failures[0]
        raise UsageProblem(f"not imported: {name} fails {report.failed} check(s), first {first.check} "
                           f"at {first.where}: {first.detail}", "import only files that verify")


def _import_warc(collection: Collection, key: SigningKey, source, checked: FileScan, origin: str,
                 on_step: Callable[[str], None], dechunked: int, pages: list[Page] | None = None) -> Imported:
    """The file `source` (as `checked` read it when its digests were checked) copied, stored and
    cataloged; `dechunked` of its payload digests matched only its de-chunked bodies, as the log says;
    `pages`: the pages its WACZ lists, None for a WARC alone."""
    name = checked.name
    suffix = ".warc.gz" if name.endswith(".gz") else ".warc"
    on_step(f"copying {name}")
    tmp = collection.tmp / f"import-{secrets.token_hex(8)}{suffix}"
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as copy:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                copy.write(chunk)
            copy.flush()
            os.fsync(copy.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # a copy cut short, as by a full disk, is never left in tmp/
        raise
    sha256 = digest.hexdigest()
    # Named from its own hash, never from the name it came with.
    final_name = f"{IMPORTED_PREFIX}{sha256[:16]}{suffix}"
    try:
        if collection.catalog.warc_file(final_name):
            tmp.unlink()
            return Imported(final_name, origin, [], already=True)
        _refuse_records_held(collection, checked)
        facts = _record_facts(tmp, name)  # read before storing: a file warcio cannot read is never stored
        size = collection.storage.size(final_name)
        if size is None:
            with open(tmp, "rb") as copy:
                stored = collection.storage.put(final_name, copy)
        else:  # stored by an import cut short before cataloging: the same bytes, named from their hash
            stored = StoredFile(final_name, size, sha256)
        source_note = f"{origin} sha256:{sha256}"
        on_step(f"cataloging the captures in {name}")
        captures, resolved = _catalog_captures(collection, stored, source_note, facts, pages)
    finally:
        tmp.unlink(missing_ok=True)
    subject = {"file": final_name, "source": origin, "sha256": sha256, "captures": [c.id for c in captures]}
    if dechunked:
        subject["dechunked_payload_digests"] = dechunked
    if resolved:
        subject["revisits_resolved"] = [{"capture": revisit, "revisit_of": holder} for revisit, holder in resolved]
    custody_log(collection, key).append("import", subject)
    return Imported(final_name, origin, captures, dechunked=dechunked, resolved=tuple(resolved))


def _refuse_records_held(collection: Collection, checked: FileScan) -> None:
    """Refuse, before anything is stored, a file with no capture in it (no response or revisit
    of an http or https URL: nothing a claim could cite), or whose records the collection already holds in
    another file (the same crawl compressed again, say): a record id names one record."""
    name, records = checked.name, checked.records
    if not any(is_fetched(record) for record in records):
        raise UsageProblem(f"not imported: {name} holds no response or revisit record of an http or https URL, so no "
                           "capture a claim could cite",
                           "import the WARC files of a crawl, which hold its responses")
    ids = [record.id for record in records]
    for batch in in_batches(ids):
        held = collection.catalog.query(
            f"SELECT record_id, warc_file FROM records WHERE record_id IN ({placeholders(batch)})"
            f" UNION SELECT warcinfo_id, name FROM warc_files WHERE warcinfo_id IN ({placeholders(batch)})",
            (*batch, *batch)).fetchone()
        if held is not None:
            raise UsageProblem(f"not imported: {name} holds records the collection already has (such as {held[0]}, "
                               f"in warcs/{held[1]}): the same records in another file",
                               "import each crawl's records once; `archiver captures` lists what is there")


def _goes_with(other: ScannedRecord, response: ScannedRecord) -> bool:
    """The request, metadata and resource records that belong to a response in another tool's WARC."""
    if other.type == "request":
        return response.id in (other.headers.get("WARC-Concurrent-To"),) or response.headers.get("WARC-Concurrent-To") == other.id
    # What archiver or Browsertrix made of the page (a screenshot, its DOM) refers to its response too.
    return other.type in ("metadata", "resource") and other.headers.get("WARC-Refers-To") == response.id


def _record_facts(path: Path, name: str) -> dict[str, RecordFacts]:
    """Each record's offset and length as warcio gives them (as players find it), and what
    import_pages reads of it; a file warcio cannot read is refused."""
    facts = {}
    try:
        with open(path, "rb") as stream:
            iterator = ArchiveIterator(stream)
            for record in iterator:
                headers, http = record.rec_headers, record.http_headers
                record_id = headers.get_header("WARC-Record-ID")
                media_type = http and (http.get_header("Content-Type") or "").partition(";")[0].strip().lower()
                listed = listed_resources(record.content_stream().read()) if headers.get_header("WARC-Type") == "metadata" \
                    and headers.get_header("Content-Type") == "application/json" else ()
                facts[record_id] = RecordFacts(
                    iterator.get_record_offset(), iterator.get_record_length(),
                    http.get_statuscode() if http and record.rec_type != "request" else None, media_type or None,
                    http.get_header("Referer") if http and record.rec_type == "request" else None, listed)
    except (ArchiveLoadFailed, AttributeError, ValueError, EOFError) as exc:
        # warcio raises what its parser trips on: an AttributeError for a record split across gzip members.
        said = " ".join(str(exc).split()) if isinstance(exc, ArchiveLoadFailed) else type(exc).__name__
        reason = f"warcio stops after {len(facts)} record(s): {said}"
        raise UsageProblem(f"not imported: {name} cannot be read record by record as players read it ({reason})",
                           "import only files that `warcio check` passes") from None
    return facts


def _catalog_captures(collection: Collection, stored_file: StoredFile, source: str, facts: dict[str, RecordFacts],
                      pages: list[Page] | None) -> tuple[list[CaptureRow], list[tuple[str, str]]]:
    catalog = collection.catalog
    name = stored_file.name
    scanned = {r.id: r for r in scan_warc(collection.storage, name).records}
    warcinfo = next((r.id for r in scanned.values() if r.type == "warcinfo"), "")
    run_id = f"import-{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"

    def stored(record, role: str) -> StoredRecord:
        # A revisit's payload digest is the one it declares, of its original's payload: how a later import finds it.
        return StoredRecord(record.id, record.type, role, record.headers.get("WARC-Target-URI"),
                            record.headers.get("WARC-Date", ""), name, facts[record.id].offset, facts[record.id].length,
                            int(record.headers.get("Content-Length", 0)), record.block_digest,
                            record.payload_digest if record.type != "revisit" else record.headers.get("WARC-Payload-Digest"),
                            record.headers.get("WARC-Truncated"))

    def with_related(record) -> list[StoredRecord]:
        related = [r for r in scanned.values() if r is not record and _goes_with(r, record)]
        return [stored(record, "response")] + [stored(r, artifact_role(r) or r.type) for r in related]

    grouped = group_pages(list(scanned.values()), facts, pages)
    pages_by_id = {record_id: scanned[record_id] for record_id in grouped}
    ids = {record_id: _capture_id(record.headers.get("WARC-Date", "")) for record_id, record in pages_by_id.items()}
    responses = {record_id: record for record_id, record in pages_by_id.items() if record.type == "response"}
    captures = []
    for record_id, subresources in grouped.items():
        record = scanned[record_id]
        url = record.headers["WARC-Target-URI"].strip("<>")
        records = with_related(record) + [r for sub in subresources for r in with_related(sub)]
        date = record.headers.get("WARC-Date", "")
        # A revisit stands for the payload of the response it refers to: in this file, or imported before.
        revisit_of = original(catalog, record, responses, ids) if record.type == "revisit" else None
        row = CaptureRow(
            id=ids[record.id], run_id=run_id, url=url, url_key=normalise_url(url), final_url=url,
            outcome="truncated" if record.headers.get("WARC-Truncated") else "ok",
            http_status=facts[record.id].status and int(facts[record.id].status), error=None,
            truncated=record.headers.get("WARC-Truncated"), started_at=date, finished_at=date,
            ip=record.headers.get("WARC-IP-Address"), cert_sha256=None, redirects=0,
            payload_digest=records[0].payload_digest if record.type != "revisit" else None,
            response_length=records[0].content_length, warc_file=name,
            response_record_id=record.id, metadata_record_id=None, imported_from=source, revisit_of=revisit_of,
            incomplete=NO_PAYLOAD if record.type == "revisit" and revisit_of is None else None)
        captures.append((row, records, None))
    resolved = resolved_by(catalog, responses, ids)
    catalog.add_import(stored_file, warcinfo, now(), source, (run_id, software(), collection.config.operator,
                                                                {"import": source}), captures, resolved)
    return [row for row, _, _ in captures], resolved


def _capture_id(warc_date: str) -> str:
    return f"{''.join(ch for ch in warc_date if ch.isdigit())[:14].ljust(14, '0')}-{secrets.token_hex(4)}"
