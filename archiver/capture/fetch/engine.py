"""The capture engine: one URL through its redirect chain, under a deadline and a size cap;
many URLs through schedule.py; and one exchange exactly as a browser asked for it
(`Fetcher.forward`, for the recording proxy), through the same transport."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import quote, urljoin

import requests
import urllib3
import urllib3.exceptions as u3
from requests.cookies import extract_cookies_to_jar
from urllib3.util import SKIP_HEADER

from archiver import __version__
from archiver.store.settings import CaptureSettings
from archiver.capture.fetch.failures import describe_failure, root_cause
from archiver.capture.fetch.schedule import fetch_each
from archiver.capture.fetch.policy import AddressPolicy, NameNotResolved, Refused, SafeResolver
from archiver.capture.fetch.spool import ResponseSpool
from archiver.capture.fetch.transport import (IDEMPOTENT_METHODS, CaptureLimitReached, DeadlineReached, Exchange,
                                              RecordingAdapter)
from archiver.read.urls import fetchable_problem, normalise_url, unreadable_url, without_credentials

READ_CHUNK = 256 * 1024
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 30.0  # longest silence tolerated between two reads, within the overall deadline
DEFAULT_USER_AGENT = f"archiver/{__version__} (evidence capture of cited pages)"


@dataclass
class Hop:
    """One request/response exchange of a capture; a redirect chain is a list of these."""

    url: str
    exchange: Exchange
    sent_url: str | None = None  # the URL as the request named it (IDNA host, percent-encoded), once prepared
    status: int | None = None
    location: str | None = None
    truncated: str | None = None  # WARC-Truncated reason
    error: str | None = None
    refused: bool = False  # error is a refusal (address policy, URL, a limit): nothing was sent
    name_missing: bool = False  # error is DNS saying the host's name does not exist (not: no answer)

    @property
    def sent_request(self) -> bool:
        return bool(self.exchange.request_bytes)

    @property
    def has_response(self) -> bool:
        return self.status is not None


@dataclass
class FetchResult:
    url: str
    hops: list[Hop] = field(default_factory=list)
    error: str | None = None
    name_missing: bool = False  # the error is that the URL's own host name does not exist (see NameNotResolved)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished_at: datetime | None = None

    @property
    def final(self) -> Hop | None:
        return self.hops[-1] if self.hops and self.hops[-1].has_response else None

    @property
    def outcome(self) -> str:
        if self.error or self.final is None:
            return "failed"
        return "truncated" if self.final.truncated else "ok"

    def release(self) -> None:
        for hop in self.hops:
            hop.exchange.spool.close()


# One stateless instance for its Location reading, which a session-less exchange needs too.
_REDIRECTS = requests.sessions.SessionRedirectMixin()


class _WireHeaders:
    """Request headers as a list, for urllib3: names in the order given, duplicates kept where
    given (requests' and urllib3's own header dicts reorder or merge them)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self.pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for n, v in self.pairs if n.lower() == name.lower()), default)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def items(self) -> list[tuple[str, str]]:
        return list(self.pairs)

    # urllib3's pool copies headers and merges its (here always empty) proxy headers into them.
    def copy(self) -> "_WireHeaders":
        return _WireHeaders(self.pairs)

    def update(self, other: dict[str, str]) -> None:
        for name, value in dict(other).items():
            self.pairs = [(n, v) for n, v in self.pairs if n.lower() != name.lower()] + [(name, value)]


def _without_zstd(value: str) -> str:
    """Accept-Encoding without zstd: replay tools cannot read it yet."""
    codings = [c for c in value.split(",") if c.strip()]
    kept = [c for c in codings if c.split(";", 1)[0].strip().lower() != "zstd"]
    return value if len(kept) == len(codings) else ",".join(kept).strip()


def _as_asked(headers: list[tuple[str, str]]) -> _WireHeaders:
    """The browser's headers for the wire: zstd dropped, and nothing added for it. urllib3
    would add its own User-Agent and http.client `Accept-Encoding: identity` where the browser
    sent none; SKIP_HEADER tells them not to (a Host the browser left out is still added)."""
    pairs = []
    for name, value in headers:
        if name.lower() == "accept-encoding":
            value = _without_zstd(value)
            if not value:
                continue
        pairs.append((name, value))
    given = {name.lower() for name, _ in pairs}
    pairs += [(name, SKIP_HEADER) for name in ("User-Agent", "Accept-Encoding") if name.lower() not in given]
    return _WireHeaders(pairs)


def _cookies(session: requests.Session) -> frozenset[tuple]:
    return frozenset((cookie.domain, cookie.path, cookie.name, cookie.value) for cookie in session.cookies)


