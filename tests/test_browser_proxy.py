"""The recording proxy a browser capture runs behind: real origins on 127.0.0.1, a real client
(raw sockets where the bytes matter, requests and http.client otherwise; Chromium in
test_browser_proxy_chromium.py), and the proxy fetching through the same Fetcher, resolver and transport as plain
captures. What the origin sent is what is recorded and what the client gets; what the client
asked for is what the origin got; refused addresses are refused before any connection."""

from __future__ import annotations

import gzip
import http.client
import select
import socket
import ssl
import threading
import time

import pytest
import requests

from archiver.capture.browser.authority import InterceptAuthority
from archiver.capture.browser.proxy import RecordingProxy, RefusingProxy
from archiver.capture.fetch.engine import Fetcher
from archiver.store.settings import CaptureSettings
from tests.conftest import eventually, http_response, redirect, send_bytes


def spooled(hop) -> bytes:
    spool = hop.exchange.spool
    spool.file.seek(0)
    return spool.file.read()


def keep_alive_response(body: bytes, content_type: str = "text/plain") -> bytes:
    """A length-framed response that does not ask to close (the test server still closes after it)."""
    return (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)


class Proxies:
    """Recording proxies over one Fetcher and one authority, closed (and their spools released) at the end."""

    def __init__(self, tmp_path, test_ca, **settings) -> None:
        base = {"allow_networks": ("127.0.0.1/32",), "ca_bundle": str(test_ca.ca_pem), "timeout": 20.0}
        self.fetcher = Fetcher(CaptureSettings(**{**base, **settings}), spool_dir=tmp_path)
        self.authority = InterceptAuthority.create()
        # What a client verifies the proxy's certificates with (one file per authority).
        self.ca_file = tmp_path / f"intercept-ca-{id(self)}.pem"
        self.ca_file.write_bytes(self.authority.ca_pem)
        self.started: list[RecordingProxy] = []

    def start(self, **limits) -> RecordingProxy:
        proxy = RecordingProxy(self.fetcher, self.authority, time.monotonic() + 20, **limits)
        proxy.start()
        self.started.append(proxy)
        return proxy

    def session(self, proxy: RecordingProxy) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"http": f"http://{proxy.address}", "https": f"http://{proxy.address}"}
        session.verify = str(self.ca_file)
        return session

    def close(self) -> None:
        for proxy in self.started:
            proxy.close()
            for hop in proxy.hops:
                hop.exchange.spool.close()
        self.fetcher.close()


def _hops(proxy: RecordingProxy, count: int) -> list:
    """The proxy's hops once `count` requests are done: the client is handed each response as it
    is recorded, a moment before the proxy's thread files the request's hop."""
    eventually(lambda: len(proxy.hops) == count, f"{count} requests filed")
    return proxy.hops

@pytest.fixture
def proxies(tmp_path, test_ca):
    made: list[Proxies] = []
    yield lambda **settings: made.append(Proxies(tmp_path, test_ca, **settings)) or made[-1]
    for each in made:
        each.close()


def connect(proxy) -> socket.socket:
    host, port = proxy.address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_exactly(sock: socket.socket, size: int) -> bytes:
    return sock.makefile("rb").read(size)  # nothing more is sent before the next request


# -- byte-exact, both ways ---------------------------------------------------------------

