"""What a bundle shows of one capture, gathered in one pass over its stored bytes: its catalog row,
records and signed attestation; from its final response the page title and visible text; from
its metadata record the redirects followed, the server certificate, what it holds less of than
the page had, and the software, browser and settings that made it; for a browser capture, the
page a reader saw."""

from __future__ import annotations

import json
from dataclasses import dataclass

from archiver.capture.httpbody import MAX_TEXT_BYTES, html_of, page_title
from archiver.capture.shortfalls import incomplete
from archiver.exchange.bundle_page import RenderedPage, rendered_page, visible_text
from archiver.store.catalog import Catalog
from archiver.store.record_blocks import read_record_block
from archiver.store.rows import CaptureRow, StoredRecord
from archiver.store.storage import Storage

MADE_WITH = ("software", "browser", "settings", "tls_verification")  # of a capture's metadata record


@dataclass(frozen=True)
class CaptureEvidence:
    """What a bundle shows of one capture, gathered in one pass: its catalog row, records and
    signed attestation, and from its stored bytes the page title and what its metadata record
    holds, the redirects followed and the server certificate; for a browser capture, the page."""

    capture: CaptureRow
    records: tuple[StoredRecord, ...]
    attestation: dict | None  # imported captures have none
    title: str | None
    redirects: tuple[dict, ...]  # the hops that redirected, each with where it led
    certificate: dict | None
    page: RenderedPage | None
    text: str | None  # the visible text of the final response, one line per block; None when it has none to read
    incomplete: str | None = None  # what its record holds less of than the page had: its metadata's word, or the catalog's
    made_with: dict | None = None  # the software, browser and settings its metadata record names; None: not recorded
    logged_by: str | None = None  # of a capture that failed with nothing received: the key that signed its custody entry


def gather(storage: Storage, catalog: Catalog, capture: CaptureRow) -> CaptureEvidence:
    """One capture's evidence: its records listed once, its metadata and its final response read once each."""
    records = tuple(catalog.records(capture.id))
    # Ours is JSON; an imported capture's metadata record is another tool's, in its own form.
    metadata = next((r for r in records if r.role == "metadata"), None) if capture.imported_from is None else None
    details = json.loads(read_record_block(storage, metadata, metadata.content_length)) if metadata else {}
    holder = catalog.payload_record(capture.id) if capture.outcome == "ok" else None
    payload = read_record_block(storage, holder, MAX_TEXT_BYTES) if holder is not None else None
    redirects = tuple({"url": hop["url"], "status": hop["status"], "location": hop["location"]}
                      for hop in details.get("redirect_chain", [])
                      if hop.get("location") and 300 <= (hop.get("status") or 0) < 400)
    page = rendered_page(storage, records, details)
    # What a reader saw: the page the browser rendered, else the text of the HTML as served.
    if page is not None and page.text:
        text = page.text
    else:
        markup = None if payload is None else html_of(payload)
        text = None if markup is None else visible_text(markup)
    return CaptureEvidence(capture, records, catalog.attestation(capture.id),
                           None if payload is None else page_title(payload),
                           redirects, _certificate(capture, details), page, text, incomplete(details) or capture.incomplete,
                           {name: details[name] for name in MADE_WITH if name in details} or None)


def _certificate(capture: CaptureRow, details: dict) -> dict | None:
    """The server certificate recorded in the capture's metadata `details`, in words a report can show."""
    from cryptography import x509

    if capture.cert_sha256 is None:
        return None
    tls = (details.get("redirect_chain") or [{}])[-1].get("tls") or {}
    if not tls.get("chain_pem"):
        return None
    leaf = x509.load_pem_x509_certificate(tls["chain_pem"][0].encode())
    return {"sha256": capture.cert_sha256, "subject": leaf.subject.rfc4514_string(), "issuer": leaf.issuer.rfc4514_string(),
            "not_before": leaf.not_valid_before_utc.isoformat(), "not_after": leaf.not_valid_after_utc.isoformat(),
            "verified": tls.get("verified")}
