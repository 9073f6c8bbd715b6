"""Checks of the signed attestations: each capture's signature by a collection key trusted at
capture time, its claims as the catalog holds them, its copy in the WARC identical to the
catalog's, and once the WARC files are read, every record it names present with the digests
it signed. Captures in the custody log and in the catalog must match both ways."""

from __future__ import annotations

import hashlib
import json

from archiver.check.custody_log import Logged
from archiver.check.findings import Report
from archiver.evidence.attestation import statement_problems
from archiver.evidence.keys import KeyStatus
from archiver.evidence.signing import BadEnvelope, PublicKey, canonical_json, open_envelope
from archiver.store.catalog import Catalog


def check_attestations(catalog: Catalog, keys: dict[str, PublicKey], statuses: dict[str, KeyStatus],
                       custody: Logged, report: Report) -> dict[str, dict]:
    """Every attestation's signature, key and claims against the catalog; of each verified
    statement, the records it signed, for them to be checked once the WARCs are read."""
    statements: dict[str, dict] = {}
    attestation_records = {row[0]: (row[1], row[2]) for row in catalog.query(
        "SELECT capture_id, record_id, block_digest FROM records WHERE role = 'attestation'")}
    fields = ("url", "final_url", "outcome", "http_status", "started_at", "finished_at", "ip", "cert_sha256", "payload_digest",
              "verdict", "verdict_reason")
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


def check_attested_records(statements: dict[str, dict], found: dict[str, dict], report: Report) -> None:
    """Each record an attestation names, present with the digests it signed."""
    for capture_id, statement in sorted(statements.items()):
        problems = statement_problems(statement, found)
        report.check("attested records", not problems, f"capture {capture_id}", "; ".join(problems))
