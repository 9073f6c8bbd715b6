"""Browser captures: each cited page rendered in Chromium behind a recording proxy of its own,
so every request the page made (document, subresources, redirects, XHR) is an exchange fetched
and recorded by archiver's transport, and the page as a reader saw it is kept beside them."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

from archiver.capture.browser.chromium import PageLimits
from archiver.capture.browser.session import BrowserSession
from archiver.capture.browser.proxy import RecordingProxy
from archiver.capture.browser.result import BrowserResult
from archiver.capture.fetch.engine import Fetcher, FetchResult, Hop
from archiver.capture.fetch.schedule import fetch_each
from archiver.capture.shortfalls import dom_not_recorded
from archiver.read.urls import fetchable_problem, normalise_url

# A cited URL with one of these endings is a file, not a page: fetched directly, no browser round trip.
_NOT_A_PAGE = re.compile(r"\.(pdf|png|jpe?g|gif|webp|svg|ico|mp4|webm|mov|mp3|ogg|wav|zip|gz|tgz|tar|7z|"
                         r"docx?|xlsx?|pptx?|odt|ods|csv|json|xml|txt|warc)$", re.IGNORECASE)


class BrowserFetcher:
    """Fetcher's fetch_all, with pages rendered in one Chromium for the whole run, several at
    once (each in a context behind a proxy of its own) under the same per-host limit as plain
    captures; files are fetched directly over HTTP."""

    def __init__(self, fetcher: Fetcher, executable: str) -> None:
        self.fetcher = fetcher
        self.settings = fetcher.settings
        self.session = BrowserSession(executable, PageLimits(after_load=self.settings.wait_after_load))
        # Pages opened ahead, each behind the proxy of a capture still to come (see `_proxy_and_page`).
        self._spares: deque[tuple[RecordingProxy, Future]] = deque()
        self._coming = 0  # captures of fetch_all not yet started
        self._lock = threading.Lock()

    @property
    def info(self) -> dict:
        return self.session.browser.info

    def close(self) -> None:
        with self._lock:
            spares, self._coming = list(self._spares), 0
            self._spares.clear()
        for proxy, opened in spares:
            self.session.browser.discard(opened)
            proxy.close()
        self.session.close()

    def fetch(self, url: str) -> FetchResult:
        if fetchable_problem(url) or _NOT_A_PAGE.search(urlsplit(url).path):
            return self.fetcher.fetch(url)
        result = BrowserResult(url=url, browser=self.session.browser.info)
        deadline = time.monotonic() + self.settings.timeout
        proxy, opened = self._proxy_and_page(deadline)
        try:
            result.page = self.session.browser.capture(url, proxy, deadline, opened)
        finally:
            proxy.close()
        if result.page.screenshot is not None and result.page.dom is None:
            result.page.shortfalls.append(dom_not_recorded(result.page.error))
        result.hops, result.resources = _page_chain(url, proxy.hops, self.settings.max_redirects)
        _follow_navigation(result)
        result.error = _why_not_the_page(result, self.settings.max_redirects)
        result.name_missing = result.final is None and len(result.hops) == 1 and result.hops[0].name_missing
        result.finished_at = datetime.now(timezone.utc)
        return result

    def fetch_all(self, urls: Iterable[str], on_result: Callable[[FetchResult], None],
                  stop: threading.Event | None = None) -> None:
        """Capture every URL, `concurrency` pages at once (BROWSER_CONCURRENCY when unset) and at
        most `per_host` per host (see `fetch_each`)."""
        urls = list(urls)
        with self._lock:
            self._coming += len(urls)
        fetch_each(urls, self.fetch, on_result, self.settings.captures_at_once(browser=True),
                   self.settings.per_host, stop)

    def _proxy_and_page(self, deadline: float) -> tuple[RecordingProxy, Future | None]:
        """This capture's recording proxy and the page opened ahead behind it, if there is one;
        and, while captures are still to come, a page opened ahead for one of them. Opening a
        page starts a renderer, which takes a good part of a second under load: opened ahead,
        while other pages render, it is no longer on any capture's path."""
        with self._lock:
            self._coming = max(0, self._coming - 1)
            spare = self._spares.popleft() if self._spares else None
            if len(self._spares) < self._coming:
                ahead = RecordingProxy(self.fetcher, self.session.authority, deadline)
                ahead.start()
                self._spares.append((ahead, self.session.browser.open_page(ahead)))
        if spare is None:
            proxy = RecordingProxy(self.fetcher, self.session.authority, deadline)
            proxy.start()
            return proxy, None
        proxy, opened = spare
        proxy.deadline = deadline  # its capture starts now
        return proxy, opened


