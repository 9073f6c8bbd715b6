"""Drift: how the page behind a URL changed, from one capture to the next, and since its
newest capture. Live, each captured URL is fetched again the way it was captured (same safety
rules, nothing stored): a page captured over HTTP over HTTP, a page rendered in a browser
rendered again, so that like is compared with like (a script-rendered page's HTML alone is not
what its capture judged). Its payload or rendered text and page verdict are compared with the
newest capture: unchanged (a page already 404 is "still 404"), changed (with a text similarity
for HTML, so rotating ads read differently from a rewritten article), gone (an HTTP error
status, a soft 404 or a name DNS says does not exist), still gone (so, and already an HTTP error
or a soft 404 when captured: a 404 now a 410), walled (now behind a bot or login wall),
unreachable, or not compared (a browser capture, and no Chromium to render it again). Changed
pages may be captured again, each the way it was captured before: rendered in a browser, or
over HTTP alone."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Callable

from archiver.errors import UsageProblem
from archiver.evidence.signing import SigningKey
from archiver.store.rows import CaptureRow
from archiver.store.collection import Collection
from archiver.store.settings import CaptureSettings
from archiver.capture.browser.records import ARTIFACTS
from archiver.capture.engines import page_fetcher
from archiver.capture.fetch.engine import Fetcher, FetchResult
from archiver.capture.recorded_frames import DOM_CUT, FRAMES_NOT_COMPARED, holds_cut_dom, recorded_frames
from archiver.capture.revisits import RenderedPage, frames_not_compared, rendered_change
from archiver.capture.run import CaptureRun
from archiver.capture.httpbody import MAX_TEXT_BYTES, http_text
from archiver.capture.verdict import capture_verdict, verdict_label
from archiver.check.drift_text import frames_words, text_change, visible_words
from archiver.store.record_blocks import read_record_block

NOT_COMPARED = "not compared"
STILL_GONE = "still gone"
MISSING = ("http-error", "not-found")  # verdicts of a capture that is not the page asked for


@dataclass(frozen=True)
class Drift:
    url: str
    capture_id: str
    state: str  # unchanged | changed | gone | still gone | walled | unreachable | not compared
    detail: str
    similarity: float | None = None  # 0..1, HTML only

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def describe_changes(rows: list[CaptureRow], dom_of: Callable[[str], RenderedPage | None]) -> list[str]:
    """What each capture of one URL shows against the capture before it; `dom_of(capture_id)`:
    what a capture rendered (revisits.rendered_page), for the same HTML may render another page;
    asked only of a capture whose document is byte-identical to the one before's."""
    changes, previous = [], None
    for row in rows:
        if row.outcome == "failed":
            changes.append(f"failed: {row.error}")
            continue
        rendered = None
        if previous is None:
            change = "first capture"
        elif row.payload_digest == previous.payload_digest and row.http_status == previous.http_status:
            dom, before = dom_of(row.id), dom_of(previous.id)
            if dom or before:  # the document's bytes alone do not say the page is
                rendered = rendered_change(previous.verdict, before, row.verdict, dom)
            change = rendered or ("unchanged" if row.verdict == previous.verdict else "same payload")
            if untold := frames_not_compared(before, dom):
                change += f" ({untold})"
        elif row.http_status != previous.http_status:
            change = f"status {previous.http_status} → {row.http_status}"
        else:
            delta = (row.response_length or 0) - (previous.response_length or 0)
            change = f"changed ({delta:+,} bytes)"
        if previous is not None and not rendered and row.verdict and previous.verdict and row.verdict != previous.verdict:
            change += f", {previous.verdict} → {row.verdict}"  # a page become a soft 404 or a wall, or back
        if previous is not None and row.final_url != previous.final_url:
            change += f", now ends at {row.final_url}"  # redirected elsewhere: another host reads as another page
        if row.truncated:
            change += f", truncated ({row.truncated})"
        changes.append(change)
        previous = row
    return changes


