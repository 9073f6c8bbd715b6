"""Keep-alive connections outlive the capture that opened them: each capture's requests session
is closed when it ends, and closing it must not close the pools every capture shares (which
also failed captures in flight on other threads with "Pool is closed")."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from archiver.capture.fetch.engine import Fetcher
from archiver.store.settings import CaptureSettings


class _KeepAlive(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _KeepAlive

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = f"page {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def keep_alive_server():
    server = _KeepAlive()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_keep_alive_server(test_ca):
    server = _KeepAlive()
    server.socket = test_ca.server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_https_connection_is_reused_only_from_its_second_request(tls_keep_alive_server, test_ca, tmp_path):
    """urllib3 opens an HTTPS connection before it sends the request: its first request must
    still be recorded as on a new connection, with the time it took to open."""
    port = tls_keep_alive_server.server_address[1]
    fetcher = Fetcher(CaptureSettings(allow_networks=("127.0.0.1/32",), timeout=10.0, ca_bundle=str(test_ca.ca_pem)),
                      spool_dir=tmp_path)
    try:
        first, second = (fetcher.fetch(f"https://localhost:{port}{page}") for page in ("/a", "/b"))
        try:
            assert (first.error, second.error) == (None, None)
            assert first.final.exchange.connection_reused is False
            assert second.final.exchange.connection_reused is True
        finally:
            first.release()
            second.release()
    finally:
        fetcher.close()
    assert tls_keep_alive_server.connections == 1


def test_captures_one_after_another_reuse_one_connection(keep_alive_server, tmp_path):
    port = keep_alive_server.server_address[1]
    fetcher = Fetcher(CaptureSettings(allow_networks=("127.0.0.1/32",), timeout=10.0), spool_dir=tmp_path)
    try:
        for page in ("/a", "/b", "/c"):
            result = fetcher.fetch(f"http://127.0.0.1:{port}{page}")
            try:
                assert result.error is None and result.final.status == 200, result.error
            finally:
                result.release()
    finally:
        fetcher.close()
    assert keep_alive_server.connections == 1


class _RawOrigin:
    """A keep-alive origin on a raw socket, for answers an HTTP server library would not give:
    each request head read from a connection is handed to answer(), which returns False to hang up."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests_seen: list[int] = []  # per connection, how many requests arrived

    @property
    def connections(self) -> int:
        return len(self.requests_seen)

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.requests_seen.append(0)
            threading.Thread(target=self._serve, args=(conn, len(self.requests_seen) - 1), daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        with conn:
            reader = conn.makefile("rb")
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                self.requests_seen[index] += 1
                if not self.answer(conn, index, head):
                    return

    def answer(self, conn: socket.socket, index: int, head: bytes) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class _ClosesItsIdleConnection(_RawOrigin):
    """An origin whose first connection answers one request with keep-alive, then hangs up on the
    next request without a byte, as a server whose idle timeout fires just as the request arrives."""

    def answer(self, conn: socket.socket, index: int, head: bytes) -> bool:
        if index == 0 and self.requests_seen[index] == 2:
            return False  # the idle timeout won the race: closed, nothing sent
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
        return True


@pytest.fixture
def closes_idle_connection():
    server = _ClosesItsIdleConnection().start()
    yield server
    server.close()


def test_a_reused_connection_the_server_closed_unanswered_is_retried_once_on_a_new_one(
        closes_idle_connection, tmp_path):
    """Browsers resend a request whose reused connection ended before any response byte;
    a capture (and the browser behind the recording proxy) must not get an error for it."""
    url = f"http://127.0.0.1:{closes_idle_connection.port}/"
    fetcher = Fetcher(CaptureSettings(allow_networks=("127.0.0.1/32",), timeout=10.0), spool_dir=tmp_path)
    try:
        first = fetcher.forward("GET", url, [("Host", f"127.0.0.1:{closes_idle_connection.port}")], b"",
                                time.monotonic() + 10)
        second = fetcher.forward("GET", url, [("Host", f"127.0.0.1:{closes_idle_connection.port}")], b"",
                                 time.monotonic() + 10)
        try:
            assert (first.error, first.status) == (None, 200)
            assert (second.error, second.status) == (None, 200), second.error
            assert closes_idle_connection.requests_seen == [2, 1]
            # What is recorded is the exchange that was answered: one request, on a new connection.
            assert bytes(second.exchange.request_bytes).count(b"GET / HTTP/1.1") == 1
            assert second.exchange.connection_reused is False
        finally:
            first.exchange.spool.close()
            second.exchange.spool.close()
    finally:
        fetcher.close()


def test_a_post_whose_reused_connection_ended_unanswered_is_not_sent_again(closes_idle_connection, tmp_path):
    """The server may have taken the form before it hung up: a POST is never submitted twice."""
    url = f"http://127.0.0.1:{closes_idle_connection.port}/"
    host = [("Host", f"127.0.0.1:{closes_idle_connection.port}")]
    fetcher = Fetcher(CaptureSettings(allow_networks=("127.0.0.1/32",), timeout=10.0), spool_dir=tmp_path)
    try:
        first = fetcher.forward("GET", url, host, b"", time.monotonic() + 10)
        posted = fetcher.forward("POST", url, host + [("Content-Length", "5")], b"buy=1", time.monotonic() + 10)
        try:
            assert (first.error, first.status) == (None, 200)
            assert posted.error is not None and posted.status is None
            assert closes_idle_connection.requests_seen == [2]
        finally:
            first.exchange.spool.close()
            posted.exchange.spool.close()
    finally:
        fetcher.close()


class _SendsInterimHeads(_RawOrigin):
    """A keep-alive origin that answers /hinted with 103 Early Hints at once and its page a
    moment later (as it would while the page is being made); /switched with 101 Switching
    Protocols, then, as the stray bytes of another protocol, what looks like a page; other
    paths with their page at once."""

    def answer(self, conn: socket.socket, index: int, head: bytes) -> bool:
        path = head.split(b" ")[1]
        interim = {b"/hinted": b"103 Early Hints\r\nLink: </style.css>; rel=preload",
                   b"/switched": b"101 Switching Protocols\r\nUpgrade: other"}.get(path)
        if interim:
            conn.sendall(b"HTTP/1.1 %s\r\n\r\n" % interim)
            time.sleep(0.3)
        body = b"page " + path
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        return True


@pytest.fixture
def interim_heads_server():
    server = _SendsInterimHeads().start()
    yield server
    server.close()


def fetched(fetcher: Fetcher, url: str) -> tuple[int | None, bytes]:
    """The status and the recorded response of `url`'s capture."""
    result = fetcher.fetch(url)
    try:
        assert result.error is None, result.error
        spool = result.final.exchange.spool
        spool.file.seek(0)
        return result.final.status, spool.file.read()
    finally:
        result.release()


def test_after_early_hints_each_capture_on_a_kept_alive_connection_holds_its_own_response(
        interim_heads_server, tmp_path):
    """A 103 is not the response: taken for it, the page that follows would be left on the
    connection and recorded as the response to the next URL fetched on it."""
    origin = f"http://127.0.0.1:{interim_heads_server.port}"
    fetcher = Fetcher(CaptureSettings(allow_networks=("127.0.0.1/32",), timeout=10.0), spool_dir=tmp_path)
    try:
        for page in ("/hinted", "/next"):
            status, response = fetched(fetcher, origin + page)
            assert status == 200 and response.endswith(b"\r\n\r\npage " + page.encode()), (page, response)
    finally:
        fetcher.close()
    assert interim_heads_server.connections == 1


def test_a_connection_switched_away_from_http_is_never_used_again(interim_heads_server, tmp_path):
    origin = f"http://127.0.0.1:{interim_heads_server.port}"
    fetcher = Fetcher(CaptureSettings(allow_networks=("127.0.0.1/32",), timeout=10.0), spool_dir=tmp_path)
    try:
        assert fetched(fetcher, origin + "/switched")[0] == 101
        status, response = fetched(fetcher, origin + "/next")
        assert status == 200 and response.endswith(b"\r\n\r\npage /next"), response
    finally:
        fetcher.close()
    assert interim_heads_server.connections == 2
