"""Evidence bundles: a WACZ 1.1.1 file holding exactly the captures behind a selection of
claims, URLs or documents, with the evidence a court needs to check it offline.

    archive/data.warc.gz      the selected records' gzip members, copied byte for byte
    indexes/index.cdx         CDXJ (cdxj-indexer), for pywb and ReplayWeb.page: responses, and a
                              browser capture's screenshot, PDF and DOM at their urn: URIs
    pages/pages.jsonl         one page per captured cited URL
    evidence/claims.json      the claims, their documents' hashes, claim↔capture links
    evidence/captures.json    each capture's manifest entry with its Merkle inclusion proof (a
                              capture that failed with nothing received too: no records, its
                              failure signed by its custody entry, see bundle_unattested.py)
    evidence/checkpoint.json  (+ .sig, .tsr) the signed manifest checkpoint: root, size, hash
    evidence/documents.json   each claim's proof into its document's claim tree, and each
                              document's into the checkpoint (bundle_documents.py)
    evidence/document-<sha256> the documents carried whole (not for claims chosen by --claim)
    evidence/attestations.jsonl, evidence/custody.jsonl, evidence/key-*.pem (public keys)
    evidence/bundle.json      (+ .sig) the bundle statement, signed with Ed25519
    evidence/report.html      the human-readable report
    datapackage.json, datapackage-digest.json (signedData: ECDSA P-384)

The bundle statement commits to the hash of every other file. It cannot commit to
datapackage.json's hash, because datapackage.json must list the statement itself."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from archiver import __version__
from archiver.evidence import merkle
from archiver.store.catalog import Catalog, how_many_found
from archiver.store.rows import CaptureRow, ClaimRow
from archiver.store.collection import Collection
from archiver.store.documents import DocumentCopies
from archiver.evidence.custody import parse_entry, read_entries
from archiver.store.durable import fsync_dir, replacing
from archiver.errors import UsageProblem
from archiver.evidence.key_status import WORKER_KEY_ANNOUNCED, entry_distrust, key_statuses_in
from archiver.evidence.keys import custody_log, export_custody, refuse_out_of_service, wacz_signing_key
from archiver.evidence.manifest import ManifestResult, read_manifest
from archiver.exchange.report import render_report
from archiver.exchange.report_claims import claim_views
from archiver.exchange.report_view import by_url, imports_of, not_bundled, report_view
from archiver.evidence.seal import sealed_manifest
from archiver.evidence.seal_files import checkpoint_path, signature_path
from archiver.evidence.signing import PublicKey, SigningKey, canonical_json, collection_public_keys
from archiver.exchange.bundle_archive import ARCHIVE, copy_records, index_of, pages_list
from archiver.exchange.bundle_documents import DocumentEntries, document_evidence
from archiver.exchange.bundle_unattested import failure_signers
from archiver.exchange.bundle_files import BundleFiles
from archiver.exchange.capture_evidence import CaptureEvidence, gather
from archiver.exchange.bundle_left_out import leave_out_revoked
from archiver.read.urls import normalise_url

WACZ_VERSION = "1.1.1"


@dataclass
class Selection:
    claims: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # document keys
    everything: bool = False

    def as_record(self) -> dict:
        return {"claims": self.claims, "urls": self.urls, "documents": self.documents, "all": self.everything}


@dataclass(frozen=True)
class BundleResult:
    path: Path
    bundle_id: str
    claims: int
    captures: int
    sha256: str
    timestamped: bool  # the bundle carries its checkpoint's RFC 3161 token
    timestamp_failures: list[str] = field(default_factory=list)  # why sealing the manifest just now got none
    manifest_sequence: int = 0
    stored_since: int = 0  # captures of the selection stored after its manifest was sealed: not in it
    distrusted: list[str] = field(default_factory=list)  # captures attested by a key revoked from before they were made
    distrusted_entries: list[str] = field(default_factory=list)  # custody entries carried signed by a key out of service: why
    left_out: list[str] = field(default_factory=list)  # captures attested by a key revoked from before them: not carried
    left_out_entries: list[str] = field(default_factory=list)  # custody entries signed by a key after its revocation: why
    not_bundled: int = 0  # cited URLs of its claims it holds no capture of (failed, or never captured)


def _bundled(capture: CaptureRow) -> bool:
    """Whether a bundle carries `capture`: one with stored records, or one that failed with
    nothing received (no records), which is evidence too: the URL could not be fetched then."""
    return bool(capture.warc_file) or capture.outcome == "failed"


def _selected(catalog: Catalog, selection: Selection) -> tuple[list[ClaimRow], list[CaptureRow], set[str]]:
    """The claims chosen, every capture (_bundled) of every URL they cite (and of URLs chosen
    directly; revisits bring the capture holding their payload), and the keys of the documents
    to carry whole: all but those whose claims were chosen one by one. Everything is every
    claim and every capture, cited by a claim or not."""
    if selection.everything:
        claims = catalog.claims(include_superseded=True)
        captures = [c for c in catalog.captures() if _bundled(c)]
        if not captures:
            raise UsageProblem("the collection has no captures", "capture some URLs first")
        return claims, sorted(captures, key=_in_time_order), {c.document_key for c in claims} - {None}
    chosen: dict[str, ClaimRow] = {}
    for prefix in selection.claims:
        matches = catalog.find_claim(prefix)
        if len(matches) != 1:
            raise UsageProblem(f"{prefix!r} matches {how_many_found(len(matches))} claims", "give a claim id from `archiver claims`")
        chosen[matches[0].id] = matches[0]
    disclosed = set()
    for url in selection.urls:
        found = catalog.claims(url_key=normalise_url(url))
        chosen.update((c.id, c) for c in found)
        disclosed.update(c.document_key for c in found)
    for key in selection.documents:
        found = catalog.claims(document_key=key)
        if not found:
            raise UsageProblem(f"no claims from the document {key}", "list documents with `archiver documents`")
        chosen.update((c.id, c) for c in found)
        disclosed.add(key)
    claims = sorted(chosen.values(), key=lambda c: c.id)
    # What a claim cited before a re-read dropped it is what it cited when it was published.
    url_keys = {key for claim in claims for key in claim.url_keys_ever()} | {normalise_url(u) for u in selection.urls}
    captures = [c for rows in catalog.captures_by_url(url_keys).values() for c in rows if _bundled(c)]
    if not captures:
        raise UsageProblem("the selection has no captures", "capture its URLs first, or choose other claims")
    return claims, sorted(captures, key=_in_time_order), disclosed - {None}


def _in_time_order(capture: CaptureRow) -> tuple[str, str]:
    """Captures by when they started, as `captures` and `history` list them: an id orders only
    to the second, with a random suffix after."""
    return capture.started_at, capture.id


def _custody_entries(logged: list[tuple[bytes, dict | None]], claims: set[str], captures: set[str],
                     sequence: int) -> list[bytes]:
    """The signed log entries that concern the selection, its keys and its manifest."""
    kept = []
    for line, entry in logged:
        if entry is None:
            continue
        subject, event = entry.get("subject") or {}, entry.get("event") or ""
        if (event.startswith("key") or event in ("wacz key generated", WORKER_KEY_ANNOUNCED, "collection created")
                or (event == "capture" and subject.get("capture") in captures)
                or (event == "import" and not captures.isdisjoint(subject.get("captures") or ()))
                or (event in ("manifest signed", "timestamp") and subject.get("sequence") == sequence)
                or (event == "note recorded" and subject.get("claim") in claims)):
            kept.append(line)
    return kept


def _proofs(manifest_path: Path, wanted: set[str], documents: DocumentEntries) -> tuple[list[dict], bytes]:
    """Each wanted capture's manifest entry with its inclusion proof, and the checkpoint's bytes;
    the wanted document entries are gathered into `documents` in the same reading."""
    leaves: list[bytes] = []
    chosen: list[tuple[int, dict]] = []

    def on_capture(entry: dict, raw: bytes) -> None:
        if entry["id"] in wanted:
            chosen.append((len(leaves), entry))
        leaves.append(merkle.leaf_hash(raw))
    read_manifest(manifest_path.read_bytes(), on_capture, on_document=documents.on_document)
    tree = merkle.Tree(leaves)
    found = [{"index": i, "entry": entry, "proof": [h.hex() for h in tree.inclusion_proof(i)]} for i, entry in chosen]
    return found, checkpoint_path(manifest_path).read_bytes()


def _sign_p384(private: ec.EllipticCurvePrivateKey, text: str) -> str:
    """ECDSA P-384 over SHA-256, as raw r||s in base64: the form ReplayWeb.page verifies."""
    r, s = decode_dss_signature(private.sign(text.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    return base64.b64encode(r.to_bytes(48, "big") + s.to_bytes(48, "big")).decode("ascii")


def export_bundle(collection: Collection, key: SigningKey, selection: Selection, output: Path,
                  on_step: Callable[[str], None] = lambda step: None, include_revoked: bool = False) -> BundleResult:
    """Seal the collection's current manifest, write the bundle of `selection` to `output`,
    and record the export in the custody log; `on_step` is told each step as it starts. What a
    revoked key signed is left out unless `include_revoked` (bundle_left_out.py)."""
    # Written beside `output` and given its name only once the custody log records it: an export
    # the log does not record did not happen, and whatever was at `output` before stays there.
    staged = output.with_name(f".{output.name}.{os.getpid()}.staged")
    # Held throughout: a repair by another command (capture, doctor) waits for no one but would
    # take this export's folder in tmp/ for a leftover.
    with collection.in_use(), collection:
        on_step("sealing the manifest")
        manifest, seal = sealed_manifest(collection, key)
        try:
            with tempfile.TemporaryDirectory(dir=collection.tmp) as work:
                result = dataclasses.replace(
                    _write_bundle(collection, key, manifest, selection, output, staged, Path(work), on_step,
                                  include_revoked),
                    timestamp_failures=seal.timestamp_failures)
            # Minutes may have passed: a key revoked or rotated out meanwhile must not sign the export.
            refuse_out_of_service(collection, key)
            custody_log(collection, key).append("export", {"bundle": result.bundle_id, "file": output.name,
                                                           "sha256": result.sha256, "selection": selection.as_record(),
                                                           "manifest": manifest.sequence})
            os.replace(staged, output)
        finally:
            staged.unlink(missing_ok=True)
        fsync_dir(output.parent)
        return result


def _write_bundle(collection: Collection, key: SigningKey, manifest: ManifestResult, selection: Selection,
                  output: Path, staged: Path, work: Path, on_step: Callable[[str], None],
                  include_revoked: bool) -> BundleResult:
    """The bundle named `output`, written (whole and synced) to `staged`; its WARC is copied
    into the folder `work` first."""
    catalog = collection.catalog
    claims, captures, disclosed = _selected(catalog, selection)
    documents = DocumentEntries({c.document_key for c in claims if c.document_key})
    entries, checkpoint = _proofs(manifest.path, {c.id for c in captures}, documents)
    # A bundle holds what its manifest lists: a capture stored since it was sealed (by a run
    # capturing meanwhile, here or on another machine) waits for the next bundle.
    sealed = {e["entry"]["id"] for e in entries}
    later = len([c for c in captures if c.id not in sealed])
    captures = [c for c in captures if c.id in sealed]
    if not captures:
        raise UsageProblem(f"the selection's captures were all stored after manifest {manifest.sequence} was sealed",
                           "run the bundle again")
    evidence = [gather(collection.storage, catalog, capture) for capture in captures]
    # Read once, after the WACZ key is announced: the custody log, its keys' statuses and the public keys.
    p384, p384_fingerprint = wacz_signing_key(collection, key)
    logged = [(line, parse_entry(line)) for _, line in read_entries(export_custody(collection))]
    signers = failure_signers(entry for _, entry in logged)  # a failure with no records: its custody entry signed it
    evidence = [dataclasses.replace(item, logged_by=signers.get(item.capture.id)) if not item.records else item
                for item in evidence]
    statuses = key_statuses_in(entry for _, entry in logged)
    public_keys = collection_public_keys(collection.root / "keys")
    custody = _custody_entries(logged, {c.id for c in claims}, {c.id for c in captures}, manifest.sequence)
    kept = leave_out_revoked(evidence, custody, statuses)
    if not include_revoked:
        if not kept.evidence:
            raise UsageProblem(f"every capture of the selection is attested by a key revoked from before it was made, "
                               f"or a revisit of one ({', '.join(item['capture'] for item in kept.left_out['captures'][:5])})",
                               "capture its URLs again, then bundle again; or add --include-revoked to bundle them "
                               "as they are (verify-bundle fails them)")
        evidence, custody = kept.evidence, kept.custody
        captures = [item.capture for item in evidence]
        entries = [e for e in entries if e["entry"]["id"] in {c.id for c in captures}]
    archive = work / "data.warc.gz"
    on_step("copying the records")
    copy_records(collection.storage, evidence, archive)
    on_step("indexing them")
    files = BundleFiles()
    files.add(ARCHIVE, archive)
    files.add("indexes/index.cdx", index_of(archive))
    on_step("gathering the evidence")
    files.add("pages/pages.jsonl", pages_list(collection.config.name, evidence))
    files.update(_evidence(collection, catalog, manifest, claims, disclosed, evidence, entries, checkpoint, custody,
                           public_keys))
    files.update(document_evidence(catalog, DocumentCopies(collection.root, collection.storage), documents, manifest.sequence, claims,
                                   disclosed))
    created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    statement = {"bundle": str(uuid.uuid4()), "created": created, "selection": selection.as_record(),
                 "collection": {"id": collection.config.id, "name": collection.config.name,
                                "operator": collection.config.operator},
                 "manifest": {"sequence": manifest.sequence, "sha256": manifest.sha256},
                 "checkpoint_sha256": hashlib.sha256(files["evidence/checkpoint.json"]).hexdigest(),
                 "software": f"archiver/{__version__}", "key": key.fingerprint, "wacz_key": p384_fingerprint,
                 # The signing key vouches for the collection's other keys (earlier, rotated ones).
                 "keys": sorted(public_keys)}
    if not include_revoked and (kept.left_out["captures"] or kept.left_out["custody"]):
        statement["left_out"] = kept.left_out
    view = report_view(key, manifest, statement, claims, evidence, files, json.loads(checkpoint), p384_fingerprint, output.name,
                       Path(ARCHIVE).name, statuses, public_keys,
                       claim_views(catalog, claims, evidence, (entry for _, entry in logged),
                                   not_bundled(catalog, claims, evidence, statement.get("left_out"))),
                       imports_of(entry for _, entry in logged))
    files.add("evidence/report.html", render_report(view).encode("utf-8"))
    statement["files"] = {path: sha256 for path, sha256, _ in files.listing()}
    files.add("evidence/bundle.json", canonical_json(statement))
    files.add("evidence/bundle.json.sig", key.sign(files["evidence/bundle.json"]))
    datapackage = canonical_json({
        "profile": "data-package", "wacz_version": WACZ_VERSION, "created": created,
        "title": f"{collection.config.name}: evidence bundle {statement['bundle']}", "software": f"archiver/{__version__}",
        "resources": [{"name": path.replace("/", "-").lower(), "path": path, "hash": "sha256:" + sha256, "bytes": size}
                      for path, sha256, size in files.listing()]})
    digest = "sha256:" + hashlib.sha256(datapackage).hexdigest()
    public = base64.b64encode(p384.public_key().public_bytes(serialization.Encoding.DER,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    digest_file = canonical_json({"path": "datapackage.json", "hash": digest, "signedData": {
        "hash": digest, "created": created, "software": f"archiver/{__version__}", "version": "0.1.0",
        "signature": _sign_p384(p384, digest), "publicKey": public}})
    on_step("writing the bundle")
    with replacing(staged) as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as wacz:
        files.write(wacz, last=[("datapackage.json", datapackage), ("datapackage-digest.json", digest_file)])
    with open(staged, "rb") as written:
        sha256 = hashlib.file_digest(written, "sha256").hexdigest()
    return BundleResult(output, statement["bundle"], len(claims), len(captures), sha256,
                        "evidence/checkpoint.json.tsr" in files, manifest_sequence=manifest.sequence, stored_since=later,
                        distrusted=[c["id"] for c in view["captures"] if c["attestation_distrusted"]],
                        distrusted_entries=[why for line in custody
                                            if (why := entry_distrust(parse_entry(line), statuses)) is not None],
                        not_bundled=sum(len(c["not_bundled"]) for c in view["claims"]),
                        left_out=[item["capture"] for item in statement.get("left_out", {}).get("captures", [])],
                        left_out_entries=[item["why"] for item in statement.get("left_out", {}).get("custody", [])])


def _evidence(collection: Collection, catalog: Catalog, manifest: ManifestResult, claims: list[ClaimRow],
              disclosed: set[str], evidence: list[CaptureEvidence], entries: list[dict], checkpoint: bytes,
              custody: list[bytes], public_keys: dict[str, PublicKey]) -> dict[str, bytes]:
    # A document's title and warnings quote its text: only the documents carried whole are described.
    documents = [d.as_dict() for d in catalog.documents() if d.key in disclosed]
    for document in documents:
        document.pop("path")  # a local path says nothing a recipient can check, and may say too much
    captures_of = by_url(evidence)
    links = [{"claim": c.id, "capture": capture_id} for c in claims for url_key in c.url_keys_ever()
             for capture_id in captures_of.get(url_key, [])]
    files = {
        "evidence/claims.json": canonical_json({"claims": [c.as_dict() for c in claims], "documents": documents,
                                                "links": links}),
        "evidence/captures.json": canonical_json({"manifest_sequence": manifest.sequence, "captures": entries}),
        "evidence/checkpoint.json": checkpoint,
        "evidence/checkpoint.json.sig": signature_path(checkpoint_path(manifest.path)).read_bytes(),
        # Left out when no capture has one (all imported): an empty JSON Lines file is no valid resource.
        "evidence/attestations.jsonl": b"".join(
            canonical_json({"capture": item.capture.id, "envelope": item.attestation}) + b"\n"
            for item in evidence if item.attestation is not None) or None,
        "evidence/custody.jsonl": b"".join(line + b"\n" for line in custody),
    }
    files = {name: data for name, data in files.items() if data is not None}
    token = checkpoint_path(manifest.path).with_name(checkpoint_path(manifest.path).name + ".tsr")
    if token.exists():
        files["evidence/checkpoint.json.tsr"] = token.read_bytes()
    # WACZ allows extra files exactly one folder deep, hence key-<fingerprint>.pem, not keys/.
    for fingerprint, public in public_keys.items():
        files[f"evidence/key-{fingerprint}.pub.pem"] = public.pem()
    for path in (collection.root / "keys").glob("*.p384.pub.pem"):
        files[f"evidence/key-{path.name}"] = path.read_bytes()
    return files
