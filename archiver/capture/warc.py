"""WARC 1.1 files: records built from fetched exchanges, written by warcio one gzip member
per record into a new file of the collection's storage, published when closed."""

from __future__ import annotations

import functools
import hashlib
import io
import platform
import secrets
import ssl
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, Callable

from importlib.metadata import version

import requests
import urllib3
from isal import isal_zlib
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from archiver import __version__
from archiver.store import crash_points
from archiver.store.rows import StoredRecord
from archiver.store.storage import NewFile, Storage, StoredFile
from archiver.read.urls import wire_form

WARC_VERSION = "WARC/1.1"
# isal level 1 compresses ~15x faster than zlib's default with a ratio close to zlib level 3.
GZIP_LEVEL = 1
TRIAL = 64 * 1024  # bytes of a record deflated on trial before its member's compression is chosen
STORED_FROM = 0.99  # a trial deflated to this share of its size or more: the member is stored


def software(browser: dict | None = None) -> str:
    """archiver and the libraries that fetch and write; with `browser` (a Browser's info), the
    Chromium that rendered the page and the Playwright that drove it."""
    rendered = f" {browser['name']}/{browser['version']} playwright/{browser['playwright']}" if browser else ""
    return _libraries() + rendered


@functools.cache
def _libraries() -> str:
    return (f"archiver/{__version__} warcio/{version('warcio')} requests/{requests.__version__} "
            f"urllib3/{urllib3.__version__} Python/{platform.python_version()} {ssl.OPENSSL_VERSION}")


def warc_date(moment: datetime) -> str:
    return datetime_to_iso_date(moment.astimezone(timezone.utc).replace(tzinfo=None), use_micros=True)


def warc_now() -> str:
    """This moment as warc_date() writes it: the form of every time a capture run records."""
    return warc_date(datetime.now(timezone.utc))


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class PendingRecord:
    """A record ready to write: WARC headers (without length and warcinfo id) and its block."""

    headers: list[tuple[str, str]]
    block: BinaryIO
    length: int
    role: str  # what the record is to its capture: request, response, metadata

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"


@dataclass(frozen=True)
class Revisit:
    """The earlier response holding a payload identical to this one's."""

    record_id: str
    target_uri: str
    warc_date: str


def http_exchange_records(url: str, started: datetime, ip: str | None, request_bytes: bytes,
                          response_block: BinaryIO, response_length: int, block_digest: str,
                          payload_digest: str, truncated: str | None, answered: bool,
                          revisit: Revisit | None = None) -> list[PendingRecord]:
    """The request and response records of one exchange, sharing its start time; the request's
    alone when no response came (it then names no record concurrent to it: WARC-Concurrent-To
    names only records in the file). With `revisit`, the response block is only the status line
    and headers, and the record says where the identical payload is stored."""
    date = warc_date(started)
    request_id, response_id = new_record_id(), new_record_id()
    common = [("WARC-Target-URI", url), ("WARC-Date", date)] + ([("WARC-IP-Address", ip)] if ip else [])
    head, _, body = request_bytes.partition(b"\r\n\r\n")
    request = PendingRecord(
        headers=[("WARC-Type", "request"), ("WARC-Record-ID", request_id), *common,
                 *([("WARC-Concurrent-To", response_id)] if answered else []),
                 ("Content-Type", "application/http;msgtype=request"),
                 ("WARC-Block-Digest", sha256_digest(request_bytes)),
                 ("WARC-Payload-Digest", sha256_digest(body))],
        block=io.BytesIO(request_bytes), length=len(request_bytes), role="request")
    if not answered:
        return [request]
    kind = [("WARC-Type", "revisit"), ("WARC-Profile", REVISIT_PROFILE)] if revisit else [("WARC-Type", "response")]
    refers = ([("WARC-Refers-To", revisit.record_id), ("WARC-Refers-To-Target-URI", revisit.target_uri),
               ("WARC-Refers-To-Date", revisit.warc_date)] if revisit else [])
    response = PendingRecord(
        headers=[*kind, ("WARC-Record-ID", response_id), *common, ("WARC-Concurrent-To", request_id), *refers,
                 ("Content-Type", "application/http;msgtype=response"),
                 ("WARC-Block-Digest", block_digest), ("WARC-Payload-Digest", payload_digest)]
        + ([("WARC-Truncated", truncated)] if truncated else []),
        block=response_block, length=response_length, role="response")
    return [request, response]


