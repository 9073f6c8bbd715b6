"""Redirects, TLS, and the limits that keep a hostile or broken server from holding a capture."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import time

import surt

from archiver.capture.fetch.policy import AddressPolicy, SafeResolver
from archiver.store.catalog import Catalog
from tests.conftest import (assert_exchanges_sound, capture, http_response, redirect, send_bytes, warc_records,
                            warcio_check)

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)



def metadata_of(collection) -> dict:
    [metadata] = [r for r in warc_records(collection.storage.folder) if r.headers.get("Content-Type") == "application/json"]
    return json.loads(metadata.block)


def test_each_redirect_hop_is_its_own_request_response_pair(collection, raw_server):
    final = http_response(b"final page")
    server = raw_server({"/a": redirect("/b"), "/b": redirect("/c", "301 Moved Permanently"), "/c": send_bytes(final)})
    [row] = capture(collection, server.url("/a"))
    assert (row.outcome, row.http_status, row.redirects, row.final_url) == ("ok", 200, 2, server.url("/c"))
    records = warc_records(collection.storage.folder)
    responses = [r for r in records if r.type == "response"]
    assert [r.headers["WARC-Target-URI"] for r in responses] == [server.url(p) for p in ("/a", "/b", "/c")]
    assert responses[-1].block == final
    chain = metadata_of(collection)["redirect_chain"]
    assert [(hop["status"], hop["location"]) for hop in chain] == [(302, "/b"), (301, "/c"), (200, None)]
    metadata = [r for r in records if r.type == "metadata"]
    assert [m.headers["WARC-Refers-To"] for m in metadata] == [responses[-1].id] * 2  # details and attestation
    assert warcio_check(next(collection.storage.folder.glob("*.warc.gz"))).returncode == 0


def test_redirect_loop_is_detected_and_its_hops_kept(collection, raw_server):
    server = raw_server({"/a": redirect("/b"), "/b": redirect("/a")})
    [row] = capture(collection, server.url("/a"))
    assert row.outcome == "failed" and "redirect loop" in row.error
    assert len(server.requests) == 2
    assert sum(r.type == "response" for r in warc_records(collection.storage.folder)) == 2


def _cookie_gate(conn, request: bytes) -> None:
    """A cookie check: the page sends a reader without its cookie back to itself, setting it."""
    if b"\r\nCookie: gate=1" in request:
        conn.sendall(http_response(b"past the gate"))
    else:
        conn.sendall(http_response(b"", "302 Found", [("Set-Cookie", "gate=1; Path=/"), ("Location", "/gate")]))


def test_a_page_sending_the_reader_back_to_itself_with_a_new_cookie_is_no_loop(collection, raw_server):
    server = raw_server({"/gate": _cookie_gate})
    [row] = capture(collection, server.url("/gate"))
    assert (row.outcome, row.http_status, row.redirects, row.final_url) == ("ok", 200, 1, server.url("/gate"))
    assert len(server.requests) == 2
    responses = [r for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert responses[-1].block.endswith(b"past the gate")


def test_a_redirect_to_a_url_carrying_credentials_is_not_followed_nor_its_password_kept(collection, raw_server):
    server = raw_server({"/a": redirect("http://bob:hunter2@127.0.0.1:9/landing")})
    [row] = capture(collection, server.url("/a"))
    assert row.outcome == "failed" and "user name or password" in row.error and "hunter2" not in row.error
    assert row.error.startswith("redirect to http://***@127.0.0.1:9/landing")
    assert len(server.requests) == 1


def test_an_internationalised_url_is_recorded_as_it_was_sent(collection, raw_server):
    """WARC-Target-URI is a URI: the host in IDNA, the path percent-encoded, as requests and
    browsers send them. Kept in Unicode, an index read straße.test as strasse.test, another site."""
    server = raw_server({"/stra%C3%9Fe": send_bytes(http_response(b"sharp")),
                         "/a%7Cb~%7Bc%7D": send_bytes(http_response(b"braces"))})
    resolver = SafeResolver(AddressPolicy.from_settings(False, ("127.0.0.1/32",)), lambda host, port: ["127.0.0.1"])
    rows = capture(collection, f"http://straße.test:{server.port}/straße", f"http://sign.test:{server.port}/a|b%7e{{c}}",
                   resolver=resolver, concurrency=1)
    assert [(row.outcome, row.http_status) for row in rows] == [("ok", 200)] * 2, [row.error for row in rows]
    sent = f"http://xn--strae-oqa.test:{server.port}/stra%C3%9Fe"
    braces = f"http://sign.test:{server.port}/a%7Cb~%7Bc%7D"  # as requests wrote the request line
    records = warc_records(collection.storage.folder)
    assert {r.headers["WARC-Target-URI"] for r in records if r.type in ("request", "response")} == {sent, braces}
    assert {r.headers["WARC-Target-URI"] for r in records if r.type == "metadata"} == \
        {f"urn:metadata:{sent}", f"urn:metadata:{braces}"}
    assert any(b"\r\nHost: xn--strae-oqa.test:" in request for request in server.requests)
    assert surt.surt(sent).startswith("test,xn--strae-oqa")
    assert warcio_check(next(collection.storage.folder.glob("*.warc.gz"))).returncode == 0


def test_a_page_sending_the_reader_back_to_itself_with_a_cookie_each_time_is_a_loop(collection, raw_server):
    sent = []

    def new_cookie_each_time(conn, request: bytes) -> None:
        sent.append(request)
        conn.sendall(http_response(b"", "302 Found", [("Set-Cookie", f"visit={len(sent)}; Path=/"),
                                                      ("Location", "/again")]))
    server = raw_server({"/again": new_cookie_each_time})
    [row] = capture(collection, server.url("/again"))
    assert row.outcome == "failed" and row.error == f"redirect loop back to {server.url('/again')}"
    assert len(server.requests) == 2  # asked again once, with its cookie; a third time is a loop


def test_redirects_are_capped(collection, raw_server):
    server = raw_server({f"/{i}": redirect(f"/{i + 1}") for i in range(10)})
    [row] = capture(collection, server.url("/0"), max_redirects=3)
    assert row.outcome == "failed" and row.error == "more than 3 redirects"
    assert len(server.requests) == 4


def test_redirect_to_file_scheme_is_refused(collection, raw_server):
    server = raw_server({"/a": redirect("file:///etc/passwd")})
    [row] = capture(collection, server.url("/a"))
    assert row.outcome == "failed" and "unsupported scheme 'file'" in row.error


def test_a_redirect_to_an_unreadable_location_fails_that_capture_alone(collection, raw_server):
    """A Location no URL parser accepts (a host in brackets that is no IPv6 address) ends its
    own capture, kept with its reason and the exchange that named it; the others are captured."""
    server = raw_server({"/odd": redirect("http://[bold]/x"), "/fine": send_bytes(http_response(b"fine"))})
    odd, fine = capture(collection, server.url("/odd"), server.url("/fine"))
    assert (odd.outcome, odd.error) == ("failed", "redirect to an unreadable Location 'http://[bold]/x': "
                                                  "its host is not valid: square brackets in a host must enclose "
                                                  "a whole IPv6 address (http://[2001:db8::1]/)")
    assert fine.outcome == "ok"
    responses = [r.headers["WARC-Target-URI"] for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert sorted(responses) == [server.url("/fine"), server.url("/odd")]


def test_a_location_not_in_utf8_is_followed_as_a_browser_follows_it(collection, raw_server):
    """An old server's Latin-1 byte in a Location (/caf\xe9) ended the whole run, no URL after
    it captured: it is percent-encoded byte for byte, as browsers do, and followed."""
    server = raw_server({"/old": send_bytes(http_response(b"moved", "302 Found", [("Location", "/caf\xe9")])),
                         "/caf%E9": send_bytes(http_response(b"caf\xe9")), "/fine": send_bytes(http_response(b"fine"))})
    old, fine = capture(collection, server.url("/old"), server.url("/fine"))
    assert (old.outcome, old.final_url) == ("ok", server.url("/caf%E9"))
    assert fine.outcome == "ok"


def test_a_url_no_request_can_be_made_to_fails_that_capture_alone(collection, raw_server):
    """A host requests refuses to name (an empty label) ended the whole run with exit 3, as if
    the machine had refused; given or redirected to, it now fails its own capture, with its reason."""
    server = raw_server({"/dot": redirect("http://.example.com/"), "/fine": send_bytes(http_response(b"fine"))})
    given, redirected, fine = capture(collection, "http://.example.com/", server.url("/dot"), server.url("/fine"))
    assert given.outcome == "failed" and given.error.startswith("not a URL a request can be made to: "), given.error
    assert redirected.outcome == "failed" and redirected.error.startswith(
        "redirect to http://.example.com/: not a URL a request can be made to: "), redirected.error
    assert fine.outcome == "ok"


def test_a_malformed_status_line_is_the_reason_given_in_words(collection, raw_server):
    server = raw_server({"/s": send_bytes(b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nhi")})
    [row] = capture(collection, server.url("/s"))
    assert (row.outcome, row.error) == ("failed", "malformed status line: 'HTTP/1.1 2x0 OK'")


def test_https_records_the_certificate_of_the_same_connection(collection, raw_server, test_ca, run_cli):
    server = raw_server({"/": send_bytes(http_response(b"secure"))}, tls=test_ca.server_context)
    url = f"https://localhost:{server.port}/"
    [row] = capture(collection, url, ca_bundle=str(test_ca.ca_pem))
    assert (row.outcome, row.http_status, row.ip) == ("ok", 200, "127.0.0.1")
    assert row.cert_sha256 == hashlib.sha256(test_ca.leaf_der).hexdigest()
    tls = metadata_of(collection)["redirect_chain"][0]["tls"]
    assert tls["verified"] is True and tls["certificate_sha256"] == row.cert_sha256
    assert len(tls["chain_pem"]) == 2  # leaf and the test CA, as the server presents them
    assert json.loads(run_cli("show", "-C", collection.root, row.id, "--json").stdout)["certificate_verified"] is True
    assert server.requests[0].startswith(b"GET / HTTP/1.1") and b"Host: localhost:" in server.requests[0]
    # A fresh connection: not reused, and how long it took to open is kept.
    hop = metadata_of(collection)["redirect_chain"][0]
    assert hop["connection_reused"] is False and hop["connect_seconds"] is not None


def test_the_chain_recorded_is_the_one_the_server_presented_not_the_path_to_a_trusted_root(
        collection, raw_server, test_ca):
    server = raw_server({"/": send_bytes(http_response(b"secure"))}, tls=test_ca.leaf_alone_context)
    [row] = capture(collection, f"https://localhost:{server.port}/", ca_bundle=str(test_ca.ca_pem))
    tls = metadata_of(collection)["redirect_chain"][0]["tls"]
    assert row.outcome == "ok" and tls["verified"] is True
    # The trusted root was found in the local CA bundle; it never crossed the wire.
    assert tls["chain_pem"] == [ssl.DER_cert_to_PEM_cert(test_ca.leaf_der)]


def test_a_fresh_https_connection_the_server_hangs_up_on_is_not_sent_the_request_again(
        collection, raw_server, test_ca):
    """Only a reused connection that ended unanswered is retried; a fresh one that did is the
    server's answer, as over plain HTTP."""
    server = raw_server({"/once": lambda conn, request: None}, tls=test_ca.server_context)
    [row] = capture(collection, f"https://localhost:{server.port}/once", ca_bundle=str(test_ca.ca_pem))
    assert row.outcome == "failed" and "without a response" in row.error
    assert len(server.requests) == 1


