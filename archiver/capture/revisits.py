"""Captures that repeat an earlier one. A final response byte-identical to the newest capture's
of its URL is stored as a revisit record: that is about bytes, and stays right. Whether the page
is unchanged is another question: the same app-shell HTML may now render "Page not found", and
the same HTML fetched without a browser is judged on its own where it was judged rendered before.
Such a capture is called unchanged only when it shows a reader what the capture before it did:
both rendered or neither, the same verdict, the same rendered DOM and the same DOMs of the frames
it showed (an article in an iframe); otherwise the change is said. One made before frames were
recorded is compared by its own DOM alone (recorded_frames); one whose DOM record (or a frame's) was
cut is never called unchanged: past the cut nothing was compared. Rendered DOMs are compared without
what differs at every load of the same page: the random id of each blob: URL its scripts made
(blob:ORIGIN/UUID)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from archiver.errors import ArchiverError
from archiver.evidence.key_status import KeyStatus, attestation_distrust
from archiver.store.catalog import Catalog
from archiver.store.rows import CaptureRow, PayloadOrigin, StoredRecord
from archiver.store.record_blocks import read_record_block
from archiver.store.storage import Storage
from archiver.capture.fetch.engine import FetchResult
from archiver.capture.recorded_frames import DOM_CUT, FRAMES_NOT_COMPARED, holds_cut_dom, recorded_frames
from archiver.capture.warc import sha256_digest
from archiver.read.urls import normalise_url


def identical_payloads(catalog: Catalog, results: list[FetchResult],
                       statuses: dict[str, KeyStatus]) -> list[PayloadOrigin | None]:
    """For each of `results`, the earlier capture of its URL whose payload is byte-identical,
    if any: then only a revisit record is written instead of storing the body again. The
    catalog is asked once for them all. Never one attested by a key revoked from before it was
    made (as `statuses` say): bundles leave that out, so the body is stored again in full."""
    keys = [normalise_url(r.url) if r.outcome == "ok" and r.final.exchange.spool.header_length is not None else None
            for r in results]  # None: no complete payload to compare
    origins = catalog.payload_origins(key for key in keys if key is not None)
    found = [origins.get(key) if key is not None else None for key in keys]
    if any(status.revoked_from for status in statuses.values()):
        found = [None if origin is not None and attestation_distrust(
            catalog.attestation(origin.capture_id), catalog.find_capture(origin.capture_id)[0].finished_at, statuses)
            else origin for origin in found]
    return [origin if origin and origin.payload_digest == r.final.exchange.spool.payload_digest else None
            for origin, r in zip(found, results)]


# A rendered capture and a plain one of the same bytes: the page was captured another way, not
# changed (their verdicts may differ for that alone: a script's shell is empty unrendered).
NOT_RENDERED_NOW = "same HTML, not rendered (the capture before was)"
RENDERED_NOW = "same HTML, rendered (the capture before was not)"


def captured_another_way(change: str) -> bool:
    """Whether `change`, as rendered_change says it, is only that one of the two captures was
    rendered and the other not."""
    return change.startswith((NOT_RENDERED_NOW, RENDERED_NOW))


@dataclass(frozen=True)
class RenderedPage:
    """What a rendered capture showed, as compared with another of the same HTML: the comparable
    digest (comparable_dom_digest) of its DOM and of each shown frame's, in order; `frames` None
    for a capture made before frames were recorded; `cut` when any of those DOMs was cut."""

    dom: str
    frames: tuple[str, ...] | None = None
    cut: bool = False  # its DOM record, or a frame's, holds only the first part of the DOM


def frames_not_compared(before: RenderedPage | None, now: RenderedPage | None) -> str | None:
    """FRAMES_NOT_COMPARED when comparing two rendered pages left frames out: one made before
    frames were recorded, the other showing some; None otherwise."""
    if before is None or now is None or (before.frames is None) == (now.frames is None):
        return None
    return FRAMES_NOT_COMPARED if before.frames or now.frames else None


def rendered_change(before_verdict: str | None, before_dom: RenderedPage | None, verdict: str | None,
                    dom: RenderedPage | None) -> str | None:
    """How a capture whose document is byte-identical to the one before shows another page than
    it did (`dom`: what it rendered, None when it was not rendered), None when it does not:
    rendered where the other was not, or the other way, first, then the verdict, then the DOM,
    then its frames' (when both captures recorded them); a DOM cut (either's) is not compared."""
    # One never judged (made before verdicts, or imported) has no verdict for this one's to differ from.
    verdict_changed = before_verdict is not None and verdict != before_verdict
    verdicts = f": verdict {before_verdict} → {verdict}" if verdict_changed else ""
    if dom is None and before_dom is not None:
        return NOT_RENDERED_NOW + verdicts
    if dom is not None and before_dom is None:
        return RENDERED_NOW + verdicts
    if verdict_changed:
        return f"same HTML, rendered page now {verdict}" if dom else f"same HTML, verdict now {verdict}"
    if dom is None or before_dom is None:  # neither rendered: the same bytes, judged the same
        return None
    if dom.cut or before_dom.cut:
        return f"same HTML, rendered page {DOM_CUT}"
    if dom.dom != before_dom.dom:
        return "same HTML, rendered page changed"
    if None not in (dom.frames, before_dom.frames) and dom.frames != before_dom.frames:
        return "same HTML, rendered page changed in its frames"
    return None


def dom_record(catalog: Catalog, capture_id: str) -> StoredRecord | None:
    """The record of the rendered DOM a capture holds, None for none (not rendered, or ended early)."""
    return next((r for r in catalog.records(capture_id) if r.role == "dom"), None)


_BLOB_ID = re.compile(rb"(blob:[^\s\"'<>]*?/)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                      re.IGNORECASE)


def comparable_dom_digest(dom: bytes) -> str:
    """The digest of a rendered DOM with each blob: URL's id (new at every load) as …"""
    return sha256_digest(_BLOB_ID.sub("\\1…".encode(), dom))


