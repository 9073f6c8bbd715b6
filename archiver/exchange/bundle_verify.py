"""`verify-bundle`: check a bundle anywhere, offline, with nothing but the file and the
fingerprint of the key its maker gave by another channel.

Any WACZ gets the checks that apply to all of them (archiver.exchange.wacz: a safe reading of the
ZIP, every resource hash, every WARC record digest, the datapackage signature). A bundle
made by archiver also gets its evidence checked: the Ed25519 bundle statement against the
fingerprint, the checkpoint, each capture's Merkle proof against the checkpoint's root, each
claim's against its document's claim tree and each document's against the checkpoint, the
documents carried against their digests, the attestations against the records, the custody entries, the ECDSA key's vouching, and the
RFC 3161 token when trusted TSA roots are given (its genTime not before the manifest's
signing, as the custody entries carried record it, nor before any capture it covers), and the
custody entries' times in the order of their chain (check/clock_times.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from archiver.evidence import merkle
from archiver.evidence.attestation import statement_problems
from archiver.evidence.claim_tree import claim_leaf, document_leaf, proven
from archiver.evidence.custody import entry_time, parse_entry, verify_entry
from archiver.evidence.key_status import KEY_EVENTS, KeyStatus, entry_distrust
from archiver.evidence.worker_keys import vouched_worker_keys
from archiver.check.clock_times import CustodyClock, check_capture_before_token
from archiver.check.records import found_record
from archiver.check.scan import FileScan
from archiver.evidence.signing import BadEnvelope, PublicKey, canonical_json, grouped, open_envelope
from archiver.check.findings import Report
from archiver.exchange.bundle_documents import COPY_PREFIX, PROOFS
from archiver.exchange.bundle_imports import check_imports
from archiver.exchange.bundle_left_out import left_out_lines
from archiver.exchange.bundle_unattested import check_unattested
from archiver.exchange.bundle_shows import captures_show
from archiver.exchange.bundle_signer import EVIDENCE_LIMIT, carried_keys, check_wacz_key_vouched, other_signer
from archiver.exchange.wacz import check_wacz
from archiver.exchange.wacz_package import DIGEST_FILE, DIGEST_FILE_LIMIT
from archiver.exchange.zip_layout import BundleRejected, NotAZip
from archiver.exchange.zipreader import Wacz, open_wacz

UNSIGNED = {"evidence/bundle.json", "evidence/bundle.json.sig", "datapackage.json", "datapackage-digest.json"}


def verify_bundle(path: Path, fingerprint: str | None, tsa_roots: bytes | None = None) -> Report:
    """Every check of the bundle at `path`; a file that is no ZIP, or a ZIP refused for its
    structure, is a bundle that fails (the received file is what is being checked)."""
    report = Report()
    try:
        _verify(path, fingerprint, tsa_roots, report)
    except (NotAZip, BundleRejected) as refused:
        report.check("bundle readable", False, path.name, refused.message)
    if not report.ok:  # what the signature vouches for is said only of a bundle that verified whole
        report.established.clear()
    return report


def _verify(path: Path, fingerprint: str | None, tsa_roots: bytes | None, report: Report) -> None:
    with open_wacz(path) as wacz:
        scans, wacz_key = check_wacz(wacz, report, tsa_roots)
        if "evidence/bundle.json" not in wacz.names():
            report.not_checked.append("archiver evidence: none in this WACZ (made by another tool); only the checks above apply")
            if fingerprint is not None:  # asked who signed it, the only true answer is: not that key
                report.check("signer identity", False, "evidence/bundle.json",
                             f"no bundle statement, so nothing here is signed by the key {grouped(fingerprint)}; "
                             "without --fingerprint or --pubkey only the WACZ checks run")
            return
        try:
            _check_evidence(wacz, fingerprint, wacz_key, scans, tsa_roots, report)
        except (KeyError, ValueError, TypeError, AttributeError, UnsupportedAlgorithm, RecursionError) as exc:
            # Evidence files missing, not JSON, or not of the shape archiver writes: a failed bundle.
            report.check("evidence readable", False, "evidence/", f"malformed or missing evidence ({type(exc).__name__}: {exc})")


def _json(wacz: Wacz, name: str, report: Report):
    try:
        return json.loads(wacz.read(name, EVIDENCE_LIMIT))
    except (KeyError, ValueError):
        report.check("evidence readable", False, name, "missing or not JSON")
        return None


def _check_evidence(wacz: Wacz, fingerprint: str | None, wacz_key: str | None, scans: list[FileScan],
                    tsa_roots: bytes | None, report: Report) -> None:
    keys = carried_keys(wacz, report)
    statement_bytes = wacz.read("evidence/bundle.json", EVIDENCE_LIMIT)
    statement = json.loads(statement_bytes)
    if fingerprint is None:
        report.check("signer identity", False, "evidence/bundle.json",
                     "no fingerprint given: anyone could have made this bundle; pass --fingerprint or --pubkey")
        return
    signer = keys.get(fingerprint)
    if not report.check("signer identity", signer is not None and statement.get("key") == fingerprint,
                        "evidence/bundle.json", lambda: other_signer(keys, fingerprint, statement.get("key"), _custody_lines(
                            wacz) if "evidence/custody.jsonl" in wacz.names() else [])):
        return
    signature = wacz.read("evidence/bundle.json.sig", 1024) if "evidence/bundle.json.sig" in wacz.names() else b""
    if not report.check("bundle signature", signer.verify(signature, statement_bytes), "evidence/bundle.json.sig",
                        "the Ed25519 signature over evidence/bundle.json does not verify"):
        return
    collection = statement.get("collection") or {}
    report.established.update({"bundle": statement.get("bundle"), "made": statement.get("created"),
                               "software": statement.get("software"), "collection": collection.get("name"),
                               "collection_id": collection.get("id"), "operator": collection.get("operator"),
                               "manifest": (statement.get("manifest") or {}).get("sequence")})
    # Nothing inside a bundle can tell what became of its key after it was made; a revocation
    # made later may be dated from before it (a key found stolen), so the question is open-ended.
    report.not_checked.append(f"whether the key {grouped(fingerprint)} has since been revoked, possibly from a date "
                              f"before this bundle was made ({statement.get('created')}): ask the bundle's maker, "
                              "or check the key's status where they publish it")
    trusted = {fp: keys[fp] for fp in statement.get("keys", []) if fp in keys}
    trusted[fingerprint] = signer
    _check_statement_files(wacz, statement, report)
    check_wacz_key_vouched(wacz_key, statement.get("wacz_key"), report)
    checkpoint_bytes = wacz.read("evidence/checkpoint.json", EVIDENCE_LIMIT)
    checkpoint = json.loads(checkpoint_bytes)
    checkpoint_signature = wacz.read("evidence/checkpoint.json.sig", 1024)
    report.check("checkpoint signature", any(k.verify(checkpoint_signature, checkpoint_bytes) for k in trusted.values()),
                 "evidence/checkpoint.json.sig", "does not verify with the collection's keys")
    report.check("checkpoint named", hashlib.sha256(checkpoint_bytes).hexdigest() == statement.get("checkpoint_sha256")
                 and checkpoint.get("manifest_sha256") == statement.get("manifest", {}).get("sha256"),
                 "evidence/checkpoint.json", "is not the checkpoint the bundle statement names")
    records = {r.id: found_record(r) for scan in scans for r in scan.records}
    entries = _check_proofs(wacz, checkpoint, records, report)
    # Worker keys are trusted only as the collection's keys announce (and revoke) them in the custody entries carried.
    custody = _custody_lines(wacz)  # read and parsed once, for every check of the entries carried
    workers, statuses = vouched_worker_keys(custody, trusted)
    judged = _check_attestations(wacz, entries, records, trusted | workers, statuses, report)
    check_unattested(entries, set(judged), custody, trusted | workers, statuses, report)
    _check_custody(wacz, trusted, workers, statuses, statement.get("wacz_key"), report)
    check_imports(entries, custody, trusted, report)
    _check_claims(wacz, entries, report)
    report.not_checked.extend(left_out_lines(statement))  # what its maker says it left out for a revoked key
    _check_documents(wacz, checkpoint, report)
    _check_token(wacz, checkpoint_bytes, tsa_roots, _signed_at(custody, checkpoint, trusted | workers), entries, report)
    report.established["shows"] = captures_show(entries, judged)


def _check_statement_files(wacz: Wacz, statement: dict, report: Report) -> None:
    listed = statement.get("files", {})
    for folder in wacz.folders:  # archiver writes none; unzip makes one of each, named as the forger likes
        report.check("statement covers file", False, folder, "a folder entry the signed bundle statement does not name")
    _check_digest_file(wacz, statement, report)
    for name in sorted(set(wacz.names()) - UNSIGNED):
        expected = listed.get(name)
        if not report.check("statement covers file", expected is not None, name, "not named in the signed bundle statement"):
            continue
        digest, _ = _digest(wacz, name)
        report.check("statement file hash", digest == expected, name,
                     f"sha256: statement says {expected}, file is {digest}")
    for name in sorted(set(listed) - set(wacz.names())):
        report.check("statement file present", False, name, "named in the bundle statement but missing")


def _check_digest_file(wacz: Wacz, statement: dict, report: Report) -> None:
    """datapackage-digest.json as archiver writes it: only its signedData.hash is signed (by the
    WACZ key), so every other byte must be what the signed statement implies, or it could say
    anything (another software, a note that a court accepted the bundle)."""
    raw = wacz.read(DIGEST_FILE, DIGEST_FILE_LIMIT) if DIGEST_FILE in wacz.names() else b""
    try:
        digest = json.loads(raw)
        signed = digest["signedData"]
        as_written = (set(digest) == {"path", "hash", "signedData"} and raw == canonical_json(digest)
                      and set(signed) == {"hash", "created", "software", "version", "signature", "publicKey"}
                      and signed["software"] == statement.get("software") and signed["created"] == statement.get("created"))
    except (ValueError, KeyError, TypeError):
        as_written = False
    report.check("digest file as written", as_written, DIGEST_FILE,
                 "not as archiver writes it for this bundle: fields or bytes that nothing signs were added or changed")


def _check_proofs(wacz: Wacz, checkpoint: dict, records: dict[str, dict], report: Report) -> dict[str, dict]:
    """Each capture's manifest entry proven into the signed checkpoint, and its records present."""
    captures = _json(wacz, "evidence/captures.json", report) or {}
    root = bytes.fromhex(checkpoint.get("captures_merkle_root", ""))
    entries = {}
    for item in captures.get("captures", []):
        entry = item.get("entry", {})
        where = f"evidence/captures.json capture {entry.get('id')}"
        try:
            proof = [bytes.fromhex(h) for h in item["proof"]]
            included = merkle.verify_inclusion(merkle.leaf_hash(canonical_json(entry)), item["index"],
                                               checkpoint["captures"], proof, root)
        except (KeyError, TypeError, ValueError):
            included = False
        if not report.check("Merkle inclusion", included, where, "not proven to be in the signed manifest"):
            continue
        entries[entry["id"]] = entry
        for record in entry.get("records", []):
            found = records.get(record["id"])
            report.check("capture record present", found is not None, f"{where} record {record['id']}",
                         "listed in the manifest entry but missing from archive/")
            if found is not None:
                for field in ("block_digest", "payload_digest"):
                    if record.get(field) is not None:
                        report.check("capture record digest", found[field] == record[field],
                                     f"{where} record {record['id']}",
                                     f"{field}: manifest has {record[field]}, archive gives {found[field]}")
    listed = {record["id"] for entry in entries.values() for record in entry.get("records", [])}
    for record_id, found in sorted(records.items()):
        if found["type"] != "warcinfo" and record_id not in listed:
            report.check("archive record listed", False, f"archive record {record_id}",
                         "in the archive but in no proven capture (added from elsewhere?)")
    return entries


