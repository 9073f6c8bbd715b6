"""Hostile servers on raw sockets (127.0.0.1 only).

Each case checks that the capture ends within its deadline (a generous bound, never a
performance timing), that what is stored stays within the size cap, that the outcome is
recorded (failed with a reason, or saved with WARC-Truncated), and that an ordinary URL
captured in the same run is unaffected."""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import tracemalloc
from datetime import datetime

import pytest

from archiver.capture.fetch.policy import AddressPolicy, SafeResolver
from tests.conftest import capture, eventually, http_response, redirect, send_bytes, warc_records

GOOD_BODY = b"<html><body>an ordinary page, unaffected</body></html>"
MAX_SIZE = 1_000_000


def seconds_between(start: str, end: str) -> float:
    def parse(moment: str) -> datetime:
        return datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


def responses_for(collection, url: str) -> list:
    return [r for r in warc_records(collection.storage.folder)
            if r.type == "response" and r.headers["WARC-Target-URI"] == url]


def the_response(collection, url: str):
    [response] = responses_for(collection, url)
    return response


MEMORY_BOUND = 64 * 10**6  # bytes of Python memory at the peak (the test's own 3 MB bomb included)


@pytest.fixture(autouse=True)
def bounded_memory():
    """Whatever a server sends (3 GB inflated, an endless body, 10,000 headers, a 1 MB header
    line), the peak of memory the test process allocates stays under MEMORY_BOUND."""
    tracemalloc.start()
    yield
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak Python memory {peak / 1e6:.0f} MB"


def assert_within(row, timeout: float) -> None:
    """The capture ended by its deadline, with slack for a loaded machine."""
    assert seconds_between(row.started_at, row.finished_at) < timeout + 3


def assert_good(collection, row, url: str) -> None:
    assert (row.outcome, row.http_status, row.error, row.truncated) == ("ok", 200, None, None)
    response = the_response(collection, url)
    assert "WARC-Truncated" not in response.headers
    assert response.block == http_response(GOOD_BODY)


def routes(**hostile) -> dict:
    return {"/good": send_bytes(http_response(GOOD_BODY)), **{f"/{k}": v for k, v in hostile.items()}}


def assert_failed_without_response(collection, row, url: str) -> None:
    assert row.outcome == "failed" and row.error
    assert row.http_status is None and row.response_record_id is None
    assert responses_for(collection, url) == []  # the request is kept, no response record


# -- 1. content encodings are stored as received, never inflated ---------------------------

def gzip_bomb(inflated_gb: int = 3) -> tuple[bytes, int]:
    """A gzip body of a few MB that inflates to `inflated_gb` GB of zeros (concatenated members)."""
    member_size = 10 * 2**20
    member = gzip.compress(bytes(member_size), compresslevel=9)
    count = inflated_gb * 2**30 // member_size
    return member * count, member_size * count


def decoder_classes(base) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found += [sub] + decoder_classes(sub)
    return found


@pytest.fixture
def inflations(monkeypatch) -> list[int]:
    """Every call that decodes a content-encoding in urllib3, by the bytes it was given."""
    import urllib3.response

    calls: list[int] = []
    for cls in decoder_classes(urllib3.response.ContentDecoder):
        if "decompress" in vars(cls):
            def spy(self, data, *args, _original=vars(cls)["decompress"], **kwargs):
                calls.append(len(data))
                return _original(self, data, *args, **kwargs)
            monkeypatch.setattr(cls, "decompress", spy)
    return calls


