"""The WARC files inside a WACZ: each read through scan_stream, and every digest its records
declare checked against their bytes, in whatever algorithm the record names (a second
reading of the file for those scan_stream does not compute)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zipfile
from typing import BinaryIO, Callable

from isal import igzip, isal_zlib

from archiver.check.findings import Report
from archiver.check.scan import HTTP_TYPES, FileScan, ScannedRecord, scan_stream
from archiver.store.record_blocks import GZIP_MAGIC
from archiver.exchange.dechunk import DechunkedHash, is_chunked
from archiver.exchange.wacz_package import warn
from archiver.check.warc_shape import check_shape
from archiver.exchange.zipreader import READ_SIZE, BundleRejected, Wacz

_LINE_LIMIT = 1 << 20  # the longest WARC header line read
# A payload digest over the body with its chunked transfer coding removed (Heritrix's and
# warcprox's reading of WARC 1.1), not over the bytes stored: counted apart, so that it is said.
DECHUNKED_PAYLOAD = "record payload digest of the de-chunked body"


def check_archives(wacz: Wacz, report: Report) -> list[FileScan]:
    """Every archive/*.warc(.gz) streamed through scan_stream, each record's declared block and
    payload digests against its bytes. SHA-256 digests come from that one reading; digests in
    another algorithm hashlib knows (sha1, as most tools write) are checked by a second
    streaming pass over that file. Records without digests are counted as not checked."""
    names = [n for n in wacz.names() if n.startswith("archive/") and n.endswith((".warc", ".warc.gz"))]
    report.check("archives present", bool(names), "archive/", "no WARC file in archive/")
    scans = []
    for name in names:
        warn(report, "archive stored", wacz.info(name).compress_type == zipfile.ZIP_STORED, name,
              "deflated, where WACZ stores WARC files so that players can seek into them")
        scans.append(check_warc(lambda name=name: wacz.open(name), name, report))
    return scans


def check_warc(open_stream: Callable[[], BinaryIO], name: str, report: Report) -> FileScan:
    """One WARC, opened by `open_stream` (called once or twice), read through scan_stream, each
    record's declared block and payload digests checked against its bytes, whatever the
    algorithm: SHA-256 from that reading, others (sha1, as most tools write) by a second pass;
    then whether each record can be found by itself (warc_shape)."""
    try:
        with open_stream() as stream:
            scan = scan_stream(stream, name)
        report.check("archive readable", scan.error is None, name, scan.error or "")
        if _check_sha256_digests(name, scan, report):
            with open_stream() as stream:
                _check_other_digests(stream, name, report)
        check_shape(scan, report)  # after the digests: a damaged record is the first thing to say of a file
    except BundleRejected as exc:
        report.check("entry readable", False, name, str(exc))
        scan = FileScan(name, error=str(exc))
    return scan


# The forms a WARC digest value is written in: hex, base32 (as most tools write sha1), base64.
_FORMS = {
    "hex": (bytes.fromhex, lambda raw: raw.hex()),
    "base32": (lambda v: base64.b32decode(v.upper() + "=" * (-len(v) % 8)), lambda raw: base64.b32encode(raw).decode()),
    "base64": (lambda v: base64.b64decode(v, validate=True), lambda raw: base64.b64encode(raw).decode()),
    "base64url": (base64.urlsafe_b64decode, lambda raw: base64.urlsafe_b64encode(raw).decode()),
}


def _digest_bytes(declared: str, size: int) -> tuple[bytes, str] | None:
    """The raw digest in a WARC digest value, and the form it is written in."""
    value = declared.partition(":")[2].strip()
    for form, (decode, _) in _FORMS.items():
        if form == "hex" and not (len(value) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in value)):
            continue
        try:
            raw = decode(value)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == size:
            return raw, form
    return None


def _known_algorithm(declared: str) -> str | None:
    algorithm = declared.partition(":")[0].strip().lower()
    try:
        return algorithm if hashlib.new(algorithm).digest_size else None
    except ValueError:
        return None


def _compare(report: Report, check: str, where: str, header: str, declared: str, computed: bytes, algorithm: str) -> None:
    decoded = _digest_bytes(declared, len(computed))
    if decoded is None:
        report.check(check, False, where, f"{header}: {declared!r} is not a {algorithm} digest in hex, base32 or base64")
        return
    expected, form = decoded
    # Told in the form it was declared in, so that the two read side by side.
    report.check(check, expected == computed, where,
                 f"{header}: declared {declared}, computed {algorithm}:{_FORMS[form][1](computed)}")


def _check_sha256_digests(name: str, scan: FileScan, report: Report) -> bool:
    """Checks the SHA-256 digests from the scan; True when some records declare digests in
    another known algorithm, for _check_other_digests."""
    others = False
    undigested = revisits = unknown = 0
    by_id = {record.id: record for record in scan.records}
    by_payload = _responses_by_payload(scan.records)
    for record in scan.records:
        declared = {h: record.headers.get(h) for h in ("WARC-Block-Digest", "WARC-Payload-Digest")}
        if not any(declared.values()):
            undigested += 1
            continue
        for header, value in declared.items():
            if not value:
                continue
            algorithm = _known_algorithm(value)
            if header == "WARC-Payload-Digest" and record.type == "revisit":
                # It names the payload of an earlier capture, not its own: checked against that
                # capture's payload when the record holding it is in this file too, named by
                # WARC-Refers-To or, as warcio and Browsertrix write none, by its payload digest.
                original = by_id.get(record.headers.get("WARC-Refers-To")) or by_payload.get(payload_key(value))
                declared_there = original and original.headers.get("WARC-Payload-Digest")
                if original is None:
                    revisits += 1
                elif algorithm == "sha256":
                    _compare(report, "revisit payload digest", f"{name} {record.id}", header, value,
                             bytes.fromhex(_sha256_payload(original)[7:]), "sha256")
                elif declared_there and payload_key(declared_there) == payload_key(value):
                    # The original's own digest, in this algorithm, is checked against its bytes below.
                    report.count_passed("revisit payload digest")
                else:
                    unknown += 1  # the scan hashes the original's payload in SHA-256 only
                continue
            if algorithm is None:
                unknown += 1
            elif algorithm != "sha256":
                others = True
            else:
                computed = record.block_digest if header == "WARC-Block-Digest" else _sha256_payload(record)
                check = "record block digest" if header == "WARC-Block-Digest" else "record payload digest"
                _compare(report, check, f"{name} {record.id}", header, value, bytes.fromhex(computed[7:]), "sha256")
    for count, what in ((undigested, "records carry no digest"),
                        (revisits, "revisit payload digests name an earlier capture's payload, not in this file"),
                        (unknown, "digests use an algorithm not checked here")):
        if count:
            report.not_checked.append(f"{name}: {count} {what}: not checked")
    return others


def payload_key(declared: str) -> tuple[str, bytes] | None:
    """A declared digest as its algorithm and raw bytes, whatever form it is written in."""
    algorithm = _known_algorithm(declared)
    decoded = algorithm and _digest_bytes(declared, hashlib.new(algorithm).digest_size)
    return (algorithm, decoded[0]) if decoded else None


def _responses_by_payload(records: list[ScannedRecord]) -> dict[tuple[str, bytes], ScannedRecord]:
    """The responses of a file by their declared payload digest: those a revisit may stand for."""
    held = {}
    for record in records:
        declared = record.headers.get("WARC-Payload-Digest")
        if record.type == "response" and declared and (key := payload_key(declared)):
            held.setdefault(key, record)
    return held


def _sha256_payload(record: ScannedRecord) -> str:
    # Outside HTTP records the payload is the whole block (as warcio check reads it).
    return record.payload_digest if record.payload_digest is not None else record.block_digest


def _check_other_digests(stream: BinaryIO, name: str, report: Report) -> None:
    """A second reading of one WARC for the digests scan_stream does not compute: each record's
    block and payload hashed with the algorithm its own header names. Damage ends the pass
    quietly: the scan has already reported it."""
    inflated = igzip.IGzipFile(fileobj=stream) if stream.peek(2)[:2] == GZIP_MAGIC else stream
    try:
        while line := inflated.readline(_LINE_LIMIT):
            if line in (b"\r\n", b"\n"):
                continue
            if not line.startswith(b"WARC/"):
                return
            headers: dict[str, str] = {}
            while (line := inflated.readline(_LINE_LIMIT)) not in (b"\r\n", b"\n", b""):
                field, _, value = line.decode("utf-8", "replace").partition(":")
                headers[field.strip()] = value.strip()
            if not _rehash_record(inflated, headers, name, report):
                return
    except (OSError, EOFError, ValueError, isal_zlib.error):
        return


def _rehash_record(stream: BinaryIO, headers: dict[str, str], name: str, report: Report) -> bool:
    """False when the record is cut short."""
    length = int(headers.get("Content-Length", "-1"))
    if length < 0:
        return False
    record_type = headers.get("WARC-Type")
    block, payload = headers.get("WARC-Block-Digest"), headers.get("WARC-Payload-Digest")
    block_algorithm = _known_algorithm(block) if block else None
    payload_algorithm = _known_algorithm(payload) if payload and record_type != "revisit" else None
    block_hash = hashlib.new(block_algorithm) if block_algorithm not in (None, "sha256") else None
    payload_hash = hashlib.new(payload_algorithm) if payload_algorithm not in (None, "sha256") else None
    # The same rule as scan_stream: an HTTP record's payload follows the blank line ending its head.
    in_head = record_type in HTTP_TYPES and "application/http" in headers.get("Content-Type", "")
    head = bytearray()
    dechunked = None
    left = length
    while left:
        piece = stream.read(min(left, READ_SIZE))
        if not piece:
            return False
        left -= len(piece)
        if block_hash is not None:
            block_hash.update(piece)
        if in_head:
            searched_from = max(0, len(head) - 3)
            head += piece
            end = _head_end(head, searched_from)
            if end is None:
                continue
            in_head, piece = False, bytes(head[end:])
            if payload_hash is not None and is_chunked(bytes(head[:end])):
                dechunked = DechunkedHash(payload_algorithm)
        if payload_hash is not None:
            payload_hash.update(piece)
        if dechunked is not None:
            dechunked.update(piece)
    if in_head and payload_hash is not None:  # no blank line: all head, an empty payload
        payload_hash = hashlib.new(payload_algorithm)
    where = f"{name} {headers.get('WARC-Record-ID')}"
    if block_hash is not None:
        _compare(report, "record block digest", where, "WARC-Block-Digest", block, block_hash.digest(), block_algorithm)
    if payload_hash is not None and dechunked is not None and _declares(payload, dechunked.digest()) \
            and not _declares(payload, payload_hash.digest()):
        report.count_passed(DECHUNKED_PAYLOAD)
    elif payload_hash is not None:
        _compare(report, "record payload digest", where, "WARC-Payload-Digest", payload, payload_hash.digest(),
                 payload_algorithm)
    return True


def _declares(declared: str, computed: bytes | None) -> bool:
    decoded = computed is not None and _digest_bytes(declared, len(computed))
    return bool(decoded) and decoded[0] == computed


def _head_end(head: bytearray, start: int) -> int | None:
    """Index just past the first blank line (CRLF or bare LF) in `head`, searching from `start`."""
    ends = [i + n for i, n in ((head.find(b"\r\n\r\n", start), 4), (head.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else None