def test_the_origin_gets_the_request_as_the_browser_sent_it_and_the_browser_gets_the_bytes_sent(
        proxies, raw_server):
    sent = http_response(b"<html>exact</html>", headers=[("Content-Type", "text/html"), ("X-Odd", "  spaced  ")])
    server = raw_server({"/page?q=1": send_bytes(sent)})
    proxy = proxies().start()
    authority = f"127.0.0.1:{server.port}"
    asked = (f"GET http://{authority}/page?q=1 HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: TestBrowser/1\r\n"
             "Accept-Encoding: gzip, deflate, br, zstd\r\nProxy-Connection: keep-alive\r\n"
             "X-Twice: 1\r\naccept: */*\r\nX-Twice: 2\r\n\r\n").encode()
    with connect(proxy) as sock:
        sock.sendall(asked)
        received = read_to_end(sock)  # the origin said Connection: close, so the proxy hangs up after it

    assert received == sent
    # Same order, same case, duplicates kept; zstd dropped (replay tools cannot read it) and the
    # proxy's own header not passed on; nothing added.
    assert server.requests == [(f"GET /page?q=1 HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: TestBrowser/1\r\n"
                                "Accept-Encoding: gzip, deflate, br\r\nX-Twice: 1\r\naccept: */*\r\n"
                                "X-Twice: 2\r\n\r\n").encode()]
    [hop] = _hops(proxy, 1)
    assert (hop.url, hop.status, hop.error, hop.truncated) == (server.url("/page?q=1"), 200, None, None)
    assert spooled(hop) == sent
    assert bytes(hop.exchange.request_bytes) == server.requests[0]
    assert hop.exchange.connection.ip == "127.0.0.1"


def test_chunked_gzip_response_with_two_cookies_is_recorded_as_sent_and_decoded_by_the_client(proxies, raw_server):
    page = b"<html><body>" + b"evidence " * 400 + b"</body></html>"
    packed = gzip.compress(page)
    chunks = [packed[i:i + 700] for i in range(0, len(packed), 700)]
    sent = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
            b"Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\nConnection: close\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
    server = raw_server({"/article": send_bytes(sent)})
    setup = proxies()
    proxy = setup.start()

    response = setup.session(proxy).get(server.url("/article"), timeout=10)

    assert response.status_code == 200 and response.content == page
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["Transfer-Encoding"] == "chunked" and response.headers["Content-Encoding"] == "gzip"
    [hop] = _hops(proxy, 1)
    assert spooled(hop) == sent  # framing and encoding as they came, not what a client made of them
    assert bytes(hop.exchange.request_bytes) == server.requests[0]
    assert hop.exchange.spool.header_length == sent.index(b"\r\n\r\n") + 4


def test_a_request_body_goes_on_as_sent_and_is_recorded(proxies, raw_server):
    received = []

    def echo(conn, request):
        head, _, body = request.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += conn.recv(65536)
        received.append(head + b"\r\n\r\n" + body)
        conn.sendall(http_response(b"stored", headers=[("Content-Type", "text/plain")]))

    server = raw_server({"/form": echo})
    setup = proxies()
    proxy = setup.start()
    form = b"x" * 100_000

    response = setup.session(proxy).post(server.url("/form"), data=form, timeout=10)

    assert response.text == "stored"
    [hop] = _hops(proxy, 1)
    assert bytes(hop.exchange.request_bytes) == received[0]
    assert received[0].endswith(b"\r\n\r\n" + form) and b"Content-Length: 100000\r\n" in received[0]


