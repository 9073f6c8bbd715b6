"""Reading a WARC file once, as fast as the machine allows: each gzip member is inflated
(ISA-L), each record's block and payload hashed (SHA-256) as the bytes stream past, and the
file itself hashed, with memory bounded whatever the record sizes.

Works on any WARC: one gzip member per record (ours), several records per member, or an
uncompressed file. A record's offset is that of the gzip member it starts in."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Iterator

from isal import isal_zlib

from archiver.store.record_blocks import GZIP_MAGIC

if TYPE_CHECKING:
    from archiver.store.storage import Storage

# Small reads: at each member's end the inflater copies the rest of its input into unused_data.
READ_SIZE = 64 * 1024
HTTP_TYPES = ("request", "response", "revisit")
LINE_LIMIT = 1 << 16  # a longer header line is read as several, so no line can fill the memory
# WARC 1.1's field names, spelt as the standard does: a record naming no other field, each
# once, needs no closer look for a field given twice (see _repeated_header).
WARC_FIELDS = frozenset((
    "WARC-Type", "WARC-Record-ID", "WARC-Date", "Content-Length", "Content-Type", "WARC-Concurrent-To",
    "WARC-Block-Digest", "WARC-Payload-Digest", "WARC-IP-Address", "WARC-Refers-To", "WARC-Refers-To-Target-URI",
    "WARC-Refers-To-Date", "WARC-Target-URI", "WARC-Truncated", "WARC-Warcinfo-ID", "WARC-Filename", "WARC-Profile",
    "WARC-Identified-Payload-Type", "WARC-Segment-Number", "WARC-Segment-Origin-ID", "WARC-Segment-Total-Length"))
_SINGLE_FIELDS = frozenset(name.lower() for name in WARC_FIELDS) - {"warc-concurrent-to"}


@dataclass(slots=True)
class ScannedRecord:
    headers: dict[str, str]
    offset: int          # of the gzip member holding its start (or byte offset if uncompressed)
    length: int | None   # compressed length of that member when the record fills it alone
    block_digest: str    # computed
    payload_digest: str | None  # computed, for HTTP records: over the bytes after the HTTP head

    @property
    def id(self) -> str | None:
        return self.headers.get("WARC-Record-ID")

    @property
    def type(self) -> str | None:
        return self.headers.get("WARC-Type")

    def __reduce__(self):
        # Pickled by position: a worker sends back tens of thousands, and the default for a
        # slotted class names every field of every record.
        return ScannedRecord, (self.headers, self.offset, self.length, self.block_digest, self.payload_digest)


@dataclass
class FileScan:
    name: str
    size: int = 0
    sha256: str = ""
    records: list[ScannedRecord] = field(default_factory=list)
    error: str | None = None  # why reading stopped early, if it did


class _Members:
    """Inflates a file member by member, remembering where each member starts."""

    def __init__(self, file: BinaryIO, file_hash: "hashlib._Hash | None") -> None:
        self._file = file
        self._hash = file_hash
        self.size = 0
        self._first = file.read(2)
        self.gzipped = self._first == GZIP_MAGIC
        self.member_starts: list[int] = [0]
        self._inflater = isal_zlib.decompressobj(31) if self.gzipped else None
        self._consumed = 0  # compressed bytes fed to finished members and the current one

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        """(inflated bytes, index of the member they come from)."""
        first, self._first = self._first, b""
        while raw := first + self._file.read(READ_SIZE):
            first = b""
            if self._hash is not None:
                self._hash.update(raw)
            self.size += len(raw)
            if not self.gzipped:
                yield raw, 0
                continue
            while raw:
                data = self._inflater.decompress(raw)
                if data:
                    yield data, len(self.member_starts) - 1
                if not self._inflater.eof:
                    self._consumed += len(raw)
                    break
                used = len(raw) - len(self._inflater.unused_data)
                self._consumed += used
                raw = self._inflater.unused_data
                self.member_starts.append(self._consumed)
                self._inflater = isal_zlib.decompressobj(31)
        if self.gzipped and self._consumed != self.member_starts[-1]:
            raise ValueError(f"the last gzip member is truncated at byte {self.size}")


class _Stream:
    """Buffered reading over inflated chunks: lines for headers, counted bytes for blocks.
    The chunk being read is kept as it came, with a read position, so that a block's bytes
    reach the hashes as views of it, never copied."""

    def __init__(self, chunks: Iterator[tuple[bytes, int]]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._at = 0  # in self._chunk: what comes before is consumed
        self._member = 0
        self.position = 0  # inflated bytes consumed

    def _fill(self) -> bool:
        """Append the next chunk to what is left of this one (a line across chunks)."""
        try:
            data, self._member = next(self._chunks)
        except StopIteration:
            return False
        self._chunk = self._chunk[self._at:] + data if self._at < len(self._chunk) else data
        self._at = 0
        return True

    def _take(self, end: int) -> bytes:
        data = self._chunk[self._at:end]
        self._at = end
        self.position += len(data)
        return data

    @property
    def member(self) -> int:
        """The member the last inflated bytes came from: a record that begins a member is read
        from an empty buffer, because the record before it was consumed to its end."""
        return self._member

    def readline(self, limit: int = LINE_LIMIT) -> bytes:
        """One line with its LF; a line not ended within `limit` bytes of what is buffered is
        cut there (the rest is the next line); at the end of the file, what is left."""
        searched = self._at
        while True:
            end = self._chunk.find(b"\n", searched)
            if end >= 0 or len(self._chunk) - self._at >= limit:
                return self._take(end + 1 if end >= 0 else self._at + limit)
            searched = len(self._chunk) - self._at
            if not self._fill():
                return self._take(len(self._chunk))
            searched += self._at

    def header_block(self) -> bytes:
        """The lines of a header block up to its blank line (consumed, not included), or to the
        end of the file, joined by LF, each as readline() gives it (its LF left off; a CR
        before it is kept). When the chunk at hand holds the blank line, as nearly always, one
        search finds it and readline() would have cut none of the lines before it."""
        at, chunk = self._at, self._chunk
        if chunk.startswith(b"\n", at) or chunk.startswith(b"\r\n", at):
            self._take(at + (1 if chunk[at] == 0x0A else 2))
            return b""
        crlf = chunk.find(b"\n\r\n", at)
        bare = chunk.find(b"\n\n", at, crlf + 1 if crlf >= 0 else len(chunk))  # only one before it counts
        end = bare + 1 if bare >= 0 else crlf + 1 if crlf >= 0 else -1  # where the blank line starts
        if end < 0:
            lines = []
            while (line := self.readline()) not in (b"\r\n", b"\n", b""):
                lines.append(line[:-1] if line.endswith(b"\n") else line)
            return b"\n".join(lines)
        self._take(end + (1 if chunk[end] == 0x0A else 2))
        return chunk[at:end - 1]

    def blocks(self, count: int) -> Iterator[memoryview]:
        """Exactly `count` bytes, in views valid until the next read; fewer only at the end of the file."""
        while count > 0:
            if self._at == len(self._chunk) and not self._fill():
                return
            end = min(len(self._chunk), self._at + count)
            piece = memoryview(self._chunk)[self._at:end]
            self._at = end
            count -= len(piece)
            self.position += len(piece)
            yield piece


def _http_head_end(head: bytearray) -> int | None:
    """Index just past the blank line ending an HTTP head (CRLF or bare LF), if it is in `head`."""
    crlf = head.find(b"\r\n\r\n")
    bare = head.find(b"\n\n", 0, crlf if crlf >= 0 else len(head))  # only a bare LF head ends earlier
    if bare >= 0:
        return bare + 2
    return crlf + 4 if crlf >= 0 else None


def scan_warc(storage: "Storage", name: str, keep_headers: frozenset[str] | None = None,
              unfinished: bool = False, hash_file: bool = True) -> FileScan:
    """Every record of a stored file (or of one still `unfinished`) with its computed digests;
    never raises for bad content. `keep_headers`: which WARC headers to keep of each record
    (default: all); without `hash_file`, the scan's sha256 is left empty (hashed elsewhere)."""
    with storage.unfinished_reader(name) if unfinished else storage.reader(name) as file:
        return scan_stream(file, name, keep_headers, hash_file)


