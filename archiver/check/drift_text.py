"""The visible words of a page and how alike two pages' words are: what the live check and
the replay check compare, so that both read a page the same way; and how a change of words is
told, so that a changed figure ("12 people were killed" → "21") never reads as the same text."""

from __future__ import annotations

import difflib
import math

from archiver.capture.httpbody import MAX_TEXT_BYTES, http_text


def similarity(before: list[str], after: list[str]) -> float:
    return difflib.SequenceMatcher(None, before, after, autojunk=False).ratio() if before or after else 1.0


def visible_words(dom: bytes, shadow_roots: bool = True) -> list[str]:
    """The words a reader sees in a serialised DOM (scripts and styles left out; its declarative
    shadow roots' only when `shadow_roots`)."""
    # The DOM is read as the HTML response it would be, so it is read as drift reads pages.
    return http_text(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + dom, shadow_roots)[1]


def frames_words(doms: list[bytes]) -> list[str]:
    """The visible words of a page's frames (their serialised DOMs), one frame after the other."""
    return [word for dom in doms for word in visible_words(dom[:MAX_TEXT_BYTES])]


def holds_shadow_roots(dom: bytes) -> bool:
    """Whether a serialised DOM may hold declarative shadow roots: a browser capture's DOM made before
    they were recorded (or of a page with none) does not, and is compared with a DOM read without them."""
    return b"shadowrootmode" in dom.lower()


SHOWN_WORDS = 8  # of a changed span: enough to see what changed, short enough for a table cell


def text_change(before: list[str], after: list[str]) -> tuple[str, float]:
    """How the visible words `after` differ from the capture's `before`, and their similarity
    (0..1). Identical words are said so: then only the markup or encoding differs. Otherwise the
    similarity is floored, never rounded up to 100%, and the words that differ are counted and
    the first change shown."""
    if before == after:
        return "visible text identical (markup or encoding differs)", 1.0
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    differing = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changes)
    _, i1, i2, j1, j2 = changes[0]
    ratio = math.floor(matcher.ratio() * 10_000) / 10_000  # four places, as --json gives it, and floored too
    return (f"text {math.floor(ratio * 100)}% similar to the capture; {differing} word(s) differ, first: "
            f"{_span(before[i1:i2])} → {_span(after[j1:j2])}"), ratio


def _span(words: list[str]) -> str:
    shown = " ".join(words[:SHOWN_WORDS]) + (" …" if len(words) > SHOWN_WORDS else "")
    return f'"{shown}"' if words else "(nothing)"
