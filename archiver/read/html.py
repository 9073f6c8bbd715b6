"""HTML: the text of each block element (p, li, td, h2…) is a claim citing the links inside it.

A block's text is extracted (tags dropped, entities decoded, whitespace collapsed), so it is not
a slice of the source: its span is the element's source range, from `<p` to the end of `</p>`
(or to where the element was implicitly closed), and its Passage says verbatim=False."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from archiver.read.links import find_links, lone_links
from archiver.read.model import HEADLINE, PARAGRAPH
from archiver.read.reading import Passage, Reading
from archiver.read.urls import FETCHABLE_SCHEMES, as_browsers_read

_CLAIM_BLOCKS = frozenset({
    "title", "h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "dt", "dd", "blockquote", "pre", "td", "th",
    "caption", "figcaption", "address", "div", "section", "article", "main", "header", "footer", "aside"})
# Structure that holds blocks and scopes their implicit closing, but has no text of its own.
_CONTAINERS = frozenset({"ul", "ol", "dl", "table", "thead", "tbody", "tfoot", "tr"})
# Code, styling and site navigation: no claims there.
_SKIPPED = frozenset({"script", "style", "template", "noscript", "nav"})
# A start tag closes an open element of the first set found before one of the second: HTML's
# "optional end tags" (`<li>a<li>b`), which html.parser leaves to us.
_IMPLIED_ENDS = {
    "li": ({"li"}, {"ul", "ol"}),
    "dt": ({"dt", "dd"}, {"dl"}), "dd": ({"dt", "dd"}, {"dl"}),
    "td": ({"td", "th"}, {"tr", "table"}), "th": ({"td", "th"}, {"tr", "table"}),
    "tr": ({"tr"}, {"table"}),
}


@dataclass
class _Element:
    tag: str
    start: int
    chunks: list[str] = field(default_factory=list)
    hrefs: list[str] = field(default_factory=list)
    end: int = 0

    @property
    def text(self) -> str:
        return " ".join("".join(self.chunks).split())


class _BlockParser(HTMLParser):
    """Collects closed block elements with their text and raw hrefs, in source order."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self._line_starts = [0] + [match.end() for match in re.finditer("\n", source)]
        self.loose = _Element("", 0)   # text outside any block element
        self.open_elements: list[_Element] = [self.loose]
        # Kept beside the stack so that no tag walks it (a hostile page nests 100,000 deep):
        # how many of each tag are open, and the open elements that hold text (not containers).
        self.open_tags: Counter[str] = Counter()
        self.holders: list[_Element] = [self.loose]
        self.closed_elements: list[_Element] = []
        self.base_href: str | None = None

    def source_offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self.source_offset()
        if tag == "base" and self.base_href is None:
            self.base_href = dict(attrs).get("href")
        elif tag == "a":
            self._add(hrefs=tuple(value for name, value in attrs if name == "href" and value is not None))
        elif tag == "br":
            self._add(chunks=(" ",))
        if tag in _CLAIM_BLOCKS or tag in _CONTAINERS or tag in _SKIPPED:
            self._close_implied(tag, start)
            self._open(_Element(tag, start))

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags[tag]:  # a stray end tag, or one of an element not tracked
            return
        for index in range(len(self.open_elements) - 1, 0, -1):
            if self.open_elements[index].tag == tag:
                start = self.source_offset()
                end = self.source.find(">", start) + 1 or len(self.source)
                self._close_from(index + 1, start)
                self._close_from(index, end)
                return

    def handle_data(self, data: str) -> None:
        if self._add(chunks=(data,)) is self.loose and data.strip():
            self._stretch_loose_span()

    def close_all(self) -> None:
        self._close_from(1, len(self.source))
        self.closed_elements.append(self.loose)

    def _add(self, chunks: tuple[str, ...] = (), hrefs: tuple[str, ...] = ()) -> _Element | None:
        """Give text or links to the innermost open block; None when inside skipped elements."""
        if any(self.open_tags[tag] for tag in _SKIPPED):
            return None
        holder = self.holders[-1]
        holder.chunks += chunks
        holder.hrefs += hrefs
        return holder

    def _stretch_loose_span(self) -> None:
        """Loose text has no element to span: its span runs from its first piece to the end of its
        last. With convert_charrefs a piece of text runs up to the next `<`."""
        start = self.source_offset()
        end = self.source.find("<", start + 1)
        end = end if end >= 0 else len(self.source)
        while self.source[start].isspace():  # the piece has text, so this stops within it
            start += 1
        while self.source[end - 1].isspace():
            end -= 1
        if self.loose.end == 0:
            self.loose.start = start
        self.loose.end = end

    def _close_implied(self, tag: str, at: int) -> None:
        if self.open_elements[-1].tag == "p":  # any block or container start ends an open paragraph
            self._close_from(len(self.open_elements) - 1, at)
        ends, scope = _IMPLIED_ENDS.get(tag, ((), ()))
        if not any(self.open_tags[end_tag] for end_tag in ends):
            return
        for index in range(len(self.open_elements) - 1, 0, -1):
            if self.open_elements[index].tag in ends:
                self._close_from(index, at)
                return
            if self.open_elements[index].tag in scope:
                return

    def _open(self, element: _Element) -> None:
        self.open_elements.append(element)
        self.open_tags[element.tag] += 1
        if element.tag not in _CONTAINERS:
            self.holders.append(element)

    def _close_from(self, index: int, end: int) -> None:
        while len(self.open_elements) > index:
            element = self.open_elements.pop()
            self.open_tags[element.tag] -= 1
            if self.holders[-1] is element:
                self.holders.pop()
            element.end = end
            if element.tag not in _CONTAINERS and element.tag not in _SKIPPED:
                self.closed_elements.append(element)


