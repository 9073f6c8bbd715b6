"""Finding links in running text, and telling a line that is nothing but a link."""

from __future__ import annotations

import re

# http(s) URLs, plus the other schemes people paste, so those can be reported as not cited.
# A link stops at whitespace, quotes, backticks and angle brackets; trailing punctuation is
# trimmed after (see _trim). An apostrophe between word characters past the host stays, as in
# Wikipedia's /wiki/Ender's_Game; one before the path ends the link (a possessive: example.org's).
_LINK = re.compile(
    r"""\b(?:(?:https?|ftps?|sftp|wss?|file)://|(?:mailto|tel|javascript|data|sms):)"""
    r"""[^\s<>"'`/]*(?:/(?:[^\s<>"'`]+|(?<=\w)'(?=\w))*)?""",
    re.IGNORECASE)
_TRAILING = ".,;:!?'\"’”»…*)]}"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# What may surround a lone link on its line: wrappers and punctuation, nothing with letters.
_WRAPPING = re.compile(r"""[\s<>"'`“”‘’«»()\[\]{}.,;:!?*…]*""")


def find_links(text: str) -> list[str]:
    """Every link in `text` in order, repeats included, as written minus trailing punctuation."""
    links = []
    for match in _LINK.finditer(text):
        link = _trim(match.group(0))
        if not link.endswith(":") and not link.endswith("//"):
            links.append(link)
    return links


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
