"""The local proxies a browser capture runs behind.

RecordingProxy is a capture's browser context's only way out. It never opens a connection of
its own: each request the browser makes (plain, or inside a CONNECT tunnel whose TLS it ends
with the run's InterceptAuthority) is handed to Fetcher.forward, so it is checked against the
address policy and pinned before any connection, and recorded byte for byte by the same
transport as a plain capture. The browser gets those recorded bytes unchanged, each as soon as
it is recorded, so what it rendered is what was stored. Refused and failed requests get a short 403/502/504 naming the
reason and are kept as hops with an error, never dropped. A document (a page's or a frame's) cut
short is held open, not ended (see holding.AfterAnswer.HOLD), so that Chromium shows all of it that came.

RefusingProxy is the browser's own proxy, for what Chromium fetches for itself (updates, time
queries): it answers everything with 403 and notes what was asked, so none of it is evidence.

Each listens on 127.0.0.1, where any local user may connect: a connection from a socket of
another user (peer.same_user, Linux only) is answered 403 and closed before anything is read,
so it is never forwarded, recorded or noted.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from archiver.capture.browser.activity import NetworkActivity
from archiver.capture.browser.page_bytes import PageBytes
from archiver.capture.browser.authority import InterceptAuthority
from archiver.capture.browser.holding import AfterAnswer, DocumentHolds, kept_open
from archiver.capture.browser.peer import same_user
from archiver.capture.browser.wire import (BadRequest, BrowserRequest, Wire, answer, authority_of, delimited,
                                           read_body, read_head)
from archiver.capture.fetch.engine import Fetcher, Hop
from archiver.capture.fetch.spool import ResponseSpool
from archiver.capture.fetch.transport import Exchange

IDLE = 30.0  # longest a browser connection may sit unused (or unread) before it is closed
RELAY_CHUNK = 256 * 1024
# Headers addressed to the proxy itself, never sent on to an origin.
_FOR_THE_PROXY = frozenset({"proxy-connection", "proxy-authorization"})


class _Server:
    """A listening socket on 127.0.0.1 whose connections each get a thread; close() ends them all."""

    name = "proxy"

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        # Every connection thread not seen to have ended: one that hung up still runs a moment
        # after its client saw the end, and close() must wait for it too.
        self._threads: set[threading.Thread] = set()
        self._sockets: dict[threading.Thread, socket.socket] = {}  # what each thread serves now
        self._lock = threading.Lock()
        self._closing = False
        self.address = ""

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))  # loopback only: nothing else on the network may use it
        listener.listen(128)
        self._listener = listener
        self.address = f"127.0.0.1:{listener.getsockname()[1]}"
        self._accepting = threading.Thread(target=self._accept, name=f"archiver-{self.name}", daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closing:
                    conn.close()
                    return
                thread = threading.Thread(target=self._handle, args=(conn,), daemon=True,
                                          name=f"archiver-{self.name}-connection")
                self._threads = {running for running in self._threads if running.is_alive()}
                self._threads.add(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        self._watch(conn)
        try:
            if not same_user(conn):
                conn.sendall(answer(403, "another user's connection is refused: only the browser archiver "
                                         "started may use this proxy", close=True))
                return
            self._serve(conn)
        except BadRequest as exc:  # not HTTP the proxy can pass on: say why, then hang up
            with self._lock:
                current = self._sockets.get(threading.current_thread(), conn)
            try:
                current.sendall(answer(400, str(exc), close=True))
            except OSError:
                pass
        except (OSError, EOFError):
            pass  # the browser hung up or timed out: its connection ends here
        finally:
            with self._lock:
                current = self._sockets.pop(threading.current_thread(), conn)
            current.close()

    def _watch(self, sock: socket.socket) -> None:
        """Make `sock` the one close() shuts down for this thread (a TLS socket replaces its plain one)."""
        with self._lock:
            self._sockets[threading.current_thread()] = sock

    @property
    def closing(self) -> bool:
        return self._closing

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _join_seconds(self) -> float:
        return 5.0

    def close(self) -> None:
        """Stop listening, hang up on every browser connection and wait for their threads."""
        with self._lock:
            if self._closing or self._listener is None:
                self._closing = True
                return
            self._closing = True
        # Closing a socket does not wake a thread blocked in accept() on every system; a
        # connection does, and the accepting thread then sees that the server is closing.
        try:
            socket.create_connection(self._listener.getsockname(), timeout=1).close()
        except OSError:
            pass
        self._accepting.join(5)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets.values()), list(self._threads)
        for sock in sockets:
            try:  # the plain socket's shutdown, so a TLS socket's state is left to its own thread
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        stop_by = time.monotonic() + self._join_seconds()
        for thread in threads:
            thread.join(max(0.0, stop_by - time.monotonic()))


class InterceptingServer(_Server):
    """A proxy that ends the browser's TLS with the run's authority and answers each request
    itself, plain or inside a CONNECT tunnel, until `deadline`; subclasses say how (`_answer`)."""

    def __init__(self, authority: InterceptAuthority, deadline: float) -> None:
        super().__init__()
        self.authority = authority
        self.deadline = deadline
        self.activity = NetworkActivity()  # the page behind it is quiet when this is
        self.page_bytes: PageBytes | None = None  # what the page may record in all; None: no bound (a replay)
        self._holds = DocumentHolds()

    def _idle(self) -> float:
        return min(IDLE, self.deadline - time.monotonic())

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(max(0.001, self._idle()))
        wire = Wire(conn)
        self._serve_requests(conn, wire, read_head(wire), origin=None)

    def _serve_requests(self, sock: socket.socket, wire: Wire, request: BrowserRequest | None,
                        origin: str | None) -> None:
        """Answer requests on one connection (keep-alive) until the browser or a response ends it."""
        while request is not None and not self.closing:
            if request.method == "CONNECT" and origin is None:
                self._tunnel(sock, wire, request)
                return
            self.activity.started()
            try:
                after = self._answer(sock, wire, request, origin)
            finally:
                self.activity.ended()  # a connection held open is not traffic the page waits on
            if after is AfterAnswer.HOLD:
                try:
                    while sock.recv(65536):  # dropped: no request follows a response that never ended
                        pass
                finally:
                    self._holds.release()
            if after is not AfterAnswer.KEEP:
                return
            idle = self._idle()
            if idle <= 0:
                return
            sock.settimeout(idle)
            request = read_head(wire)

    def _tunnel(self, conn: socket.socket, wire: Wire, request: BrowserRequest) -> None:
        """CONNECT: end the browser's TLS here as the host asked for (or none, for a ws:// WebSocket),
        and serve the requests inside."""
        try:
            host, port = authority_of(request.target)
            if wire.buffered:
                raise BadRequest("data sent before the tunnel was established")
            context = self.authority.server_context(host)
        except (BadRequest, ValueError) as exc:
            conn.sendall(answer(400, str(exc), close=True))
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        name = f"[{host}]" if ":" in host else host
        # Chromium tunnels a ws:// WebSocket through a proxy as well, speaking plain HTTP inside:
        # its first byte tells (every TLS handshake starts with 0x16), so that its request is
        # listed and refused with the reason, as a wss:// one is, rather than lost in a failed handshake.
        first_byte = conn.recv(1, socket.MSG_PEEK)
        if not first_byte or self.closing:
            return
        if first_byte != b"\x16":
            self._serve_requests(conn, wire, read_head(wire),
                                 origin=f"http://{name}" + ("" if port == 80 else f":{port}"))
            return
        tls = context.wrap_socket(conn, server_side=True)  # takes over conn's file descriptor
        self._watch(tls)
        tls.settimeout(max(0.001, self._idle()))
        wire = Wire(tls)
        first = read_head(wire) if not self.closing else None
        self._serve_requests(tls, wire, first, origin=f"https://{name}" + ("" if port == 443 else f":{port}"))

    def _answer(self, sock: socket.socket, wire: Wire, request: BrowserRequest, origin: str | None) -> AfterAnswer:
        """Answer one request; what becomes of the connection then."""
        raise NotImplementedError

    def _after_cut(self, request: BrowserRequest, url: str) -> AfterAnswer:
        """How a response to `request` (for `url`) cut short ends: a document's (a page's or a frame's)
        held open, and so noted, while fewer than holding.MAX_HELD are; anything else's closed, its
        end for the page to see (a script or stylesheet held open would stop the page's parser, an
        image hold its load event)."""
        if not request.is_navigation or not self._holds.take():
            return AfterAnswer.CLOSE
        self.activity.held_open(url)
        return AfterAnswer.HOLD


class RecordingProxy(InterceptingServer):
    """One capture's proxy: every request the page makes, fetched and recorded by `fetcher`."""

    name = "recording-proxy"

    def __init__(self, fetcher: Fetcher, authority: InterceptAuthority, deadline: float,
                 max_resources: int = 1000, max_page_bytes: int = 500 * 10**6) -> None:
        super().__init__(authority, deadline)
        self.fetcher = fetcher
        self.max_resources = max_resources
        self.max_page_bytes = max_page_bytes
        self.page_bytes = PageBytes(max_page_bytes)  # the page's DOMs are counted in it too (render.py)
        self._slots: list[Hop | None] = []  # one per request, in arrival order, filled when done
        self._forwarded = 0

    @property
    def hops(self) -> list[Hop]:
        """Every request the browser made, in the order they arrived: recorded exchanges, and
        refused or failed requests with their `error`. Final once close() has returned."""
        with self._lock:
            return [hop for hop in self._slots if hop is not None]

    def _join_seconds(self) -> float:
        # A request being fetched ends by the capture deadline; wait for it, so hops is complete.
        return max(0.0, self.deadline - time.monotonic()) + 5.0

    def _answer(self, sock: socket.socket, wire: Wire, request: BrowserRequest, origin: str | None) -> AfterAnswer:
        """Fetch one request and send the browser its answer; what becomes of the connection then."""
        try:
            url = request.url(origin)
        except BadRequest as exc:
            sock.sendall(answer(400, str(exc), close=True))
            return AfterAnswer.CLOSE
        with self._lock:
            slot = len(self._slots)
            self._slots.append(None)
        limit = self.fetcher.settings.max_size
        try:
            body = read_body(wire, request, limit, sock)
        except OverflowError:
            self._fill(slot, _unsent(url, f"request body over the limit of {limit} bytes (max_size)", self.deadline))
            sock.sendall(answer(413, f"request body over the limit of {limit} bytes (max_size)", close=True))
            return AfterAnswer.CLOSE
        except BadRequest as exc:
            self._fill(slot, _unsent(url, f"unreadable request body: {exc}", self.deadline, refused=False))
            sock.sendall(answer(400, str(exc), close=True))
            return AfterAnswer.CLOSE
        except (OSError, EOFError) as exc:  # the browser gave up on it; still listed, with why
            self._fill(slot, _unsent(url, f"the browser's request could not be read: {exc}", self.deadline,
                                     refused=False))
            raise
        sock.settimeout(max(1.0, self._idle()))
        relay = _Relay(sock, self._count)
        hop = self._fetch(url, request, body, relay)
        self._fill(slot, hop)
        if hop.truncated is not None:  # the browser is told too: by the connection's end, or a document by its hold
            self.activity.cut_short(url, hop.truncated)
        if relay.sent and (relay.failed or not hop.has_response):
            return AfterAnswer.CLOSE  # part of an answer went out, or the browser left: the connection ends here
        if not hop.has_response:
            out_of_time = self.deadline - time.monotonic() <= 0 and not hop.refused
            status = 403 if hop.refused else 504 if out_of_time else 502
            sock.sendall(answer(status, hop.error or "no response", close=request.wants_close))
            return kept_open(not request.wants_close)
        spool = hop.exchange.spool
        spool.file.seek(0)
        head = spool.file.read(spool.header_length or 0)
        spool.file.seek(0)
        while not relay.sent and (chunk := spool.file.read(RELAY_CHUNK)):  # none passed on as it came
            sock.sendall(chunk)
        if hop.truncated is not None:
            return self._after_cut(request, url)
        # Only a complete, length-framed response leaves the connection usable for the next one.
        return kept_open(delimited(head, request.method) and not request.wants_close)

    def _fetch(self, url: str, request: BrowserRequest, body: bytes, relay: "_Relay") -> Hop:
        """The request through the Fetcher, unless a page limit or something unrecordable stops it first."""
        if request.header("upgrade") is not None:
            return _unsent(url, f"a protocol upgrade ({request.header('upgrade')}) cannot be recorded", self.deadline)
        with self._lock:
            if self._forwarded >= self.max_resources:
                return _unsent(url, f"over the page's limit of {self.max_resources} resources (max_resources)",
                               self.deadline)
            if not self.page_bytes.left():
                return _unsent(url, f"over the page's limit of {self.max_page_bytes} bytes (max_page_bytes)",
                               self.deadline)
            self._forwarded += 1
        headers = [(name, value) for name, value in request.headers if name.lower() not in _FOR_THE_PROXY]
        try:
            hop = self.fetcher.forward(request.method, url, headers, body, self.deadline, relay.send)
        except Exception as exc:  # a fault of ours must still leave the request listed, with why
            return _unsent(url, f"recording proxy failure: {type(exc).__name__}: {exc}", self.deadline, refused=False)
        self._count(hop.exchange.spool.size - relay.recorded)  # what was not counted as it came
        return hop

    def _count(self, size: int) -> None:
        self.page_bytes.add(size)

    def _fill(self, slot: int, hop: Hop) -> None:
        with self._lock:
            self._slots[slot] = hop


