"""What `archiver capture` stores: the exchange exactly as it crossed the wire, in valid WARC 1.1."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import zlib

import pytest

from archiver.store.catalog import Catalog
from tests.conftest import capture, http_response, send_bytes, warc_records, warcio_check

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)



def only(records, kind):
    found = [r for r in records if r.type == kind]
    assert len(found) == 1, [r.type for r in records]
    return found[0]


def assert_warcs_valid(collection):
    files = list(collection.storage.folder.glob("*.warc.gz"))
    assert files and not list(collection.storage.folder.glob("*.open"))
    for path in files:
        result = warcio_check(path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "digest pass" in result.stdout


def test_plain_page_is_stored_byte_for_byte_with_request_and_metadata(collection, raw_server):
    sent = http_response(b"<html><title>Cited</title>evidence</html>", headers=[("Content-Type", "text/html"), ("X-Odd", "  spaced  ")])
    server = raw_server({"/page": send_bytes(sent)})
    [row] = capture(collection, server.url("/page"))

    assert (row.outcome, row.http_status, row.ip) == ("ok", 200, "127.0.0.1")
    records = warc_records(collection.storage.folder)
    assert [r.type for r in records] == ["warcinfo", "request", "response", "metadata", "metadata"]
    warcinfo, request, response, metadata, attestation = records
    assert attestation.headers["Content-Type"] == "application/vnd.dsse.envelope.v1+json"
    assert response.block == sent
    assert request.block == server.requests[0]
    assert request.headers["WARC-Concurrent-To"] == response.id
    assert response.headers["WARC-Concurrent-To"] == request.id
    assert request.headers["WARC-Date"] == response.headers["WARC-Date"]
    for record in (request, response, metadata, attestation):
        assert record.headers["WARC-Warcinfo-ID"] == warcinfo.id
    assert response.headers["WARC-IP-Address"] == "127.0.0.1"
    assert response.headers["WARC-Block-Digest"] == "sha256:" + hashlib.sha256(sent).hexdigest()
    body = sent.split(b"\r\n\r\n", 1)[1]
    assert response.headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", request.headers["WARC-Block-Digest"])
    assert "WARC-Payload-Digest" not in metadata.headers and "WARC-Payload-Digest" not in warcinfo.headers
    assert metadata.headers["WARC-Refers-To"] == response.id
    assert warcinfo.block.startswith(b"software: archiver/")
    for field in (b"operator: tester@example", b"os: ", b"archiver-settings: "):
        assert field in warcinfo.block
    assert row.payload_digest == response.headers["WARC-Payload-Digest"]
    assert_warcs_valid(collection)


def gzip_members(path):
    """The file cut into its gzip members by inflating it, with no WARC reader involved:
    (offset, length, inflated bytes) of each."""
    data = path.read_bytes()
    members, offset = [], 0
    while offset < len(data):
        inflater = zlib.decompressobj(wbits=31)
        inflated = inflater.decompress(data[offset:]) + inflater.flush()
        assert inflater.eof, f"{path.name}: gzip member at {offset} never ends"
        length = len(data) - offset - len(inflater.unused_data)
        members.append((offset, length, inflated))
        offset += length
    return members


def parsed_record(inflated):
    """A whole record's WARC headers and what follows them."""
    head, _, rest = inflated.partition(b"\r\n\r\n")
    version, *lines = head.decode("utf-8").split("\r\n")
    assert version == "WARC/1.1"
    return dict(line.split(": ", 1) for line in lines), rest


