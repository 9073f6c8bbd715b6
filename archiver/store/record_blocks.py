"""One cataloged record's block, read from its own gzip member: what every stage that shows,
compares or replays a record reads, without scanning its file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from isal import isal_zlib

from archiver.store.storage import read_listed

if TYPE_CHECKING:
    from archiver.store.rows import StoredRecord
    from archiver.store.storage import Storage

GZIP_MAGIC = b"\x1f\x8b"  # how a gzip member, and so a .warc.gz, begins
BLOCK_READ = 2**20  # compressed bytes read at once by read_record_block
HEADER_ALLOWANCE = 64 * 1024  # of a record's WARC headers, read beyond the block's bytes asked for


def read_record_block(storage: Storage, record: StoredRecord, limit: int | None = None) -> bytes:
    """Up to `limit` bytes (default: all) of one cataloged record's block, read from its own gzip
    member a range at a time and no further than they need: a record may be as large as a
    capture. A record of an uncompressed WARC (imported as another tool wrote it) is read as it is."""
    limit = record.content_length if limit is None else limit
    wanted = limit + HEADER_ALLOWANCE
    inflater = isal_zlib.decompressobj(31)
    data = bytearray()
    at, end = record.offset, record.offset + record.length
    while at < end and len(data) < wanted and not inflater.eof:
        compressed = read_listed(storage, record.warc_file, at, min(BLOCK_READ, end - at))
        if not compressed:  # the file ends before the member: what was inflated is all there is
            break
        if at == record.offset and not compressed.startswith(GZIP_MAGIC):
            rest = read_listed(storage, record.warc_file, at + len(compressed), min(wanted, end - at) - len(compressed)) \
                if len(compressed) < min(wanted, end - at) else b""
            data = bytearray(compressed + rest)
            break
        at += len(compressed)
        data += inflater.decompress(compressed, wanted - len(data))
    _, _, block = bytes(data).partition(b"\r\n\r\n")
    return block[:min(limit, record.content_length)]
