"""What evidence/report.html shows, gathered from a bundle's evidence into one plain structure
(the `view` report.render_report lays out): the bundle, its keys and manifest, the claims, and
each capture with, for a browser capture, the page a reader saw."""

from __future__ import annotations

import json
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Iterable

from archiver.evidence.key_status import KeyStatus, attestation_distrust
from archiver.evidence.manifest import ManifestResult
from archiver.evidence.signing import PublicKey, SigningKey
from archiver.exchange.bundle_page import RenderedPage, claim_words, find_words, first_lines
from archiver.exchange.report_changes import changes_since_previous
from archiver.store.rows import ClaimRow

if TYPE_CHECKING:  # for type hints alone
    from archiver.exchange.capture_evidence import CaptureEvidence
    from archiver.exchange.bundle_files import BundleFiles
    from archiver.store.catalog import Catalog


def by_url(evidence: list[CaptureEvidence]) -> dict[str, list[str]]:
    """The ids of the captures of each URL (normalised), to link claims to them."""
    by_url: dict[str, list[str]] = {}
    for item in evidence:
        by_url.setdefault(item.capture.url_key, []).append(item.capture.id)
    return by_url


def not_bundled(catalog: "Catalog", claims: list[ClaimRow], evidence: list[CaptureEvidence],
                left_out: dict | None = None) -> dict[str, list[dict]]:
    """For each claim, the URLs it cites or cited of which the bundle holds no capture, each with
    how its newest capture in the collection ended (failed, and why), or that it was never captured,
    or that its captures were `left_out` (bundle_left_out.py): a reader must not take the captures
    shown for all that the claim cites."""
    bundled = {item.capture.url_key for item in evidence}
    missing = {key for claim in claims for key in claim.url_keys_ever()} - bundled
    found = catalog.captures_by_url(missing)
    newest = {key: rows[-1] for key, rows in found.items() if rows}
    revoked = {item["capture"] for item in (left_out or {}).get("captures", [])}
    return {claim.id: [{"url": url, "started_at": newest[key].started_at if key in newest else None,
                        "outcome": newest[key].outcome if key in newest else None,
                        "error": newest[key].error if key in newest else None,
                        "left_out": any(row.id in revoked for row in found.get(key, []))}
                       for url, key, *_ in claim.citations + claim.former_citations if key in missing]
            for claim in claims}


def imports_of(custody: Iterable[dict | None]) -> dict[str, dict]:
    """The signed custody entry of the import that brought in each imported capture, by capture id:
    when the file was imported and by which key."""
    found = {}
    for entry in custody:
        if (entry or {}).get("event") == "import":
            found.update((capture_id, entry) for capture_id in (entry.get("subject") or {}).get("captures") or ())
    return found


def document_name(key: str) -> str:
    """How the report names a document: its key, the path inside the collection; for a document
    read from elsewhere, whose key is its absolute path on the operator's machine, only its file
    name, since the rest tells the reader nothing they can check and may tell them too much."""
    if PurePosixPath(key).is_absolute() or PureWindowsPath(key).is_absolute():
        return PureWindowsPath(key).name  # splits at "/" and "\\" alike
    return key


