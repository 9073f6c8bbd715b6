"""After an interrupted run: find what it left (WARC files still `.open`, records written but
never cataloged, responses spooled in tmp/, a manifest export cut short) and, when asked,
repair it without deleting evidence. Complete records of an `.open` file are kept in a closed
file; a torn tail is set aside in warcs/quarantine/; records whose capture never reached the
catalog are cataloged again from their own signed attestation; a manifest no one lists is set
aside, a listed one is signed; every repair is written to the custody log."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import BinaryIO

from archiver.check.doctor_captures import unlogged_captures
from archiver.check.doctor_custody import torn_custody_lines
from archiver.check.doctor_findings import Diagnosis, Finding
from archiver.check.doctor_imports import uncataloged_import
from archiver.check.doctor_reads import unlogged_reads
from archiver.check.doctor_stored import unstored_files
from archiver.errors import StorageProblem
from archiver.evidence.attestation import MEDIA_TYPE as ATTESTATION_MEDIA_TYPE
from archiver.store.catalog import Catalog
from archiver.store.rows import CaptureRow
from archiver.store.collection import Collection
from archiver.evidence.custody import now, parse_entry
from archiver.store.durable import fsync_dir
from archiver.store.leftovers import IMPORTED_PREFIX, published_by_a_dead_run, shared_by_machines, temporaries
from archiver.evidence.keys import custody_lines, custody_log
from archiver.evidence.manifest import MANIFEST_NAME, point_newest_at, points_at
from archiver.check.scan import scan_warc
from archiver.evidence.seal import sign_manifest, timestamp_entry
from archiver.evidence.seal_files import checkpoint_path, signature_path, token_path
from archiver.evidence.shared_manifests import fetch_manifests
from archiver.evidence.signing import PAYLOAD_TYPE, SigningKey, canonical_json
from archiver.capture.warc import sha256_digest
from archiver.store.storage import QUARANTINE, UNFINISHED_SUFFIX, Storage, StoredFile
from archiver.store.rows import StoredRecord


def diagnose(collection: Collection, key: SigningKey | None = None) -> Diagnosis:
    """What an interrupted run left; with `key`, repair each finding and log it."""
    with collection.in_use(alone=True):  # a running capture's open file is not a leftover
        return examine(collection, key, reads=True)


def examine(collection: Collection, key: SigningKey | None = None, reads: bool = False) -> Diagnosis:
    """`diagnose`, for a caller already holding the collection alone (`collection.in_use(alone=True)`).
    `reads`: also what was read that the log missed (doctor_reads), which signs what the catalog
    holds: only when a person runs `doctor` and sees what it records, never as another command's repair."""
    diagnosis = Diagnosis()
    torn_custody_lines(collection, key, diagnosis)  # first: the repairs below append to the log
    with collection, collection.catalog.locks.repairing():
        catalog = collection.catalog
        unfinished = collection.storage.unfinished()
        for name in unfinished:
            _open_file(collection, catalog, name, key, diagnosis)
        closed_now = _never_written(collection, catalog, key, diagnosis)
        # Records the catalog missed can only be in a file still open when its writer died; a
        # local folder is read whole (any file may be one a crash left), not a shared bucket.
        suspects = collection.storage.names() if not shared_by_machines(collection.storage) else \
            sorted(set(unfinished) | closed_now)
        for name in suspects:
            if name.endswith(".warc.gz"):
                _uncataloged(collection, catalog, name, key, diagnosis)
        logged = _Logged.read(collection)  # after the salvaged captures above were logged
        _manifests(collection, catalog, key, diagnosis, logged)
        unstored_files(collection, key is not None, diagnosis)
        unlogged_captures(collection, catalog, key, diagnosis, logged.captures)
        if reads:
            unlogged_reads(collection, catalog, key, diagnosis, logged.documents, logged.claims)
    for spool, what in temporaries(collection):
        finding = Finding("leftover spool", str(spool.relative_to(collection.root)), f"{what} when its run stopped")
        if key is not None:
            shutil.rmtree(spool) if spool.is_dir() else spool.unlink()  # never listed anywhere: not evidence
            finding.fixed = "removed"
        diagnosis.findings.append(finding)
    if key is not None and diagnosis.findings:
        custody_log(collection, key).append("doctor", {"repairs": [f.as_dict() for f in diagnosis.findings]})
    return diagnosis


