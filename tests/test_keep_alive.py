"""Keep-alive connections outlive the capture that opened them: each capture's requests session
is closed when it ends, and closing it must not close the pools every capture shares (which
also failed captures in flight on other threads with "Pool is closed")."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from archiver.capture.fetch.engine import Fetcher
from archiver.store.collection import CaptureSettings


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