def metadata_record(url: str, started: datetime, refers_to: str | None, body: bytes,
                    content_type: str = "application/json", role: str = "metadata") -> PendingRecord:
    """What archiver records of a capture of `url` (its details, its signed attestation), at
    `urn:metadata:<url>`, as the resource records are at `urn:<kind>:<url>`: a player pointed at
    the WARC files and asked for the page's URL finds its response, never this JSON (pywb served
    it in the page's place, at the same URL and second). WARC-Refers-To names the response."""
    headers = [("WARC-Type", "metadata"), ("WARC-Record-ID", new_record_id()),
               ("WARC-Target-URI", f"urn:metadata:{wire_form(url)}"), ("WARC-Date", warc_date(started))]
    if refers_to:
        headers.append(("WARC-Refers-To", refers_to))
    headers += [("Content-Type", content_type), ("WARC-Block-Digest", sha256_digest(body))]
    return PendingRecord(headers=headers, block=io.BytesIO(body), length=len(body), role=role)


def resource_record(target_uri: str, started: datetime, content_type: str, body: bytes, refers_to: str | None,
                    role: str, truncated: str | None = None) -> PendingRecord:
    """What a capture made rather than received (a screenshot, a PDF print, the rendered DOM),
    at a `urn:<kind>:<url>` URI as Browsertrix and ArchiveWeb.page name them; `truncated`, its
    WARC-Truncated reason when it holds only the first part of what was made."""
    headers = [("WARC-Type", "resource"), ("WARC-Record-ID", new_record_id()),
               ("WARC-Target-URI", target_uri), ("WARC-Date", warc_date(started))]
    if refers_to:
        headers.append(("WARC-Refers-To", refers_to))
    headers += [("Content-Type", content_type), ("WARC-Block-Digest", sha256_digest(body))]
    if truncated:
        headers.append(("WARC-Truncated", truncated))
    return PendingRecord(headers=headers, block=io.BytesIO(body), length=len(body), role=role)


class _GzipMember:
    """One gzip member per record: warcio writes a record into it, flush() ends the member.
    Deflated by ISA-L, unless its first TRIAL bytes deflate to STORED_FROM of their size or
    more (random, JPEG, video): then stored blocks (zlib level 0), which inflate at the speed
    of memory where ISA-L's Huffman-coded blocks of such data inflate at about 0.5 GB/s."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pending: list[bytes] = []  # written before the trial decided how to compress
        self._pending_size = 0
        self._compressor = None

    def write(self, data: bytes) -> None:
        if self._compressor is not None:
            self._out.write(self._compressor.compress(data))
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= TRIAL:
            self._start(b"".join(self._pending))

    def _start(self, head: bytes) -> None:
        sample = head[:TRIAL]
        stored = len(isal_zlib.compress(sample, GZIP_LEVEL)) >= STORED_FROM * len(sample)
        self._compressor = (zlib.compressobj(0, zlib.DEFLATED, 31) if stored
                            else isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31))
        self._pending = []
        self._out.write(self._compressor.compress(head))

    def flush(self) -> None:
        if self._compressor is None:
            self._start(b"".join(self._pending))
        self._out.write(self._compressor.flush())


class _ExactWARCWriter(WARCWriter):
    """warcio's writer, keeping record blocks byte for byte and the digests we computed."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__(out, gzip=False, warc_version=WARC_VERSION)

    def ensure_digest(self, record, block=True, payload=True) -> None:
        # Digests are computed while the bytes arrive (SHA-256); warcio would add SHA-1 ones.
        return None

    def write_record(self, record, params=None) -> None:
        self._write_warc_record(_GzipMember(self.out), record)


class PartlyDone(Exception):
    """A batch cut short: `done` holds what its first items made, durable before `problem`
    stopped the rest (which made nothing)."""

    def __init__(self, done: list, problem: BaseException) -> None:
        super().__init__(str(problem))
        self.done, self.problem = done, problem


