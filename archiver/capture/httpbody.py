"""Reading a stored or live HTTP response as a person would see it: the body with its
chunked framing and content-encoding undone, within bounds (never to store, only to read
a title or compare texts), and the visible words and title of an HTML page."""

from __future__ import annotations

import codecs
import re
import zlib
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser

MAX_TEXT_BYTES = 4 * 2**20  # enough of a page to judge it; bounds memory against bombs
MAX_WORDS = 20_000
HTML_TYPES = ("text/html", "application/xhtml+xml")


def declares_shadow_root(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """Whether `tag` is a declarative shadow root (<template shadowrootmode=open>), as a browser
    capture's DOM holds a page's open shadow roots: its content is shown, unlike a template's."""
    return tag == "template" and any(name == "shadowrootmode" for name, _ in attrs)


class VisibleText(HTMLParser):
    """The words a reader sees in an HTML page (not scripts, styles or templates, but declarative
    shadow roots, unless not `shadow_roots`) and its title."""

    def __init__(self, shadow_roots: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self._shadow_roots = shadow_roots
        self.words: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._templates: list[bool] = []  # of each <template> open: whether it is skipped
        self._in_title = False

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "template":
            self._templates.append(not (self._shadow_roots and declares_shadow_root(tag, attrs)))
        self._skip += tag in ("script", "style", "noscript") or (tag == "template" and self._templates[-1])
        if tag == "title" and not self.title and not self._in_title:
            # A title is text up to </title>, as browsers read it: tags in it are shown as written
            # (a report must not give "none" for <title><b>Notice</b></title>).
            self._in_title = True
            self.set_cdata_mode(tag)

    def handle_endtag(self, tag) -> None:
        if tag == "template":
            skipped = self._templates.pop() if self._templates else False
        else:
            skipped = tag in ("script", "style", "noscript")
        self._skip -= skipped and self._skip > 0
        self._in_title = self._in_title and tag != "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(unescape(data))  # raw text mode leaves character references to us
        elif not self._skip and len(self.words) < MAX_WORDS:
            self.words.extend(data.split())


# The empty line that ends a head: lines may end in a bare LF, as http.client (and browsers) accept.
_HEAD_END = re.compile(rb"\n\r?\n")


def _split_http(raw: bytes) -> tuple[list[bytes], bytes]:
    """The head's lines (status line first, line ends removed) and the body."""
    end = _HEAD_END.search(raw)
    head, body = (raw[:end.start()], raw[end.end():]) if end else (raw, b"")
    return [line.rstrip(b"\r") for line in head.split(b"\n")], body


def _dechunk(body: bytes) -> bytes:
    # Read by position, never by slicing off the rest: a body of tiny chunks would be copied
    # once per chunk, and a hostile server's 4 MB of them took minutes.
    out, at = bytearray(), 0
    while at < len(body) and len(out) < MAX_TEXT_BYTES:
        line_end = body.find(b"\r\n", at)
        if line_end < 0:
            line_end = len(body)
        try:
            size = int(body[at:line_end].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += body[line_end + 2:line_end + 2 + size]
        at = line_end + 2 + size + 2
    return bytes(out)


def _inflated(body: bytes, wbits: int) -> bytes | None:
    """At most MAX_TEXT_BYTES of `body` inflated (gzip: wbits 31, zlib: 15); None if it is neither.
    A deflate body that is not zlib-wrapped is bare deflate, as some servers send and browsers read."""
    try:
        return zlib.decompressobj(wbits).decompress(body, MAX_TEXT_BYTES)
    except zlib.error:
        return _inflated(body, -15) if wbits == 15 else None


def _unbrotli(body: bytes) -> bytes | None:
    """At most MAX_TEXT_BYTES of a br-encoded `body` decoded (browsers ask for br, and servers
    send it to them; a few send it unasked); None if it is not brotli."""
    import brotlicffi  # only for a br-encoded page

    try:
        return brotlicffi.Decompressor().process(body, output_buffer_limit=MAX_TEXT_BYTES)
    except brotlicffi.error:
        return None


@dataclass(frozen=True)
class DecodedResponse:
    """A raw HTTP response as a reader gets it: status, headers (names lower-cased), content
    type, and the body with chunked framing and gzip/deflate/br undone, at most MAX_TEXT_BYTES.
    A body its Content-Encoding does not describe is no body to a reader: `undecodable` says so."""

    status: int | None
    headers: dict[str, str]
    content_type: str
    body: bytes
    undecodable: str | None = None  # "a body of 25 bytes that cannot be decoded as its Content-Encoding (gzip) says"

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES

    @property
    def text(self) -> str:
        """The body as text, in the encoding a browser reads it in (charset_of)."""
        return self.body.decode(charset_of(self.headers.get("content-type", ""), self.body, self.is_html), "replace")


def charset_of(content_type: str, body: bytes, html: bool) -> str:
    """The encoding a browser reads a body in, much as the WHATWG encoding sniffing does: a byte
    order mark; the Content-Type's charset; for HTML, a <meta> charset in the first 1,024 bytes;
    else UTF-8 when the body is UTF-8, windows-1252 when not. ISO-8859-1 and ASCII are read as
    windows-1252, as browsers do (0x96 is a dash in both pages a server calls "Latin-1")."""
    for mark, encoding in _BOMS:
        if body.startswith(mark):
            return encoding
    declared = _CHARSET.search(content_type)
    if declared is None and html:
        declared = _META_CHARSET.search(body[:1024].decode("latin-1"))
    if declared is not None:
        name = declared.group(1).strip("\"' ").lower()
        try:
            name = codecs.lookup(name).name
        except LookupError:
            name = ""
        if name:
            return "cp1252" if name in _READ_AS_WINDOWS_1252 else name
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 3:  # not only a sequence cut short at the end of what was read
            return "cp1252"
    return "utf-8"


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_CHARSET = re.compile(r"charset\s*=\s*([^;\s]+)", re.IGNORECASE)
_META_CHARSET = re.compile(r"<meta[^>]+charset\s*=\s*[\"']?\s*([^\"'\s/>;]+)", re.IGNORECASE)
_READ_AS_WINDOWS_1252 = {"iso8859-1", "ascii", "cp1252"}
# Headers whose repeated lines are one list, read in order (RFC 9110, 5.3).
_LISTS = ("content-encoding", "transfer-encoding")


def decode_response(raw: bytes) -> DecodedResponse:
    """`raw` (a response's status line, headers and body as they crossed the wire), decoded within bounds."""
    lines, body = _split_http(raw)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        if name in _LISTS and headers.get(name):  # each line adds codings: "gzip" twice is "gzip, gzip"
            value = f"{headers[name]}, {value}"
        headers[name] = value
    status_line = lines[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else None
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    received, undecodable = len(body), None
    # Codings are listed in the order they were applied: undone last first ("gzip, br, gzip").
    for coding in reversed([c.strip() for c in headers.get("content-encoding", "").lower().split(",")]):
        if coding in ("gzip", "x-gzip", "deflate"):
            decoded = _inflated(body, 31 if "gzip" in coding else 15)
        elif coding == "br":
            decoded = _unbrotli(body)
        elif coding in ("", "identity"):
            continue
        else:
            break  # one no browser undoes either
        if decoded is None:
            undecodable = (f"a body of {received} bytes that cannot be decoded as its Content-Encoding "
                           f"({headers['content-encoding']}) says")
            body = b""
            break
        body = decoded
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return DecodedResponse(status, headers, content_type, body[:MAX_TEXT_BYTES], undecodable)


# The tags the WHATWG MIME sniffing standard takes for the start of an HTML document.
_HTML_START = re.compile(r"\s*<(!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--)"
                         r"[\s>]", re.IGNORECASE)


def sniffs_as_html(body: str) -> bool:
    """Whether `body` begins as an HTML document does, as browsers sniff a body whose declared
    type they cannot trust: a server's error page sent as application/pdf reads as HTML."""
    return bool(_HTML_START.match(body.lstrip("\ufeff")))


def html_of(raw: bytes) -> str | None:
    """The HTML of a raw HTML response, decoded within bounds; None for any other content."""
    response = decode_response(raw)
    return response.text if response.is_html else None


def _parse(raw: bytes, shadow_roots: bool = True) -> tuple[str, VisibleText]:
    response = decode_response(raw)
    parser = VisibleText(shadow_roots)
    if response.is_html:
        parser.feed(response.text)
    return response.content_type, parser


def http_text(raw: bytes, shadow_roots: bool = True) -> tuple[str, list[str]]:
    """The content type and visible words of a raw HTTP response, decoded within bounds; those of
    declarative shadow roots only when `shadow_roots`."""
    content_type, parser = _parse(raw, shadow_roots)
    return content_type, parser.words


def page_title(raw: bytes) -> str | None:
    """The <title> of a raw HTML response, if it has one."""
    title = " ".join("".join(_parse(raw)[1].title).split())
    return title or None


