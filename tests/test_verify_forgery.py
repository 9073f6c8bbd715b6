"""`archiver verify` against an intruder who can write every file of the collection, its
catalog included, but does not hold the private signing key (kept outside the collection):
whatever such an intruder changes consistently in the WARCs and the catalog, what the key
signed must still catch it."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest

from tests.conftest import http_response, make_collection, send_bytes


@pytest.fixture
def honest(run_cli, raw_server, tmp_path):
    """A collection holding one capture and a signed manifest of it."""
    collection = make_collection(tmp_path / "honest")
    server = raw_server({"/report": send_bytes(http_response(b"<title>Report</title><p>troops stayed</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/report")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    return collection


def verify(run_cli, collection) -> dict:
    result = run_cli("verify", "-C", collection.root, "--json", "--workers", "1")
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1)
    return report


def same_length_member(data: bytes, length: int) -> bytes:
    """`data` as one gzip member of exactly `length` bytes, padded in the header's FEXTRA
    field: a record rewritten so that no offset after it moves and no manifest notices."""
    for level in range(9, 0, -1):
        deflater = zlib.compressobj(level, zlib.DEFLATED, -15)
        body = deflater.compress(data) + deflater.flush()
        padding = length - (10 + 2 + len(body) + 8)
        if padding >= 0:
            header = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", padding) + b"\0" * padding
            return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    raise AssertionError("the record cannot be squeezed back into its length")


def edit_header(collection, role: str, header: str, value: str) -> None:
    """Set `header` of the capture's `role` record to `value` in its WARC, in place, and make
    the catalog agree (the record's row and the file's size and SHA-256): every hash the
    intruder can reach is recomputed."""
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    record_id, name, offset, length = catalog.execute(
        "SELECT record_id, warc_file, warc_offset, length FROM records WHERE role = ?", (role,)).fetchone()
    path = collection.storage.folder / name
    data = path.read_bytes()
    head, gap, block = gzip.decompress(data[offset:offset + length]).partition(b"\r\n\r\n")
    lines = [f"{header}: {value}".encode() if line.startswith(header.encode() + b":") else line
             for line in head.split(b"\r\n")]
    data = data[:offset] + same_length_member(b"\r\n".join(lines) + gap + block, length) + data[offset + length:]
    path.write_bytes(data)
    column = {"WARC-Target-URI": "target_uri", "WARC-Date": "warc_date", "WARC-Type": "warc_type"}.get(header)
    if column:
        catalog.execute(f"UPDATE records SET {column} = ? WHERE record_id = ?", (value, record_id))
    catalog.execute("UPDATE warc_files SET size = ?, sha256 = ? WHERE name = ?",
                    (len(data), hashlib.sha256(data).hexdigest(), name))
    catalog.commit()
    catalog.close()


@pytest.mark.parametrize("header, value", [("WARC-Target-URI", "http://127.0.0.1:1/elsewhere"),
                                           ("WARC-Date", "2019-01-01T00:00:00.000000Z"),
                                           ("WARC-IP-Address", "127.0.0.9")])
def test_a_signed_warc_header_changed_in_the_warc_and_the_catalog_alike_fails(run_cli, honest, header, value):
    """A replay tool shows the page under its WARC-Target-URI and WARC-Date, a reader takes the
    server's address from WARC-IP-Address: the attestation signs them for every record, so an
    edit made everywhere the intruder can reach still fails."""
    assert verify(run_cli, honest)["ok"]
    edit_header(honest, "response", header, value)
    report = verify(run_cli, honest)
    [failure] = report["failures"]
    assert failure["check"] == "attested records"
    assert f"{header}: attested " in failure["detail"] and f"found {value}" in failure["detail"]
