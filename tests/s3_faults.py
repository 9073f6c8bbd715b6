"""Stores that fail on the wire, for tests: a proxy on 127.0.0.1 in front of a real S3 store
(radosgw) that refuses chosen requests as an overloaded store does (503 Slow Down), or as AWS
does where radosgw never would (409 Conflict), and passes every other one through byte for
byte; and a server that accepts connections and never answers (a hung endpoint). Nothing of S3 is simulated: what passes is the real store's answer."""

from __future__ import annotations

import socket
import threading
from typing import Callable
from urllib.parse import urlsplit

SLOW_DOWN = ("503 Slow Down", "SlowDown")  # an overloaded store's answer
CONFLICT = ("409 Conflict", "ConditionalRequestConflict")  # AWS's to a write while another of its name is under way


def _refusal(status: str, code: str) -> bytes:
    body = f'<?xml version="1.0"?><Error><Code>{code}</Code><Message>refused by the test proxy</Message></Error>'
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed: stopped
                return
            self._held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


class RefusingProxy(_Listener):
    """Each connection carries one request (the proxy makes it `Connection: close`, so the
    client opens a new one for the next): refused when `refuse(method, path)`, answered `answer`
    (HTTP status, S3 error code) (or, with `hang`, never answered; with `lose`, relayed to
    `upstream`, which carries it out, and its answer lost: the connection closes once upstream
    has answered), else relayed to `upstream` and its answer relayed back. `refused` lists what it refused."""

    def __init__(self, upstream: str, refuse: Callable[[str, str], bool], hang: bool = False,
                 lose: bool = False, answer: tuple[str, str] = SLOW_DOWN) -> None:
        self.upstream = urlsplit(upstream)
        self.refuse = refuse
        self.answer = _refusal(*answer)
        self.hang = hang
        self.lose = lose
        self.refused: list[tuple[str, str]] = []
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, path, _ = lines[0].decode("latin-1").split(" ", 2)
            refused = self.refuse(method, path)
            if refused:
                self.refused.append((method, path))
                if self.hang:
                    return _drain(conn)
                if not self.lose:
                    conn.sendall(self.answer)
                    return
            kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
            with socket.create_connection((self.upstream.hostname, self.upstream.port)) as up:
                up.sendall(b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n" + rest)
                upward = threading.Thread(target=_pipe, args=(conn, up), daemon=True)
                upward.start()
                if refused:  # lost: upstream's whole answer read (it closes after it), none of it sent on
                    _drain(up)
                    return conn.shutdown(socket.SHUT_RDWR)  # a close alone waits for `upward`'s recv
                _pipe(up, conn)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _drain(conn: socket.socket) -> None:
    """Read whatever comes, answer nothing, until the client gives up."""
    while True:
        try:
            if not conn.recv(65536):
                return
        except OSError:
            return


class SilentServer(_Listener):
    """Accepts every connection and never answers a byte: a hung endpoint."""

    def _serve(self, conn: socket.socket) -> None:
        _drain(conn)
