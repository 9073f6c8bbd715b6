"""Passages → claims: which URLs each claim cites, and its stable id."""

from __future__ import annotations

import hashlib
import re

from archiver.read.model import HEADLINE, Citation, Claim, claim_id_of_normalised, normalise_claim_text
from archiver.read.reading import Passage, Reading
from archiver.read.urls import fetchable_key, without_credentials


class LinkSorter:
    """Splits links into citations and ignored links, remembering each ignored one once."""

    def __init__(self, unusable: list[tuple[str, str]]) -> None:
        self.ignored: dict[str, str] = {}
        for link, problem in unusable:
            self.ignored.setdefault(link, problem)

    def cite(self, links: list[str], standalone: bool) -> list[Citation]:
        """Citations for the fetchable links, once per normalised URL, in order."""
        citations: dict[str, Citation] = {}
        for link in links:
            problem, normalised = fetchable_key(link)
            if problem:
                self.ignored.setdefault(without_credentials(link), problem)
                continue
            if normalised not in citations:
                citations[normalised] = Citation(link, normalised, standalone)
        return list(citations.values())

    def warnings(self) -> list[str]:
        return [f"ignored link {link}: {problem}" for link, problem in self.ignored.items()]


def build_claims(key: str, reading: Reading, sorter: LinkSorter) -> tuple[list[Claim], list[Citation], frozenset[str]]:
    """The claims of a reading, its standalone citations, and the normalised texts more than one
    of its claims holds."""
    maker = ClaimMaker(key, sorter, reading.standalone_links)
    return [maker.claim(passage) for passage in reading.passages], maker.standalone, frozenset(maker.repeated)


class ClaimMaker:
    """Passages → claims, one at a time, in document order (an id counts the same text before it).

    Standalone URLs (alone on their line) are cited by the main claim and by every claim that
    cites no URL of its own: the document as a whole offers them as its source."""

    def __init__(self, key: str, sorter: LinkSorter, standalone_links: list[str]) -> None:
        self.key, self.sorter = key, sorter
        self.standalone = sorter.cite(standalone_links, standalone=True)
        # Texts seen, by digest, not by their words: a sheet of a million rows would otherwise keep
        # every claim's words to its end. Only a text seen again is counted.
        self._seen = Digests()
        self._repeats: dict[bytes, int] = {}
        # The normalised texts more than one claim holds: archiver.store.claim_pairing tells which
        # of them is which claim of the document's previous read.
        self.repeated: set[str] = set()

    def claim(self, passage: Passage) -> Claim:
        own = self.sorter.cite(passage.links, standalone=False)
        cited = own
        if not own or passage.kind == HEADLINE:
            written = {citation.normalised for citation in own}
            cited = own + [citation for citation in self.standalone if citation.normalised not in written]
        normalised = normalise_claim_text(passage.text)
        text_key = hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).digest()[:16]
        occurrence = 0
        if not self._seen.add(text_key):
            occurrence = self._repeats.get(text_key, 1)
            self._repeats[text_key] = occurrence + 1
            self.repeated.add(normalised)
        # A CRLF (or CR) file's line ends are read as \n: the CR is no character of the words, and
        # shown it is a stray \x0d at every line end. The id is the same (normalised, they are spaces).
        text = _CR_LINE_END.sub("\n", passage.text) if "\r" in passage.text else passage.text
        return Claim(id=claim_id_of_normalised(self.key, normalised, occurrence), text=text, start=passage.start,
                     end=passage.end, kind=passage.kind, citations=tuple(cited), row=passage.row,
                     verbatim=passage.verbatim)


_CR_LINE_END = re.compile(r"\r\n?")


class Digests:
    """A set of 16-byte digests in 16 bytes each, where a set of bytes objects takes over 100: an
    open-addressed table kept at most half full. 128 bits tell texts apart far beyond the 64 of
    the claim ids made from them."""

    def __init__(self) -> None:
        self._table = bytearray(16 * 1024)
        self._count = 0

    def add(self, digest: bytes) -> bool:
        """Whether `digest` is new (it is now in)."""
        if not _place(self._table, digest):
            return False
        self._count += 1
        if 2 * self._count > len(self._table) // 16:
            # Moved in one loop, not through `add`: a row's reading is a few microseconds, and
            # the table is moved whole each time it doubles.
            old, self._table = self._table, bytearray(2 * len(self._table))
            for start in range(0, len(old), 16):
                if (held := old[start:start + 16]) != _EMPTY:
                    _place(self._table, bytes(held))
        return True


def _place(table: bytearray, digest: bytes) -> bool:
    """Put `digest` in the first free slot from the one its first 8 bytes name, unless it is
    there already: whether it was put."""
    slots = len(table) >> 4
    at = int.from_bytes(digest[:8], "little") % slots
    while (held := table[at << 4:(at << 4) + 16]) != _EMPTY:
        if held == digest:
            return False
        at = at + 1 if at + 1 < slots else 0
    table[at << 4:(at << 4) + 16] = digest
    return True


_EMPTY = bytes(16)  # a free slot (a digest of 16 zero bytes: 1 in 2**128)
