"""The web archive inside a bundle: archive/data.warc.gz, its records copied byte for byte
from the collection's WARC files (each file's warcinfo first), the CDXJ index a player replays
them by, and pages/pages.jsonl, the pages a player lists."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cdxj_indexer.main import CDXJIndexer
from isal import isal_zlib

from archiver.evidence.signing import canonical_json
from archiver.store.storage import Storage, read_listed

if TYPE_CHECKING:  # bundle gathers the evidence and calls this module
    from archiver.exchange.bundle import CaptureEvidence

ARCHIVE = "archive/data.warc.gz"
COPY_RANGE = 8 * 2**20  # bytes of a record read at once: an S3 GET's worth


def copy_records(storage: Storage, evidence: list["CaptureEvidence"], out: Path) -> None:
    """The records' own gzip members, byte for byte, each file's warcinfo first, each read in
    ranges of at most COPY_RANGE bytes (a record may be as large as a capture may be)."""
    records = sorted((r for item in evidence for r in item.records), key=lambda r: (r.warc_file, r.offset))
    with open(out, "wb") as archive:
        current = None
        for record in records:
            if record.warc_file != current:
                current = record.warc_file
                archive.write(_first_member(storage, current))
            end = record.offset + record.length
            for start in range(record.offset, end, COPY_RANGE):
                archive.write(read_listed(storage, record.warc_file, start, min(COPY_RANGE, end - start)))


def _first_member(storage: Storage, name: str) -> bytes:
    """The warcinfo record that opens every WARC file we write: its first gzip member."""
    inflater = isal_zlib.decompressobj(31)
    data = read_listed(storage, name, 0, 1 << 20)
    inflater.decompress(data)
    return data[:len(data) - len(inflater.unused_data)]


def index_of(archive: Path) -> bytes:
    out = archive.with_suffix(".cdx")
    # What a player replays: the responses, and the browser's screenshot, PDF and DOM at their urn:
    # URIs, which name no page so shadow none. Metadata records share the page's URL and time and would.
    CDXJIndexer(output=str(out), inputs=[str(archive)], sort=True, filename=Path(ARCHIVE).name,
                records="response,revisit,resource").process_all()
    return out.read_bytes()


def pages_list(title: str, evidence: list["CaptureEvidence"]) -> bytes:
    """pages/pages.jsonl: every complete capture, oldest first within its URL, so that a player lists
    each version a claim may cite, not only the newest."""
    lines = [{"format": "json-pages-1.0", "id": "pages", "title": title}]
    complete = [item for item in evidence if item.capture.outcome == "ok"]
    for item in sorted(complete, key=lambda e: (e.capture.url, e.capture.started_at)):
        capture = item.capture
        page = {"id": capture.id, "url": capture.url, "ts": capture.started_at[:19] + "Z"}
        if item.title:
            page["title"] = item.title
        lines.append(page)
    return b"".join(canonical_json(line) + b"\n" for line in lines)
