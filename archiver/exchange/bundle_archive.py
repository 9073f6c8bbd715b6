"""The web archive inside a bundle: archive/data.warc.gz, its records copied byte for byte
from the collection's WARC files (each file's warcinfo first, when it opens with one), the CDXJ index a player replays
them by, and pages/pages.jsonl, the pages a player lists."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

from cdxj_indexer.main import CDXJIndexer
from isal import isal_zlib
from warcio.archiveiterator import ArchiveIterator

from archiver.store.record_blocks import GZIP_MAGIC
from archiver.evidence.signing import canonical_json
from archiver.store.storage import Storage, read_listed
from archiver.exchange.capture_evidence import CaptureEvidence


ARCHIVE = "archive/data.warc.gz"
COPY_RANGE = 8 * 2**20  # bytes of a record read at once: an S3 GET's worth
HEAD_LIMIT = 64 * 1024  # the bytes of a WARC record's start read for its head


def copy_records(storage: Storage, evidence: list["CaptureEvidence"], out: Path) -> None:
    """The records' own gzip members, byte for byte, each once, each file's warcinfo first, each
    read in ranges of at most COPY_RANGE bytes (a record may be as large as a capture may be). A
    record of an uncompressed WARC (imported as another tool wrote it) becomes a gzip member of
    its own, its bytes unchanged inside: a .warc.gz is one format, not a mix of two."""
    # Two captures may share a record (a request of an imported crawl's): it is one record still.
    held = {(r.warc_file, r.offset): r for item in evidence for r in item.records}
    records = [held[place] for place in sorted(held)]
    with open(out, "wb") as archive:
        current, gzipped = None, True
        for record in records:
            if record.warc_file != current:
                current = record.warc_file
                first = read_listed(storage, current, 0, 1 << 20)
                gzipped = first.startswith(GZIP_MAGIC)
                # Another tool's file may open with a capture's record, not a warcinfo (Browsertrix
                # writes none): that record is copied only if it is one of those selected.
                if record.offset != 0 and _opens_with_warcinfo(_inflated_start(first) if gzipped else first):
                    archive.write(_first_member(first) if gzipped else _as_member(first[:_first_record_length(first)]))
            end = record.offset + record.length
            if not gzipped:
                archive.write(_as_member(read_listed(storage, record.warc_file, record.offset, record.length)))
                continue
            for start in range(record.offset, end, COPY_RANGE):
                archive.write(read_listed(storage, record.warc_file, start, min(COPY_RANGE, end - start)))


def _inflated_start(data: bytes) -> bytes:
    """The first bytes of a gzipped file's first record, as many as a WARC head needs."""
    return zlib.decompressobj(31).decompress(data, HEAD_LIMIT)


def _opens_with_warcinfo(start: bytes) -> bool:
    """Whether the record at the start of a WARC (its first bytes, uncompressed) is a warcinfo."""
    head = start[:HEAD_LIMIT].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return any(field.strip().lower() == b"warc-type" and value.strip().lower() == b"warcinfo"
               for field, _, value in (line.partition(b":") for line in head.splitlines()[1:]))


def _first_member(data: bytes) -> bytes:
    """The warcinfo record that opens the file (every WARC file we write): its first gzip member."""
    inflater = isal_zlib.decompressobj(31)
    inflater.decompress(data)
    return data[:len(data) - len(inflater.unused_data)]


def _first_record_length(data: bytes) -> int:
    """The length of an uncompressed WARC's first record, as warcio gives it (to its block's end)."""
    iterator = ArchiveIterator(io.BytesIO(data))
    next(iterator)
    iterator.read_to_end()
    return iterator.get_record_length()


def _as_member(record: bytes) -> bytes:
    """An uncompressed record (to its block's end) as one gzip member, with the CRLFs that end it."""
    return gzip.compress(record + b"\r\n\r\n", mtime=0)


def index_of(archive: Path) -> bytes:
    out = archive.with_suffix(".cdx")
    # What a player replays: the responses, and the browser's screenshot, PDF and DOM at their urn:
    # URIs, which name no page so shadow none. Metadata records share the page's URL and time and would.
    CDXJIndexer(output=str(out), inputs=[str(archive)], sort=True, filename=Path(ARCHIVE).name,
                records="response,revisit,resource").process_all()
    return out.read_bytes()


def pages_list(title: str, evidence: list["CaptureEvidence"]) -> bytes:
    """pages/pages.jsonl: every complete capture, oldest first within its URL, so that a player lists
    each version a claim may cite, not only the newest; with its title and the visible text a
    reader saw, for a player's search."""
    lines = [{"format": "json-pages-1.0", "id": "pages", "title": title}]
    complete = [item for item in evidence if item.capture.outcome == "ok"]
    for item in sorted(complete, key=lambda e: (e.capture.url, e.capture.started_at)):
        capture = item.capture
        page = {"id": capture.id, "url": capture.url, "ts": capture.started_at[:19] + "Z"}
        if item.title:
            page["title"] = item.title
        if item.text:  # what a player's full-text search looks in (ReplayWeb.page, as browsertrix's --text writes it)
            page["text"] = item.text
        lines.append(page)
    return b"".join(canonical_json(line) + b"\n" for line in lines)
