"""Reading one large WARC file with several workers: the file is cut into pieces of whole gzip
members at the offsets the catalog gives its records, each piece is scanned on its own (by a
ranged read, on a local disk or an S3 object alike), and the piece scans are joined back into
the one FileScan a scan of the whole file gives.

The join is exact or it is refused: the file's size and SHA-256 are hashed in one place, in
order, and the pieces must tile the file, each read to its end with no error and starting
with a gzip member. A piece that does not (a catalog offset that is not a member's start, a
record running across two pieces, a damaged byte) makes the file read whole again, so what
verify finds on a damaged file is exactly what a scan of the whole file finds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archiver.check.scan import FileScan, scan_stream
from archiver.store.record_blocks import GZIP_MAGIC

if TYPE_CHECKING:
    from archiver.store.storage import Storage

HASH_BUFFER = 256 * 1024
RANGE_READ = 8 * 2**20  # bytes per ranged read of a piece: an S3 GET's worth, few opens of a local file


@dataclass(frozen=True)
class Piece:
    """Bytes [start, end) of the stored file `name`: whole gzip members, if the catalog is right."""

    name: str
    start: int
    end: int


def cut(name: str, size: int, member_starts: list[int], piece_size: int) -> list[Piece]:
    """Pieces of at least `piece_size` bytes (the last may be shorter), each starting at one of
    `member_starts` (sorted), together covering the file's `size` bytes."""
    bounds = [0]
    for start in member_starts:
        if bounds[-1] + piece_size <= start < size:
            bounds.append(start)
    bounds.append(size)
    return [Piece(name, start, end) for start, end in zip(bounds, bounds[1:])]


def scan_piece(storage: "Storage", piece: Piece, keep_headers: frozenset[str] | None) -> FileScan:
    """The records of one piece, at their offsets in the whole file; `error` says why the
    piece is not whole gzip members (then it cannot stand for its part of the file). The
    piece's bytes are not hashed as a file: hash_whole() hashes the whole file, in order."""
    source = _Range(storage, piece)
    if not source.starts_with(GZIP_MAGIC):
        return FileScan(piece.name, error="the piece does not start with a gzip member")
    scan = scan_stream(source, piece.name, keep_headers, hash_file=False)
    for record in scan.records:
        record.offset += piece.start
    return scan


def hash_whole(storage: "Storage", name: str) -> tuple[int, str]:
    """Size and SHA-256 of the stored file, read once in order."""
    digest = hashlib.sha256()
    size = 0
    # Into one buffer, again and again: it stays in the CPU's cache, where SHA-256 runs about a
    # quarter faster than on a fresh buffer for each read.
    buffer = bytearray(HASH_BUFFER)
    view = memoryview(buffer)
    with storage.reader(name) as file:
        while read := file.readinto(buffer):
            digest.update(view[:read])
            size += read
    return size, digest.hexdigest()


def join(name: str, pieces: list[Piece], scans: list[FileScan], size: int, sha256: str) -> FileScan | None:
    """The scan of the whole file, made of its pieces' scans and its hashed size and SHA-256;
    None when the pieces are not whole members tiling the file (read it whole instead)."""
    whole = size == pieces[-1].end and all(
        scan.error is None and scan.size == piece.end - piece.start for piece, scan in zip(pieces, scans))
    if not whole:
        return None
    joined = FileScan(name, size=size, sha256=sha256)
    for scan in scans:
        joined.records += scan.records
    return joined


class _Range:
    """Bytes [start, end) of a stored file as a file that ends there, fetched by ranged reads
    of exactly those bytes (on S3, no GET runs past the piece)."""

    def __init__(self, storage: "Storage", piece: Piece) -> None:
        self._storage = storage
        self._name = piece.name
        self._position = piece.start
        self._end = piece.end
        self._chunk = b""
        self._at = 0

    def starts_with(self, prefix: bytes) -> bool:
        """Whether the piece begins with `prefix`, asked before the first read: the range it
        fetches to see is then what read() gives, so no byte is fetched twice."""
        if self._at == len(self._chunk):
            self._fetch()
        return self._chunk.startswith(prefix, self._at)

    def _fetch(self) -> bool:
        length = min(RANGE_READ, self._end - self._position)
        if length <= 0:
            return False
        self._chunk, self._at = self._storage.read(self._name, self._position, length), 0
        self._position += length
        return True

    def read(self, size: int) -> bytes:
        if self._at == len(self._chunk) and not self._fetch():
            return b""
        data = self._chunk[self._at:self._at + size]
        self._at += len(data)
        return data
