"""HTTP/1.1 as the recording proxy speaks it with the browser: reading the browser's requests
(bounded, nothing read past what was asked for), the proxy's own short answers, and whether a
relayed response leaves the connection usable. Origins are never spoken to here: that is the
transport's job, and it parses their responses itself."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_LINE = 64 * 1024  # longest request line or header line
MAX_HEAD = 256 * 1024  # longest request head
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_REASONS = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 502: "Bad Gateway",
            504: "Gateway Timeout"}


class BadRequest(Exception):
    """What the browser sent is not a request the proxy can pass on."""


class Wire:
    """Buffered reads from one browser connection. Bytes already received past a request stay
    in `buffered` (a pipelined request), so the caller can tell if any came before a TLS handshake."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    @property
    def buffered(self) -> bool:
        return bool(self._buffer)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the browser closed the connection")
        self._buffer += data

    def readline(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_LINE:
                raise BadRequest(f"a request line or header over {MAX_LINE} bytes")
            self._fill()
        line = bytes(self._buffer[:end + 1])
        del self._buffer[:end + 1]
        return line

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


@dataclass
class BrowserRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), or None."""
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[-1] if values else None

    def _tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for n, v in self.headers if n.lower() == name.lower() for t in v.split(",")}

    @property
    def wants_close(self) -> bool:
        tokens = self._tokens("connection")
        return "close" in tokens or (self.version == "HTTP/1.0" and "keep-alive" not in tokens)

    @property
    def is_navigation(self) -> bool:
        """Whether the browser asked for a document to show, in its window or in a frame
        (Sec-Fetch-Mode: navigate), not a subresource. Chromium sends no fetch metadata to a plain
        http:// site off loopback: there a navigation is told by Upgrade-Insecure-Requests alone."""
        mode = self.header("sec-fetch-mode")
        if mode is not None:
            return mode.strip().lower() == "navigate"
        return self.header("upgrade-insecure-requests") is not None

    def url(self, origin: str | None) -> str:
        """The URL asked for: the absolute target of a proxy request, or `origin` (the CONNECT
        tunnel's https://host[:port]) followed by an origin-form target."""
        if origin is None:
            if urlsplit(self.target).scheme.lower() not in ("http", "https") or "://" not in self.target:
                raise BadRequest(f"not a proxy request (target {self.target[:200]!r})")
            return self.target
        if self.target.startswith("/"):
            return origin + self.target
        if self.target.lower().startswith(origin.lower() + "/"):
            return self.target
        raise BadRequest(f"target {self.target[:200]!r} is not on the tunnel's origin {origin}")


def read_head(wire: Wire) -> BrowserRequest | None:
    """The next request's line and headers, or None when the browser closed the connection between requests."""
    try:
        line = wire.readline()
        while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: an empty line before a request is ignored
            line = wire.readline()
    except EOFError:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(f"not an HTTP/1.x request line: {line[:200]!r}")
    headers, size = [], len(line)
    while (line := wire.readline()) not in (b"\r\n", b"\n"):
        size += len(line)
        if size > MAX_HEAD:
            raise BadRequest(f"request head over {MAX_HEAD} bytes")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not _TOKEN.match(name):  # also refuses obsolete line folding
            raise BadRequest(f"malformed header line {line[:200]!r}")
        headers.append((name, value.strip(" \t\r\n")))
    return BrowserRequest(parts[0], parts[1], parts[2], headers)


def read_body(wire: Wire, request: BrowserRequest, limit: int, sock: socket.socket) -> bytes:
    """The request's body (de-chunked: the transport frames it again on the way out); raises
    OverflowError past `limit` bytes, before reading them where the length is announced."""
    if (request.header("expect") or "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    coding = request.header("transfer-encoding")
    if coding is not None:
        if coding.split(",")[-1].strip().lower() != "chunked":
            raise BadRequest(f"request body framed as {coding!r}, not chunked")
        return _read_chunked(wire, limit)
    lengths = {v.strip() for n, v in request.headers if n.lower() == "content-length"}
    if not lengths:
        return b""
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        raise BadRequest(f"unusable Content-Length {sorted(lengths)}")
    length = int(next(iter(lengths)))
    if length > limit:
        raise OverflowError(length)
    return wire.read(length)


def _read_chunked(wire: Wire, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_text = wire.readline().split(b";", 1)[0].strip()
        if not size_text or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
            raise BadRequest(f"malformed chunk size {size_text[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            while wire.readline() not in (b"\r\n", b"\n"):  # trailers: not passed on
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise OverflowError(len(body) + size)
        body += wire.read(size)
        if wire.readline() not in (b"\r\n", b"\n"):
            raise BadRequest("chunk not followed by CRLF")


def answer(status: int, reason: str, close: bool = False) -> bytes:
    """The proxy's own short answer naming `reason`; never recorded as an origin's response."""
    body = f"archiver recording proxy: {reason}\n".encode("utf-8")
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}", "Cache-Control: no-store"] + (["Connection: close"] if close else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def authority_of(target: str) -> tuple[str, int]:
    """Host and port of a CONNECT target (host:port, [IPv6]:port)."""
    host, colon, port = target.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise BadRequest(f"CONNECT target {target[:200]!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host.split("%", 1)[0])  # ValueError when it is not one
    elif ":" in host:
        raise BadRequest(f"CONNECT target {target[:200]!r}: an IPv6 address needs brackets")
    return host.lower(), int(port)


def delimited(head: bytes, method: str) -> bool:
    """Whether a complete response with this head ends where its framing says, so that the
    connection can carry another request; `head` may hold interim 1xx heads before the final one."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(b"HTTP/")]
    if not starts:
        return False
    status_line, *header_lines = lines[starts[-1]:]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return False
    version, status = parts[0], int(parts[1])
    fields: dict[bytes, list[bytes]] = {}
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if colon:
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    connection = {t.strip().lower() for v in fields.get(b"connection", []) for t in v.split(b",")}
    if b"close" in connection or (version == b"HTTP/1.0" and b"keep-alive" not in connection):
        return False
    if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return True
    if b"transfer-encoding" in fields:
        return fields[b"transfer-encoding"][-1].split(b",")[-1].strip().lower() == b"chunked"
    return b"content-length" in fields