def test_catalog_offsets_point_at_each_record(collection, raw_server):
    server = raw_server({"/a": send_bytes(http_response(b"a")), "/b": send_bytes(http_response(b"bb"))})
    first_run = capture(collection, server.url("/a"), server.url("/b"))
    [unchanged] = capture(collection, server.url("/a"))  # the same payload again: stored as a revisit
    rows = [*first_run, unchanged]
    assert [row.url for row in rows] == [server.url("/a"), server.url("/b"), server.url("/a")]
    catalog = Catalog(collection.catalog_location)
    stored_of = {row.id: catalog.records(row.id) for row in rows}
    fetched = [("request", "request"), ("response", "response"), ("metadata", "metadata"), ("metadata", "attestation")]
    revisited = [("request", "request"), ("revisit", "response"), ("metadata", "metadata"), ("metadata", "attestation")]
    assert [[(s.warc_type, s.role) for s in stored_of[row.id]] for row in rows] == [fetched, fetched, revisited]

    members = {(path.name, offset): (length, inflated)
               for path in collection.storage.folder.glob("*.warc.gz") for offset, length, inflated in gzip_members(path)}
    for row in rows:
        for stored in stored_of[row.id]:
            length, inflated = members.pop((stored.warc_file, stored.offset))
            assert stored.length == length
            headers, rest = parsed_record(inflated)
            assert (headers["WARC-Record-ID"], headers["WARC-Type"]) == (stored.record_id, stored.warc_type)
            # The member holds this one record whole and nothing more: its block, then the closing CRLF CRLF.
            assert rest == rest[:stored.content_length] + b"\r\n\r\n"
            assert "sha256:" + hashlib.sha256(rest[:stored.content_length]).hexdigest() == stored.block_digest
    # Every member left over opens its file; no capture record is missing from the catalog.
    assert [parsed_record(inflated)[0]["WARC-Type"] for _, inflated in members.values()] == ["warcinfo"] * 2


def test_chunked_response_keeps_its_framing(collection, raw_server):
    sent = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n")
    server = raw_server({"/chunked": send_bytes(sent)})
    [row] = capture(collection, server.url("/chunked"))
    response = only(warc_records(collection.storage.folder), "response")
    assert row.outcome == "ok"
    assert response.block == sent
    framed_body = sent.split(b"\r\n\r\n", 1)[1]
    assert response.headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(framed_body).hexdigest()
    assert_warcs_valid(collection)