def rendered_page(storage: Storage, catalog: Catalog, capture_id: str) -> RenderedPage | None:
    """What a capture rendered, as compared (RenderedPage), None when it holds no rendered DOM.
    One whose file cannot be read (gone, or its store down: verify and doctor say which) is
    compared by its DOM's cataloged digest, its frames not: what a listing says stays the
    catalog's to say."""
    records = catalog.records(capture_id)
    record = next((r for r in records if r.role == "dom"), None)
    if record is None:
        return None
    try:
        frames = recorded_frames(storage, records)
        return RenderedPage(comparable_dom_digest(read_record_block(storage, record)), None if frames is None else
                            tuple(comparable_dom_digest(read_record_block(storage, frame)) for frame in frames),
                            holds_cut_dom(records))
    except (ArchiverError, OSError):
        return RenderedPage(record.block_digest, cut=holds_cut_dom(records))


def rendered_since(storage: Storage, catalog: Catalog, result: FetchResult,
                   verdict: str | None) -> tuple[str | None, CaptureRow] | None:
    """For a rendered capture stored as a revisit: how its rendered page differs from its URL's
    newest capture (None when it does not), and that capture; None for a page not rendered."""
    page = getattr(result, "page", None)
    if page is None:
        return None
    # The capture the revisit's payload was matched against: the newest whole one of the URL.
    previous = [row for row in catalog.captures(normalise_url(result.url))
                if row.outcome == "ok" and row.payload_digest is not None][-1]
    now = RenderedPage(comparable_dom_digest(page.dom),
                       tuple(comparable_dom_digest(frame.dom.markup.encode("utf-8")) for frame in page.frames),
                       page.dom_cut) if page.dom else None
    change = rendered_change(previous.verdict, rendered_page(storage, catalog, previous.id), verdict, now)
    return change, previous


def compare_unrendered(catalog: Catalog, rows: list[CaptureRow],
                       compared: dict[str, tuple[str | None, CaptureRow]]) -> dict[str, tuple[str | None, CaptureRow]]:
    """`compared` (rendered_since's findings, by capture id) with, added, those of the captures
    stored as revisits and not rendered: how each differs from its URL's newest whole capture
    before it (None when it does not), and that capture. Asked once the run is over, together."""
    left = [row for row in rows if row.revisit_of and row.id not in compared]
    by_url = catalog.captures_by_url({row.url_key for row in left}) if left else {}
    for row in left:
        earlier = by_url[row.url_key][:[capture.id for capture in by_url[row.url_key]].index(row.id)]
        whole = [capture for capture in earlier if capture.outcome == "ok" and capture.payload_digest is not None]
        if not whole:  # its origin started after it (two runs at once, clocks apart): compared with none, never unchanged
            continue
        previous, dom = whole[-1], dom_record(catalog, whole[-1].id)
        compared[row.id] = rendered_change(previous.verdict, dom and RenderedPage(dom.block_digest, cut=bool(dom.truncated)), row.verdict,
                                           None), previous
    return compared


def unchanged_since(rows: list[CaptureRow], compared: dict[str, tuple[str | None, CaptureRow]]) -> dict[str, str]:
    """For captures stored as revisits and unchanged: since when, that is since the capture they
    were compared with, the one before (`compared`: rendered_since's and compared_unrendered's
    findings). One whose page is shown otherwise than that capture's is not unchanged."""
    found = {}
    for row in rows:
        change, previous = compared.get(row.id, (None, None))
        if row.revisit_of and previous is not None and change is None:
            found[row.id] = previous.started_at[:19].replace("T", " ") + " UTC"
    return found