def test_plain_http_keep_alive_carries_two_requests_and_a_response_without_length_closes(proxies, raw_server):
    first, second = keep_alive_response(b"one"), keep_alive_response(b"two")
    unframed = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the origin hangs up"
    server = raw_server({"/1": send_bytes(first), "/2": send_bytes(second), "/3": send_bytes(unframed)})
    proxy = proxies().start()
    host = f"127.0.0.1:{server.port}"
    with connect(proxy) as sock:
        for path, expected in (("/1", first), ("/2", second)):
            sock.sendall(f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert read_exactly(sock, len(expected)) == expected
        sock.sendall(f"GET http://{host}/3 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        # Only the connection's end tells the browser where this body ends: the proxy must close it.
        assert read_to_end(sock) == unframed
    assert [spooled(h) for h in _hops(proxy, 3)] == [first, second, unframed]


# -- HTTPS through CONNECT ---------------------------------------------------------------

def test_https_through_connect_verifies_the_origin_records_its_certificate_and_keeps_the_tunnel_alive(
        proxies, raw_server, test_ca):
    pages = {"/a": keep_alive_response(b"first"), "/b": keep_alive_response(b"second")}
    server = raw_server({path: send_bytes(data) for path, data in pages.items()}, host="127.0.0.1",
                        tls=test_ca.server_context)
    setup = proxies()
    proxy = setup.start()
    host, port = proxy.address.rsplit(":", 1)
    client_tls = ssl.create_default_context(cafile=str(setup.ca_file))
    client_tls.set_alpn_protocols(["h2", "http/1.1"])
    conn = http.client.HTTPSConnection(host, int(port), context=client_tls, timeout=10)
    conn.set_tunnel("localhost", server.port)
    try:
        conn.request("GET", "/a")
        assert conn.getresponse().read() == b"first"
        tunnel = conn.sock
        assert tunnel.selected_alpn_protocol() == "http/1.1"  # the proxy offers nothing else
        assert ("DNS", "localhost") in tunnel.getpeercert()["subjectAltName"]
        conn.request("GET", "/b")
        assert conn.getresponse().read() == b"second"
        assert conn.sock is tunnel  # the same tunnel carried both
    finally:
        conn.close()

    assert [h.url for h in _hops(proxy, 2)] == [f"https://localhost:{server.port}/a", f"https://localhost:{server.port}/b"]
    for hop, path in zip(proxy.hops, pages):
        assert spooled(hop) == pages[path]
        tls = hop.exchange.connection.tls
        assert tls.verified and tls.chain_der[0] == test_ca.leaf_der  # the origin's own certificate
    assert sorted(bytes(h.exchange.request_bytes) for h in proxy.hops) == sorted(server.requests)


def test_an_origin_the_ca_bundle_does_not_trust_fails_with_a_tls_reason(proxies, raw_server, test_ca):
    server = raw_server({"/": send_bytes(http_response(b"x"))}, tls=test_ca.server_context)
    setup = proxies(ca_bundle=None)  # the system's roots: the test CA is not among them
    proxy = setup.start()

    response = setup.session(proxy).get(f"https://localhost:{server.port}/", timeout=10)

    assert response.status_code == 502 and "TLS failure" in response.text
    [hop] = _hops(proxy, 1)
    assert hop.error.startswith("TLS failure") and not hop.has_response and not hop.refused


# -- the address policy, before any connection --------------------------------------------

@pytest.mark.parametrize("url, reason", [
    ("http://10.0.0.1/internal", "10.0.0.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("https://10.0.0.1/internal", "10.0.0.1 is a private address"),  # through CONNECT: refused inside
])
def test_a_refused_address_gets_403_naming_the_reason_and_nothing_is_attempted(proxies, network_sandbox, url, reason):
    setup = proxies()
    proxy = setup.start()

    response = setup.session(proxy).get(url, timeout=10)

    assert response.status_code == 403 and reason in response.text
    [hop] = _hops(proxy, 1)
    assert hop.url == url and reason in hop.error and hop.refused
    assert not hop.sent_request and not hop.has_response
    assert network_sandbox == []  # the policy refused before connecting: no attempt at all


def test_a_redirect_is_relayed_not_followed_and_a_redirect_to_a_refused_address_is_refused(
        proxies, raw_server, network_sandbox):
    server = raw_server({"/old": redirect("/new"), "/new": redirect("http://169.254.169.254/latest/")})
    setup = proxies()
    proxy = setup.start()
    session = setup.session(proxy)

    first = session.get(server.url("/old"), allow_redirects=False, timeout=10)
    assert (first.status_code, first.headers["Location"]) == (302, "/new")
    assert len(server.requests) == 1 and [h.location for h in _hops(proxy, 1)] == ["/new"]  # not followed

    followed = session.get(server.url("/old"), timeout=10)  # the client follows, each hop through the proxy
    assert followed.status_code == 403 and "169.254.169.254 is a link-local address" in followed.text
    assert [h.url for h in followed.history] == [server.url("/old"), server.url("/new")]
    assert [(h.status, h.refused) for h in _hops(proxy, 4)] == [(302, False), (302, False), (302, False), (None, True)]
    assert network_sandbox == []


def test_what_is_not_a_proxy_request_gets_400_and_is_not_recorded(proxies):
    proxy = proxies().start()
    for asked, why in ((b"GET /page HTTP/1.1\r\nHost: news.test\r\n\r\n", b"not a proxy request"),
                       (b"HELLO\r\n\r\n", b"not an HTTP/1.x request line"),
                       (b"CONNECT news.test HTTP/1.1\r\n\r\n", b"is not host:port")):
        with connect(proxy) as sock:
            sock.sendall(asked)
            received = read_to_end(sock)
        assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n") and why in received, received
    assert proxy.hops == []


# -- limits -------------------------------------------------------------------------------

def test_max_resources_refuses_requests_past_the_limit_naming_it(proxies, raw_server):
    server = raw_server({f"/{i}": send_bytes(http_response(b"r")) for i in range(3)})
    setup = proxies()
    proxy = setup.start(max_resources=2)
    session = setup.session(proxy)

    statuses = [session.get(server.url(f"/{i}"), timeout=10) for i in range(3)]

    assert [r.status_code for r in statuses] == [200, 200, 403]
    assert "max_resources" in statuses[2].text
    assert len(server.requests) == 2  # the third never reached the origin
    assert _hops(proxy, 3)[2].error == "over the page's limit of 2 resources (max_resources)"


def test_max_page_bytes_refuses_requests_once_the_page_total_is_reached(proxies, raw_server):
    server = raw_server({"/big": send_bytes(http_response(b"b" * 5000)), "/more": send_bytes(http_response(b"m"))})
    setup = proxies()
    proxy = setup.start(max_page_bytes=4000)
    session = setup.session(proxy)

    assert session.get(server.url("/big"), timeout=10).status_code == 200
    refused = session.get(server.url("/more"), timeout=10)

    assert refused.status_code == 403 and "max_page_bytes" in refused.text
    assert _hops(proxy, 2)[1].error == "over the page's limit of 4000 bytes (max_page_bytes)"
    assert len(server.requests) == 1


def test_a_response_over_max_size_is_relayed_as_recorded_then_the_connection_closes(proxies, raw_server):
    sent = http_response(b"z" * 50_000)
    server = raw_server({"/huge": send_bytes(sent)})
    proxy = proxies(max_size=10_000).start()
    host = f"127.0.0.1:{server.port}"
    with connect(proxy) as sock:
        sock.sendall(f"GET http://{host}/huge HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        received = read_to_end(sock)
    [hop] = _hops(proxy, 1)
    assert hop.truncated == "length" and received == spooled(hop) == sent[:10_000]


def test_a_document_cut_short_the_pages_or_a_frames_is_held_open_until_close_and_a_subresources_is_ended(
        proxies, raw_server):
    """Told of a document's end, Chromium stops parsing what it has not parsed yet; held open, it
    parses all of it, in the page's window or in a frame. Plain http:// off loopback gets no fetch
    metadata from Chromium, so there a navigation is told by Upgrade-Insecure-Requests alone; where
    there is metadata, a frame's document is a navigation (Sec-Fetch-Mode: navigate) too, and a
    script is not: ended, so that its page's parser goes on."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n"
    server = raw_server({"/page": send_bytes(head + b"<p>the page"), "/frame": send_bytes(head + b"<p>a frame"),
                         "/script": send_bytes(head + b"let a")})
    proxy = proxies().start()
    host = f"127.0.0.1:{server.port}"
    page = connect(proxy)
    page.sendall(f"GET http://{host}/page HTTP/1.1\r\nHost: {host}\r\nUpgrade-Insecure-Requests: 1\r\n\r\n".encode())
    assert read_exactly(page, len(head) + 11) == head + b"<p>the page"
    _hops(proxy, 1)
    frame = connect(proxy)
    frame.sendall(f"GET http://{host}/frame HTTP/1.1\r\nHost: {host}\r\nUpgrade-Insecure-Requests: 1\r\n"
                  "Sec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: iframe\r\n\r\n".encode())
    assert read_exactly(frame, len(head) + 10) == head + b"<p>a frame"
    _hops(proxy, 2)
    with connect(proxy) as script:
        script.sendall(f"GET http://{host}/script HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Mode: no-cors\r\n"
                       "Sec-Fetch-Dest: script\r\n\r\n".encode())
        assert read_to_end(script) == head + b"let a"  # ended: the page sees its end

    assert [hop.truncated for hop in proxy.hops] == ["disconnect"] * 3
    assert select.select([page, frame], [], [], 0)[0] == []  # still open, long after the script's was ended
    proxy.close()
    assert page.recv(10) == b"" and frame.recv(10) == b""
    page.close()
    frame.close()


# -- closing ------------------------------------------------------------------------------

def proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("archiver-recording-proxy", "archiver-refusing-proxy"))]


def test_close_leaves_no_thread_and_nothing_listening(proxies, raw_server):
    server = raw_server({"/": send_bytes(keep_alive_response(b"idle"))})
    setup = proxies()
    proxy = setup.start()
    idle = connect(proxy)  # a keep-alive connection left open, as a browser leaves them
    host = f"127.0.0.1:{server.port}"
    idle.sendall(f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    read_exactly(idle, len(keep_alive_response(b"idle")))
    tunnel = connect(proxy)
    tunnel.sendall(b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
    assert tunnel.recv(100).startswith(b"HTTP/1.1 200")
    assert proxy_threads()

    proxy.close()

    assert proxy_threads() == []
    assert idle.recv(10) == b"" and tunnel.recv(10) == b""  # hung up on
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    idle.close()
    tunnel.close()


def test_the_refusing_proxy_refuses_everything_and_notes_it(network_sandbox):
    refusing = RefusingProxy()
    refusing.start()
    try:
        for asked in (b"CONNECT update.googleapis.com:443 HTTP/1.1\r\nHost: update.googleapis.com:443\r\n\r\n",
                      b"GET http://clients2.google.com/time/1/current HTTP/1.1\r\nHost: clients2.google.com\r\n\r\n"):
            with connect(refusing) as sock:
                sock.sendall(asked)
                assert read_to_end(sock).startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert refusing.refused == ["CONNECT update.googleapis.com:443",
                                    "GET http://clients2.google.com/time/1/current"]
    finally:
        refusing.close()
    assert proxy_threads() == [] and network_sandbox == []


def test_close_waits_for_a_connection_thread_that_hung_up_and_has_not_yet_ended(monkeypatch):
    """A connection thread runs on a moment after hanging up (its client has seen the end): close()
    waits for it too, not only for threads still serving (a loaded machine left two refusing
    proxy threads alive after close())."""
    real_close = socket.socket.close

    def close_then_pause(sock) -> None:
        real_close(sock)
        if threading.current_thread().name == "archiver-refusing-proxy-connection":
            time.sleep(0.5)  # the thread descheduled just after hanging up, as a loaded machine does

    monkeypatch.setattr(socket.socket, "close", close_then_pause)
    refusing = RefusingProxy()
    refusing.start()
    with connect(refusing) as sock:
        sock.sendall(b"GET http://clients2.google.com/time/1/current HTTP/1.1\r\nHost: clients2.google.com\r\n\r\n")
        assert read_to_end(sock).startswith(b"HTTP/1.1 403 Forbidden\r\n")
    refusing.close()
    assert proxy_threads() == []


# -- the interception authority -----------------------------------------------------------

def test_every_host_certificate_carries_the_one_pinned_leaf_key():
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    authority = InterceptAuthority.create()
    assert authority.server_context("news.test") is authority.server_context("NEWS.test")  # cached per host
    pins = set()
    for host in ("news.test", "cdn.test", "10.0.0.1"):
        server_side = authority.server_context(host)
        client_side = ssl.create_default_context(cadata=authority.ca_pem.decode())
        a, b = socket.socketpair()
        with a, b:
            done = threading.Thread(target=lambda: server_side.wrap_socket(a, server_side=True).close())
            done.start()
            with client_side.wrap_socket(b, server_hostname=host) as tls:  # verifies chain and name
                der = tls.getpeercert(binary_form=True)
            done.join(5)
        spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pins.add(base64.b64encode(hashlib.sha256(spki).digest()).decode())
    assert pins == {authority.spki_pin}