def _custody_lines(wacz: Wacz) -> list[dict]:
    """The custody entries the bundle carries, as parse_entry reads them (_check_custody names the other lines)."""
    return [entry for line in wacz.read("evidence/custody.jsonl", EVIDENCE_LIMIT).splitlines()
            if (entry := parse_entry(line)) is not None]


def _check_attestations(wacz: Wacz, entries: dict[str, dict], records: dict[str, dict], trusted: dict[str, PublicKey],
                        statuses: dict[str, KeyStatus], report: Report) -> dict[str, dict]:
    judged = {}
    # A bundle of imported captures alone has none (its statement names the files it has).
    carried = wacz.read("evidence/attestations.jsonl", EVIDENCE_LIMIT) if "evidence/attestations.jsonl" in wacz.names() else b""
    for line in carried.splitlines():
        item = json.loads(line)
        where = f"evidence/attestations.jsonl capture {item.get('capture')}"
        try:
            statement, signer = open_envelope(item["envelope"], trusted)
        except (BadEnvelope, KeyError, TypeError) as exc:
            report.check("attestation signature", False, where, str(exc))
            continue
        report.check("attestation signature", True, where, "")
        predicate = statement.get("predicate", {})
        distrust = statuses[signer].trusted_at(str(predicate.get("finished_at"))) if signer in statuses else None
        report.check("attestation key status", distrust is None, where, distrust or "")
        entry = entries.get(item.get("capture"), {})
        report.check("attestation matches capture", predicate.get("id") == item.get("capture") and entry
                     and all(predicate.get(f) == entry.get(f) for f in ("url", "final_url", "started_at", "ip", "payload_digest")),
                     where, "the attested capture differs from the manifest entry")
        problems = statement_problems(statement, records)
        report.check("attested records", not problems, where, "; ".join(problems))
        judged[item.get("capture")] = predicate
    return judged  # of each capture, what its attestation signed (bundle_unattested checks those with none)


