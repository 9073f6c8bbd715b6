"""What a browser capture adds to a plain one's records: a request/response pair for every
request the page made, a resource record for each thing the browser made of the page (the
full-page screenshot, a PDF print, the DOM after scripts ran, and that of each frame shown in
the page), and what its metadata says of the page: the browser and its settings, the page's
resources with their fate, what it did."""

from __future__ import annotations

from archiver.capture.browser.result import BrowserResult
from archiver.capture.exchanges import hop_records, interim_responses
from archiver.capture.warc import PendingRecord, resource_record
from archiver.read.urls import wire_form

# (record role, URN kind, content type, the PageCapture field)
ARTIFACTS = (("screenshot", "screenshot", "image/png", "screenshot"),
             ("pdf", "pdf", "application/pdf", "pdf"),
             ("dom", "dom", "text/html; charset=utf-8", "dom"))
FRAME_DOM = "frame-dom"  # the role, and URN kind, of the DOM of a frame shown in the page


def page_records(result: BrowserResult, page_response_id: str | None) -> tuple[list[PendingRecord], dict]:
    """The records of every subresource and artifact, and the page's section of the capture's metadata."""
    pending: list[PendingRecord] = []
    resources = []
    certificates: dict[str, list[str]] = {}  # each chain once, by its leaf's SHA-256: most resources share a few
    for hop in result.resources:
        records, response_id = hop_records(hop)
        pending += records
        connection = hop.exchange.connection
        tls = connection.tls if connection else None
        if tls is not None and tls.leaf_sha256:
            certificates.setdefault(tls.leaf_sha256, tls.as_record()["chain_pem"])
        resources.append({"url": hop.url, "status": hop.status,
                          "bytes": hop.exchange.spool.size if hop.has_response else None,
                          "truncated": hop.truncated, "response_record_id": response_id,
                          "ip": connection.ip if connection else None,
                          "certificate_sha256": tls.leaf_sha256 if tls else None,
                          "error": hop.error} | interim_responses(hop))
    artifacts = _artifacts(result, page_response_id)
    frames = _frame_doms(result, page_response_id, next((r for r in artifacts if r.role == "dom"), None))
    page = result.page
    section = {
        "browser": result.browser,
        "page": {"final_url": page.final_url, "title": page.title, "load_seconds": page.load_seconds,
                 "settled_seconds": page.settled_seconds, "console_errors": page.console_errors,
                 "dialogs": page.dialogs, "popups": page.popups, "ended_early": page.error,
                 "notes": page.notes, "shortfalls": page.shortfalls,
                 # Present (if empty) once frames are recorded: a capture without it was made before.
                 "frames": [{"url": frame.url, "dom_record_id": record.header("WARC-Record-ID")}
                            for frame, record in zip(page.frames, frames)]} if page else None,
        "resources": resources,
        "resource_certificates": certificates,  # the chain each resource's TLS connection presented
        "artifacts": {record.role: record.header("WARC-Record-ID") for record in artifacts},
    }
    return pending + artifacts + frames, section


def _artifacts(result: BrowserResult, page_response_id: str | None) -> list[PendingRecord]:
    page = result.page
    if page is None:
        return []
    # Each dated when it was begun (WARC-Date: when its capture began), not when the records are
    # made: a request still in flight after the screenshot would otherwise date it seconds late.
    # A DOM cut in the page to its first bytes (page_text.py) is marked so: WARC-Truncated "length".
    records = [resource_record(f"urn:{kind}:{wire_form(result.url)}", page.taken_at[field], content_type,
                               getattr(page, field), page_response_id, role,
                               "length" if role == "dom" and page.dom_whole_bytes is not None else None)
               for role, kind, content_type, field in ARTIFACTS if getattr(page, field)]
    for record in records:  # each names the others made of the same page in the same capture
        record.headers += [("WARC-Concurrent-To", other.header("WARC-Record-ID"))
                           for other in records if other is not record]
    return records


def _frame_doms(result: BrowserResult, page_response_id: str | None, dom: PendingRecord | None) -> list[PendingRecord]:
    """A resource record of each shown frame's DOM, in the order the frames were read, each at
    `urn:frame-dom:` and its page's URL (the frame's own, which may be a data: URL of megabytes,
    is in the metadata's page section, by record id), concurrent to the page's DOM record."""
    page = result.page
    if page is None:
        return []
    records = [resource_record(f"urn:{FRAME_DOM}:{wire_form(result.url)}", page.taken_at["frames"],
                               "text/html; charset=utf-8", frame.dom.markup.encode("utf-8"), page_response_id, FRAME_DOM,
                               "length" if frame.dom.cut else None)
               for frame in page.frames]
    if dom is not None:
        for record in records:
            record.headers.append(("WARC-Concurrent-To", dom.header("WARC-Record-ID")))
    return records
