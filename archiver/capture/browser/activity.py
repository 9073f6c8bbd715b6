"""What a page's proxy has in flight, and which of its responses ended cut short. A capture's
context reaches the network only through its proxy, so the page's network is idle exactly when its
proxy has answered every request and none has started or ended for a while. Counted here, in the
proxy, it costs nothing per request; Playwright's request events would say the same with two
messages through its driver for each. A response cut short (by a bound, or by its server
hanging up or falling silent) is known here as soon as the proxy has passed on what there was, and
so is a frame's document cut short and held open, for which its page's load event never comes."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

from archiver.capture.browser.page_bytes import PageBytes
from archiver.read.urls import normalise_url


class NetworkActivity:
    """Requests being answered, and when that last changed; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._changed = time.monotonic()
        self._cut: dict[str, str] = {}  # URL key: the WARC-Truncated reason of its first response cut short
        self._held: list[tuple[str, str]] = []  # (URL key, URL) of each document cut short and held open

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._changed = time.monotonic()

    def ended(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._changed = time.monotonic()

    async def idle(self, quiet: float) -> bool:
        """True once no request is in flight and none has started or ended for `quiet` seconds."""
        while True:
            with self._lock:
                in_flight, calm = self._in_flight, time.monotonic() - self._changed
            if not in_flight and calm >= quiet:
                return True
            await asyncio.sleep(0.05 if in_flight else quiet - calm)

    def cut_short(self, url: str, reason: str) -> None:
        """A response to `url` ended before its end (`reason`, as WARC-Truncated says why)."""
        with self._lock:
            self._cut.setdefault(_key(url), reason)

    def held_open(self, url: str) -> None:
        """The document of `url` cut short is held open by its proxy: Chromium sees it still loading."""
        with self._lock:
            self._held.append((_key(url), url))

    async def cut(self, url: str) -> str:
        """Once a response to `url` has ended cut short: why (its WARC-Truncated reason)."""
        key = _key(url)
        while True:
            with self._lock:
                reason = self._cut.get(key)
            if reason is not None:
                return reason
            await asyncio.sleep(0.05)

    async def held(self, besides: str) -> tuple[str, str]:
        """Once a document other than `besides` (the page's own), a frame's, has been cut short and
        held open: its URL and why."""
        page = _key(besides)
        while True:
            with self._lock:
                frame = next(((url, self._cut[key]) for key, url in self._held if key != page), None)
            if frame is not None:
                return frame
            await asyncio.sleep(0.05)


def _key(url: str) -> str:
    try:
        return normalise_url(url)
    except ValueError:  # a port no parser reads: such a URL is only ever matched as written
        return url


class PageProxy(Protocol):
    """The proxy a capture's context is given: where it listens ("host:port") and what it has in flight."""

    address: str
    activity: NetworkActivity
    page_bytes: PageBytes | None  # what the page may record in all; None: no bound