def test_a_gzip_bomb_and_an_encoding_chain_are_stored_compressed_as_received(collection, raw_server, inflations):
    import brotli

    bomb, inflated = gzip_bomb()
    assert inflated >= 3 * 10**9 and len(bomb) < 4 * 2**20
    bomb_response = http_response(bomb, headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
    page = b"<html>" + b"layered " * 5000 + b"</html>"
    chained = gzip.compress(brotli.compress(gzip.compress(page)))  # gzip first, then br, then gzip
    chain_response = http_response(chained, headers=[("Content-Type", "text/html"),
                                                     ("Content-Encoding", "gzip, br, gzip")])
    server = raw_server(routes(bomb=send_bytes(bomb_response), chain=send_bytes(chain_response)))
    max_size = 8 * 2**20
    bomb_row, chain_row, good_row = capture(collection, server.url("/bomb"), server.url("/chain"),
                                            server.url("/good"), max_size=max_size, timeout=20)
    assert inflations == []  # nothing was decoded, not even in bounded pieces (and bounded_memory: 3 GB never in memory)
    for row, sent in ((bomb_row, bomb_response), (chain_row, chain_response)):
        assert (row.outcome, row.http_status, row.error, row.truncated) == ("ok", 200, None, None)
        assert_within(row, 20)
        response = the_response(collection, row.url)
        assert "WARC-Truncated" not in response.headers
        assert len(response.block) <= max_size
        assert response.block == sent  # the exact bytes on the wire, still encoded
        assert row.response_length == len(sent)
    assert_good(collection, good_row, server.url("/good"))


NOT_FOUND_PAGE = b"<html><title>Page not found</title><body><p>Gone.</p></body></html>"


def gzipped(data: bytes, times: int) -> bytes:
    for _ in range(times):
        data = gzip.compress(data)
    return data


@pytest.mark.parametrize("codings, body, verdict, reason", [
    # six lines of one coding each, the page gzipped six times: stored as sent, judged as read
    ([("Content-Encoding", "gzip")] * 6, gzipped(NOT_FOUND_PAGE, 6), "not-found", "status 200 but the page says"),
    # six codings in one line over four bytes that are no gzip: stored as sent, said to be unreadable
    ([("Content-Encoding", "gzip, " * 5 + "gzip")], b"abcd", "empty",
     "a body of 4 bytes that cannot be decoded as its Content-Encoding (gzip, gzip, gzip, gzip, gzip, gzip) says"),
], ids=["six-lines", "six-in-a-list"])
def test_a_chain_of_six_content_codings_keeps_its_body(collection, raw_server, inflations, codings, body, verdict,
                                                       reason):
    # urllib3 refuses more than 5 codings even when not asked to decode: the body was lost, the
    # record cut at its head (WARC-Truncated: unspecified) and the page judged "no body".
    sent = http_response(body, headers=[("Content-Type", "text/html"), *codings])
    server = raw_server(routes(chain=send_bytes(sent)))
    row, good_row = capture(collection, server.url("/chain"), server.url("/good"), max_size=MAX_SIZE)
    assert inflations == []  # nothing decoded to be stored
    assert (row.outcome, row.http_status, row.error, row.truncated) == ("ok", 200, None, None)
    response = the_response(collection, row.url)
    assert "WARC-Truncated" not in response.headers
    assert response.block == sent
    assert row.verdict == verdict and row.verdict_reason.startswith(reason), row.verdict_reason
    assert_good(collection, good_row, server.url("/good"))


# -- 2. an endless body is cut at the size cap ---------------------------------------------

def endless(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    block = b"e" * 65536
    while True:
        conn.sendall(block)


def test_an_endless_body_without_length_is_cut_at_max_size(collection, raw_server):
    server = raw_server(routes(endless=endless))
    max_size, timeout = 300_000, 5.0
    row, good_row = capture(collection, server.url("/endless"), server.url("/good"),
                            max_size=max_size, timeout=timeout)
    assert (row.outcome, row.http_status, row.truncated, row.error) == ("truncated", 200, "length", None)
    assert_within(row, timeout)
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "length"
    assert len(response.block) == max_size  # exactly the cap: never more is kept
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
    assert response.block == head + b"e" * (max_size - len(head))
    assert_good(collection, good_row, server.url("/good"))


# -- 3. one byte a second is cut at the wall-clock deadline --------------------------------

def one_byte_a_second(data: bytes):
    def respond(conn: socket.socket, request: bytes) -> None:
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            time.sleep(1)
    return respond


# At 1 s the per-read socket timeout and the wall-clock deadline coincide; at 2.5 s every byte
# arrives within the socket timeout, so only the wall-clock deadline can end the capture.
@pytest.mark.parametrize("timeout", [1.0, 2.5])
def test_a_body_at_one_byte_a_second_is_cut_at_the_deadline(collection, raw_server, timeout):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n"

    def slow_body(conn: socket.socket, request: bytes) -> None:
        conn.sendall(head)
        one_byte_a_second(b"s" * 30)(conn, request)

    server = raw_server(routes(slow=slow_body))
    row, good_row = capture(collection, server.url("/slow"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert (row.outcome, row.http_status, row.truncated) == ("truncated", 200, "time")
    assert_within(row, timeout)  # the server would drip for 30 s
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "time"
    assert len(response.block) <= MAX_SIZE
    body = response.block[len(head):]
    assert response.block.startswith(head) and 1 <= len(body) < 30 and body == b"s" * len(body)
    assert_good(collection, good_row, server.url("/good"))


@pytest.mark.parametrize("timeout", [1.0, 2.5])
def test_a_head_at_one_byte_a_second_fails_at_the_deadline(collection, raw_server, timeout):
    server = raw_server(routes(slow=one_byte_a_second(http_response(b"never"))))
    row, good_row = capture(collection, server.url("/slow"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert_failed_without_response(collection, row, server.url("/slow"))
    assert row.error == f"no complete response within the {timeout:g}s capture deadline"
    assert_within(row, timeout)
    assert_good(collection, good_row, server.url("/good"))


# -- 4, 5. too many headers, an overlong header line -------------------------------------

def refused_head(collection, raw_server, sent: bytes, timeout: float = 30.0):
    """Capture `sent`, whose head must be refused, beside an ordinary page: the failed row, once
    the checks every such case shares hold (no response stored, within the deadline, the
    ordinary page unaffected). The deadline is far beyond what a refusal takes, so that on a
    loaded machine the reason is the head's, never the clock's."""
    server = raw_server(routes(hostile=send_bytes(sent)))
    row, good_row = capture(collection, server.url("/hostile"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert_failed_without_response(collection, row, server.url("/hostile"))
    assert_within(row, timeout)
    assert_good(collection, good_row, server.url("/good"))
    return row


def test_ten_thousand_headers_fail_with_a_reason(collection, raw_server):
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Filler-%d: %d\r\n" % (i, i) for i in range(10_000))
    row = refused_head(collection, raw_server, head + b"Content-Length: 2\r\n\r\nhi")
    assert "headers" in row.error and "more than 100" in row.error, row.error


def test_a_one_megabyte_header_line_fails_with_a_reason(collection, raw_server):
    line = b"X-Huge: " + b"h" * 2**20 + b"\r\n"
    row = refused_head(collection, raw_server, b"HTTP/1.1 200 OK\r\n" + line + b"Content-Length: 2\r\n\r\nhi")
    assert "header line" in row.error, row.error


def test_endless_interim_heads_fail_with_a_reason(collection, raw_server):
    # Each 103 Early Hints head is kept for the record, so their sum is bounded too.
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" * 20_000
    row = refused_head(collection, raw_server, hints + http_response(b"hi"))
    assert "interim (1xx) responses" in row.error, row.error


# -- 6. two different Content-Lengths ------------------------------------------------------

@pytest.mark.parametrize("lengths", [b"Content-Length: 5\r\nContent-Length: 20\r\n", b"Content-Length: 5, 20\r\n"],
                         ids=["two-lines", "one-line"])
def test_two_different_content_lengths_fail_with_a_reason_and_keep_the_head(collection, raw_server, lengths):
    # Which length frames the body is ambiguous (the root of request smuggling): no guess at the
    # body is stored, but the head received is, cut where it was refused (it was lost, and the
    # reason was urllib3's "InvalidHeader: ..." class name).
    head = b"HTTP/1.1 200 OK\r\n" + lengths + b"Connection: close\r\n\r\n"
    server = raw_server(routes(hostile=send_bytes(head + b"a" * 20)))
    timeout = 30.0
    row, good_row = capture(collection, server.url("/hostile"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert (row.outcome, row.http_status, row.truncated) == ("failed", 200, "unspecified")
    assert row.error == ("the server sent Content-Lengths that disagree (5, 20): where its body ends is ambiguous, "
                         "so only its head was kept"), row.error
    assert_within(row, timeout)
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "unspecified"
    assert response.block == head
    assert row.response_record_id == response.id and row.verdict is None
    assert_good(collection, good_row, server.url("/good"))


# -- 7. broken chunked framing -------------------------------------------------------------

def hold_open_after(data: bytes, seconds: float = 10.0):
    """Send `data`, then keep the connection open: a parser waiting for more would hang."""
    def respond(conn: socket.socket, request: bytes) -> None:
        conn.sendall(data)
        time.sleep(seconds)
    return respond


def test_a_bad_chunk_size_is_recorded_not_waited_on(collection, raw_server):
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    sent = head + b"5\r\nhello\r\nzz\r\n"
    server = raw_server(routes(chunks=hold_open_after(sent + b"more bytes that are never a chunk")))
    timeout = 3.0
    row, good_row = capture(collection, server.url("/chunks"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert_within(row, timeout)
    # Not cut by the deadline: a malformed chunk size ends the read at once. The server did not
    # hang up, so the cut is "unspecified" (WARC's word for framing no reader can follow).
    assert (row.outcome, row.truncated) == ("truncated", "unspecified")
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "unspecified"
    assert response.block == sent  # every byte the parser took, the bad size line included
    assert_good(collection, good_row, server.url("/good"))


def test_a_chunk_longer_than_its_data_then_close_is_kept_and_marked(collection, raw_server):
    sent = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1000\r\n" + b"c" * 100
    server = raw_server(routes(short=send_bytes(sent)))
    timeout = 5.0
    row, good_row = capture(collection, server.url("/short"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert (row.outcome, row.http_status, row.truncated) == ("truncated", 200, "disconnect")
    assert_within(row, timeout)
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "disconnect"
    assert response.block == sent
    assert_good(collection, good_row, server.url("/good"))


def test_a_body_of_one_byte_chunks_is_stored_as_sent_and_judged(collection, raw_server):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    sent = head + b"1\r\nx\r\n" * 350_000 + b"0\r\n\r\n"
    server = raw_server(routes(chunks=send_bytes(sent)))
    row, good_row = capture(collection, server.url("/chunks"), server.url("/good"), max_size=MAX_SIZE * 5)
    assert (row.outcome, row.verdict) == ("ok", "content")
    assert the_response(collection, row.url).block == sent
    assert_good(collection, good_row, server.url("/good"))


def test_chunked_framing_is_undone_in_one_pass():
    """Undone by position, never by slicing off the rest: a body of tiny chunks was copied once
    per chunk (2 MB of one-byte chunks took 39 s, on the thread that stores every capture)."""
    from archiver.capture import httpbody

    class CountingBytes(bytes):
        """Bytes that count what their slices and partitions copy, and whose parts do too."""
        copied = 0

        def __getitem__(self, index):
            part = super().__getitem__(index)
            if not isinstance(index, slice):
                return part
            CountingBytes.copied += len(part)
            return CountingBytes(part)

        def partition(self, separator):
            parts = super().partition(separator)
            CountingBytes.copied += len(parts[0]) + len(parts[2])
            return tuple(CountingBytes(part) for part in parts)

    body = CountingBytes(b"1\r\nx\r\n" * 20_000 + b"0\r\n\r\n")
    assert httpbody._dechunk(body) == b"x" * 20_000
    assert CountingBytes.copied <= 2 * len(body)


# -- 8. a connection reset mid-body --------------------------------------------------------

def test_a_reset_mid_body_is_recorded_with_the_received_bytes(collection, raw_server):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n"
    sent = head + b"r" * 1200
    done = threading.Event()

    def reset(conn: socket.socket, request: bytes) -> None:
        conn.sendall(sent)
        time.sleep(0.3)  # let the client take what was sent
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # SO_LINGER 0: an RST, not a FIN
        done.set()

    server = raw_server(routes(reset=reset))
    timeout = 5.0
    row, good_row = capture(collection, server.url("/reset"), server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert done.wait(60), "the server never reset the connection"  # its thread may run after the client saw the reset
    assert_within(row, timeout)
    # A reset is the server hanging up: the bytes received before it are kept, marked truncated.
    assert (row.outcome, row.truncated, row.http_status, row.error) == ("truncated", "disconnect", 200, None)
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "disconnect"
    assert response.block == sent
    assert row.response_record_id == response.id
    assert_good(collection, good_row, server.url("/good"))


@pytest.mark.parametrize("sent", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n",  # the blank line that ends a head never came
    b"HTTP/1.1 200 OK\r\nContent-Type: text/ht",  # cut inside a header line
    b"HTTP/1.1 200 OK",  # cut after the status line
], ids=["before-the-blank-line", "mid-header", "after-the-status-line"])
def test_a_hang_up_inside_the_head_is_kept_and_marked(collection, raw_server, sent):
    # http.client takes the end of the stream for the end of the head: the capture must not
    # be taken for a whole response (with no body) because the server hung up inside its head.
    server = raw_server(routes(cut=send_bytes(sent)))
    row, good_row = capture(collection, server.url("/cut"), server.url("/good"), max_size=MAX_SIZE)
    assert (row.outcome, row.truncated, row.http_status, row.error) == ("truncated", "disconnect", 200, None)
    response = the_response(collection, row.url)
    assert response.headers["WARC-Truncated"] == "disconnect"
    assert response.block == sent
    assert_good(collection, good_row, server.url("/good"))


# -- 9. a TLS handshake that never finishes ------------------------------------------------

def test_a_tls_handshake_that_never_finishes_fails_at_the_deadline(collection, raw_server):
    silent = raw_server()  # plain TCP: accepts, reads the ClientHello, never answers
    good = raw_server(routes())
    timeout = 1.0
    url = f"https://127.0.0.1:{silent.port}/"
    row, good_row = capture(collection, url, good.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert_failed_without_response(collection, row, url)
    assert row.error == "no complete response within the 1s capture deadline"
    assert_within(row, timeout)  # not the 15 s connect timeout
    eventually(lambda: silent.connections == 1, "one connection counted")  # the server counts it after the client connected
    assert_good(collection, good_row, good.url("/good"))


# -- 10. redirects to refused targets -----------------------------------------------------

def test_redirects_to_a_file_url_and_to_a_refused_address_are_refused(collection, raw_server, network_sandbox):
    server = raw_server(routes(file=redirect("file:///etc/passwd"),
                               metadata=redirect("http://169.254.169.254/latest/meta-data/")))
    timeout = 5.0
    file_row, metadata_row, good_row = capture(collection, server.url("/file"), server.url("/metadata"),
                                               server.url("/good"), timeout=timeout, max_size=MAX_SIZE)
    assert file_row.outcome == "failed"
    assert "redirect to file:///etc/passwd" in file_row.error and "unsupported scheme 'file'" in file_row.error
    assert metadata_row.outcome == "failed"
    assert "169.254.169.254 is a link-local address" in metadata_row.error, metadata_row.error
    for row in (file_row, metadata_row):
        assert_within(row, timeout)
        # The redirect hop itself is kept as evidence.
        assert the_response(collection, row.url).block == http_response(b"moved", "302 Found", [("Location", {
            file_row.url: "file:///etc/passwd", metadata_row.url: "http://169.254.169.254/latest/meta-data/"}[row.url])])
    assert [r.headers["WARC-Target-URI"] for r in warc_records(collection.storage.folder) if r.type == "request"].count(
        "http://169.254.169.254/latest/meta-data/") == 0  # nothing was sent there
    assert network_sandbox == []
    assert_good(collection, good_row, server.url("/good"))


def test_a_name_server_that_never_answers_fails_the_capture_with_its_reason(collection, raw_server, monkeypatch):
    # getaddrinfo has no timeout of its own: the capture's deadline bounds the lookup too.
    server = raw_server(routes())
    released = threading.Event()
    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "silent.test":
            released.wait(120)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return system_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        row, good_row = capture(collection, f"http://silent.test:{server.port}/", server.url("/good"), timeout=1.0)
    finally:
        released.set()
    assert (row.outcome, row.error) == ("failed", "no complete response within the 1s capture deadline")
    assert_good(collection, good_row, server.url("/good"))


# -- 11. DNS answers that change between look-ups ------------------------------------------

def test_a_host_is_resolved_once_so_a_changed_answer_is_never_used(collection, raw_server, network_sandbox):
    server = raw_server({"/a": send_bytes(http_response(b"first")), "/b": send_bytes(http_response(b"second")),
                         "/good": send_bytes(http_response(GOOD_BODY))})
    lookups = []

    def lookup(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.0.0.1"]

    resolver = SafeResolver(AddressPolicy.from_settings(False, ("127.0.0.1/32",)), lookup)
    first, second = f"http://rebind.test:{server.port}/a", f"http://rebind.test:{server.port}/b"
    row_a, row_b, good_row = capture(collection, first, second, server.url("/good"), resolver=resolver,
                                     timeout=5.0, max_size=MAX_SIZE)
    for row, body in ((row_a, b"first"), (row_b, b"second")):
        assert (row.outcome, row.http_status, row.ip) == ("ok", 200, "127.0.0.1")
        assert the_response(collection, row.url).block == http_response(body)
    assert lookups == ["rebind.test"]
    assert len([r for r in server.requests if b"Host: rebind.test:" in r]) == 2
    assert network_sandbox == []
    assert_good(collection, good_row, server.url("/good"))
