"""What a bundle's report shows of a page captured in a browser: the screenshot exactly as its
signed record holds it, the title the browser saw, the first lines of the text a reader saw
(read from the signed rendered-DOM record, so anyone holding the bundle can check them), and
where a claim's quoted words appear in that text."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from html.parser import HTMLParser

from archiver.capture.httpbody import MAX_TEXT_BYTES, declares_shadow_root
from archiver.store.record_blocks import read_record_block
from archiver.read.links import find_links
from archiver.store.rows import StoredRecord
from archiver.store.storage import Storage

FIRST_LINES = 12
LINE_CHARS = 300     # a longer line is cut: the report shows the start of the page, not all of it
CONTEXT_CHARS = 120  # of text shown either side of a claim's words
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What innerText leaves out (a <template> but one declaring a shadow root), and the elements that break lines in it.
_UNSEEN = frozenset({"head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object"})
_BREAKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul"})
# Quoted words in a claim: “…”, "…", «…», „…“; single quotes are left alone, they are apostrophes too.
_QUOTED = re.compile(r"“([^”]+)”|\"([^\"]+)\"|«([^»]+)»|„([^“”]+)[“”]")
_TRIM = " \t\r\n.,;:!?–—-()[]"


@dataclass(frozen=True)
class Screenshot:
    record: StoredRecord
    png: bytes  # the record's block, byte for byte

    @property
    def size(self) -> tuple[int, int] | None:
        """Width and height from the PNG header, or None when the block is not a PNG."""
        if not self.png.startswith(PNG_SIGNATURE) or len(self.png) < 24:
            return None
        return struct.unpack(">II", self.png[16:24])


@dataclass(frozen=True)
class RenderedPage:
    """A browser capture's page as the report shows it."""

    screenshot: Screenshot | None
    title: str | None  # as the browser had it, from the metadata record
    text: str          # visible text, one line per block, read from the rendered DOM


def rendered_page(storage: Storage, records: tuple[StoredRecord, ...], details: dict) -> RenderedPage | None:
    """The page of a browser capture (None for a plain one): its screenshot and DOM records read once."""
    by_role = {record.role: record for record in records if record.warc_type == "resource"}
    if "page" not in details and not by_role:
        return None
    shot = by_role.get("screenshot")
    dom = by_role.get("dom")
    return RenderedPage(
        Screenshot(shot, read_record_block(storage, shot, shot.content_length)) if shot else None,
        (details.get("page") or {}).get("title"),
        visible_text(read_record_block(storage, dom, MAX_TEXT_BYTES).decode("utf-8", "replace")) if dom else "")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._unseen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Inside what is unseen, a declarative shadow root is pushed too, so that its end tag pops it.
        if tag in _UNSEEN and (self._unseen or not declares_shadow_root(tag, attrs)):
            self._unseen.append(tag)
        elif tag in _BREAKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._unseen and tag == self._unseen[-1]:
            self._unseen.pop()
        elif tag in _BREAKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._unseen:
            self.chunks.append(data)


def visible_text(dom: str) -> str:
    """The text of an HTML document as a reader sees it, roughly innerText: one line per block,
    spaces collapsed, no blank lines; nothing of <head>, scripts or styles."""
    parser = _VisibleText()
    parser.feed(dom)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).split("\n"))
    return "\n".join(line for line in lines if line)


def first_lines(text: str) -> list[str]:
    return [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…" for line in text.split("\n")[:FIRST_LINES]]


def claim_words(claim_text: str) -> list[str]:
    """What of a claim to look for on the page: its quoted words, or when it quotes nothing its
    own words without the links it cites."""
    quoted = [next(group for group in match.groups() if group is not None).strip(_TRIM)
              for match in _QUOTED.finditer(claim_text)]
    if any(quoted):
        return [words for words in quoted if words]
    bare = claim_text
    for link in find_links(claim_text):
        bare = bare.replace(link, " ")
    bare = " ".join(bare.split()).strip(_TRIM)
    return [bare] if bare else []


def find_words(text: str, words: str) -> dict | None:
    """Where `words` first appear in `text`, ignoring case and how space is laid out: the match
    as the page has it and some text either side, or None."""
    pattern = r"\s+".join(re.escape(word) for word in words.split())
    found = re.search(pattern, text, re.IGNORECASE) if pattern else None
    if found is None:
        return None
    start, end = found.span()
    before, after = text[max(0, start - CONTEXT_CHARS):start], text[end:end + CONTEXT_CHARS]
    return {"before": ("…" if start > CONTEXT_CHARS else "") + before, "words": found.group(),
            "after": after + ("…" if end + CONTEXT_CHARS < len(text) else "")}
