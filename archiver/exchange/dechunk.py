"""An HTTP body's digest with its chunked transfer coding removed: the payload digest Heritrix,
warcprox (so Perma.cc) and other crawlers declare, reading WARC 1.1's payload as the
entity-body after the transfer coding is removed, where warcio and archiver hash the body as
it was sent. Computed as the body streams past, in bounded memory."""

from __future__ import annotations

import hashlib

_LINE_LIMIT = 4096  # the longest chunk-size or trailer line taken as one


def is_chunked(http_head: bytes) -> bool:
    """Whether an HTTP head declares the chunked transfer coding (its last coding, as RFC 9112 has it)."""
    for line in http_head.split(b"\n")[1:]:
        field, _, value = line.partition(b":")
        if field.strip().lower() == b"transfer-encoding":
            return value.strip().lower().split(b",")[-1].strip() == b"chunked"
    return False


class DechunkedHash:
    """Fed a chunked body piece by piece; digest() is the hash of the chunks' data, or None
    when the body is not well-formed chunked coding (then nothing is claimed of it)."""

    def __init__(self, algorithm: str) -> None:
        self._hash = hashlib.new(algorithm)
        self._state = "size"  # size | data | data end | trailer | done | broken
        self._left = 0  # bytes of the current chunk's data still to come
        self._line = bytearray()

    def update(self, data: bytes) -> None:
        at = 0
        while at < len(data) and self._state != "broken":
            if self._state == "done":
                self._state = "broken"  # bytes after the last chunk: not the coding's
            elif self._state == "data":
                taken = data[at:at + self._left]
                self._hash.update(taken)
                at += len(taken)
                self._left -= len(taken)
                if not self._left:
                    self._state = "data end"
            else:
                end = data.find(b"\n", at)
                self._line += data[at:end + 1 if end >= 0 else len(data)]
                at = end + 1 if end >= 0 else len(data)
                if len(self._line) > _LINE_LIMIT:
                    self._state = "broken"
                elif end >= 0:
                    self._end_line(bytes(self._line).strip())
                    self._line.clear()

    def _end_line(self, line: bytes) -> None:
        if self._state == "data end":
            self._state = "size" if not line else "broken"
        elif self._state == "trailer":
            self._state = "done" if not line else "trailer"
        else:
            try:
                self._left = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self._left = -1
            self._state = "broken" if self._left < 0 else "data" if self._left else "trailer"

    def digest(self) -> bytes | None:
        # A body ending after its last chunk's size line, without the blank line, is taken whole.
        return self._hash.digest() if self._state in ("done", "trailer") else None
