"""What becomes of a browser connection once a response has gone out on it (AfterAnswer), and
how many documents cut short a proxy holds open at once (DocumentHolds)."""

from __future__ import annotations

import threading
from enum import Enum

# Chromium opens at most 6 connections to one host through its proxy, and one held open serves
# nothing else: with every document cut short held, a page with 10 frames cut short had 7 of them
# asked for and the other 3 never were. Those past this many are ended instead.
MAX_HELD = 4


class AfterAnswer(Enum):
    """What becomes of a browser connection once a response has been sent on it."""

    KEEP = "keep"    # it serves the browser's next request
    CLOSE = "close"  # it ends: the response's own end, or one the browser cannot read past
    # Left open, sending nothing more, until the browser or the proxy's close() hangs up, or the
    # proxy's IDLE passes with nothing from the browser (by then it has parsed what came): for a
    # document cut short, the page's or a frame's. Told of its end, Chromium stops its parser where
    # it is, and what came but was not parsed yet is never shown: half of a 1 MB page or frame, or
    # all of a small one whose parser had not begun (an empty page, one try in thirty). Held, every
    # byte that came is parsed and shown, as for a page still loading.
    HOLD = "hold"


def kept_open(wanted: bool) -> AfterAnswer:
    return AfterAnswer.KEEP if wanted else AfterAnswer.CLOSE


class DocumentHolds:
    """The connections of documents cut short a proxy holds open now, at most MAX_HELD; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = 0

    def take(self) -> bool:
        """Whether one more may be held (then it counts until released)."""
        with self._lock:
            if self._held >= MAX_HELD:
                return False
            self._held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._held -= 1