def _follow_navigation(result: BrowserResult) -> None:
    """A page that navigated itself (a script, a meta refresh, a form) ended on another document
    than its redirect chain's: the screenshot, PDF and DOM are of that one, so the capture's final
    response is too, taken from the page's other requests. A URL changed without a request
    (history.pushState) names no other document: nothing to follow."""
    landed = result.page.final_url if result.page else None
    if not landed or not landed.startswith(("http://", "https://")) or not result.hops or result.hops[-1].location:
        return  # no page, or a chain cut short at a redirect: that is what it ended on
    key = normalise_url(landed)
    if key == normalise_url(result.hops[-1].url):
        return
    hop = next((h for h in reversed(result.resources) if normalise_url(h.url) == key and _navigated(h)), None)
    if hop is not None:
        result.resources.remove(hop)
        result.hops.append(hop)


def _navigated(hop: Hop) -> bool:
    """Whether the browser asked for `hop` to show it as the page (Sec-Fetch-Mode: navigate), not
    for a script (a fetch() a page then pushState()s to names a fragment, not a document); a request
    refused before it was sent says nothing, and counts."""
    return not hop.sent_request or _NAVIGATE in bytes(hop.exchange.request_bytes[:_HEAD_READ]).lower()


_NAVIGATE = b"\r\nsec-fetch-mode: navigate\r\n"
_HEAD_READ = 16 * 1024


def _why_not_the_page(result: BrowserResult, max_redirects: int) -> str | None:
    """Why the capture is not the page as a reader saw it, or None: no response to it, one that
    could not be read (its own reason), more redirects than allowed, or a page the browser could
    not render (a hang, a crash, a closed page, a document cut short before its body) and so no
    screenshot of; a file the browser downloads has none, and is captured, and so is a page whose
    screenshot was made but left out of its byte budget (a shortfall says so)."""
    last = result.hops[-1] if result.hops else None
    if result.final is None:
        return (last.error if last and last.error else None) or result.page.error \
            or "the browser made no request for the page"
    if result.final.error:  # a response refused as it was read (Content-Lengths that disagree): the browser's too
        return result.final.error
    if len(result.hops) > max_redirects and result.final.location is not None:
        return f"more than {max_redirects} redirects"
    if any(normalise_url(saved) == normalise_url(result.final.url) for saved in result.page.downloads):
        return None  # the page is a file, saved rather than shown: its response is the capture
    if (result.page.final_url or "").startswith("chrome-error:"):  # what is shown is the browser's own error page
        return "the page went on to an address the browser could not load, and showed its own error page"
    if result.page.screenshot is None and "screenshot" not in result.page.left_out:
        why = result.page.error or next((note for note in result.page.notes if note.startswith("screenshot")),
                                        "no screenshot was made")
        return f"the browser did not render the page ({why}); its HTTP exchanges are stored"
    return None


def _page_chain(url: str, hops: list[Hop], max_redirects: int) -> tuple[list[Hop], list[Hop]]:
    """The page's own redirect chain (its first request for `url`, then each Location it
    followed), and every other request."""
    chain: list[Hop] = []
    wanted = normalise_url(url)
    rest = list(hops)
    while len(chain) <= max_redirects:
        hop = next((h for h in rest if normalise_url(h.url) == wanted), None)
        if hop is None and not chain and rest:
            hop = rest[0]  # the navigation is the page's first request, whatever form Chromium gave its URL
        if hop is None:
            break
        rest.remove(hop)
        chain.append(hop)
        if hop.location is None or hop.error:
            break
        try:
            wanted = normalise_url(urljoin(hop.url, hop.location))
        except ValueError:  # a Location no URL parser reads (http://[bold]/): Chromium went no further either
            break
    return chain, rest