def test_gzip_content_encoding_is_stored_compressed(collection, raw_server):
    body = gzip.compress(b"<p>" + b"the cited text " * 200 + b"</p>")
    sent = http_response(body, headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
    server = raw_server({"/gz": send_bytes(sent)})
    capture(collection, server.url("/gz"))
    response = only(warc_records(collection.storage.folder), "response")
    assert response.block == sent
    assert b"gzip, deflate" in server.requests[0]
    assert_warcs_valid(collection)


def test_non_ascii_header_bytes_are_kept_exactly(collection, raw_server):
    sent = b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9 \xff\r\nX-Utf8: \xe2\x9c\x93\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    server = raw_server({"/h": send_bytes(sent)})
    [row] = capture(collection, server.url("/h"))
    assert row.outcome == "ok"
    assert only(warc_records(collection.storage.folder), "response").block == sent
    assert_warcs_valid(collection)


def test_404_is_a_capture_with_its_status(collection, raw_server):
    server = raw_server({})
    [row] = capture(collection, server.url("/gone"))
    assert (row.outcome, row.http_status, row.error) == ("ok", 404, None)
    assert b"404 Not Found" in only(warc_records(collection.storage.folder), "response").block


def test_warc_files_rotate_and_each_opens_with_warcinfo(collection, raw_server):
    server = raw_server({f"/{i}": send_bytes(http_response(b"z" * 2000)) for i in range(3)})
    capture(collection, *(server.url(f"/{i}") for i in range(3)), warc_size=1000, concurrency=1)
    files = sorted(collection.storage.folder.glob("*.warc.gz"))
    assert len(files) == 3 and not list(collection.storage.folder.glob("*.open"))
    catalog = Catalog(collection.catalog_location)
    for path in files:
        records = warc_records_of(path)
        assert records[0].type == "warcinfo"
        assert records[0].headers["WARC-Filename"] == path.name
        assert all(r.headers["WARC-Warcinfo-ID"] == records[0].id for r in records[1:])
        listed = catalog.warc_file(path.name)
        assert listed["closed_at"] and listed["size"] == path.stat().st_size
        assert listed["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def warc_records_of(path):
    return [r for r in warc_records(path.parent) if r.file == path]


def test_the_payload_of_a_redirected_capture_is_its_final_response(raw_server, collection):
    """What a bundle's page title and `verify --live` read: the page the chain ended on, not a hop."""
    from tests.conftest import redirect

    page = http_response(b"<html><title>Final page</title><p>here</p></html>")
    server = raw_server({"/old": redirect("/new"), "/new": send_bytes(page)})
    [row] = capture(collection, server.url("/old"))
    assert (row.redirects, row.final_url) == (1, server.url("/new"))
    catalog = Catalog(collection.catalog_location)
    try:
        record = catalog.payload_record(row.id)
        assert (record.record_id, record.target_uri) == (row.response_record_id, server.url("/new"))
    finally:
        catalog.close()


def test_an_incompressible_body_is_stored_as_it_is_and_a_page_deflated(collection, raw_server):
    """A record whose first 64 KiB do not deflate (random bytes, JPEG, video) is written in
    stored deflate blocks, which inflate at the speed of memory, and no bigger than its bytes
    plus a few per block; text is deflated."""
    noise, text = random.Random(5).randbytes(300_000), b"the minister said X on Monday. " * 10_000
    server = raw_server({"/noise": send_bytes(http_response(noise)), "/text": send_bytes(http_response(text))})
    rows = capture(collection, server.url("/noise"), server.url("/text"))
    catalog = Catalog(collection.catalog_location)
    for row, stored in zip(rows, (True, False)):
        [response] = [r for r in catalog.records(row.id) if r.warc_type == "response"]
        member = collection.storage.read(response.warc_file, response.offset, response.length)
        assert (member[10] >> 1 & 0b11 == 0) is stored  # BTYPE of the member's first deflate block: 00 is stored
        if stored:
            assert response.length < response.content_length + 1_000
    assert_warcs_valid(collection)


def test_interim_responses_are_kept_apart_and_the_final_response_is_the_capture(collection, raw_server):
    """A server may send 1xx heads (100 Continue, 103 Early Hints) before its response. The
    response record is the final response alone, so readers and digests see the page's status
    and body; the interim heads are kept byte for byte in the metadata record."""
    interim = [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"]
    final = http_response(b"<html><title>Gone</title>" + b"words of the page " * 100 + b"</html>", "404 Not Found")
    server = raw_server({"/page": send_bytes(b"".join(interim) + final)})
    [row] = capture(collection, server.url("/page"))

    assert (row.outcome, row.http_status, row.verdict) == ("ok", 404, "http-error")
    records = warc_records(collection.storage.folder)
    response = only(records, "response")
    assert response.block == final
    body = final.split(b"\r\n\r\n", 1)[1]
    assert response.headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(body).hexdigest()
    metadata = json.loads(next(r for r in records if r.headers.get("Content-Type") == "application/json").block)
    [hop] = metadata["redirect_chain"]
    assert [head.encode("latin-1") for head in hop["interim_responses"]] == interim
    assert_warcs_valid(collection)


def test_a_collections_own_warc_files_replay_in_pywb_as_the_pages_were_served(run_cli, raw_server, collection, tmp_path):
    """Pointed at warcs/, pywb gives each URL its response: a 404 as a 404, the page as its bytes,
    never archiver's metadata or signed attestation, which are records of the same capture."""
    import urllib.error
    import urllib.request

    from tests import pywb

    page = http_response(b"<html><title>Statement</title><p>troops moved</p></html>")
    gone = http_response(b"<html><title>Gone</title></html>", "404 Not Found")
    server = raw_server({"/page": send_bytes(page), "/gone": send_bytes(gone)})
    assert run_cli("capture", "-C", collection.root, server.url("/page"), server.url("/gone")).exit_code == 0
    wayback, port = pywb.serve(sorted(collection.storage.folder.glob("*.warc.gz")), tmp_path / "pywb")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/evidence/2030id_/{server.url('/page')}", timeout=30) as answer:
            assert (answer.status, answer.headers.get_content_type(), answer.read()) == (
                200, "text/html", page.split(b"\r\n\r\n", 1)[1])
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/evidence/2030id_/{server.url('/gone')}", timeout=30)
        assert missing.value.code == 404
    finally:
        wayback.terminate()
        wayback.wait(10)
