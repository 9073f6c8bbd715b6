"""Captures that repeat an earlier one. A final response byte-identical to the newest capture's
of its URL is stored as a revisit record: that is about bytes, and stays right. Whether the page
is unchanged is another question for a page rendered in a browser: the same app-shell HTML may
now render "Page not found". Such a capture is called unchanged only when its verdict and its
rendered DOM are the previous capture's too; otherwise the change is said, verdict first."""

from __future__ import annotations

from archiver.store.catalog import Catalog
from archiver.store.rows import CaptureRow, PayloadOrigin, StoredRecord
from archiver.capture.fetch.engine import FetchResult
from archiver.capture.warc import sha256_digest
from archiver.read.urls import normalise_url


def identical_payloads(catalog: Catalog, results: list[FetchResult]) -> list[PayloadOrigin | None]:
    """For each of `results`, the earlier capture of its URL whose payload is byte-identical,
    if any: then only a revisit record is written instead of storing the body again. The
    catalog is asked once for them all."""
    keys = [normalise_url(r.url) if r.outcome == "ok" and r.final.exchange.spool.header_length is not None else None
            for r in results]  # None: no complete payload to compare
    origins = catalog.payload_origins(key for key in keys if key is not None)
    found = [origins.get(key) if key is not None else None for key in keys]
    return [origin if origin and origin.payload_digest == r.final.exchange.spool.payload_digest else None
            for origin, r in zip(found, results)]


def rendered_change(before_verdict: str | None, before_dom: str | None, verdict: str | None,
                    dom: str | None) -> str | None:
    """How a rendered page whose document is byte-identical to the one before differs from it
    (`dom`: the rendered DOM's digest), verdict first; None when it does not."""
    if verdict != before_verdict:
        return f"same HTML, rendered page now {verdict}"
    if dom != before_dom:
        return "same HTML, rendered page changed"
    return None


def dom_record(catalog: Catalog, capture_id: str) -> StoredRecord | None:
    """The record of the rendered DOM a capture holds, None for none (not rendered, or ended early)."""
    return next((r for r in catalog.records(capture_id) if r.role == "dom"), None)


def dom_digest(catalog: Catalog, capture_id: str) -> str | None:
    """The digest of the rendered DOM a capture holds, None for none."""
    record = dom_record(catalog, capture_id)
    return record.block_digest if record else None


def rendered_since(catalog: Catalog, result: FetchResult, verdict: str | None) -> tuple[str | None, CaptureRow] | None:
    """For a rendered capture stored as a revisit: how its rendered page differs from its URL's
    newest capture (None when it does not), and that capture; None for a page not rendered."""
    page = getattr(result, "page", None)
    if page is None:
        return None
    # The capture the revisit's payload was matched against: the newest whole one of the URL.
    previous = [row for row in catalog.captures(normalise_url(result.url))
                if row.outcome == "ok" and row.payload_digest is not None][-1]
    change = rendered_change(previous.verdict, dom_digest(catalog, previous.id), verdict,
                             sha256_digest(page.dom) if page.dom else None)
    return change, previous


def unchanged_since(catalog: Catalog, rows: list[CaptureRow],
                    rendered: dict[str, tuple[str | None, CaptureRow]]) -> dict[str, str]:
    """For captures stored as revisits and unchanged: since when. A rendered page (`rendered`:
    what `rendered_since` found of it) is so since the capture it was compared with, the one
    before; any other, since its identical payload was first captured. A rendered page changed
    in the same HTML is not unchanged."""
    found = {}
    for row in rows:
        change, previous = rendered.get(row.id, (None, None))
        if row.revisit_of and change is None:
            since = previous or catalog.find_capture(row.revisit_of)[0]
            found[row.id] = since.started_at[:19].replace("T", " ") + " UTC"
    return found