def test_https_with_an_untrusted_certificate_fails_unless_insecure(collection, raw_server, test_ca, run_cli):
    server = raw_server({"/": send_bytes(http_response(b"secure"))}, tls=test_ca.server_context)
    [refused] = capture(collection, server.url("/"))
    assert refused.outcome == "failed" and "TLS failure" in refused.error and "CERTIFICATE_VERIFY_FAILED" in refused.error
    [accepted] = capture(collection, server.url("/"), verify_tls=False)
    assert accepted.outcome == "ok" and accepted.cert_sha256 == hashlib.sha256(test_ca.leaf_der).hexdigest()
    metadata = [json.loads(r.block) for r in warc_records(collection.storage.folder)
                if r.headers.get("Content-Type") == "application/json"]
    assert metadata[-1]["tls_verification"] is False
    assert metadata[-1]["redirect_chain"][0]["tls"]["verified"] is False
    # `show` says so beside the certificate, as the bundle's report does.
    shown = run_cli("show", "-C", collection.root, accepted.id)
    assert f"certificate SHA-256: {accepted.cert_sha256} (NOT verified: captured with --insecure)" in \
        " ".join(shown.stdout.split()), shown.stdout
    assert json.loads(run_cli("show", "-C", collection.root, accepted.id, "--json").stdout)["certificate_verified"] is False


