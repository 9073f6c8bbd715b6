"""Finding links in running text, and telling a line that is nothing but a link."""

from __future__ import annotations

import re

# http(s) URLs, plus the other schemes people paste, so those can be reported as not cited.
# A link starts after no letter or digit (after `_` too: Markdown's _emphasis_), and stops at
# whitespace, quotes, backticks and angle brackets; trailing punctuation is trimmed after (see
# _trim). An apostrophe, typed or typographer's, between word characters past the host stays, as
# in Wikipedia's /wiki/Ender's_Game; one before the path ends the link (a possessive: example.org's).
_LINK = re.compile(
    r"""(?<![^\W_])(?:(?:https?|ftps?|sftp|wss?|file)://|(?:mailto|tel|javascript|data|sms):)"""
    r"""[^\s<>"'`’/]*(?:/(?:[^\s<>"'`’]+|(?<=\w)['’](?=\w))*)?""",
    re.IGNORECASE)
_TRAILING = ".,;:!?'\"’”»…*)]}"
# Markdown's [text](destination): no URL holds "](" as written (it would be %5D%28), so there a
# link ends, and what follows is the destination, which ends at the ")" that closes it.
_MARKDOWN_LINK = "]("
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# What may surround a lone link on its line: wrappers and punctuation, nothing with letters.
_WRAPPING = re.compile(r"""[\s<>"'`“”‘’«»()\[\]{}.,;:!?*…]*""")


def find_links(text: str) -> list[str]:
    """Every link in `text` in order, repeats included, as written minus trailing punctuation."""
    links = []
    at = 0
    while match := _LINK.search(text, at):
        link, at = match.group(0), match.end()
        if text.endswith(_MARKDOWN_LINK, 0, match.start()):
            link = link[:_destination_end(link)]
            at = match.start() + len(link)
        if _MARKDOWN_LINK in link:  # [https://a.example/](https://a.example/): the text, then its destination
            link = link[:link.index(_MARKDOWN_LINK)]
            at = match.start() + len(link) + 1
        if text.endswith("_", 0, match.start()) and link.endswith("_"):  # _https://a.example/_
            link = link[:-1]
        link = _trim(link)
        if not link.endswith(":") and not link.endswith("//"):
            links.append(link)
    return links


def _destination_end(link: str) -> int:
    """Where a Markdown link's destination ends in `link`: at the first ")" it did not open."""
    depth = 0
    for index, character in enumerate(link):
        if character == "(":
            depth += 1
        elif character == ")":
            if depth == 0:
                return index
            depth -= 1
    return len(link)


def lone_links(text: str) -> list[str] | None:
    """The links of `text` when each of its non-blank lines is one link and nothing else
    (wrapping quotes or brackets aside); None when any line says something more."""
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        links = find_links(line)
        if len(links) != 1 or not _WRAPPING.fullmatch(line.replace(links[0], "", 1)):
            return None
        found += links
    return found or None


def _trim(link: str) -> str:
    while link and link[-1] in _TRAILING:
        closer = link[-1]
        # A closing bracket is part of the link when the link opened it: Foo_(bar) on Wikipedia.
        if closer in _CLOSERS and link.count(_CLOSERS[closer]) >= link.count(closer):
            break
        link = link[:-1]
    return link
