"""What a bundle shows of one capture, gathered in one pass over its stored bytes: its catalog row,
records and signed attestation; from its final response the page title and visible text; from
its metadata record the redirects followed, the server certificate, what it holds less of than
the page had, and the software, browser and settings that made it; for a browser capture, the
page a reader saw and the frames it showed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from archiver.capture.browser.records import FRAME_DOM
from archiver.capture.httpbody import MAX_TEXT_BYTES, html_of, page_title
from archiver.capture.recorded_frames import listed_frames
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
    # The frames its page showed, each with the record of its DOM (frames_of); None: not recorded.
    frames: tuple[dict, ...] | None = None


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
                           {name: details[name] for name in MADE_WITH if name in details} or None,
                           frames=frames_of(capture, records, details))


def frames_of(capture: CaptureRow, records: tuple[StoredRecord, ...], details: dict) -> tuple[dict, ...] | None:
    """The frames a browser capture's page showed, in its metadata's order, each with its URL and
    the record holding its DOM (its id, block digest, and whether it was cut: WARC-Truncated);
    None when its metadata lists none, made before frames were recorded. Of an imported capture,
    whose metadata is another tool's and not read, the frame DOM records it holds, URLs unknown."""
    by_id = {record.record_id: record for record in records if record.role == FRAME_DOM}
    if capture.imported_from is not None:
        listed = [{"url": None, "dom_record_id": record_id} for record_id in by_id]
    elif (listed := listed_frames(details)) is None:
        return None
    return tuple(_frame(frame.get("url"), frame.get("dom_record_id"), by_id.get(frame.get("dom_record_id")))
                 for frame in listed)


def _frame(url: object, record_id: object, record: StoredRecord | None) -> dict:
    # A record the metadata names but the capture does not hold is shown by the id named, digest none.
    return {"url": None if url is None else str(url), "record_id": str(record_id),
            "block_digest": record.block_digest if record else None,
            "cut": record.truncated if record else None, "held": record is not None}


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
