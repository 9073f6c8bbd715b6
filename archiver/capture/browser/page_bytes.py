"""The bytes one page may record in all (max_page_bytes): its responses', counted by its proxy as
they come, and the DOMs, screenshot and PDF the browser makes of it, counted as they are made, so
that a page that builds a huge DOM out of a small response is held to the same bound as one that
downloads it."""

from __future__ import annotations

import threading


class PageBytes:
    """A page's byte budget, spent from any thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._spent = 0

    def add(self, size: int) -> None:
        with self._lock:
            self._spent += size

    def take(self, size: int) -> bool:
        """Spend `size` bytes if the page has that many left; False, and nothing spent, if not."""
        with self._lock:
            if size > self.limit - self._spent:
                return False
            self._spent += size
            return True

    def left(self) -> int:
        """Bytes the page may still record; none (0) once it reached its limit."""
        with self._lock:
            return max(0, self.limit - self._spent)