def scan_stream(file: BinaryIO, name: str, keep_headers: frozenset[str] | None = None,
                hash_file: bool = True) -> FileScan:
    """scan_warc() over an open binary stream (a file, or an entry read out of a ZIP);
    without `hash_file`, the scan's sha256 is left empty (a piece of a file: it stands for nothing)."""
    scan = FileScan(name)
    file_hash = hashlib.sha256() if hash_file else None
    members = _Members(file, file_hash)
    stream = _Stream(members.chunks())
    try:
        while True:
            first = stream.readline()
            while first in (b"\r\n", b"\n"):
                first = stream.readline()
            if not first:
                break
            member_of_record = stream.member if members.gzipped else 0
            offset = members.member_starts[member_of_record] if members.gzipped else stream.position - len(first)
            if not first.startswith(b"WARC/"):
                raise ValueError(f"expected a WARC record at offset {offset}, found {first[:20]!r}")
            headers: dict[str, str] = {}
            if block := stream.header_block():
                # Decoded once, not line by line: LF is a boundary of every UTF-8 sequence.
                lines = block.decode("utf-8", "replace").split("\n")
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[sys.intern(name.strip())] = value.strip()  # one copy of each name, for 100,000s of records
                if (len(headers) < len(lines) or not headers.keys() <= WARC_FIELDS) and (repeated := _repeated_header(lines)):
                    raise ValueError(f"record at offset {offset} has its {repeated} header twice: "
                                     "readers differ on which one they take")
            length = int(headers.get("Content-Length", "-1"))
            if length < 0:
                raise ValueError(f"record at offset {offset} has no Content-Length")
            record = _hash_block(stream, headers, length, offset)
            if record is None:
                raise ValueError(f"record at offset {offset} is cut short: fewer than {length} bytes")
            if not members.gzipped:  # its length as warcio gives it: to the end of its block
                record.length = stream.position - offset
            stream.readline()  # the two CRLFs that end a record
            stream.readline()
            # A declared digest equal to the computed one becomes the same string: one copy in memory and in a pickle.
            if headers.get("WARC-Block-Digest") == record.block_digest:
                headers["WARC-Block-Digest"] = record.block_digest
            if record.payload_digest is not None and headers.get("WARC-Payload-Digest") == record.payload_digest:
                headers["WARC-Payload-Digest"] = record.payload_digest
            if keep_headers is not None:
                record.headers = {k: v for k, v in headers.items() if k in keep_headers}
            scan.records.append(record)
    except (ValueError, isal_zlib.error, OSError) as exc:
        scan.error = str(exc)
    # Member lengths are known only once the next member has started.
    starts = members.member_starts
    following = {start: after for start, after in zip(starts, starts[1:])}
    for record in scan.records:
        if members.gzipped:
            record.length = following[record.offset] - record.offset if record.offset in following else None
    scan.size = members.size
    scan.sha256 = file_hash.hexdigest() if file_hash else ""
    return scan