def _check_custody(wacz: Wacz, trusted: dict[str, PublicKey], workers: dict[str, PublicKey],
                   statuses: dict[str, KeyStatus], wacz_key: object, report: Report) -> None:
    """Each custody entry's signature (by a collection key, or a worker key for anything but a
    key event), its key not revoked or rotated out before it as the entries carried say (the
    rule verify holds the collection's log to: key_status.entry_distrust), and that one
    announces wacz_key, the P-384 key the statement names (whether that key signed the
    datapackage is bundle_signer.check_wacz_key_vouched's); and their times in chain order
    (clock_times.CustodyClock)."""
    vouched, clock = False, CustodyClock(report)
    for number, line in enumerate(wacz.read("evidence/custody.jsonl", EVIDENCE_LIMIT).splitlines(), 1):
        where = f"evidence/custody.jsonl line {number}"
        entry = parse_entry(line)
        if entry is None:
            report.check("custody entry signature", False, where, "not a custody entry")
            continue
        problem = verify_entry(entry, trusted | workers)
        if report.check("custody entry signature", problem is None, where, problem or ""):
            clock.follow(entry, where)
        distrust = entry_distrust(entry, statuses)
        report.check("custody key status", distrust is None, where, distrust or "")
        if problem is None and entry.get("event") in KEY_EVENTS:
            report.check("key event signer", entry.get("key") in trusted, where,
                         "only a collection key may announce, rotate or revoke keys, not a worker key")
        if problem is None and entry.get("event") == "wacz key generated":
            vouched = vouched or entry["subject"].get("fingerprint") == wacz_key
    report.check("datapackage key announced", vouched, "evidence/custody.jsonl",
                 "no custody entry signed by the collection's key announces the datapackage signing key")
    report.not_checked.append("custody chain: a bundle carries only the entries that concern it; each is checked alone")


