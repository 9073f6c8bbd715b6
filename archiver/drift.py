"""Live drift: has the page behind a capture changed since? Each captured URL is fetched
again (same safety rules, nothing stored) and its payload compared with the newest capture:
unchanged, changed (with a text similarity for HTML, so rotating ads read differently from
a rewritten article), gone (an HTTP error status or a name that no longer resolves), or
unreachable."""

from __future__ import annotations

import difflib
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser

from archiver.catalog import Catalog, CaptureRow
from archiver.collection import CaptureSettings, Collection
from archiver.fetch.engine import Fetcher, FetchResult
from archiver.scan import read_record_block

MAX_TEXT_BYTES = 4 * 2**20  # enough of a page to judge it; bounds memory against bombs
MAX_WORDS = 20_000


@dataclass(frozen=True)
class Drift:
    url: str
    capture_id: str
    state: str  # unchanged | changed | gone | unreachable
    detail: str
    similarity: float | None = None  # 0..1, HTML only

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        self._skip += tag in ("script", "style", "noscript", "template")

    def handle_endtag(self, tag) -> None:
        self._skip -= tag in ("script", "style", "noscript", "template") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip and len(self.words) < MAX_WORDS:
            self.words.extend(data.split())


def _split_http(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def _dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest and len(out) < MAX_TEXT_BYTES:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


def http_text(raw: bytes) -> tuple[str, list[str]]:
    """The content type and visible words of a raw HTTP response, decoded within bounds."""
    headers, body = _split_http(raw)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    encoding = headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(31 if "gzip" in encoding else 15)
        try:
            body = inflater.decompress(body, MAX_TEXT_BYTES)
        except zlib.error:
            body = b""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    parser = _Text()
    parser.feed(body[:MAX_TEXT_BYTES].decode("utf-8", "replace"))
    return content_type, parser.words


def similarity(before: list[str], after: list[str]) -> float:
    return difflib.SequenceMatcher(None, before, after, autojunk=False).ratio() if before or after else 1.0


@dataclass(frozen=True)
class _Look:
    """What the live fetch showed, before any stored bytes are read."""

    state: str
    detail: str
    words: list[str] | None = None  # changed HTML: its words, to compare with the capture's


def _look(row: CaptureRow, result: FetchResult) -> _Look:
    final = result.final
    if final is None:
        gone = bool(result.error and result.error.startswith("cannot resolve"))
        return _Look("gone" if gone else "unreachable", result.error or "no response")
    if final.status >= 400:
        return _Look("gone", f"HTTP {final.status} now (was {row.http_status})")
    spool = final.exchange.spool
    if spool.payload_digest == row.payload_digest and not final.truncated:
        return _Look("unchanged", f"same payload {row.payload_digest}")
    spool.file.seek(0)
    content_type, words = http_text(spool.file.read(MAX_TEXT_BYTES))
    if content_type not in ("text/html", "application/xhtml+xml"):
        return _Look("changed", f"different payload ({content_type or 'unknown type'})")
    return _Look("changed", "", words)


def check_drift(collection: Collection, settings: CaptureSettings) -> list[Drift]:
    """Every URL with a successful capture, fetched again and compared with its newest capture."""
    catalog = Catalog(collection.catalog_path)
    try:
        newest = {row.url_key: row for row in catalog.captures() if row.outcome == "ok"}
        by_url = {row.url: row for row in newest.values()}
        looks: dict[str, _Look] = {}

        def look(result: FetchResult) -> None:
            try:
                looks[result.url] = _look(by_url[result.url], result)
            finally:
                result.release()

        fetcher = Fetcher(settings, spool_dir=collection.tmp)
        try:
            fetcher.fetch_all(list(by_url), look)
        finally:
            fetcher.close()
        drifts = []
        for url, row in sorted(by_url.items()):
            seen = looks[url]
            if seen.words is None:
                drifts.append(Drift(url, row.id, seen.state, seen.detail))
                continue
            stored = read_record_block(collection.warcs, catalog.payload_record(row.id), MAX_TEXT_BYTES)
            ratio = similarity(http_text(stored)[1], seen.words)
            drifts.append(Drift(url, row.id, "changed", f"text {ratio:.0%} similar to the capture", round(ratio, 4)))
        return drifts
    finally:
        catalog.close()