def _location(response: requests.Response) -> str | None:
    """The Location a response redirects to. Not UTF-8 (a Latin-1 byte an old server sends), it
    is taken byte for byte and percent-encoded, as a browser takes it, not as an error that ends the run."""
    try:
        return _REDIRECTS.get_redirect_target(response)
    except UnicodeDecodeError:
        return quote(response.headers["location"].encode("latin-1"), safe="!#$%&'()*+,/:;=?@[]~")


class Fetcher:
    """Fetches URLs through the recording transport; never writes anything but spools."""

    def __init__(self, settings: CaptureSettings, spool_dir: Path | None,
                 resolver: SafeResolver | None = None) -> None:
        self.settings = settings
        self.resolver = resolver or SafeResolver(
            AddressPolicy.from_settings(settings.allow_private, settings.allow_networks))
        self.adapter = RecordingAdapter(self.resolver, per_host=settings.per_host, spool_dir=spool_dir)
        self.spool_dir = spool_dir
        self.verify: bool | str = (settings.ca_bundle or True) if settings.verify_tls else False
        if not self.verify:  # the choice is recorded in every capture's metadata instead
            urllib3.disable_warnings(u3.InsecureRequestWarning)
        self.user_agent = settings.user_agent or DEFAULT_USER_AGENT

    def close(self) -> None:
        self.adapter.close_pools()

    def _session(self) -> requests.Session:
        # One session per capture: its cookies follow the redirect chain and no further.
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc from the environment: we connect where we checked
        session.mount("http://", self.adapter)
        session.mount("https://", self.adapter)
        session.headers.update({
            "User-Agent": self.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Encoding": "gzip, deflate",
        })
        return session

    def fetch(self, url: str) -> FetchResult:
        """Capture `url`, following redirects, each hop re-checked against the address policy."""
        result = FetchResult(url=url)
        deadline = time.monotonic() + self.settings.timeout
        problem = fetchable_problem(url)
        if problem:
            result.error = problem
        else:
            with self._session() as session:
                self._follow(session, url, deadline, result)
        result.finished_at = datetime.now(timezone.utc)
        return result

    def _follow(self, session: requests.Session, url: str, deadline: float, result: FetchResult) -> None:
        # A page may send the reader back to itself once it has set a cookie (a cookie check):
        # a loop is the same URL again with the same cookies.
        seen = {(normalise_url(url), _cookies(session))}
        while True:
            hop = self._exchange(session, url, deadline)
            if hop.sent_request or hop.has_response:
                result.hops.append(hop)
            else:
                hop.exchange.spool.close()
            if hop.error:
                result.error = hop.error if len(seen) == 1 else f"redirect to {url}: {hop.error}"
                result.name_missing = hop.name_missing and len(seen) == 1
                return
            if hop.location is None:
                return
            if len(result.hops) > self.settings.max_redirects:
                result.error = f"more than {self.settings.max_redirects} redirects"
                return
            try:
                url = requests.utils.requote_uri(urljoin(url, hop.location))
            except ValueError as exc:  # a Location such as http://[bold]/: no URL at all
                result.error = f"redirect to an unreadable Location {hop.location!r}: {unreadable_url(exc)}"
                return
            problem = fetchable_problem(url)
            if problem:
                result.error = f"redirect to {without_credentials(url)}: {problem}"
                return
            state = (normalise_url(url), _cookies(session))
            visits = sum(key == state[0] for key, _ in seen)
            # A third visit is a loop whatever cookies came with it (one set anew on every hop).
            if state in seen or visits >= 2:
                result.error = f"redirect loop back to {url}"
                return
            seen.add(state)

    def forward(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                deadline: float, relay: Callable[[bytes], None] | None = None) -> Hop:
        """One exchange exactly as a browser asked for it (method, headers in order, body),
        through the same resolver, address policy, pinning, size cap and transport as `fetch`,
        by `deadline` (a time.monotonic() value). Redirects are not followed: the browser
        follows them itself, each hop a request of its own. Refused or failed: `Hop.error`.
        `relay` is handed the response as it is recorded (ResponseSpool.relay)."""
        hop = Hop(url=url, exchange=self._new_exchange(url, deadline))
        hop.exchange.spool.relay = relay
        problem = fetchable_problem(url)
        if problem:
            hop.error, hop.refused = problem, True
            return hop
        prepared = requests.PreparedRequest()
        # Set directly, not through prepare(): that would re-encode the URL and re-order headers.
        prepared.method, prepared.url, prepared.headers = method, url, _as_asked(headers)
        # No body, None: urllib3 then frames nothing for a GET and sends Content-Length: 0 for a
        # POST the browser framed no other way, never an empty chunked body.
        prepared.body = bytes(body) or None
        return self._perform(hop, prepared)

    def _exchange(self, session: requests.Session, url: str, deadline: float) -> Hop:
        """One GET of a redirect chain, with the session's headers and the cookies the chain set."""
        hop = Hop(url=url, exchange=self._new_exchange(url, deadline))
        try:
            prepared = session.prepare_request(requests.Request("GET", url))
        except (requests.RequestException, ValueError) as exc:  # a host no request can name: http://.example/
            hop.error = f"not a URL a request can be made to: {exc}"
            return hop
        return self._perform(hop, prepared, session.cookies)

    def _new_exchange(self, url: str, deadline: float) -> Exchange:
        return Exchange(url=url, deadline=deadline, read_timeout=min(READ_TIMEOUT, self.settings.timeout),
                        max_bytes=self.settings.max_size, spool=ResponseSpool(self.spool_dir))

    def _perform(self, hop: Hop, prepared: requests.PreparedRequest, cookies: CookieJar | None = None) -> Hop:
        """Send `prepared` through the recording adapter and read its response to the end."""
        exchange = hop.exchange
        hop.sent_url = prepared.url
        remaining = exchange.remaining()
        if remaining <= 0:
            hop.error = self._deadline_message()
            return hop
        with self.adapter.performing(exchange):
            try:
                response = self._send(prepared, exchange)
            except Exception as exc:  # every way a request can fail becomes the hop's recorded reason
                out_of_time = isinstance(exc, DeadlineReached) or exchange.remaining() <= 0
                hop.error = self._deadline_message() if out_of_time else describe_failure(exc)
                cause = root_cause(exc)
                hop.refused, hop.name_missing = isinstance(cause, Refused), isinstance(cause, NameNotResolved) and cause.missing
                if exchange.status is not None:  # a head read whole, then refused (two Content-Lengths): kept, as cut
                    hop.status, hop.truncated = exchange.status, "disconnect" if exchange.head_cut else "unspecified"
                    exchange.finished_seconds = exchange.elapsed()
                return hop
            if cookies is not None:  # what requests.Session.send did: the chain's cookies follow it
                extract_cookies_to_jar(cookies, prepared, response.raw)
            hop.status = response.status_code
            hop.location = _location(response)
            hop.truncated = self._drain(response) or ("disconnect" if exchange.head_cut else None)
            if hop.truncated == "disconnect" and exchange.remaining() <= 0:
                hop.truncated = "time"  # the watchdog hung up at the deadline
            exchange.finished_seconds = exchange.elapsed()
        return hop

    def _send(self, prepared: requests.PreparedRequest, exchange: Exchange) -> requests.Response:
        """Send once; again on a new connection if a kept-alive one ended before any response byte
        (a server may close an idle connection just as the next request goes out on it), as browsers
        do: what is recorded is the exchange that was answered. Only an idempotent request is sent
        again (RFC 9110, 9.2.2): a form the server may have taken is not submitted twice."""
        while True:
            try:
                return self.adapter.send(prepared, stream=True, verify=self.verify, proxies={},
                                         timeout=(min(CONNECT_TIMEOUT, exchange.remaining()), exchange.read_timeout))
            except requests.ConnectionError as exc:
                if not (exchange.connection_reused and prepared.method in IDEMPOTENT_METHODS
                        and exchange.spool.received == 0 and exchange.remaining() > 0
                        and isinstance(root_cause(exc), (http.client.RemoteDisconnected, ConnectionResetError,
                                                          BrokenPipeError))):
                    raise
                exchange.request_bytes.clear()
                exchange.connection_reused = False
                exchange.connection = None

    def _deadline_message(self) -> str:
        return f"no complete response within the {self.settings.timeout:g}s capture deadline"

    @staticmethod
    def _drain(response: requests.Response) -> str | None:
        """Read the body to its end (the transport keeps it); the WARC-Truncated reason if cut."""
        raw = response.raw
        try:
            # read1, not read: urllib3's read() sets up its content decoders even when it is told
            # not to decode, and refuses a chain of more than 5 codings, which would lose the body.
            while raw.read1(READ_CHUNK, decode_content=False):
                pass
        except CaptureLimitReached as exc:
            truncated = exc.truncation
        except (u3.ReadTimeoutError, TimeoutError):
            truncated = "time"
        except (u3.ProtocolError, u3.HTTPError, http.client.HTTPException, OSError) as exc:
            # The server hung up, or sent framing no reader can follow (WARC says: unspecified).
            cause = root_cause(exc)
            hung_up = isinstance(cause, (u3.IncompleteRead, http.client.IncompleteRead, ConnectionError, OSError)) \
                and not isinstance(cause, u3.InvalidChunkLength)
            truncated = "disconnect" if hung_up else "unspecified"
        else:
            raw.release_conn()
            return None
        response.close()  # a half-read connection cannot be reused
        return truncated

    def fetch_all(self, urls: Iterable[str], on_result: Callable[[FetchResult], None],
                  stop: threading.Event | None = None) -> None:
        """Fetch every URL, `concurrency` at once and at most `per_host` per host (see `fetch_each`)."""
        fetch_each(urls, self.fetch, on_result, self.settings.captures_at_once(browser=False),
                   self.settings.per_host, stop)