def _check_claims(wacz: Wacz, entries: dict[str, dict], report: Report) -> None:
    claims = _json(wacz, "evidence/claims.json", report) or {}
    for link in claims.get("links", []):
        report.check("claim linked to a proven capture", link.get("capture") in entries,
                     f"evidence/claims.json claim {link.get('claim')}", f"links to capture {link.get('capture')}, not in this bundle")
    keys = {e.get("url_key") for e in entries.values()}
    for claim in claims.get("claims", []):
        # Its capture failed, or it was never captured: not shown.
        for citation in claim.get("citations", []) + (claim.get("former_citations") or []):
            if citation.get("url_key") not in keys:
                until = f" until {citation['dropped_at']}" if "dropped_at" in citation else ""
                report.not_checked.append(f"claim {claim.get('id')} cite{'d' if until else 's'} {citation.get('url')}"
                                          f"{until}: the bundle holds no capture of it")
    if claims.get("claims"):
        report.not_checked.append("when each claim began citing each URL, and the URLs a re-read of its document dropped: "
                                  "signed by this bundle's statement alone; the signed manifest holds what each cites now")


def _check_documents(wacz: Wacz, checkpoint: dict, report: Report) -> None:
    """Each document proven into the signed checkpoint, the copies carried of it whole, and each
    claim proven into its document's claim tree (see archiver.evidence.claim_tree)."""
    if PROOFS not in wacz.names():
        report.not_checked.append("claims: no proofs that they come from their documents (made by an older archiver)")
        return
    proofs = _json(wacz, PROOFS, report) or {}
    documents_tree = {"root": checkpoint.get("documents_merkle_root"), "size": checkpoint.get("documents")}
    trees, carried = {}, set()
    for item in proofs.get("documents", []):
        entry = item.get("entry") or {}
        where = f"{PROOFS} document {entry.get('key')}"
        try:
            leaf = document_leaf(entry)
        except (KeyError, TypeError):
            leaf = b""
        if not report.check("document inclusion", proven(leaf, item, documents_tree), where,
                            "not proven to be a document of the signed manifest"):
            continue
        trees[entry["key"]] = entry["claims_tree"]
        versions = {(v["sha256"], v["size"]) for v in entry["versions"]}
        for sha256 in item.get("copies", []):
            name = f"{COPY_PREFIX}{sha256}"
            carried.add(name)
            found = _digest(wacz, name) if name in wacz.names() else None
            report.check("document copy", found is not None and found in versions and found[0] == sha256, name,
                         f"a version of {entry['key']} the manifest lists: sha256 {sha256}, "
                         f"found {'nothing' if found is None else f'{found[0]} ({found[1]} bytes)'}")
    for name in sorted(n for n in wacz.names() if n.startswith(COPY_PREFIX) and n not in carried):
        report.check("document copy", False, name, "in no document proven to be in the signed manifest")
    claim_proofs = {item.get("claim"): item for item in proofs.get("claims", []) if isinstance(item, dict)}
    for claim in (_json(wacz, "evidence/claims.json", report) or {}).get("claims", []):
        key = claim.get("document_key")
        if key is None:
            report.not_checked.append(f"claim {claim.get('id')}: a note typed with `archiver cite`, in no document")
            continue
        try:
            leaf = claim_leaf(claim["id"], claim["text"], claim["citations"])
        except (KeyError, TypeError, AttributeError):
            leaf = b""
        item = claim_proofs.get(claim.get("id"), {})
        report.check("claim inclusion", key in trees and item.get("document") == key and proven(leaf, item, trees[key]),
                     f"evidence/claims.json claim {claim.get('id')}",
                     f"its text and citations are not proven to be a claim of {key} in the signed manifest")