def _open_file(collection: Collection, catalog: Catalog, name: str, key: SigningKey | None, diagnosis: Diagnosis) -> None:
    storage = collection.storage
    scan = scan_warc(storage, name, unfinished=True)
    # A capture's records end with its signed attestation: what follows the last attestation
    # (or the warcinfo) belongs to a capture the run never finished, and is set aside with any
    # torn member. Whole members end where the next one starts.
    ends = [r for r in scan.records if r.length is not None
            and (r.type == "warcinfo" or r.headers.get("Content-Type") == ATTESTATION_MEDIA_TYPE)]
    whole = [r for r in scan.records if r.length is not None and ends and r.offset <= ends[-1].offset]
    complete = ends[-1].offset + ends[-1].length if ends else 0
    finding = Finding("open file", f"warcs/{name}{UNFINISHED_SUFFIX}",
                      f"an interrupted run left it open: {len(whole)} whole record(s), {complete} of {scan.size} bytes")
    diagnosis.findings.append(finding)
    if key is None:
        return
    closed = _kept_before(storage, name, complete) if complete else None
    if complete and closed is None:
        with storage.unfinished_reader(name) as unfinished:
            closed = storage.put(name, _Prefix(unfinished, complete))
    if complete < scan.size:
        aside = storage.set_aside_unfinished(name)
        finding.fixed = (f"kept {complete} bytes in warcs/{name}; " if complete else "") + \
            f"the torn rest is in warcs/{aside}"
    else:
        storage.discard_unfinished(name)  # its every byte is now in the closed file
        finding.fixed = f"closed as warcs/{name}"
    if closed is None:
        catalog.forget_empty_file(name)
        return
    if catalog.warc_file(name) is None:
        warcinfo = next((r.id for r in scan.records if r.type == "warcinfo"), "")
        catalog.file_opened(name, warcinfo, now())
    # Not signed: doctor cannot tell the bytes it closes from a file planted there; each record
    # in it is held to its capture's attestation, and verify lists the close as unsigned.
    catalog.file_closed(closed, now())


def _kept_before(storage: Storage, name: str, complete: int) -> StoredFile | None:
    """The closed file an earlier repair made of the open one's first `complete` bytes before
    it stopped (killed, or refused a write, before setting the open one aside); None if there is none."""
    expected = hashlib.sha256()
    with storage.unfinished_reader(name) as unfinished:
        whole = _Prefix(unfinished, complete)
        while chunk := whole.read(1 << 20):
            expected.update(chunk)
    try:  # in a store keeping versions, an earlier version of other bytes is no file kept either
        return storage.already_stored(StoredFile(name, complete, expected.hexdigest()))
    except FileExistsError as exc:
        raise StorageProblem(f"warcs/{name} and warcs/{name}{UNFINISHED_SUFFIX} hold different records ({exc})",
                             "move one of them out of warcs/ (keep it: it is evidence), then run `archiver doctor --fix`") from None


