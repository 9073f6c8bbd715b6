"""The records a capture adds about itself: its metadata (how it was fetched) and its signed
attestation (what it is), made for each capture before it is written."""

from __future__ import annotations

from datetime import datetime, timezone

from archiver.capture.browser.result import BrowserResult
from archiver.capture.exchanges import interim_responses
from archiver.capture.fetch.engine import FetchResult
from archiver.capture.warc import PendingRecord, metadata_record, software, warc_date
from archiver.evidence.attestation import (CAPTURE_FIELDS, MEDIA_TYPE as ATTESTATION_MEDIA_TYPE, SIGNED_HEADERS,
                                           sign_capture)
from archiver.evidence.signing import SigningKey, canonical_json
from archiver.store.settings import CaptureSettings
from archiver.store.rows import CaptureRow


def made_with(result: FetchResult) -> str:
    """The software a capture was made with: archiver's, and the browser that rendered its page."""
    return software(result.browser if isinstance(result, BrowserResult) else None)


def attest(row: CaptureRow, pending: list[PendingRecord], key: SigningKey, operator: str, made_by: str) -> dict:
    """Sign what this capture is (made by the software `made_by` names), and append the signed
    statement to its records."""
    records = [{"id": p.header("WARC-Record-ID"), "role": p.role,
                **{field: p.header(header) for field, header in SIGNED_HEADERS.items()},
                "block_digest": p.header("WARC-Block-Digest"), "payload_digest": p.header("WARC-Payload-Digest")}
               for p in pending]
    # A queued job's id is signed too: a worker's restart lists a capture it left unlisted as its job's.
    signed = {f: getattr(row, f) for f in ("id", *CAPTURE_FIELDS)} | ({"job_id": row.job_id} if row.job_id else {})
    envelope = sign_capture(signed, records, key, made_by, operator)
    pending.append(metadata_record(row.url, datetime.now(timezone.utc), row.response_record_id or records[-1]["id"],
                                   canonical_json(envelope), content_type=ATTESTATION_MEDIA_TYPE, role="attestation"))
    return envelope


def fetch_metadata(capture_id: str, result: FetchResult, response_ids: list[str | None], settings: CaptureSettings,
                   operator: str) -> dict:
    """What the capture's metadata record says of how it was fetched: each hop's timing, address,
    DNS and TLS, the software, the operator and the settings."""
    hops = []
    for hop, response_id in zip(result.hops, response_ids):
        exchange, connection = hop.exchange, hop.exchange.connection
        hops.append({
            "url": hop.url, "status": hop.status, "location": hop.location,
            "started_at": warc_date(exchange.started_at),
            "ip": connection.ip if connection else None, "port": connection.port if connection else None,
            "connection_reused": exchange.connection_reused,
            "connect_seconds": None if exchange.connection_reused or not connection else round(connection.connect_seconds, 6),
            "headers_seconds": exchange.headers_seconds and round(exchange.headers_seconds, 6),
            "finished_seconds": exchange.finished_seconds and round(exchange.finished_seconds, 6),
            "response_bytes": exchange.spool.size if hop.has_response else None,
            "truncated": hop.truncated, "response_record_id": response_id,
            # Why the hop ended without a response: a refused one (never sent) has no records but this.
            "error": hop.error,
            "dns": exchange.resolution.as_record() if exchange.resolution else None,
            "tls": connection.tls.as_record() if connection and connection.tls else None,
        } | interim_responses(hop))
    return {
        "capture_id": capture_id, "requested_url": result.url,
        "final_url": result.final.url if result.final else None,
        "outcome": result.outcome, "error": result.error,
        "started_at": warc_date(result.started_at), "finished_at": warc_date(result.finished_at),
        "redirect_chain": hops, "software": made_with(result), "operator": operator,
        "settings": settings.as_record(), "tls_verification": settings.verify_tls,
    }