@dataclass(frozen=True)
class _Look:
    """What the live fetch showed, before any stored bytes are read."""

    state: str
    detail: str
    words: list[str] | None = None  # HTML, or a rendered page: its visible words, to compare with the capture's
    rendered: bool = False  # `words` are the rendered DOM's, compared with the capture's DOM
    frame_words: list[str] | None = None  # a rendered page's: its shown frames' visible words, in order
    same_payload: bool = False  # a rendered page's document is byte for byte the capture's
    dom_cut: bool = False  # a rendered page's DOM, or a frame's, was cut in the page (page_text.py)


def _look(row: CaptureRow, result: FetchResult, announced: int | None) -> _Look:
    seen = _looked(row, result, announced)
    final = result.final
    if final is not None and row.final_url and final.url != row.final_url:  # redirected elsewhere than before
        return replace(seen, detail="; ".join(filter(None, (seen.detail, f"now ends at {final.url}"))))
    return seen


def _looked(row: CaptureRow, result: FetchResult, announced: int | None) -> _Look:
    """What `result` shows against `row`; `announced`: the Content-Length of a capture cut at the size limit."""
    final = result.final
    was = verdict_label(row.verdict, row.http_status) if row.verdict else f"HTTP {row.http_status}"
    # A page that was already not the page when captured (an error status, a soft 404) and still is
    # not has not gone now: it is told still gone, and not captured again.
    gone = STILL_GONE if row.verdict in MISSING or (row.verdict is None and (row.http_status or 0) >= 400) else "gone"
    if final is None or result.outcome == "failed":  # no response, or a chain that never reached a page
        # Gone only when DNS says the name does not exist: no answer (offline, no resolver) is no answer.
        if not result.name_missing:
            return _Look("unreachable", result.error or "no response")
        return _Look(gone, result.error if gone == "gone" else f"{result.error} (was {was})")
    now = capture_verdict(result)
    if now.verdict == "http-error":
        if final.status == row.http_status:
            return _Look("unchanged", f"still {final.status}")
        return _Look(gone, f"HTTP {final.status} now (was {was})")
    if now.verdict != "content" and now.verdict == row.verdict:
        return _Look("unchanged", f"still {now.verdict}")
    if now.verdict in ("bot-wall", "login-wall"):
        return _Look("walled", f"now {now.verdict}: {now.reason} (was {was})")
    if now.verdict == "not-found":
        return _Look(gone, f"now not-found: {now.reason} (was {was})")
    if now.verdict == "empty":
        return _Look("changed", f"now empty (was {was})")
    if row.verdict not in (None, "content") or (row.verdict is None and (row.http_status or 0) >= 400):
        return _Look("changed", f"now content (was {was})")
    spool = final.exchange.spool
    # A capture cut at the size limit is unchanged when the page is cut at the same bytes again.
    same = spool.payload_digest == row.payload_digest and bool(final.truncated) == bool(row.truncated)
    if row.truncated:  # only the part kept can be compared: the rest changed unseen, unless its length says so
        spool.file.seek(0)
        now = _content_length(spool.file.read(spool.header_length or 0))
        if now is not None and announced is not None and now != announced:
            return _Look("changed", f"announced length now {now:,} bytes (was {announced:,}); the first "
                                    f"{row.response_length:,} bytes of the response {'unchanged' if same else 'differ'}")
        if same:
            return _Look("unchanged", f"the first {row.response_length:,} bytes of the response unchanged "
                                      "(cut at the size limit); the rest not compared")
    page = getattr(result, "page", None)
    if page is not None and page.dom:  # rendered: what scripts made of the document is the page, not its bytes
        return _Look("changed", "", visible_words(page.dom[:MAX_TEXT_BYTES]), rendered=True, same_payload=same,
                     frame_words=frames_words([frame.dom.markup.encode("utf-8") for frame in page.frames]),
                     dom_cut=page.dom_cut)
    if same:
        return _Look("unchanged", f"same payload {row.payload_digest}")
    spool.file.seek(0)
    content_type, words = http_text(spool.file.read(MAX_TEXT_BYTES))
    if content_type not in ("text/html", "application/xhtml+xml"):
        return _Look("changed", f"different payload ({content_type or 'unknown type'})")
    return _Look("changed", "", words)


