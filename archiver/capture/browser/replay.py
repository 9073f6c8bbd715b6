"""Replay: a capture's page rendered again from its own records, with no network at all.

`CaptureArchive` is one capture's recorded exchanges, read through the collection's storage and
catalog. `ReplayProxy` stands where the recording proxy stood: it speaks the same HTTP/1.1 with
the browser (`wire`), ends CONNECT tunnels with a throwaway authority as the recording proxy
does (`authority`), and answers every request with the response recorded for it, byte for byte
as the browser got it the first time; a request differing from a recorded one only in
cache-busting query values gets that one's, and is listed as matched loosely (cache_busting).
A request the capture sent and got no answer to (a long poll still waiting when the page was
taken) gets none again, as then, until the page ends. It never opens a connection: what the
capture does not hold gets a 404 and is listed as missing. `Replayer` is a Chromium set up as for a capture,
rendering pages behind replay proxies, for the replay check (archiver.check.replay)."""

from __future__ import annotations

import dataclasses
import socket
import threading
from datetime import datetime
from typing import TYPE_CHECKING

from archiver.capture.browser.authority import InterceptAuthority
from archiver.capture.browser.cache_busting import loose_form
from archiver.capture.browser.holding import AfterAnswer, kept_open
from archiver.capture.browser.proxy import InterceptingServer
from archiver.capture.browser.replay_clock import replay_clock
from archiver.capture.browser.wire import (BrowserRequest, Wire, answer, delimited,
                                           read_body)
from archiver.read.urls import normalise_url
from archiver.store.catalog import Catalog
from archiver.store.record_blocks import read_record_block
from archiver.store.rows import StoredRecord
from archiver.store.storage import Storage

if TYPE_CHECKING:  # the browser driver (and Playwright) loads only when pages are replayed
    from archiver.capture.browser.render import PageCapture

IDLE = 30.0  # longest a browser connection may sit unused before it is closed
MAX_REQUEST_BODY = 64 * 2**20  # a request body is read only to keep the connection's framing
SEND_CHUNK = 256 * 1024


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One request the capture sent: its response record (None when none came), and for a
    revisit record (its head only) the earlier response that holds the identical payload."""

    method: str
    url: str
    response: StoredRecord | None
    payload: StoredRecord | None = None


@dataclasses.dataclass(frozen=True)
class Answer:
    """A recorded response block, why it was cut short (its WARC-Truncated reason, or None), and
    the recorded URL it answered when that is not the one asked for (matched loosely), or None."""

    block: bytes
    truncated: str | None
    loosely: str | None = None


class CaptureArchive:
    """The exchanges of one capture, by method and URL, read from storage only when asked for;
    `captured_at` (epoch seconds) is when the capture began: the replay's clock stands there."""

    def __init__(self, storage: Storage, exchanges: list[Recorded], captured_at: float) -> None:
        self.storage = storage
        self.exchanges = exchanges
        self.captured_at = captured_at
        self._served: dict[tuple[str, str], int] = {}  # how often each (method, url or loose form) was answered
        self._lock = threading.Lock()  # the proxy answers each browser connection on a thread of its own

    @classmethod
    def of_capture(cls, storage: Storage, catalog: Catalog, capture_id: str,
                   captured_at: float | None = None) -> CaptureArchive:
        """Every request record of the capture, paired with the response recorded after it;
        `captured_at` None: the time the capture began."""
        if captured_at is None:
            [row] = catalog.find_capture(capture_id)
            captured_at = datetime.fromisoformat(row.started_at).timestamp()
        exchanges: list[Recorded] = []
        waiting: dict[str, int] = {}  # target URI -> index of its request still without a response
        for record in catalog.records(capture_id):
            if record.role == "request":
                line = read_record_block(storage, record).split(b"\r\n", 1)[0].decode("latin-1")
                waiting[record.target_uri] = len(exchanges)
                exchanges.append(Recorded(line.split(" ", 1)[0], record.target_uri, None))
            elif record.role == "response" and record.target_uri in waiting:
                index = waiting.pop(record.target_uri)
                payload = catalog.payload_record(capture_id) if record.warc_type == "revisit" else None
                exchanges[index] = Recorded(exchanges[index].method, exchanges[index].url, record, payload)
        return cls(storage, exchanges, captured_at)

    def response(self, method: str, url: str) -> Answer | None:
        """The recorded response to `method url`, or None when the capture holds none; failing the
        URL itself, that of one differing from it only in cache-busting values. A URL asked for
        again gets its next recording, then the last again."""
        answered = [e for e in self.exchanges if e.response is not None and e.method == method]
        served_as = url
        found = [e for e in answered if e.url == url]
        if not found:
            key = normalise_url(url)
            found = [e for e in answered if normalise_url(e.url) == key]
        if not found and (loose := loose_form(url, self.captured_at)) is not None:
            served_as = loose
            found = [e for e in answered if loose_form(e.url, self.captured_at) == loose]
        if not found:
            return None
        with self._lock:
            times = self._served.get((method, served_as), 0)
            self._served[(method, served_as)] = times + 1
        exchange = found[min(times, len(found) - 1)]
        block = read_record_block(self.storage, exchange.response)
        if exchange.payload is not None:  # a revisit holds the head; the payload is the earlier body
            head, _, _ = block.partition(b"\r\n\r\n")
            _, _, body = read_record_block(self.storage, exchange.payload).partition(b"\r\n\r\n")
            block = head + b"\r\n\r\n" + body
        return Answer(block, exchange.response.truncated, exchange.url if served_as != url else None)

    def sent_unanswered(self, method: str, url: str) -> bool:
        """Whether the capture sent `method url` and recorded no response to it (see response())."""
        key = normalise_url(url)
        return any(e.response is None and e.method == method and normalise_url(e.url) == key for e in self.exchanges)