def read_html(source: str) -> Reading:
    """Claims from block elements; the first <h1> is the main claim, else <title>."""
    reading = Reading(kind="html")
    parser = _BlockParser(source)
    try:
        parser.feed(source)
        parser.close()
    except AssertionError as exc:  # html.parser's way of rejecting some malformed declarations
        reading.warnings.append(f"HTML not read past line {parser.getpos()[0]}: {exc}")
    parser.close_all()
    base = _base_url(parser.base_href, reading)
    elements = sorted((element for element in parser.closed_elements if element.text), key=lambda element: element.start)
    title = next((element for element in elements if element.tag == "title"), None)
    headline = next((element for element in elements if element.tag == "h1"), title)
    reading.title = title.text if title else headline.text if headline else None
    for element in elements:
        if element.tag == "title" and element is not headline:
            continue
        links = _resolved(element.hrefs, base, reading)
        standalone = lone_links(element.text)
        if standalone:  # a block that is only a URL: prefer its href, the display text may be shortened
            reading.standalone_links += links or standalone
            continue
        kind = HEADLINE if element is headline else PARAGRAPH
        reading.passages.append(Passage(element.text, element.start, element.end, kind,
                                        links + find_links(element.text), verbatim=False))
    return reading


def _base_url(href: str | None, reading: Reading) -> str | None:
    if href is None:
        return None
    try:
        parts = urlsplit(as_browsers_read(href))
    except ValueError:
        parts = None
    if parts and parts.scheme.lower() in FETCHABLE_SCHEMES and parts.netloc:
        return as_browsers_read(href)
    reading.warnings.append(f"ignored <base href={href!r}>: not an absolute http(s) URL, so relative links are not cited")
    return None


def _resolved(hrefs: list[str], base: str | None, reading: Reading) -> list[str]:
    """Absolute links as written; relative ones joined to <base href>, or reported unusable."""
    links = []
    for raw in hrefs:
        href = as_browsers_read(raw)
        if not href or href.startswith("#"):  # a jump within the page, not a citation
            continue
        try:
            if urlsplit(href).scheme:
                links.append(href)
            elif base:
                links.append(urljoin(base, href))
            else:
                reading.unusable_links.append((href, "relative link, and no <base href> to resolve it against"))
        except ValueError as exc:
            reading.unusable_links.append((href, f"malformed URL ({exc})"))
    return links