def _repeated_header(lines: list[str]) -> str | None:
    """The first of WARC 1.1's fields that a record gives twice, its name compared regardless of
    case (field names are case-insensitive; other readers take the first, this scanner would keep
    the last); None if none does. WARC-Concurrent-To may repeat, as WARC 1.1 allows, and so may
    any extension field (WARC-Protocol lists each protocol on a line of its own)."""
    seen = set()
    for line in lines:
        name = line.partition(":")[0].strip().lower()
        if name in seen and name in _SINGLE_FIELDS:
            return line.partition(":")[0].strip()
        seen.add(name)
    return None


def _hash_block(stream: _Stream, headers: dict[str, str], length: int, offset: int) -> ScannedRecord | None:
    block_hash = hashlib.sha256()
    is_http = headers.get("WARC-Type") in HTTP_TYPES and "application/http" in headers.get("Content-Type", "")
    # A revisit's payload digest names the earlier payload it stands for; its block has none.
    payload_hash = hashlib.sha256() if is_http and headers.get("WARC-Type") != "revisit" else None
    head = bytearray()
    head_done = not is_http
    received = 0
    for piece in stream.blocks(length):
        received += len(piece)
        block_hash.update(piece)
        if head_done:
            if payload_hash is not None:
                payload_hash.update(piece)
            continue
        head += piece
        end = _http_head_end(head)
        if end is not None:
            if payload_hash is not None:
                payload_hash.update(memoryview(head)[end:])
            head_done = True
    if received < length:
        return None
    if not head_done and payload_hash is not None:  # an HTTP block with no blank line: all head
        payload_hash = hashlib.sha256()
    return ScannedRecord(headers=headers, offset=offset, length=None, block_digest="sha256:" + block_hash.hexdigest(),
                         payload_digest="sha256:" + payload_hash.hexdigest() if payload_hash else None)