def check_drift(collection: Collection, settings: CaptureSettings,
                looked_at: Callable[[str], None] = lambda url: None) -> list[Drift]:
    """Every URL with a stored capture (whole, or cut at a limit), fetched again and compared with
    its newest such capture; `looked_at` is told each URL once it is fetched (a progress bar)."""
    with collection:
        catalog = collection.catalog
        newest = {row.url_key: row for row in catalog.captures() if row.outcome in ("ok", "truncated")}
        by_url = {row.url: row for row in newest.values()}
        looks: dict[str, _Look] = {}

        def look(result: FetchResult) -> None:
            try:
                looks[result.url] = _look(by_url[result.url], result, announced.get(result.url))
            finally:
                result.release()
                looked_at(result.url)

        announced = {url: _content_length(_captured_response(collection, row, HEAD_READ)) for url, row in by_url.items()
                     if row.truncated}
        # Each page is looked at as it was captured: a browser capture judged the rendered page.
        rendered = {url for url, row in by_url.items() if _rendered(collection, row)}
        fetcher = Fetcher(settings, spool_dir=collection.tmp)
        try:
            fetcher.fetch_all([url for url in by_url if url not in rendered], look)
            if rendered:
                _render_again(fetcher, sorted(rendered), look, looks)
        finally:
            fetcher.close()
        drifts = []
        for url, row in sorted(by_url.items()):
            seen = looks[url]
            if seen.words is None:
                drifts.append(Drift(url, row.id, seen.state, seen.detail))
                continue
            if seen.rendered and (seen.dom_cut or holds_cut_dom(collection.catalog.records(row.id))):
                drifts.append(Drift(url, row.id, NOT_COMPARED, f"rendered page {DOM_CUT}"))
                continue
            captured = _captured_words(collection, row, seen.rendered)
            if captured is None:
                drifts.append(Drift(url, row.id, "changed", "; ".join(filter(None, (
                    "rendered now; the capture holds no rendered page to compare with", seen.detail)))))
                continue
            before, framed = captured
            # Like with like: a capture made before its frames' DOMs were recorded is compared
            # without the frames' text now, and says so, rather than read as a page that changed.
            after = seen.words + ((seen.frame_words or []) if framed is not None else [])
            before += framed or []
            detail = seen.detail if framed is not None or not seen.frame_words else "; ".join(filter(None, (
                seen.detail, FRAMES_NOT_COMPARED)))
            if seen.rendered and seen.same_payload and before == after:
                drifts.append(Drift(url, row.id, "unchanged", "; ".join(filter(None, (
                    f"same payload {row.payload_digest}, same rendered text", detail)))))
                continue
            said, ratio = text_change(before, after)
            drifts.append(Drift(url, row.id, "changed", "; ".join(filter(None, (said, detail))), ratio))
        return drifts


def _render_again(fetcher: Fetcher, urls: list[str], look: Callable[[FetchResult], None],
                  looks: dict[str, _Look]) -> None:
    """Render the pages of browser captures again, each passed to `look`; with no Chromium to
    render them, each is not compared: their HTTP bytes alone are not what their captures judged."""
    from archiver.capture.browser.chromium import find_chromium  # Playwright loads only when needed

    executable = find_chromium()
    if executable is None:
        looks.update((url, _Look(NOT_COMPARED, "captured in a browser, and no Chromium was found to render it "
                                 "again: install it (Debian/Ubuntu: apt-get install chromium) or set "
                                 "$ARCHIVER_CHROMIUM")) for url in urls)
        return
    pages, _, _ = page_fetcher(fetcher, executable, "browser")
    try:
        pages.fetch_all(urls, look)
    finally:
        pages.close()


