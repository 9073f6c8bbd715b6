"""Attestations: at capture time, a signed in-toto statement naming what was captured from
where, when, by which software and key, and each WARC record with its SHA-256 digests.

The statement lists records, not files, so a bundle can carry just the records it needs
and every attestation still verifies against them."""

from __future__ import annotations

import json
import sys

from archiver.evidence.signing import STATEMENT_TYPE, SigningKey, sign_statement

PREDICATE_TYPE = "urn:archiver:capture:v1"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
# Of each record, the WARC headers its statement signs besides the digests: the block digest
# leaves the WARC header uncovered, and these say what a replay shows the record as (which
# URL and when, how its block is read, whether it was cut short, which earlier payload a
# revisit stands for). Not WARC-Warcinfo-ID, set when the record is written after it is
# signed, nor WARC-Concurrent-To, which a browser capture's record may carry several times.
SIGNED_HEADERS = {"type": "WARC-Type", "target_uri": "WARC-Target-URI", "date": "WARC-Date", "ip": "WARC-IP-Address",
                  "content_type": "Content-Type", "truncated": "WARC-Truncated", "refers_to": "WARC-Refers-To",
                  "refers_to_target_uri": "WARC-Refers-To-Target-URI", "refers_to_date": "WARC-Refers-To-Date"}

# Of the capture, the catalog's columns its statement signs; those of SIGNED_SINCE only in
# statements made since they were (older ones do not name them, and are not held to them).
SIGNED_SINCE = ("response_length", "redirects", "incomplete")
CAPTURE_FIELDS = ("url", "final_url", "outcome", "http_status", "error", "truncated", "started_at", "finished_at", "ip",
                  "cert_sha256", "payload_digest", "verdict", "verdict_reason", *SIGNED_SINCE)
SIGNED_FIELDS = ("block_digest", "payload_digest", *SIGNED_HEADERS)  # of each record: the order of signed_values
UNNAMED = "\0unnamed"  # in signed_values: a field its statement does not name (made before it was signed)


def shared(value):
    """`value`, a string one object with every equal one: a verification holds what each of tens
    of thousands of records was signed as and is found as (the same URIs, dates, types, digests)."""
    return sys.intern(value) if type(value) is str else value


def _hex(digest: str | None) -> str | None:
    return digest.split(":", 1)[1] if digest else None


def capture_statement(capture: dict, records: list[dict], key_fingerprint: str, software: str, operator: str) -> dict:
    """`capture`: id and CAPTURE_FIELDS (and a queued job's job_id); `records`: id, role,
    block_digest, payload_digest and SIGNED_HEADERS."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": record["id"], "digest": {"sha256": _hex(record["block_digest"])}} for record in records],
        "predicateType": PREDICATE_TYPE,
        "predicate": {**capture, "records": records, "software": software, "operator": operator,
                      "key_fingerprint": key_fingerprint},
    }


def sign_capture(capture: dict, records: list[dict], key: SigningKey, software: str, operator: str) -> dict:
    return sign_statement(capture_statement(capture, records, key.fingerprint, software, operator), key)


def signed_values(record: dict) -> tuple:
    """What a statement's `record` signed, as a tuple of SIGNED_FIELDS (UNNAMED for each it
    does not name): tens of thousands of them are held through a verification, compactly."""
    return tuple(shared(record[name]) if name in record else UNNAMED for name in SIGNED_FIELDS)


def signed_record(record_id, values: tuple) -> dict:
    """The record signed_values() was given, as statement_problems reads it."""
    return {"id": record_id, **{name: value for name, value in zip(SIGNED_FIELDS, values) if value != UNNAMED}}


def statement_problems(statement: dict, records: dict[str, dict]) -> list[str]:
    """How a verified statement disagrees with the records found (by id: block_digest,
    payload_digest and each of SIGNED_HEADERS); empty when every record it names is present
    with the digests and headers it signed (statements made before headers were signed name
    none, and only their digests are held to; older ones name fewer of SIGNED_HEADERS)."""
    problems = []
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        return ["not an archiver capture statement"]
    # A signed statement is what its signer made, a broken or hostile one too: nothing in it is
    # taken to have the shape archiver gives it.
    predicate = statement.get("predicate") if isinstance(statement.get("predicate"), dict) else {}
    for signed in predicate.get("records") if isinstance(predicate.get("records"), list) else []:
        if not isinstance(signed, dict):
            problems.append(f"a record the attestation names is no object: {json.dumps(signed)[:100]}")
            continue
        found = records.get(signed.get("id")) if isinstance(signed.get("id"), str) else None
        if found is None:
            problems.append(f"record {signed.get('id')} named by the attestation is missing")
            continue
        for field in ("block_digest", "payload_digest"):
            if signed.get(field) != found.get(field):
                problems.append(f"record {signed['id']} {field}: attested {signed.get(field)}, found {found.get(field)}")
        for field, header in SIGNED_HEADERS.items():
            if field in signed and signed[field] != found.get(field):
                problems.append(f"record {signed['id']} {header}: attested {signed[field]}, found {found.get(field)}")
    return problems