def report_view(key: SigningKey, manifest: ManifestResult, statement: dict, claims: list[ClaimRow],
                 evidence: list[CaptureEvidence], files: BundleFiles, checkpoint: dict, wacz_fingerprint: str,
                 bundle_name: str, archive: str, statuses: dict[str, KeyStatus], public_keys: dict[str, PublicKey],
                 claim_views: list[dict], imports: dict[str, dict]) -> dict:
    """The view of a bundle about to be sealed: `files` are its files so far, `archive` names its
    WARC, `claim_views` its claims as report_claims.claim_views sees them, `imports` the custody
    entries of the imports of its imported captures (imports_of)."""
    changes = changes_since_previous(evidence)
    keys = [{"fingerprint": fp, "algorithm": "Ed25519",
             "role": "signs attestations, manifests and this bundle" if fp == key.fingerprint
             else "another key of the collection: signed the attestations and manifests that name it",
             "status": statuses[fp].state if fp in statuses else "active",
             "announced_at": statuses[fp].announced_at if fp in statuses else None,
             "revoked_from": statuses[fp].revoked_from if fp in statuses else None}
            for fp in public_keys]
    keys.append({"fingerprint": wacz_fingerprint, "algorithm": "ECDSA P-384", "role": "signs the WACZ datapackage digest",
                 "status": "valid", "announced_at": statuses[wacz_fingerprint].announced_at if wacz_fingerprint in statuses
                 else None, "revoked_from": None})
    token = files.get("evidence/checkpoint.json.tsr")
    return {
        "bundle": {"id": statement["bundle"], "created": statement["created"], "file": bundle_name,
                   "software": statement["software"],
                   "selection": {**statement["selection"],
                                 "documents": [document_name(key) for key in statement["selection"]["documents"]]},
                   "collection": statement["collection"], "signed_by": key.fingerprint},
        "keys": keys,
        "manifest": {"sequence": manifest.sequence, "sha256": manifest.sha256,
                     "captures_merkle_root": checkpoint["captures_merkle_root"],
                     "captures_in_manifest": checkpoint["captures"], "signed_by": key.fingerprint,
                     "timestamp": _token_view(token) if token else None},
        "documents": [{"key": document_name(d["key"]), "sha256": d["sha256"], "date": d["date"], "title": d["title"]}
                      for d in json.loads(files["evidence/claims.json"])["documents"]],
        "claims": [{**c, "document": c["document"] and document_name(c["document"])} for c in claim_views],
        "captures": [_capture_view(item, archive, [c for c in claims if item.capture.url_key in c.url_keys_ever()],
                                   changes.get(item.capture.id), statuses, imports.get(item.capture.id))
                     for item in evidence],
        "files": [{"path": path, "sha256": sha256, "bytes": size} for path, sha256, size in files.listing()],
        "left_out": statement.get("left_out") or {"captures": [], "custody": []},
    }


def _capture_view(item: CaptureEvidence, archive: str, citing: list[ClaimRow], change: dict | None,
                  statuses: dict[str, KeyStatus], imported: dict | None) -> dict:
    c = item.capture
    signer = (item.attestation or {}).get("signatures", [{}])[0].get("keyid")
    return {"id": c.id, "url": c.url, "final_url": c.final_url, "started_at": c.started_at,
            "finished_at": c.finished_at, "ip": c.ip, "http_status": c.http_status, "outcome": c.outcome,
            "verdict": c.verdict, "verdict_reason": c.verdict_reason,
            "truncated": c.truncated, "error": c.error, "incomplete": item.incomplete, "title": item.title, "redirects": list(item.redirects),
            "certificate": item.certificate, "payload_digest": c.payload_digest,
            "records": [{"id": r.record_id, "type": r.warc_type, "file": archive,
                         "block_digest": r.block_digest, "payload_digest": r.payload_digest} for r in item.records],
            "attestation_key": signer, "logged_by": item.logged_by,
            # Why its attestation is not to be trusted (its key revoked from before the capture), if it is not.
            "attestation_distrusted": attestation_distrust(item.attestation, c.finished_at, statuses),
            "page": _page_view(item.page, citing) if item.page else None, "change": change, "made_with": item.made_with,
            # Shown with the page: each with its URL and the record of its DOM; None, not recorded.
            "frames": None if item.frames is None else list(item.frames),
            "imported": _imported_view(c.imported_from, imported) if c.imported_from else None}


def _imported_view(imported_from: str, entry: dict | None) -> dict:
    """Where an imported capture came from: the file as named when it was imported and its
    SHA-256 (both in its signed manifest entry), and when and by which key it was imported (its
    custody entry, None when the bundle's custody log does not hold it)."""
    source, _, sha256 = imported_from.rpartition(" sha256:")
    return {"source": source or imported_from, "sha256": sha256 or None,
            "at": entry.get("time") if entry else None, "key": entry.get("key") if entry else None}


def _page_view(page: RenderedPage, citing: list[ClaimRow]) -> dict:
    """The browser's page: its screenshot record's bytes and size, title, first lines, and for each
    citing claim whether (and where) its words are in the page's text."""
    shot = page.screenshot
    return {
        "screenshot": None if shot is None else {
            "png": shot.png, "size": shot.size, "record_id": shot.record.record_id,
            "block_digest": shot.record.block_digest, "taken_at": shot.record.warc_date},
        "title": page.title,
        "lines": first_lines(page.text) if page.text else [],
        "claims": [{"claim": claim.id, "words": words, "found": find_words(page.text, words)}
                   for claim in citing for words in claim_words(claim.text)],
    }


def _token_view(token: bytes) -> dict:
    from archiver.evidence.timestamps.token import describe_token

    described = describe_token(token)
    return {"gen_time": described.get("gen_time"), "tsa": described.get("tsa"), "file": "evidence/checkpoint.json.tsr",
            "data": "evidence/checkpoint.json"}