def endless(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    block = bytes(range(256)) * 64
    while True:
        conn.sendall(block)


def test_endless_body_is_cut_at_the_size_cap_and_marked_truncated(collection, raw_server):
    server = raw_server({"/forever": endless})
    [row] = capture(collection, server.url("/forever"), max_size=100_000)
    assert (row.outcome, row.truncated, row.http_status) == ("truncated", "length", 200)
    [response] = [r for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert response.headers["WARC-Truncated"] == "length"
    assert len(response.block) == 100_000
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
    assert response.block == (head + bytes(range(256)) * 400)[:100_000]
    assert warcio_check(response.file).returncode == 0


def trickle(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    for _ in range(1000):
        conn.sendall(b"x")
        time.sleep(0.05)


def test_a_slow_body_is_cut_at_the_wall_clock_deadline(collection, raw_server):
    server = raw_server({"/slow": trickle})
    [row] = capture(collection, server.url("/slow"), timeout=2.0)  # time enough for the head, however loaded the machine
    assert (row.outcome, row.truncated) == ("truncated", "time")
    assert seconds_between(row.started_at, row.finished_at) < 5  # the server would trickle for 50 s
    [response] = [r for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert response.headers["WARC-Truncated"] == "time"
    assert response.block.startswith(b"HTTP/1.1 200 OK") and response.block.endswith(b"x")


def silent(conn: socket.socket, request: bytes) -> None:
    time.sleep(3)


def test_a_server_that_never_answers_fails_at_the_deadline(collection, raw_server):
    server = raw_server({"/": silent})
    [row] = capture(collection, server.url("/"), timeout=0.5)
    assert row.outcome == "failed" and "0.5s capture deadline" in row.error
    # The request went out and is recorded; no response came, so it names none as concurrent.
    [request] = [r for r in warc_records(collection.storage.folder) if r.type in ("request", "response")]
    assert request.type == "request" and request.block.startswith(b"GET / HTTP/1.1\r\n")
    assert "WARC-Concurrent-To" not in request.headers
    [hop] = metadata_of(collection)["redirect_chain"]
    assert (hop["response_record_id"], hop["error"]) == (None, row.error)
    assert_exchanges_sound(collection.storage.folder)


def test_a_disconnect_mid_body_is_kept_and_marked(collection, raw_server):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    partial_body = b"p" * 1200
    server = raw_server({"/": send_bytes(head + partial_body)})  # then hangs up, 3800 bytes short
    [row] = capture(collection, server.url("/"))
    assert (row.outcome, row.truncated, row.http_status) == ("truncated", "disconnect", 200)
    [response] = [r for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert response.headers["WARC-Truncated"] == "disconnect"
    assert response.block == head + partial_body
    assert response.headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(partial_body).hexdigest()
    assert metadata_of(collection)["redirect_chain"][0]["truncated"] == "disconnect"
    assert_exchanges_sound(collection.storage.folder)
    [stored] = [r for r in Catalog(collection.catalog_location).records(row.id) if r.role == "response"]
    assert stored.truncated == "disconnect"


def test_a_trickling_tls_handshake_is_cut_at_the_wall_clock_deadline(collection, raw_server, test_ca):
    # Every byte of the handshake arrives well within the socket timeout, so only a
    # wall-clock deadline can stop it: the server's side is relayed one byte per 50 ms.
    tls_server = raw_server({"/": send_bytes(http_response(b"late"))}, tls=test_ca.server_context)
    to_server, to_client = bytearray(), bytearray()  # what the relay passed on, each way

    def relay_slowly(client: socket.socket, first_bytes: bytes) -> None:
        upstream = socket.create_connection(("127.0.0.1", tls_server.port))
        upstream.sendall(first_bytes)
        to_server.extend(first_bytes)
        client.settimeout(0.05)
        try:
            while True:
                byte = upstream.recv(1)
                if not byte:
                    return
                client.sendall(byte)
                to_client.extend(byte)
                try:
                    from_client = client.recv(65536)
                    upstream.sendall(from_client)
                    to_server.extend(from_client)
                except socket.timeout:
                    pass
        except OSError:
            return
        finally:
            upstream.close()

    proxy = TrickleProxy(relay_slowly).start()
    url = f"https://127.0.0.1:{proxy.port}/"
    # 3 s: time enough, however loaded the machine, for the server's first bytes to be relayed,
    # and at one byte per 50 ms at most 60 of them, less than its first TLS record.
    [row] = capture(collection, url, ca_bundle=str(test_ca.ca_pem), timeout=3.0)
    assert row.outcome == "failed"
    assert row.error == "no complete response within the 3s capture deadline"
    assert seconds_between(row.started_at, row.finished_at) < 10  # not the 15 s connect timeout

    # The handshake was under way when the deadline struck: the whole ClientHello reached
    # the server, and its answer was reaching the client byte by byte, not yet one whole
    # TLS record of it, so no request could go through.
    assert to_server[:2] == to_client[:2] == b"\x16\x03"  # TLS handshake records
    assert len(to_server) >= tls_record_length(to_server)
    assert 5 <= len(to_client) < tls_record_length(to_client)
    assert tls_server.requests == []

    # A capture that sent no request has nothing to store: it is cataloged as failed, with no records.
    assert warc_records(collection.storage.folder) == []
    catalog = Catalog(collection.catalog_location)
    assert [(c.id, c.url, c.outcome, c.error, c.http_status, c.response_record_id) for c in catalog.captures()] \
        == [(row.id, url, "failed", row.error, None, None)]
    assert catalog.records(row.id) == []


def tls_record_length(data: bytes) -> int:
    """Bytes of the TLS record that `data` begins with: its 5-byte header, then the length it gives."""
    return 5 + int.from_bytes(data[3:5], "big")


def seconds_between(start: str, end: str) -> float:
    from datetime import datetime
    return (datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


class TrickleProxy:
    """Accepts TLS clients and hands the raw socket and its first bytes to `relay`."""

    def __init__(self, relay) -> None:
        self.relay = relay

    def start(self) -> "TrickleProxy":
        import threading
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        import threading
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            first = client.recv(65536)  # the ClientHello
            threading.Thread(target=self.relay, args=(client, first), daemon=True).start()