def _digest(wacz: Wacz, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with wacz.open(name) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _signed_at(custody: list[dict], checkpoint: dict, keys: dict[str, PublicKey]) -> datetime | None:
    """When the custody entries carried (those whose signature holds) last record the signing
    of the manifest the checkpoint names: its token was asked for after that."""
    times = [entry_time(entry) for entry in custody if entry.get("event") == "manifest signed"
             and (entry.get("subject") or {}).get("sha256") == checkpoint.get("manifest_sha256")
             and verify_entry(entry, keys) is None]
    return max((moment for moment in times if moment is not None), default=None)


def _check_token(wacz: Wacz, checkpoint_bytes: bytes, tsa_roots: bytes | None, signed: datetime | None,
                 entries: dict[str, dict], report: Report) -> None:
    from archiver.evidence.timestamps.verification import predates_signing, verify_timestamp

    if "evidence/checkpoint.json.tsr" not in wacz.names():
        report.not_checked.append("RFC 3161 timestamp: none in this bundle")
        return
    if tsa_roots is None:
        report.not_checked.append("RFC 3161 timestamp: present, but no --tsa-roots given to check it against")
        return
    check = verify_timestamp(wacz.read("evidence/checkpoint.json.tsr", 1 << 20), checkpoint_bytes, tsa_roots)
    if signed is None:
        report.not_checked.append("RFC 3161 timestamp: no custody entry here records the manifest's signing, "
                                  "so its genTime is not held to it")
    elif clock := predates_signing(check, signed):  # either clock may have been off: named, not failed
        report.not_checked.append(f"evidence/checkpoint.json.tsr: {clock}")
    if report.check("checkpoint timestamp", check.ok, "evidence/checkpoint.json.tsr", "; ".join(check.problems)):
        for capture_id, entry in entries.items():  # none can have been captured after the token over it
            check_capture_before_token(entry, check, "evidence/checkpoint.json", f"evidence/captures.json capture {capture_id}", report)
        # What the token proves: the checkpoint (and so every capture it lists) existed by then.
        report.established["timestamp"] = {"time": check.gen_time.isoformat() if check.gen_time else None,
                                           "tsa": check.tsa, "covers": "evidence/checkpoint.json"}