class WarcFileWriter:
    """Appends captures to a WARC file, rotating past `max_size` or, with `max_age`, once the
    file is that many seconds old. Not thread-safe: one writer per process, called under the
    caller's lock. A capture's records never span two files."""

    def __init__(self, storage: Storage, prefix: str, max_size: int, info: dict[str, str],
                 on_open: Callable[[str, str], None], on_close: Callable[[StoredFile], None],
                 max_age: float | None = None, on_sealed: Callable[[StoredFile], None] = lambda written: None) -> None:
        """`on_sealed(written)`: a file's last byte is written and synced, before it is published
        (which may fail: an upload); `on_close(stored)`: it is published."""
        self.storage = storage
        self.prefix = prefix
        self.max_size = max_size
        self.max_age = max_age
        self._opened_at = 0.0  # time.monotonic() when the open file was created
        self.info = info
        self._on_open = on_open
        self._on_close = on_close
        self._on_sealed = on_sealed
        self._file: NewFile | None = None
        self._writer: _ExactWARCWriter | None = None
        self._name: str | None = None
        self.warcinfo_id: str | None = None

    def _open(self) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        # The name comes from our clock and randomness only, never from anything a server sent.
        self._name = f"{self.prefix}-{stamp}-{secrets.token_hex(4)}.warc.gz"
        self.warcinfo_id = new_record_id()
        # Listed before it exists: a file on disk is then never one the catalog does not know.
        self._on_open(self._name, self.warcinfo_id)
        self._file = self.storage.create(self._name)
        self._opened_at = time.monotonic()
        self._writer = _ExactWARCWriter(self._file)
        fields = {"software": software(), "format": "WARC File Format 1.1",
                  "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                  "hostname": platform.node(), "os": platform.platform(), **self.info}
        body = "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v).encode("utf-8")
        warcinfo = PendingRecord(
            headers=[("WARC-Type", "warcinfo"), ("WARC-Record-ID", self.warcinfo_id),
                     ("WARC-Filename", self._name), ("WARC-Date", warc_date(datetime.now(timezone.utc))),
                     ("Content-Type", "application/warc-fields"), ("WARC-Block-Digest", sha256_digest(body))],
            block=io.BytesIO(body), length=len(body), role="warcinfo")
        self._append(warcinfo)
        self._sync()

    def _append(self, pending: PendingRecord) -> StoredRecord:
        headers = list(pending.headers)
        if any("\r" in value or "\n" in value for _, value in headers):  # it would write a header of its own
            raise ValueError(f"a line break in a WARC header of {pending.header('WARC-Target-URI')!r}")
        if pending.role != "warcinfo":
            headers.append(("WARC-Warcinfo-ID", self.warcinfo_id))
        headers.append(("Content-Length", str(pending.length)))
        # The record kind given to warcio is not the WARC-Type on purpose: for "revisit" warcio
        # writes the headers and drops the block, while ours (the HTTP head) must be written.
        record = ArcWarcRecord("warc", "block", StatusAndHeaders("", headers, protocol=WARC_VERSION),
                               pending.block, None, pending.header("Content-Type"), pending.length)
        offset = self._file.size
        if pending.role == "response" and crash_points.armed(crash_points.MID_RECORD):
            crash_points.tear(self._file, lambda out: _ExactWARCWriter(out).write_record(record))
        self._writer.write_record(record)
        return StoredRecord(
            record_id=pending.header("WARC-Record-ID"), warc_type=pending.header("WARC-Type"),
            role=pending.role, target_uri=pending.header("WARC-Target-URI"),
            warc_date=pending.header("WARC-Date"), warc_file=self._name, offset=offset,
            length=self._file.size - offset, content_length=pending.length,
            block_digest=pending.header("WARC-Block-Digest"),
            payload_digest=pending.header("WARC-Payload-Digest"), truncated=pending.header("WARC-Truncated"))

    def _sync(self) -> None:
        self._file.sync()

    def write(self, captures: list[list[PendingRecord]],
              on_written: Callable[[int, list[StoredRecord]], None] = lambda index, records: None,
              ) -> list[list[StoredRecord]]:
        """Append each capture's records, then fsync once: all are durable on return. A file
        closes past its size only between captures, so a capture never spans two files.
        `on_written(i, records)` once capture i is appended, before a later one can close its file."""
        stored = []
        try:
            for records in captures:
                if not records:  # a capture that failed before sending anything: nothing to write
                    stored.append([])
                    continue
                try:
                    if self._file is not None and self._file.size >= self.max_size:
                        self.close()
                    self.close_if_old()
                except OSError:  # perhaps its sync: the captures written before may not be durable
                    raise
                except Exception as problem:
                    # Its bytes were synced (close() fails with an OSError until then): the captures
                    # written before are made, in a file a repair publishes; only the rest failed.
                    if stored:
                        raise PartlyDone(stored, problem) from problem
                    raise
                if self._file is None:
                    self._open()
                stored.append([self._append(pending) for pending in records])
                on_written(len(stored) - 1, stored[-1])
            if self._file is not None:
                self._sync()
        except OSError:
            if self._file is not None:
                self._abandon()
            raise
        return stored

    def _abandon(self) -> None:
        """After a write or fsync that failed (a full disk): the file's end is torn, so it is
        never published; it stays unfinished for `doctor --fix`, which keeps its whole records,
        and the next capture starts a new file."""
        file, self._file, self._writer, self._name = self._file, None, None, None
        file.abandon()

    def close_if_old(self) -> StoredFile | None:
        """Close the open file if it is older than `max_age` (between captures, or from a timer
        while none comes, under the caller's lock)."""
        if self._file is None or self.max_age is None or time.monotonic() - self._opened_at < self.max_age:
            return None
        return self.close()

    def close(self) -> StoredFile | None:
        """Publish the file under its final name; it is never written again. If publishing
        fails, the file is left unfinished for `doctor` (every byte of it fsynced) and the next
        capture starts a new one."""
        if self._file is None:
            return None
        file, self._file, self._writer, self._name = self._file, None, None, None
        # Its bytes are final before they go anywhere: what they are is said (signed) now, so
        # that a publish that fails, and the repair that publishes the file later, change nothing of it.
        self._on_sealed(file.close())
        closed = self.storage.publish(file)
        self._on_close(closed)
        return closed
