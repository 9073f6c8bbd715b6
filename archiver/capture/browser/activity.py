"""What a page's proxy has in flight. A capture's context reaches the network only through its
proxy, so the page's network is idle exactly when its proxy has answered every request and none
has started or ended for a while. Counted here, in the proxy, it costs nothing per request;
Playwright's request events would say the same with two messages through its driver for each."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class NetworkActivity:
    """Requests being answered, and when that last changed; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._changed = time.monotonic()

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


class PageProxy(Protocol):
    """The proxy a capture's context is given: where it listens ("host:port") and what it has in flight."""

    address: str
    activity: NetworkActivity