def _captured_words(collection: Collection, row: CaptureRow,
                    rendered: bool) -> tuple[list[str], list[str] | None] | None:
    """The visible words of `row`'s capture: of its DOM when `rendered` (None if it holds none),
    else of its payload; and a rendered one's shown frames' (their DOM records'), in order, None
    when it was made before frames were recorded (its metadata's page names none) or not rendered."""
    if not rendered:
        return http_text(_captured_response(collection, row, MAX_TEXT_BYTES))[1], None
    records = collection.catalog.records(row.id)
    dom = next((record for record in records if record.role == "dom"), None)
    if dom is None:
        return None
    storage = collection.storage
    frames = recorded_frames(storage, records)
    framed = None if frames is None else frames_words([read_record_block(storage, frame, MAX_TEXT_BYTES)
                                                   for frame in frames])
    return visible_words(read_record_block(storage, dom, MAX_TEXT_BYTES)), framed


def _captured_response(collection: Collection, row: CaptureRow, limit: int) -> bytes:
    """Up to `limit` bytes of the response holding `row`'s payload, as it crossed the wire."""
    holder = collection.catalog.payload_record(row.id)
    return read_record_block(collection.storage, holder, limit) if holder is not None else b""


HEAD_READ = 64 * 1024  # of a response: enough for its head
_CONTENT_LENGTH = re.compile(rb"\r?\ncontent-length:[ \t]*(\d+)[ \t]*\r?\n", re.IGNORECASE)


def _content_length(response: bytes) -> int | None:
    """The length a response's head announces for its body, None when it announces none."""
    head = response.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    found = _CONTENT_LENGTH.search(head)
    return int(found.group(1)) if found else None


def recapture_changed(collection: Collection, changed: list[Drift], key: SigningKey,
                      settings: CaptureSettings) -> list[CaptureRow]:
    """Capture the `changed` pages again with `settings`, as new history, each in the mode of the
    capture it was compared with: a page rendered in a browser is rendered again, a page fetched
    over HTTP alone is fetched so again, whatever `capture_mode` says now. One run per mode."""
    with collection:
        catalog = collection.catalog
        by_mode: dict[str, list[str]] = {"browser": [], "http": []}
        for drift in changed:
            [row] = catalog.find_capture(drift.capture_id)
            by_mode["browser" if _rendered(collection, row) else "http"].append(drift.url)
    if by_mode["browser"]:
        from archiver.capture.browser.chromium import find_chromium  # Playwright loads only when needed

        if find_chromium() is None:
            raise UsageProblem(f"{len(by_mode['browser'])} changed page(s) were captured in a browser "
                               "and no Chromium was found to capture them again",
                               "install it (Debian/Ubuntu: apt-get install chromium) or set $ARCHIVER_CHROMIUM")
    rows: list[CaptureRow] = []
    for mode, urls in by_mode.items():
        if urls:
            with CaptureRun(collection, replace(settings, capture_mode=mode), key) as run:
                rows += run.capture(urls)
    order = {drift.url: i for i, drift in enumerate(changed)}
    return sorted(rows, key=lambda row: order[row.url])


_ARTIFACT_ROLES = {role for role, *_ in ARTIFACTS}


def _rendered(collection: Collection, row: CaptureRow) -> bool:
    """Whether `row` is a browser capture: the catalog lists a screenshot, PDF or DOM of it, or,
    when the page ended before any was made, its metadata names the browser."""
    records = collection.catalog.records(row.id)
    if any(record.role in _ARTIFACT_ROLES for record in records):
        return True
    metadata = next((r for r in records if r.record_id == row.metadata_record_id), None)
    if metadata is None:
        return False
    return "browser" in json.loads(read_record_block(collection.storage, metadata, metadata.content_length))