class _Prefix:
    """The first `size` bytes of a stream, read as a stream."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._left = size

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data


def _never_written(collection: Collection, catalog: Catalog, key: SigningKey | None, diagnosis: Diagnosis) -> set[str]:
    """Files the catalog lists as opened that never reached the disk, or were closed without the
    catalog being told (the run stopped between): the names of the latter."""
    unfinished = set(collection.storage.unfinished())
    published = set()
    for (name,) in catalog.query("SELECT name FROM warc_files WHERE closed_at IS NULL").fetchall():
        if name in unfinished:
            continue
        if published_by_a_dead_run(collection, name):
            _closed_unrecorded(collection, catalog, name, key, diagnosis)
            published.add(name)
            continue
        if shared_by_machines(collection.storage):
            continue  # another machine's file, being written in its spool or uploaded by its live writer
        finding = Finding("file never written", f"warcs/{name}", "listed as opened, but no such file was created")
        diagnosis.findings.append(finding)
        if key is not None:
            if catalog.forget_empty_file(name):
                finding.fixed = "removed from the catalog (no record was ever listed in it)"
            else:  # records were listed in it, so its bytes were written once: gone since, not never written
                finding.detail = ("listed as opened, with records listed in it, but no such file is here: "
                                  "its captures' bytes are missing; `archiver verify` names them")
    return published


def _closed_unrecorded(collection: Collection, catalog: Catalog, name: str, key: SigningKey | None,
                       diagnosis: Diagnosis) -> None:
    """A file closed and published (every byte fsynced first), whose closing the catalog never recorded."""
    finding = Finding("close not recorded", f"warcs/{name}", "closed on disk, the catalog lists it as still being written")
    diagnosis.findings.append(finding)
    if key is None:
        return
    digest, size = hashlib.sha256(), 0
    with collection.storage.reader(name) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    # In a store that locks objects, the lock it holds the file under is recorded too, as an upload records it.
    state = collection.storage.state(name)
    lock = (state.retention_mode, state.retain_until) if state else (None, None)
    # Not signed (see _open_file): if the run signed its close before it died, verify holds the file to that.
    catalog.file_closed(StoredFile(name, size, digest.hexdigest(), *lock), now())
    finding.fixed = "its size and SHA-256 recorded in the catalog" + (f", and its {lock[0]} lock" if lock[0] else "")


def _uncataloged(collection: Collection, catalog: Catalog, name: str, key: SigningKey | None,
                 diagnosis: Diagnosis) -> None:
    """Captures whose records reached the file but not the catalog (a crash between the fsync
    and the commit), found by their attestation records."""
    if catalog.warc_file(name) is None and name.startswith(IMPORTED_PREFIX):
        uncataloged_import(collection, name, key is not None, diagnosis)
    if catalog.warc_file(name) is None or catalog.warc_file(name).get("closed_at") is None:
        return
    listed = {row[0] for row in catalog.query("SELECT record_id FROM records WHERE warc_file = ?", (name,))}
    scan = scan_warc(collection.storage, name)
    by_id = {r.id: r for r in scan.records}
    for record in scan.records:
        if record.type != "metadata" or record.id in listed or record.length is None:
            continue
        envelope = _attestation_in(collection.storage, name, record)
        if envelope is None:
            continue
        predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
        finding = Finding("uncataloged capture", f"warcs/{name} capture {predicate['id']}",
                          "its records and signed attestation are on disk, the catalog never listed it")
        diagnosis.findings.append(finding)
        if key is None:
            continue
        records = [StoredRecord(r["id"], r["type"], r["role"], r["target_uri"], r["date"], name,
                                by_id[r["id"]].offset, by_id[r["id"]].length,
                                int(by_id[r["id"]].headers["Content-Length"]), r["block_digest"],
                                r["payload_digest"], by_id[r["id"]].headers.get("WARC-Truncated"))
                   for r in predicate["records"] if r["id"] in by_id]
        records.append(StoredRecord(record.id, "metadata", "attestation", record.headers.get("WARC-Target-URI"),
                                    record.headers["WARC-Date"],
                                    name, record.offset, record.length, int(record.headers["Content-Length"]),
                                    record.block_digest, None, None))
        responses = [r["id"] for r in predicate["records"] if r["role"] == "response"]
        metadata_id = next((r["id"] for r in predicate["records"] if r["role"] == "metadata"), None)
        # The metadata record refers to the final response of the page's redirect chain: the
        # responses before it are its redirects, those after it (a browser page's) subresources.
        final = by_id[metadata_id].headers.get("WARC-Refers-To") if metadata_id in by_id else None
        final = final if final in responses else None
        # A revisit's payload is held by the capture whose record it refers to (as verify holds it).
        refers_to = next((r.get("refers_to") for r in predicate["records"] if r["id"] == final and r["type"] == "revisit"), None)
        holder = catalog.query("SELECT capture_id FROM records WHERE record_id = ?", (refers_to,)).fetchone() if refers_to else None
        row = CaptureRow(id=predicate["id"], run_id=_salvage_run(catalog), url=predicate["url"],
                         url_key=_normalise(predicate["url"]), final_url=predicate["final_url"],
                         outcome=predicate["outcome"], http_status=predicate["http_status"], error=predicate["error"],
                         truncated=predicate["truncated"], started_at=predicate["started_at"],
                         finished_at=predicate["finished_at"], ip=predicate["ip"], cert_sha256=predicate["cert_sha256"],
                         redirects=predicate.get("redirects", responses.index(final) if final else len(responses)),
                         payload_digest=predicate["payload_digest"], response_length=predicate.get("response_length"),
                         warc_file=name,
                         response_record_id=final, metadata_record_id=metadata_id, revisit_of=holder and holder[0],
                         verdict=predicate.get("verdict"), verdict_reason=predicate.get("verdict_reason"),
                         job_id=predicate.get("job_id"), incomplete=predicate.get("incomplete"))
        catalog.add_captures([(row, records, envelope)])
        custody_log(collection, key).append("capture", {
            "capture": row.id, "url": row.url, "outcome": row.outcome, "error": row.error, "records": len(records),
            "attestation": sha256_digest(canonical_json(envelope)), "salvaged": True})
        finding.fixed = "cataloged from its signed attestation"


@dataclass
class _Logged:
    """What the custody log records, read in one pass: captures (and imports), and the
    manifests whose timestamp tokens it names."""

    captures: set = field(default_factory=set)
    timestamps: set = field(default_factory=set)
    documents: set = field(default_factory=set)  # SHA-256 of each document version read
    claims: set = field(default_factory=set)  # each claim read from a document or recorded as a note

    @classmethod
    def read(cls, collection: Collection) -> "_Logged":
        logged = cls()
        for line in custody_lines(collection):
            entry = parse_entry(line)
            subject = entry.get("subject") if entry else None
            if not isinstance(subject, dict):
                continue
            if entry.get("event") in ("capture", "import"):
                logged.captures.add(subject.get("capture"))
                logged.captures.update(subject.get("captures") or [])
            elif entry.get("event") == "timestamp":
                logged.timestamps.add(subject.get("sequence"))
            elif entry.get("event") == "document read":
                logged.documents.add(subject.get("sha256"))
                logged.claims.update(claim for claim in subject.get("claims") or [] if isinstance(claim, str))
            elif entry.get("event") == "note recorded":
                logged.claims.add(subject.get("claim"))
        return logged


def _manifests(collection: Collection, catalog: Catalog, key: SigningKey | None, diagnosis: Diagnosis,
               logged: _Logged) -> None:
    """What an interrupted `archiver manifest` left: temporary files, a manifest the catalog
    never listed, one listed but never signed, a manifest.json not pointing at the newest."""
    folder = collection.root / "manifests"
    fetch_manifests(collection)  # on a shared collection, those other machines exported are not leftovers
    for leftover in sorted(folder.glob(".*.tmp")):
        finding = Finding("leftover temporary file", f"manifests/{leftover.name}", "written when an export stopped")
        diagnosis.findings.append(finding)
        if key is not None:
            leftover.unlink()  # never renamed into place: no one ever relied on it
            finding.fixed = "removed"
    listed = dict(catalog.query("SELECT sequence, file FROM manifests ORDER BY sequence").fetchall())
    for path in sorted(folder.iterdir()):
        match = MANIFEST_NAME.match(path.name)
        if match is None or int(match.group(1)) in listed:
            continue
        finding = Finding("unlisted manifest", f"manifests/{path.name}",
                          "an export stopped before the catalog listed it: it was never signed or used")
        diagnosis.findings.append(finding)
        if key is not None:
            (folder / QUARANTINE).mkdir(exist_ok=True)
            os.replace(path, folder / QUARANTINE / path.name)
            fsync_dir(folder)
            finding.fixed = f"set aside in manifests/{QUARANTINE}/; the next `archiver manifest` writes it anew"
    for sequence, name in listed.items():
        path = folder / name
        if path.exists() and not signature_path(path).exists():
            finding = Finding("unsigned manifest", f"manifests/{name}", "an export stopped before signing it")
            diagnosis.findings.append(finding)
            if key is not None:
                sign_manifest(collection, key, path, sequence)
                finding.fixed = "signed now, with its checkpoint; `archiver manifest` adds a timestamp"
    _unlogged_tokens(collection, listed, key, diagnosis, logged)
    newest = folder / listed[max(listed)] if listed else None
    if newest is not None and newest.exists() and not points_at(newest):
        finding = Finding("stale manifest.json", "manifests/manifest.json", f"does not point at the newest, {newest.name}")
        diagnosis.findings.append(finding)
        if key is not None:
            point_newest_at(newest)
            finding.fixed = f"points at {newest.name}"


def _unlogged_tokens(collection: Collection, listed: dict[int, str], key: SigningKey | None,
                     diagnosis: Diagnosis, logged: _Logged) -> None:
    """Tokens that reached the disk when the custody log could not record them (the run died,
    or the disk filled, between the two): recorded late, with their SHA-256."""
    for sequence, name in sorted(listed.items()):
        manifest = collection.root / "manifests" / name
        if sequence in logged.timestamps or not token_path(manifest).exists() or not manifest.exists():
            continue
        finding = Finding("unlogged timestamp", f"manifests/{token_path(manifest).name}",
                          "the token is on disk, the custody log never recorded it")
        diagnosis.findings.append(finding)
        if key is not None:
            checkpoint_token = token_path(checkpoint_path(manifest))
            custody_log(collection, key).append("timestamp", {
                **timestamp_entry(sequence, manifest, manifest.read_bytes(), None, token_path(manifest).read_bytes(),
                                  checkpoint_token.read_bytes() if checkpoint_token.exists() else None),
                "recorded_late": True})
            finding.fixed = "recorded in the custody log with its SHA-256, marked late"


def _attestation_in(storage: Storage, name: str, record) -> dict | None:
    from archiver.store.record_blocks import read_record_block

    stored = StoredRecord(record.id, "metadata", "attestation", None, "", name, record.offset, record.length,
                          int(record.headers.get("Content-Length", 0)), record.block_digest, None, None)
    try:
        envelope = json.loads(read_record_block(storage, stored, stored.content_length))
    except ValueError:
        return None
    return envelope if isinstance(envelope, dict) and envelope.get("payloadType") == PAYLOAD_TYPE else None


def _salvage_run(catalog: Catalog) -> str:
    run_id = "salvaged"
    if not catalog.query("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
        catalog.runs.start(run_id, now(), "archiver doctor", "", {})
    return run_id


def _normalise(url: str) -> str:
    from archiver.read.urls import normalise_url

    return normalise_url(url)
