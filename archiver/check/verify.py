"""Offline verification: every check that the evidence is what was received and that nothing
was changed, added or dropped since. Each check returns findings (what, where, why); nothing
here prints. A check that could not run is listed as not checked, never as passed.

Checks, in the order they run:
- custody log: chain of hashes, sequence, signatures, keys trusted at each entry's time;
  each public key file exactly the PEM the log announced;
- WARC files: present, listed, whole (size and SHA-256 of closed files), none left unfinished;
- records: every byte read; block and payload digests as computed, as declared in the
  WARC header and as cataloged all agree; positions match; no unlisted record;
- attestations: signature by a collection key trusted at capture time; every record it
  names present with the digests it signed; the WARC copy identical to the catalog's;
- captures and custody: every capture in the log is in the catalog and the reverse;
- manifests: signature, key status at signing time, sequence and previous-hash chain,
  manifest.json the newest, RFC 3161 token (imprint, TSA signature, chain to trusted roots,
  the file's SHA-256 as logged), and the newest manifest's captures and claims still as the catalog holds them."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from archiver.evidence import merkle
from archiver.evidence.attestation import statement_problems
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from archiver.evidence.custody import LOG_NAME, line_hash, parse_entry, read_entries, verify_entry
from archiver.evidence.keys import KeyStatus, key_statuses
from archiver.evidence.manifest import MANIFEST_NAME, points_at, read_manifest
from archiver.check.scan import FileScan, ScannedRecord, scan_warc
from archiver.evidence.seal import checkpoint_path, signature_path, token_path
from archiver.evidence.signing import BadEnvelope, PublicKey, canonical_json, collection_public_keys, open_envelope
from archiver.store.storage import UNFINISHED_SUFFIX, Storage

# What the checks read of each record's headers; the rest is not kept (memory, and the pipe).
VERIFY_HEADERS = frozenset({"WARC-Record-ID", "WARC-Type", "WARC-Target-URI", "WARC-Date", "WARC-Block-Digest",
                            "WARC-Payload-Digest"})


@dataclass(frozen=True)
class Failure:
    check: str
    where: str
    detail: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Report:
    passed: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def check(self, name: str, holds: bool, where: str, detail: str) -> bool:
        if holds:
            self.passed[name] += 1
        else:
            self.failures.append(Failure(name, where, detail))
        return holds

    def as_dict(self) -> dict:
        return {"ok": self.ok, "passed": dict(sorted(self.passed.items())), "failed": len(self.failures),
                "failures": [f.as_dict() for f in self.failures], "not_checked": self.not_checked}


@dataclass
class _Custody:
    """What the custody log says, for the other checks to hold the catalog to."""

    captures: dict[str, str | None] = field(default_factory=dict)  # capture id → the attestation digest logged
    manifests: dict[int, dict] = field(default_factory=dict)  # sequence → "manifest signed" entry
    timestamps: dict[int, dict] = field(default_factory=dict)  # sequence → "timestamp" entry
    imports: set[str] = field(default_factory=set)  # captures named by "import" entries
    public_keys: dict[str, str] = field(default_factory=dict)  # fingerprint → the PEM announced


def verify_collection(collection: Collection, workers: int = 2) -> Report:
    report = Report()
    keys = collection_public_keys(collection.root / "keys")
    statuses = key_statuses(collection)
    catalog = Catalog(collection.catalog_path)
    try:
        to_scan, listed = _plan_scans(collection.storage, catalog, report)
        names = sorted(to_scan, key=lambda n: -to_scan[n].size)  # largest first: they finish last
        # Files made by other tools: their other records are not captures, their digests may be sha1.
        imported = {row[0] for row in catalog.query("SELECT name FROM warc_files WHERE imported_from IS NOT NULL")}
        records = _RecordChecks(catalog, imported, report)
        # The files are read in worker processes while this one checks signatures, which need no WARC bytes.
        with ProcessPoolExecutor(max_workers=min(workers, len(names))) if workers > 1 and len(names) > 1 else _Inline() as pool:
            pending = {name: pool.submit(scan_warc, collection.storage, to_scan[name].name, VERIFY_HEADERS,
                                         to_scan[name].unfinished) for name in names}
            custody = _check_custody(collection, keys, statuses, report)
            _check_key_files(collection, custody, report)
            statements = _check_attestations(catalog, keys, statuses, custody, report)
            for name in names:  # each file's records are checked, then let go, as soon as it is read
                scan = pending.pop(name).result()
                _check_scan(to_scan[name], scan, listed.get(name), report)
                records.check_file(name, scan)
                del scan
        records.check_unread(set(names))
        _check_attested_records(statements, records.found, report)
        del statements, records
        _check_manifests(collection, catalog, keys, statuses, custody, report)
    finally:
        catalog.close()
    return report


class _Inline:
    """The executor interface for one worker: each task runs in this process, when its result
    is asked for (so one file's records are in memory at a time)."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, function, *args) -> "_Deferred":
        return _Deferred(function, args)


@dataclass
class _Deferred:
    function: Callable
    args: tuple

    def result(self):
        return self.function(*self.args)


# -- custody log ------------------------------------------------------------------------

def _check_custody(collection: Collection, keys: dict[str, PublicKey], statuses: dict[str, KeyStatus],
                   report: Report) -> _Custody:
    custody = _Custody()
    path = collection.root / LOG_NAME
    if not path.exists():
        report.check("custody log", False, LOG_NAME, "the custody log is missing")
        return custody
    previous: bytes | None = None
    expected_seq = 1
    for number, line in read_entries(path):
        where = f"{LOG_NAME} line {number}"
        entry = parse_entry(line)
        if not report.check("custody entry readable", entry is not None, where, "not a custody entry (torn or altered line)"):
            continue
        report.check("custody chain", entry.get("prev") == (line_hash(previous) if previous else None), where,
                     f"prev: expected {line_hash(previous) if previous else None}, found {entry.get('prev')}")
        report.check("custody sequence", entry["seq"] == expected_seq, where,
                     f"seq: expected {expected_seq}, found {entry['seq']}")
        problem = verify_entry(entry, keys)
        report.check("custody signature", problem is None, where, problem or "")
        status = statuses.get(entry.get("key"))
        distrust = status.trusted_at(entry.get("time", "")) if status else None
        if entry.get("event") != "key revoked":  # a key may sign its own revocation
            report.check("custody key status", distrust is None, where, distrust or "")
        subject = entry.get("subject") if isinstance(entry.get("subject"), dict) else {}
        if entry.get("event") == "key rotated":
            report.check("custody key rotation", entry.get("key") == subject.get("from"), where,
                         "a new key must be announced by the key it replaces")
        if problem is None:  # only what the collection's keys signed is held against the rest
            _remember(custody, entry, subject)
        previous, expected_seq = line, entry["seq"] + 1
    return custody


def _check_key_files(collection: Collection, custody: _Custody, report: Report) -> None:
    """Each public key file holds exactly the key the custody log announced under that
    fingerprint (a PEM parser forgives changes its signature checks would never see)."""
    for path in sorted((collection.root / "keys").glob("*.pem")):
        announced = custody.public_keys.get(path.name.split(".", 1)[0])
        where = f"keys/{path.name}"
        if report.check("public key announced", announced is not None, where,
                        "no custody entry announces a key with this fingerprint"):
            report.check("public key file", path.read_bytes() == announced.encode("utf-8"), where,
                         "differs from the key the custody log announced")


def _remember(custody: _Custody, entry: dict, subject: dict) -> None:
    event = entry.get("event")
    if isinstance(subject.get("public_key"), str):  # key generated, adopted, rotated; wacz key generated
        custody.public_keys[subject.get("to") if event == "key rotated" else subject.get("fingerprint")] = \
            subject["public_key"]
    if entry.get("event") == "capture":
        custody.captures[subject.get("capture")] = subject.get("attestation")
    elif entry.get("event") == "manifest signed":
        custody.manifests[subject.get("sequence")] = entry
    elif entry.get("event") == "timestamp":
        custody.timestamps[subject.get("sequence")] = entry
    elif entry.get("event") == "import":
        custody.imports.update(subject.get("captures", []))


# -- WARC files and records -------------------------------------------------------------

@dataclass(frozen=True)
class _ToScan:
    name: str         # as stored
    unfinished: bool  # still being written, or left so by an interrupted run
    size: int

    @property
    def shown(self) -> str:
        return self.name + (UNFINISHED_SUFFIX if self.unfinished else "")


def _plan_scans(storage: Storage, catalog: Catalog, report: Report) -> tuple[dict[str, _ToScan], dict[str, tuple]]:
    """The WARC files to read: every listed one present, and any unlisted one found (keyed by
    the name a report shows them under)."""
    listed = {row[0]: row for row in catalog.query("SELECT name, closed_at, size, sha256 FROM warc_files")}
    found = [_ToScan(name, False, storage.size(name)) for name in storage.names()
             if name.endswith(".warc.gz") or name in listed]
    found += [_ToScan(name, True, storage.unfinished_size(name)) for name in storage.unfinished() if name.endswith(".warc.gz")]
    found_by_shown = {file.shown: file for file in found}
    to_scan: dict[str, _ToScan] = {}
    for name in listed:
        file = found_by_shown.get(name) or found_by_shown.get(name + UNFINISHED_SUFFIX)
        if report.check("WARC file present", file is not None, f"warcs/{name}", "listed in the catalog but missing"):
            to_scan[name] = file
            report.check("WARC file closed", not file.unfinished, f"warcs/{file.shown}",
                         "left unfinished by an interrupted run (still .open)")
    for file in found:
        if file.name not in listed:
            report.check("WARC file listed", False, f"warcs/{file.shown}", "not in the catalog: its records are not captures of this collection")
            to_scan[file.shown] = file
    return to_scan, listed


def _check_scan(file: _ToScan, scan: FileScan, row: tuple | None, report: Report) -> None:
    where = f"warcs/{file.shown}"
    report.check("WARC file readable", scan.error is None, where, scan.error or "")
    if row and row[1]:  # closed: its size and hash were recorded when it was closed
        report.check("WARC file size", scan.size == row[2], where, f"size: expected {row[2]}, found {scan.size}")
        report.check("WARC file SHA-256", scan.sha256 == row[3], where, f"sha256: expected {row[3]}, found {scan.sha256}")


class _RecordChecks:
    """Each WARC file's records, as soon as the file is read, against the catalog's rows for
    it; of each record only the digests found are kept, for the attestations."""

    def __init__(self, catalog: Catalog, imported: set[str], report: Report) -> None:
        self.catalog = catalog
        self.imported = imported
        self.report = report
        self.warcinfo_ids = {row[0] for row in catalog.query("SELECT warcinfo_id FROM warc_files")}
        self.found: dict[str, dict] = {}  # record id → the digests its bytes have

    def check_file(self, name: str, scan: FileScan) -> None:
        report = self.report
        in_file: dict[str, ScannedRecord] = {}
        for record in scan.records:
            in_file[record.id] = record
            _check_self_consistent(name, record, report)
            self.found[record.id] = {"block_digest": record.block_digest,
                                     "payload_digest": record.payload_digest if record.type != "revisit"
                                     else record.headers.get("WARC-Payload-Digest")}
        for (record_id, warc_type, offset, length, block_digest, payload_digest, target_uri, warc_date) in \
                self.catalog.query("SELECT record_id, warc_type, offset, length, block_digest, payload_digest,"
                                   " target_uri, warc_date FROM records WHERE warc_file = ? ORDER BY offset", (name,)):
            where = f"warcs/{name} {record_id}"
            record = in_file.pop(record_id, None)
            if not report.check("record present", record is not None, where, "cataloged but not found in its WARC file"):
                continue
            report.check("record position", (record.offset, record.length) == (offset, length), where,
                         f"offset/length: expected {offset}/{length}, found {record.offset}/{record.length}")
            report.check("record block digest", record.block_digest == block_digest, where,
                         f"WARC-Block-Digest: expected {block_digest} (catalog), found {record.block_digest} (computed)")
            if warc_type != "revisit" and payload_digest is not None:
                report.check("record payload digest", record.payload_digest == payload_digest, where,
                             f"WARC-Payload-Digest: expected {payload_digest} (catalog), found {record.payload_digest} (computed)")
            declared_payload = payload_digest if name not in self.imported else None  # we catalog sha256, they wrote sha1
            for header, expected in (("WARC-Type", warc_type), ("WARC-Target-URI", target_uri), ("WARC-Date", warc_date),
                                     ("WARC-Payload-Digest", declared_payload)):
                if expected is not None:
                    report.check("record header", record.headers.get(header) == expected, where,
                                 f"{header}: expected {expected}, found {record.headers.get(header)}")
        if name in self.imported:
            return
        for record_id, record in in_file.items():  # in the file, but not cataloged as in it
            if self.catalog.query("SELECT 1 FROM records WHERE record_id = ?", (record_id,)).fetchone():
                continue  # cataloged in another file: that file's check reports it missing there
            if record.type == "warcinfo":
                report.check("warcinfo listed", record_id in self.warcinfo_ids, f"warcs/{name} {record_id}",
                             "warcinfo of no listed file")
            else:
                report.check("record listed", False, f"warcs/{name} {record_id}",
                             f"a {record.type} record the catalog does not list claims to be a capture")

    def check_unread(self, read: set[str]) -> None:
        """Records cataloged in files that could not be read at all (missing)."""
        for record_id, warc_file in self.catalog.query(
                f"SELECT record_id, warc_file FROM records WHERE warc_file NOT IN ({', '.join('?' * len(read))})"
                " ORDER BY warc_file, offset", tuple(read)):
            self.report.check("record present", False, f"warcs/{warc_file} {record_id}",
                              "cataloged but not found in its WARC file")


def _check_self_consistent(name: str, record: ScannedRecord, report: Report) -> None:
    """The digests a record declares against those of its bytes, whatever the catalog says."""
    where = f"warcs/{name} {record.id}"
    for header, computed, check in (("WARC-Block-Digest", record.block_digest, "declared block digest"),
                                    ("WARC-Payload-Digest", record.payload_digest, "declared payload digest")):
        declared = record.headers.get(header)
        # Other algorithms (sha1 from other tools) were checked when the file was imported.
        if computed is not None and declared is not None and declared.startswith("sha256:"):
            report.check(check, declared == computed, where, f"{header}: declared {declared}, computed {computed}")


# -- attestations -----------------------------------------------------------------------

def _check_attestations(catalog: Catalog, keys: dict[str, PublicKey], statuses: dict[str, KeyStatus],
                        custody: _Custody, report: Report) -> dict[str, dict]:
    """Every attestation's signature, key and claims against the catalog; of each verified
    statement, the records it signed, for them to be checked once the WARCs are read."""
    statements: dict[str, dict] = {}
    attestation_records = {row[0]: (row[1], row[2]) for row in catalog.query(
        "SELECT capture_id, record_id, block_digest FROM records WHERE role = 'attestation'")}
    fields = ("url", "final_url", "outcome", "http_status", "started_at", "finished_at", "ip", "cert_sha256", "payload_digest")
    for row in catalog.query(f"SELECT c.id, c.warc_file, c.imported_from, a.envelope, {', '.join('c.' + f for f in fields)}"
                             " FROM captures c LEFT JOIN attestations a ON a.capture_id = c.id ORDER BY c.id"):
        capture_id, warc_file, imported_from, envelope_text = row[:4]
        values = dict(zip(fields, row[4:]))
        where = f"capture {capture_id}"
        if imported_from is not None:
            report.check("import in custody log", capture_id in custody.imports, where,
                         "imported, but no import entry in the custody log names it")
            continue
        logged = capture_id in custody.captures
        report.check("capture in custody log", logged, where, "the custody log has no entry for this capture")
        if warc_file is None:
            continue  # failed before any byte was stored: nothing to attest
        if not report.check("attestation present", envelope_text is not None, where, "no signed attestation"):
            continue
        envelope = json.loads(envelope_text)
        envelope_digest = "sha256:" + hashlib.sha256(canonical_json(envelope)).hexdigest()
        if logged:
            report.check("attestation in custody log", custody.captures[capture_id] == envelope_digest, where,
                         f"attestation: custody log has {custody.captures[capture_id]}, catalog has {envelope_digest}")
        stored = attestation_records.get(capture_id)
        report.check("attestation record", stored is not None and stored[1] == envelope_digest, where,
                     f"the attestation in the WARC ({stored[1] if stored else 'missing'}) differs from the catalog's ({envelope_digest})")
        try:
            statement, signer = open_envelope(envelope, keys)
        except BadEnvelope as exc:
            report.check("attestation signature", False, where, str(exc))
            continue
        report.check("attestation signature", True, where, "")
        distrust = statuses[signer].trusted_at(values["finished_at"]) if signer in statuses else f"key {signer[:16]} never announced in the custody log"
        report.check("attestation key status", distrust is None, where, distrust or "")
        predicate = statement.get("predicate", {})
        for name in ("id",) + fields:
            expected = capture_id if name == "id" else values[name]
            report.check("attestation claims", predicate.get(name) == expected, where,
                         f"{name}: attested {predicate.get(name)}, catalog has {expected}")
        # Only what the record check needs is kept: memory stays flat however many captures.
        statements[capture_id] = {"_type": statement.get("_type"), "predicateType": statement.get("predicateType"),
                                  "predicate": {"records": [{k: r.get(k) for k in ("id", "block_digest", "payload_digest")}
                                                            for r in predicate.get("records", [])]}}
    cataloged = {row[0] for row in catalog.query("SELECT id FROM captures")}
    for capture_id in sorted(custody.captures.keys() - cataloged):
        report.check("capture in catalog", False, f"capture {capture_id}", "in the custody log but missing from the catalog")
    return statements


def _check_attested_records(statements: dict[str, dict], found: dict[str, dict], report: Report) -> None:
    """Each record an attestation names, present with the digests it signed."""
    for capture_id, statement in sorted(statements.items()):
        problems = statement_problems(statement, found)
        report.check("attested records", not problems, f"capture {capture_id}", "; ".join(problems))


# -- manifests --------------------------------------------------------------------------

def _check_manifests(collection: Collection, catalog: Catalog, keys: dict[str, PublicKey],
                     statuses: dict[str, KeyStatus], custody: _Custody, report: Report) -> None:
    folder = collection.root / "manifests"
    listed = {row[0]: row for row in catalog.query("SELECT sequence, sha256, file FROM manifests ORDER BY sequence")}
    on_disk = {int(m.group(1)): p for p in folder.iterdir() if (m := MANIFEST_NAME.match(p.name))}
    if not listed and not on_disk:
        report.not_checked.append("manifests: none exported yet (`archiver manifest`)")
        return
    roots = _trusted_roots(collection, report)
    previous_sha: str | None = None
    newest: Path | None = None
    for sequence in range(1, max([*listed, *on_disk]) + 1):
        where = f"manifests/manifest-{sequence}.json"
        path = on_disk.get(sequence)
        if not report.check("manifest present", path is not None, where, "missing from the chain of manifests"):
            previous_sha = None
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        row = listed.get(sequence)
        report.check("manifest listed", row is not None and row[1] == digest, where,
                     f"sha256: catalog has {row[1] if row else 'no such manifest'}, file is {digest}")
        # Read in one pass, one entry at a time: the newest is compared with the catalog as it goes.
        leaves: list[bytes] = []
        against = _AgainstCatalog(catalog, where, report) if sequence == max(on_disk) else None

        def on_capture(entry, raw: bytes) -> None:
            leaves.append(merkle.leaf_hash(raw))
            if against is not None:
                against.capture(entry)
        try:
            fields = read_manifest(data, on_capture, against.claim if against else None)
            chained_to, declared_sequence = fields["previous_manifest_sha256"], fields["sequence"]
        except (ValueError, RecursionError):
            report.check("manifest readable", False, where, "not a manifest (altered or truncated)")
            chained_to, declared_sequence, fields = "?", None, None
        report.check("manifest sequence", declared_sequence == sequence, where,
                     f"sequence: file name says {sequence}, content says {declared_sequence}")
        if sequence > 1:
            report.check("manifest chain", previous_sha is not None and chained_to == previous_sha, where,
                         f"previous_manifest_sha256: expected {previous_sha}, found {chained_to}")
        _check_manifest_signature(path, data, digest, sequence, keys, statuses, custody, report)
        if fields is not None:
            _check_checkpoint(path, fields, leaves, digest, keys, report)
            if against is not None:
                report.check("manifest readable", {"captures", "claims"} <= fields["counts"].keys(), where,
                             "has no list of captures and claims")
        _check_timestamps(path, data, sequence, roots, custody, report)
        previous_sha, newest = digest, path
        del data
    report.check("manifest.json newest", newest is not None and points_at(newest),
                 "manifests/manifest.json", "is not the newest manifest in the chain")


def _check_manifest_signature(path: Path, data: bytes, digest: str, sequence: int, keys: dict[str, PublicKey],
                              statuses: dict[str, KeyStatus], custody: _Custody, report: Report) -> None:
    where = f"manifests/{signature_path(path).name}"
    try:
        signature = signature_path(path).read_bytes()
    except OSError:
        report.check("manifest signature", False, where, "the signature file is missing")
        return
    signer = next((fp for fp, public in keys.items() if public.verify(signature, data)), None)
    if not report.check("manifest signature", signer is not None, where, "does not verify with any key of this collection"):
        return
    logged = custody.manifests.get(sequence)
    if not report.check("manifest in custody log", logged is not None and logged["subject"].get("sha256") == digest,
                        where, "the custody log records no signing of these bytes"):
        return
    report.check("manifest key", logged["key"] == signer, where,
                 f"signed by {signer[:16]}, but the custody log says {logged['key'][:16]}")
    distrust = statuses[signer].trusted_at(logged["time"]) if signer in statuses else "key never announced"
    report.check("manifest key status", distrust is None, where, distrust or "")


def _check_checkpoint(path: Path, fields: dict, leaves: list[bytes], digest: str, keys: dict[str, PublicKey],
                      report: Report) -> None:
    """The signed checkpoint a bundle carries must say exactly what the manifest holds."""
    where = f"manifests/{checkpoint_path(path).name}"
    try:
        data = checkpoint_path(path).read_bytes()
        signature = signature_path(checkpoint_path(path)).read_bytes()
        checkpoint = json.loads(data)
    except (OSError, ValueError):
        report.check("manifest checkpoint", False, where, "missing or unreadable")
        return
    report.check("checkpoint signature", any(public.verify(signature, data) for public in keys.values()), where,
                 "does not verify with any key of this collection")
    tree = merkle.root(leaves).hex()
    stated = fields["content"].get("captures_merkle_root")
    report.check("manifest Merkle root", stated == tree, f"manifests/{path.name}",
                 f"captures_merkle_root: stated {stated}, computed {tree}")
    expected = {"manifest_sha256": digest, "sequence": fields["sequence"], "captures": len(leaves),
                "previous_manifest_sha256": fields["previous_manifest_sha256"], "captures_merkle_root": tree}
    for name, value in expected.items():
        report.check("manifest checkpoint", isinstance(checkpoint, dict) and checkpoint.get(name) == value, where,
                     f"{name}: checkpoint says {checkpoint.get(name) if isinstance(checkpoint, dict) else '?'}, "
                     f"manifest gives {value}")


def _trusted_roots(collection: Collection, report: Report) -> bytes | None:
    name = collection.config.timestamps.trusted_roots
    if not name:
        return None
    try:
        return (collection.root / name).read_bytes()
    except OSError as exc:
        report.check("timestamp roots", False, name, f"cannot read the trusted roots: {exc.strerror or exc}")
        return None


def _check_timestamps(path: Path, data: bytes, sequence: int, roots: bytes | None, custody: _Custody,
                      report: Report) -> None:
    """The manifest's RFC 3161 token, and its checkpoint's (the one a bundle carries)."""
    logged = custody.timestamps.get(sequence, {}).get("subject", {})
    checkpoint = checkpoint_path(path)
    for token, stamped, recorded, token_sha256 in (
            (token_path(path), data, sequence in custody.timestamps, logged.get("token_sha256")),
            (token_path(checkpoint), checkpoint.read_bytes() if checkpoint.exists() else b"",
             bool(logged.get("checkpoint_token")), logged.get("checkpoint_token_sha256"))):
        _check_token(token, stamped, recorded, token_sha256, roots, report)


def _check_token(token: Path, data: bytes, recorded: bool, token_sha256: str | None, roots: bytes | None,
                 report: Report) -> None:
    from archiver.evidence.timestamps.verification import verify_timestamp  # imported here: only manifests with tokens need it

    where = f"manifests/{token.name}"
    if not token.exists():
        if recorded:
            report.check("manifest timestamp", False, where, "the custody log records a timestamp, but the token is missing")
        else:
            report.not_checked.append(f"{token.name.removesuffix('.tsr')}: no RFC 3161 timestamp")
        return
    if token_sha256 is not None:
        # The TSA signs the token's content, not its wrapping (versions, certificates): the
        # custody log's hash of the whole file catches a change there too.
        found = hashlib.sha256(token.read_bytes()).hexdigest()
        report.check("timestamp token unchanged", found == token_sha256, where,
                     f"sha256: custody log has {token_sha256}, file is {found}")
    if roots is None:
        report.not_checked.append(f"{token.name}: no trusted_roots in archiver.toml to check it against")
        return
    check = verify_timestamp(token.read_bytes(), data, roots)
    report.check("manifest timestamp", check.ok, where, "; ".join(check.problems))


class _AgainstCatalog:
    """The newest manifest's entries, one at a time, against the catalog: what it lists must
    still be there, unchanged."""

    def __init__(self, catalog: Catalog, where: str, report: Report) -> None:
        self.catalog = catalog
        self.where = where
        self.report = report
        self.claims = {c.id: c.text for c in catalog.claims(include_superseded=True)}

    def capture(self, capture) -> None:
        capture = capture if isinstance(capture, dict) else {}
        capture_id = capture.get("id")
        records = {r.record_id: r for r in self.catalog.records(capture_id)} if isinstance(capture_id, str) else {}
        listed_records = capture.get("records")
        for listed in listed_records if isinstance(listed_records, list) else [None]:
            listed = listed if isinstance(listed, dict) else {}
            record = records.get(listed.get("id"))
            same = record is not None and (record.block_digest, record.payload_digest, record.warc_file, record.offset) == (
                listed.get("block_digest"), listed.get("payload_digest"), listed.get("file"), listed.get("offset"))
            self.report.check("manifest matches catalog", same,
                              f"{self.where} capture {capture_id} record {listed.get('id')}",
                              "the catalog no longer holds this record as the manifest lists it")

    def claim(self, claim, raw: bytes) -> None:
        claim = claim if isinstance(claim, dict) else {}
        held = self.claims.get(claim.get("id"))
        self.report.check("manifest matches catalog", held is not None and held == claim.get("text"),
                          f"{self.where} claim {claim.get('id')}",
                          "the catalog no longer holds this claim as the manifest lists it")