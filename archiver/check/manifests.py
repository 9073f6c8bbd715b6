"""Checks of the manifest chain: each manifest's signature and key status at signing time,
its sequence and previous-hash link, its signed checkpoint and Merkle root, its RFC 3161
tokens (imprint, TSA signature, chain to trusted roots, the file's SHA-256 as logged, a
genTime not before the signing logged),
manifest.json the newest, and the newest one's captures and claims still as the catalog
holds them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from archiver.check.custody_log import Logged
from archiver.errors import ArchiverError
from archiver.check.findings import Report
from archiver.evidence import merkle
from archiver.evidence.key_status import KeyStatus
from archiver.evidence.claim_tree import document_leaf
from archiver.evidence.custody import entry_time
from archiver.evidence.manifest import MANIFEST_NAME, points_at, read_manifest
from archiver.evidence.seal_files import checkpoint_path, signature_path, token_path, trusted_roots
from archiver.evidence.signing import PublicKey
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection


def check_manifests(collection: Collection, catalog: Catalog, keys: dict[str, PublicKey],
                    statuses: dict[str, KeyStatus], custody: Logged, report: Report) -> None:
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
        leaves, documents = merkle.Root(), merkle.Root()  # of the capture and document entries, as read
        against = _AgainstCatalog(catalog, where, custody, sequence, report) if sequence == max(on_disk) else None

        def on_capture(entry, raw: bytes) -> None:
            leaves.add(merkle.leaf_hash(raw))
            if against is not None:
                against.capture(entry)

        def on_document(entry, raw: bytes) -> None:
            try:
                documents.add(merkle.leaf_hash(document_leaf(entry)))
            except (KeyError, TypeError):
                documents.add(b"")  # not a document entry as archiver writes one: no root will match
        try:
            fields = read_manifest(data, on_capture, against.claim if against else None, on_document,
                                   against.warc_file if against else None)
            chained_to, declared_sequence = fields["previous_manifest_sha256"], fields["sequence"]
        except (ValueError, RecursionError):
            report.check("manifest readable", False, where, "not a manifest (altered or truncated)")
            chained_to, declared_sequence, fields = "?", None, None
        report.check("manifest sequence", type(declared_sequence) is int and declared_sequence == sequence, where,
                     f"sequence: file name says {sequence}, content says {declared_sequence}")
        if sequence > 1:
            report.check("manifest chain", previous_sha is not None and chained_to == previous_sha, where,
                         f"previous_manifest_sha256: expected {previous_sha}, found {chained_to}")
        _check_manifest_signature(path, data, digest, sequence, keys, statuses, custody, report)
        if fields is not None:
            _check_checkpoint(path, fields, leaves, documents, digest, keys, report)
            if against is not None:
                report.check("manifest readable", {"captures", "claims"} <= fields["counts"].keys(), where,
                             "has no list of captures and claims")
        _check_timestamps(path, data, sequence, roots, custody, report)
        previous_sha, newest = digest, path
        del data
    report.check("manifest.json newest", newest is not None and points_at(newest),
                 "manifests/manifest.json", "is not the newest manifest in the chain")


def _check_manifest_signature(path: Path, data: bytes, digest: str, sequence: int, keys: dict[str, PublicKey],
                              statuses: dict[str, KeyStatus], custody: Logged, report: Report) -> None:
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
    distrust = statuses[signer].trusted_at(logged["time"], logged["seq"]) if signer in statuses else "key never announced"
    report.check("manifest key status", distrust is None, where, distrust or "")


def _check_checkpoint(path: Path, fields: dict, leaves: merkle.Root, documents: merkle.Root, digest: str,
                      keys: dict[str, PublicKey], report: Report) -> None:
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
    tree = leaves.hex()
    stated = fields["content"].get("captures_merkle_root")
    report.check("manifest Merkle root", stated == tree, f"manifests/{path.name}",
                 f"captures_merkle_root: stated {stated}, computed {tree}")
    expected = {"manifest_sha256": digest, "sequence": fields["sequence"], "captures": leaves.size,
                "previous_manifest_sha256": fields["previous_manifest_sha256"], "captures_merkle_root": tree}
    if "documents_merkle_root" in fields["content"]:  # manifests made before documents' claim trees have none
        documents_tree = documents.hex()
        stated = fields["content"]["documents_merkle_root"]
        report.check("manifest Merkle root", stated == documents_tree, f"manifests/{path.name}",
                     f"documents_merkle_root: stated {stated}, computed {documents_tree}")
        expected |= {"documents": documents.size, "documents_merkle_root": documents_tree}
    for name, value in expected.items():
        report.check("manifest checkpoint", isinstance(checkpoint, dict) and checkpoint.get(name) == value, where,
                     f"{name}: checkpoint says {checkpoint.get(name) if isinstance(checkpoint, dict) else '?'}, "
                     f"manifest gives {value}")


def _trusted_roots(collection: Collection, report: Report) -> bytes | None:
    try:
        return trusted_roots(collection)
    except ArchiverError as exc:
        report.check("timestamp roots", False, str(collection.config.timestamps.trusted_roots), str(exc))
        return None


def _check_timestamps(path: Path, data: bytes, sequence: int, roots: bytes | None, custody: Logged,
                      report: Report) -> None:
    """The manifest's RFC 3161 token, and its checkpoint's (the one a bundle carries), each
    asked for after the signing the custody log records."""
    logged = custody.timestamps.get(sequence, {}).get("subject", {})
    signed = entry_time(custody.manifests[sequence]) if sequence in custody.manifests else None
    checkpoint = checkpoint_path(path)
    for token, stamped, recorded, token_sha256 in (
            (token_path(path), data, sequence in custody.timestamps, logged.get("token_sha256")),
            (token_path(checkpoint), checkpoint.read_bytes() if checkpoint.exists() else b"",
             bool(logged.get("checkpoint_token")), logged.get("checkpoint_token_sha256"))):
        _check_token(token, stamped, recorded, token_sha256, roots, signed, report)


def _check_token(token: Path, data: bytes, recorded: bool, token_sha256: str | None, roots: bytes | None,
                 signed: datetime | None, report: Report) -> None:
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
    # imported here: X.509 parsing costs a tenth of a second to import
    from archiver.evidence.timestamps.verification import predates_signing, verify_timestamp
    check = verify_timestamp(token.read_bytes(), data, roots)
    report.check("manifest timestamp", check.ok, where, "; ".join(check.problems))
    # Not a failure: a genuine token can be so when either clock was off, and which one the
    # evidence cannot tell (a token that does so is refused as it arrives, since this check).
    if signed is not None and (clock := predates_signing(check, signed)):
        report.not_checked.append(f"{where}: {clock}")


class _AgainstCatalog:
    """The newest manifest's entries, one at a time, against the catalog: what it lists must
    still be there, unchanged (but what a claim cites, when its document was read again since)."""

    def __init__(self, catalog: Catalog, where: str, custody: Logged, sequence: int, report: Report) -> None:
        self.where = where
        self.report = report
        # Walked alongside the manifest's claims (listed by id), not held: a catalog may hold millions.
        # Apart, as the manifest lists them: a claim's citations are held to it even if its row is gone.
        self.claims = _InOrder(catalog, "SELECT id, text FROM claims {} ORDER BY id", "id",
                               lambda rows: rows[0][1] if rows else None)
        self.citations = _InOrder(catalog, "SELECT claim_id, url, url_key, standalone FROM citations {}"
                                  " ORDER BY claim_id, url_key", "claim_id",  # as manifests list them
                                  lambda rows: [{"url": url, "url_key": url_key, "standalone": bool(standalone)}
                                                for _, url, url_key, standalone in rows])
        self.claims_read = custody.claims_read
        self.warc_files = {row[0]: row[1:] for row in catalog.query(
            "SELECT name, sha256, size, opened_at, closed_at FROM warc_files")}
        self.signed_at = custody.manifests.get(sequence, {}).get("seq", 0)  # the custody entry signing it
        self.records = _InOrder(catalog, "SELECT capture_id, record_id, block_digest, payload_digest, warc_file,"
                               " warc_offset FROM records {} ORDER BY capture_id", "capture_id",
                               lambda rows: {row[1]: tuple(row[2:]) for row in rows})

    def capture(self, capture) -> None:
        capture = capture if isinstance(capture, dict) else {}
        capture_id = capture.get("id") if isinstance(capture.get("id"), str) else None
        records = self.records.of(capture_id)
        listed_records = capture.get("records")
        for listed in listed_records if isinstance(listed_records, list) else [None]:
            listed = listed if isinstance(listed, dict) else {}
            record = records.get(listed["id"]) if isinstance(listed.get("id"), str) else None
            same = record is not None and record == (
                listed.get("block_digest"), listed.get("payload_digest"), listed.get("file"), listed.get("offset"))
            self.report.check("manifest matches catalog", same,
                              lambda: f"{self.where} capture {capture_id} record {listed.get('id')}",  # formatted if it fails
                              "the catalog no longer holds this record as the manifest lists it")

    def claim(self, claim, raw: bytes) -> None:
        claim = claim if isinstance(claim, dict) else {}
        claim_id = claim.get("id") if isinstance(claim.get("id"), str) else None
        held = self.claims.of(claim_id)
        self.report.check("manifest matches catalog", held is not None and held == claim.get("text"),
                          f"{self.where} claim {claim.get('id')}",
                          "the catalog no longer holds this claim as the manifest lists it")
        cited = self.citations.of(claim_id)
        # A standalone URL edited changes what a claim cites, not its text: logged as read again.
        read_again = self.claims_read.get(claim_id, 0) > self.signed_at
        self.report.check("manifest matches catalog", read_again or cited == claim.get("citations"),
                          f"{self.where} claim {claim.get('id')}",
                          f"citations: the manifest lists {_urls(claim.get('citations'))}, the catalog has {_urls(cited)}")


    def warc_file(self, listed, raw: bytes) -> None:
        """A file closed when the manifest was made: its SHA-256 and size, signed here, are the
        ones the catalog holds it to (a file then still open was closed since)."""
        listed = listed if isinstance(listed, dict) else {}
        if listed.get("closed_at") is None:
            return
        held = self.warc_files.get(listed["name"]) if isinstance(listed.get("name"), str) else None
        self.report.check("manifest matches catalog", held == tuple(listed.get(name) for name in (
            "sha256", "size", "opened_at", "closed_at")), f"{self.where} WARC file {listed.get('name')}",
            lambda: "the catalog no longer holds this file as the manifest lists it: " + (
                f"sha256 {held[0]}, size {held[1]} against {listed.get('sha256')}, {listed.get('size')}" if held else "missing"))


def _urls(citations) -> str:
    return ", ".join(str(c.get("url")) if isinstance(c, dict) else "?" for c in citations) \
        if isinstance(citations, list) and citations else "none"


class _InOrder:
    """Catalog rows grouped by an id, asked in the order a manifest lists them (by id): one
    query walked alongside, not one query per id nor every row in memory. An id asked out of
    that order (an altered manifest) is looked up alone. `select` has a `{}` where the lookup's
    WHERE goes; `make` makes of an id's rows (none, too) what `of` gives."""

    def __init__(self, catalog: Catalog, select: str, id_column: str, make: Callable[[list[tuple]], Any]) -> None:
        self._catalog = catalog
        self._alone = select.format(f"WHERE {id_column} = ?")
        self._make = make
        self._rows = iter(catalog.stream(select.format("")))
        self._row = next(self._rows, None)

    def of(self, wanted: str | None) -> Any:
        if not isinstance(wanted, str):  # not an id archiver writes: nothing in the catalog is it
            return self._make([])
        # A row whose id is no text (a catalog edited by hand) is no id a manifest names, and is passed.
        while self._row is not None and (not isinstance(self._row[0], str) or self._row[0] < wanted):
            self._row = next(self._rows, None)
        if self._row is None or self._row[0] != wanted:
            return self._make(self._catalog.query(self._alone, (wanted,)).fetchall())
        rows = []
        while self._row is not None and self._row[0] == wanted:
            rows.append(self._row)
            self._row = next(self._rows, None)
        return self._make(rows)
