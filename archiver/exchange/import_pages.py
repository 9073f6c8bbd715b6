"""Which responses of an imported WARC are pages, each a capture a claim can cite, and which are
the subresources a page was fetched with (its images, styles, scripts), kept as that capture's
records as archiver keeps a browser capture's, never listed as captures of their own.

A WACZ says which are its pages (pages/pages.jsonl: each page's URL and time): those are its
captures. A WARC alone does not: its HTML documents are, and a response that is no document is
a page's subresource when the file says so, by the page the browser's request names as its
Referer, or, in a WARC archiver wrote, by the page whose metadata record lists it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from archiver.check.scan import ScannedRecord
from archiver.exchange.zipreader import Wacz
from archiver.read.urls import normalise_url

PAGES = "pages/pages.jsonl"
_DOCUMENT_TYPES = ("text/html", "application/xhtml+xml")
# The resource records archiver and Browsertrix make of a page, by the kind their urn: URI names.
_ARTIFACT_KINDS = ("screenshot", "pdf", "dom", "frame-dom", "text", "view")


@dataclass(frozen=True)
class Page:
    url: str
    ts: str | None


@dataclass(frozen=True)
class RecordFacts:
    """What warcio reads of one record: where it is (as players find it), its HTTP status, the
    media type of its HTTP payload, the Referer its request sent, and, of a metadata record
    archiver wrote, the response records of the subresources it lists."""
    offset: int
    length: int
    status: str | None
    media_type: str | None = None
    referer: str | None = None
    listed_resources: tuple[str, ...] = ()


def wacz_pages(wacz: Wacz) -> list[Page] | None:
    """The pages a WACZ lists (its header line and any line naming no URL left out); None when it
    has no pages/pages.jsonl."""
    if PAGES not in wacz.names():
        return None
    pages = []
    with wacz.open(PAGES) as stream:
        for line in stream:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                pages.append(Page(entry["url"], entry.get("ts") if isinstance(entry.get("ts"), str) else None))
    return pages


def listed_resources(body: bytes) -> tuple[str, ...]:
    """The response record ids an archiver capture's metadata record lists as its page's resources."""
    try:
        details = json.loads(body)
    except ValueError:
        return ()
    resources = details.get("resources") if isinstance(details, dict) else None
    return tuple(r["response_record_id"] for r in resources or () if isinstance(r, dict)
                 and isinstance(r.get("response_record_id"), str))


def artifact_role(record: ScannedRecord) -> str | None:
    """The role of a resource record made of a page (urn:screenshot:…, urn:dom:…), as archiver's own
    captures catalog it; None for any other record."""
    uri = record.headers.get("WARC-Target-URI", "").strip("<>")
    kind = uri.split(":")[1] if uri.startswith("urn:") and uri.count(":") >= 2 else None
    return kind if record.type == "resource" and kind in _ARTIFACT_KINDS else None


def group_pages(records: list[ScannedRecord], facts: dict[str, RecordFacts],
                pages: list[Page] | None) -> dict[str, list[ScannedRecord]]:
    """Each capture's response (or revisit) record id, in file order, with the responses of its
    subresources. With `pages` (a WACZ's list), the responses those pages name are the captures;
    a file none of them names is read as a WARC alone, and one with no page at all keeps every
    response a capture."""
    fetched = [r for r in records if is_fetched(r)]
    referers = _referers(records, facts)
    listed_by = {resource: r.headers.get("WARC-Refers-To") for r in records for resource in facts[r.id].listed_resources}
    urls = {url_key(_url(r)) for r in fetched}
    chosen = _named_by(fetched, pages) if pages else set()
    if not chosen:
        chosen = {r.id for r in fetched if _is_document(r, facts)
                  or not (r.id in listed_by or url_key(referers.get(r.id)) in urls)}
    if not chosen:
        chosen = {r.id for r in fetched}
    captures: dict[str, list[ScannedRecord]] = {r.id: [] for r in fetched if r.id in chosen}
    in_order = [r for r in fetched if r.id in captures]
    for record in fetched:
        if record.id not in captures:
            page = listed_by.get(record.id)
            captures[page if page in captures else _page_of(record, in_order, referers.get(record.id))].append(record)
    return captures


def is_fetched(record: ScannedRecord) -> bool:
    """Whether a record is a response (or revisit) of an http or https URL: one a page, or a
    page's subresource, may be. Not a crawler's DNS lookup (Heritrix's dns: responses), nor any
    other scheme's, which no claim cites and archiver never captures."""
    uri = record.headers.get("WARC-Target-URI", "").strip("<>").lower()
    return record.type in ("response", "revisit") and uri.startswith(("http://", "https://"))


def _named_by(fetched: list[ScannedRecord], pages: list[Page]) -> set[str]:
    """Of each page, the response of its URL whose date is nearest the page's time."""
    by_url: dict[str, list[ScannedRecord]] = {}
    for record in fetched:
        by_url.setdefault(url_key(_url(record)), []).append(record)
    chosen = set()
    for page in pages:
        candidates = by_url.get(url_key(page.url), [])
        if candidates:
            chosen.add(min(candidates, key=lambda r: _apart(r.headers.get("WARC-Date"), page.ts)).id)
    return chosen


def _is_document(record: ScannedRecord, facts: dict[str, RecordFacts]) -> bool:
    media_type = facts[record.id].media_type
    return media_type is None or media_type in _DOCUMENT_TYPES


def _referers(records: list[ScannedRecord], facts: dict[str, RecordFacts]) -> dict[str, str]:
    """Of each response, the Referer header its request sent, when it sent one."""
    referers = {}
    for record in records:
        if record.type == "request" and (referer := facts[record.id].referer):
            for response in (record.headers.get("WARC-Concurrent-To"),):
                if response:
                    referers[response] = referer
    for record in records:  # a response naming its request (as archiver writes them)
        request = record.headers.get("WARC-Concurrent-To")
        if record.type in ("response", "revisit") and request in facts and facts[request].referer:
            referers.setdefault(record.id, facts[request].referer)
    return referers


def _page_of(record: ScannedRecord, pages: list[ScannedRecord], referer: str | None) -> str:
    """The capture a subresource belongs to: the latest page before it of the URL its request
    names as Referer, else the latest page before it (the first page, if none is)."""
    date = record.headers.get("WARC-Date", "")
    before = [p for p in pages if p.headers.get("WARC-Date", "") <= date] or pages[:1]
    named = [p for p in before if referer and url_key(_url(p)) == url_key(referer)]
    return (named or before)[-1].id


def _url(record: ScannedRecord) -> str:
    return record.headers["WARC-Target-URI"].strip("<>")


def url_key(url: str | None) -> str | None:
    """A URL (or a WARC-Target-URI, <> and all) as citations match it; None for none, or for what is no URL."""
    try:
        return normalise_url(url.strip("<>")) if url else None
    except ValueError:
        return None


def _apart(warc_date: str | None, ts: str | None) -> float:
    """Seconds between a record's date and a page's time; a date that cannot be read is far."""
    try:
        return abs((_instant(warc_date) - _instant(ts)).total_seconds())
    except (TypeError, ValueError):
        return float("inf")


def _instant(value: str | None) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))  # type: ignore[union-attr]
