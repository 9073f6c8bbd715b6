"""check/scan.py reads a WARC's bytes once at the speed of inflate and SHA-256: its own Python
work per record does not grow with the record's header lines, and a header block is read as
line by line reading always read it (long lines, a bare LF blank line)."""

from __future__ import annotations

import gzip
import hashlib
import io
import sys

from archiver.check import scan as scan_module
from archiver.check.scan import scan_stream


def warc_record(extra_headers: int, body: bytes = b"x" * 1000, extra: bytes = b"") -> bytes:
    """One resource record, in a gzip member of its own, with `extra_headers` more header lines."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    lines = ["WARC/1.1", "WARC-Type: resource", "WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>",
             "Content-Type: text/plain", f"WARC-Block-Digest: {digest}", f"Content-Length: {len(body)}"]
    lines += [f"X-Extra-{i}: value {i}" for i in range(extra_headers)]
    return gzip.compress("\r\n".join(lines).encode() + b"\r\n" + extra + b"\r\n" + body + b"\r\n\r\n")


def python_calls_in_scan(data: bytes) -> int:
    """Calls (and generator resumptions) of check/scan.py's own functions while scanning `data`."""
    calls = 0

    def count(frame, event, arg) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename == scan_module.__file__:
            calls += 1

    sys.setprofile(count)
    try:
        scan = scan_stream(io.BytesIO(data), "test.warc.gz")
    finally:
        sys.setprofile(None)
    assert scan.error is None and len(scan.records) == 20
    return calls


def test_a_records_python_work_does_not_grow_with_its_header_lines():
    few, many = (python_calls_in_scan(b"".join(warc_record(extra) for _ in range(20))) for extra in (2, 60))
    assert many == few


def test_a_header_block_is_read_as_lines_always_were():
    long_value = "a" * 100_000  # longer than a line may be when it is not ended in what is buffered
    bare_lf = b"WARC/1.1\nWARC-Type: resource\nContent-Length: 6\n\na\r\n\r\nb\r\n\r\n"  # its block holds a CRLF blank line
    scan = scan_stream(io.BytesIO(warc_record(1, extra=f"X-Long: {long_value}\r\n".encode()) + gzip.compress(bare_lf)),
                       "test.warc.gz")
    assert scan.error is None
    first, second = scan.records
    assert first.headers["X-Long"] == long_value and first.headers["X-Extra-0"] == "value 0"
    assert first.block_digest == first.headers["WARC-Block-Digest"]
    assert second.headers == {"WARC-Type": "resource", "Content-Length": "6"}
    assert second.block_digest == "sha256:" + hashlib.sha256(b"a\r\n\r\nb").hexdigest()


def test_a_field_given_twice_is_refused_only_where_readers_would_disagree():
    """WARC-Concurrent-To and extension fields (WARC-Protocol: one protocol a line) may repeat;
    a WARC 1.1 field verify reads may not, in any letter case."""
    def scanned(*extra: str):
        head = "WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:1>\r\n" + "".join(f"{line}\r\n" for line in extra)
        return scan_stream(io.BytesIO(gzip.compress(head.encode() + b"Content-Length: 0\r\n\r\n\r\n\r\n")), "x.warc.gz")
    assert scanned("WARC-Protocol: http/1.1", "WARC-Protocol: tls/1.3").error is None
    assert scanned("WARC-Concurrent-To: <urn:uuid:2>", "WARC-Concurrent-To: <urn:uuid:3>").error is None
    assert "its warc-type header twice" in scanned("warc-type: response").error