class ReplayProxy(InterceptingServer):
    """A capture's exchanges served back to the browser; `asked` is what the browser wanted."""

    name = "replay-proxy"

    def __init__(self, archive: CaptureArchive, authority: InterceptAuthority, deadline: float) -> None:
        super().__init__(authority, deadline)
        self.archive = archive
        self._asked: list[tuple[str, bool]] = []  # ("METHOD url", served from the capture)
        self._loosely: dict[str, str] = {}  # "METHOD url" asked -> the recorded URL that answered it
        self._unanswered: list[str] = []  # "METHOD url" left unanswered, as at capture

    @property
    def asked(self) -> list[tuple[str, bool]]:
        """Every request the browser made, in arrival order, and whether the capture answered it."""
        with self._lock:
            return list(self._asked)

    @property
    def missing(self) -> list[str]:
        """What the browser asked for that the capture does not hold ("METHOD url"), each once."""
        return list(dict.fromkeys(request for request, served in self.asked if not served))

    @property
    def loosely(self) -> dict[str, str]:
        """What the browser asked for ("METHOD url") that was answered with the recording of
        another URL differing only in cache-busting values, and that URL."""
        with self._lock:
            return dict(self._loosely)

    @property
    def unanswered(self) -> list[str]:
        """What the browser asked for ("METHOD url") that the capture sent and got no answer to:
        left unanswered again."""
        with self._lock:
            return list(dict.fromkeys(self._unanswered))

    def _answer(self, sock: socket.socket, wire: Wire, request: BrowserRequest, origin: str | None) -> AfterAnswer:
        """Send the recorded response to one request; what becomes of the connection then."""
        url = request.url(origin)
        try:
            read_body(wire, request, MAX_REQUEST_BODY, sock)
        except OverflowError:
            sock.sendall(answer(413, f"request body over {MAX_REQUEST_BODY} bytes", close=True))
            return AfterAnswer.CLOSE
        recorded = self.archive.response(request.method, url)
        unanswered = recorded is None and self.archive.sent_unanswered(request.method, url)
        with self._lock:
            self._asked.append((f"{request.method} {url}", recorded is not None or unanswered))
            if recorded is not None and recorded.loosely is not None:
                self._loosely[f"{request.method} {url}"] = recorded.loosely
            if unanswered:
                self._unanswered.append(f"{request.method} {url}")
        if unanswered:  # in flight, as it was, until the browser or the proxy's close() hangs up
            while sock.recv(65536):
                pass
            return AfterAnswer.CLOSE
        if recorded is None:
            sock.sendall(_not_held(url, close=request.wants_close))
            return kept_open(not request.wants_close)
        block, truncated = recorded.block, recorded.truncated
        for start in range(0, len(block), SEND_CHUNK):
            sock.sendall(block[start:start + SEND_CHUNK])
        if truncated is not None:  # cut short as recorded: the page is not waited on for its end either
            self.activity.cut_short(url, truncated)
            return self._after_cut(request, url)
        head = block.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        return kept_open(delimited(head, request.method) and not request.wants_close)


def _not_held(url: str, close: bool) -> bytes:
    """The replay's own 404 for what the capture does not hold; never mistaken for a recorded one."""
    body = f"archiver replay: not in the capture being replayed: {url}\n".encode("utf-8")
    head = ["HTTP/1.1 404 Not Found", "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}",
            "Cache-Control: no-store"] + (["Connection: close"] if close else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclasses.dataclass
class Replay:
    """A page rendered from a capture's records: what the browser made of it, and what it asked for."""

    page: PageCapture
    asked: list[tuple[str, bool]]
    missing: list[str]
    loosely: dict[str, str]  # "METHOD url" -> the recorded URL, differing in cache-busting values, that answered it
    unanswered: list[str]  # "METHOD url" sent at capture and never answered: not answered at replay either


class Replayer:
    """A Chromium set up as for a capture (flags, viewport, refusing proxy for its own traffic),
    rendering pages from their captures' records. Use as a context manager."""

    def __init__(self, executable: str) -> None:
        from archiver.capture.browser.session import BrowserSession  # Playwright loads only when replaying

        self.session = BrowserSession(executable)

    def replay(self, url: str, archive: CaptureArchive, deadline: float, tall_window: bool,
               wait_after_load: float) -> Replay:
        """Render `url` from `archive` by `deadline` (a time.monotonic() value), its screenshot
        taken in a tall window for frames from other sites only if the capture's was, watched
        after load for `wait_after_load` seconds at most, as the capture was (so that it is compared
        as it was captured, not before its late content came or its meta refresh was followed,
        nor after), its clock standing at the capture's time (replay_clock)."""
        proxy = ReplayProxy(archive, self.session.authority, deadline)
        proxy.start()
        browser = self.session.browser
        limits = dataclasses.replace(browser.limits, tall_window=tall_window, after_load=wait_after_load)
        try:
            page = browser.capture(url, proxy, deadline, limits=limits, init_script=replay_clock(archive.captured_at))
        finally:
            proxy.close()
        return Replay(page, proxy.asked, proxy.missing, proxy.loosely, proxy.unanswered)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
