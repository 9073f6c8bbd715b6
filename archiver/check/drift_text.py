"""The visible words of a page and how alike two pages' words are: what the live check and
the replay check compare, so that both read a page the same way."""

from __future__ import annotations

import difflib

from archiver.capture.httpbody import http_text


def similarity(before: list[str], after: list[str]) -> float:
    return difflib.SequenceMatcher(None, before, after, autojunk=False).ratio() if before or after else 1.0


def visible_words(dom: bytes) -> list[str]:
    """The words a reader sees in a serialised DOM (scripts and styles left out)."""
    # The DOM is read as the HTML response it would be, so it is read as drift reads pages.
    return http_text(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + dom)[1]
