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
from typing import TYPE_CHECKING, BinaryIO

from archiver.check.scan import READ_SIZE, FileScan, scan_stream

if TYPE_CHECKING:
    from archiver.store.storage import Storage

GZIP_MAGIC = b"\x1f\x8b"


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
    piece is not whole gzip members (then it cannot stand for its part of the file)."""
    with storage.reader(piece.name) as file:
        file.seek(piece.start)
        bounded = _Bounded(file, piece.end - piece.start)
        if bounded.peek_start() != GZIP_MAGIC:
            return FileScan(piece.name, error="the piece does not start with a gzip member")
        scan = scan_stream(bounded, piece.name, keep_headers)
    for record in scan.records:
        record.offset += piece.start
    return scan


def hash_whole(storage: "Storage", name: str) -> tuple[int, str]:
    """Size and SHA-256 of the stored file, read once in order."""
    digest = hashlib.sha256()
    size = 0
    with storage.reader(name) as file:
        while chunk := file.read(16 * READ_SIZE):
            digest.update(chunk)
            size += len(chunk)
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


class _Bounded:
    """The next `length` bytes of a binary file, as a file that ends there."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        self._file = file
        self._left = length
        self._first = b""

    def peek_start(self) -> bytes:
        """The first two bytes, kept for the first read."""
        self._first = self.read(2)
        return self._first

    def read(self, size: int = -1) -> bytes:
        first, self._first = self._first, b""
        wanted = self._left if size < 0 else min(size - len(first), self._left)
        data = self._file.read(wanted) if wanted > 0 else b""
        self._left -= len(data)
        return first + data