class _Relay:
    """Passes a response on to the browser as the transport records it, byte for byte: a page
    its server is still sending (a live page, an event stream, a long download) is shown as far
    as it has come, as a reader's browser shows it, rather than only once it ends, which for a
    stream is never. A browser that stops reading stops the relay, never the recording."""

    def __init__(self, sock: socket.socket, count: Callable[[int], None]) -> None:
        self.sock = sock
        self.count = count  # the page's byte total, counted before the browser can ask for more
        self.recorded = 0
        self.sent = 0
        self.failed = False

    def send(self, data: bytes) -> None:
        self.count(len(data))
        self.recorded += len(data)
        if self.failed:
            return
        try:
            self.sock.sendall(data)
            self.sent += len(data)
        except OSError:
            self.failed = True


def _unsent(url: str, reason: str, deadline: float, refused: bool = True) -> Hop:
    """A request the proxy answered itself: nothing was sent, nothing received."""
    exchange = Exchange(url=url, deadline=deadline, read_timeout=0.0, max_bytes=0, spool=ResponseSpool(None))
    return Hop(url=url, exchange=exchange, error=reason, refused=refused)


class RefusingProxy(_Server):
    """The browser's own proxy: everything refused, what was asked noted in `refused`."""

    name = "refusing-proxy"

    def __init__(self) -> None:
        super().__init__()
        self._refused: list[str] = []

    @property
    def refused(self) -> list[str]:
        """What Chromium asked for on its own behalf ("METHOD target"), in arrival order."""
        with self._lock:
            return list(self._refused)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(IDLE)
        request = read_head(Wire(conn))
        if request is None:
            return
        with self._lock:
            self._refused.append(f"{request.method} {request.target}")
        conn.sendall(answer(403, "the browser's own traffic is refused: only captured pages go through archiver",
                            close=True))
