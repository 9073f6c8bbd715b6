"""What reading a document produces: a Document of Claims, each with its Citations."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

from archiver.read.url_spool import UrlSpool

HEADLINE, PARAGRAPH, ROW, NOTE = "headline", "paragraph", "row", "note"
NOTE_KEY = "note"  # the document key of claims typed on the command line (archiver cite)


@dataclass(frozen=True)
class Citation:
    """One URL a claim cites."""

    url: str          # as written, minus wrapping quotes/brackets and trailing punctuation
    normalised: str   # archiver.read.urls.normalise_url(url): the key two citations of one page share
    standalone: bool  # True when cited through a URL alone on its line (or block), not inside the claim


@dataclass(frozen=True)
class Claim:
    """A statement in a document and the URLs offered as its evidence."""

    id: str                         # stable: see make_claim_id
    text: str
    start: int                      # character span in the decoded document text
    end: int
    kind: str                       # HEADLINE | PARAGRAPH | ROW | NOTE
    citations: tuple[Citation, ...]
    # Claim sheets only: the row's optional id/date/source/notes. Not hashed: a dict can't be.
    row: dict | None = field(default=None, hash=False)
    # True when text == decoded[start:end]. False for HTML blocks and sheet rows: there `text`
    # is the extracted text (or claim cell) and start:end the whole element's (row's) source.
    verbatim: bool = True


@dataclass(frozen=True)
class Document:
    """A file read into claims. `warnings` say what was odd about it; none of them is fatal."""

    path: Path
    key: str                         # the document's name in the catalog; claim ids derive from it
    sha256: str                      # of the file's bytes
    kind: str                        # "article" | "markdown" | "html" | "text" | "csv" | "jsonl"
    encoding: str                    # the codec the bytes were decoded with
    date: str | None                 # ISO YYYY-MM-DD the document asserts (dated articles)
    title: str | None
    # A tuple, or for a claim sheet read from a file a ClaimSpool (archiver.read.spool): a
    # sequence kept on disk, one claim read back at a time.
    claims: Sequence[Claim]
    warnings: tuple[str, ...]
    ignored_links: tuple[str, ...]   # links found but not cited: other schemes, unresolvable relative hrefs
    # URLs written alone on their line. Claims cite them too (see docs/claims.md); kept here as
    # well so a document that is only a list of URLs still yields them.
    standalone: tuple[Citation, ...] = ()
    # The normalised texts (normalise_claim_text) more than one of its claims holds: which of
    # those is which claim of the previous read is told by archiver.store.claim_pairing.
    repeated: frozenset[str] = frozenset()
    # The exact bytes read, which `sha256` is of: the collection keeps a copy of each version.
    content: bytes = field(default=b"", repr=False, compare=False)
    # Or, when a claim sheet was read from a file a chunk at a time, those bytes copied as they
    # passed into an unnamed temporary file, and `content` left empty: see `open_content`.
    spooled: BinaryIO | None = field(default=None, repr=False, compare=False)
    # And its distinct cited URLs gathered on disk as its rows were read, not worked out from
    # `claims` when asked: a set of them all would be held in memory.
    cited_urls: UrlSpool | None = field(default=None, repr=False, compare=False)

    def open_content(self) -> BinaryIO:
        """The exact bytes read, from their start, to be read a chunk at a time."""
        if self.spooled is None:
            return io.BytesIO(self.content)
        self.spooled.seek(0)
        return self.spooled

    @property
    def size(self) -> int:
        """How many bytes were read."""
        return len(self.content) if self.spooled is None else os.fstat(self.spooled.fileno()).st_size

    @property
    def urls(self) -> Sequence[str]:
        """Distinct cited URLs as written, first-seen order, one per normalised form."""
        return self.cited_urls if self.cited_urls is not None else self._distinct_urls[1]

    def url_pairs(self) -> Iterable[tuple[str, str]]:
        """(url, its normalised form: archiver.read.urls.normalise_url) of each of `urls`, in order."""
        if self.cited_urls is not None:
            return self.cited_urls.pairs()
        keys, urls = self._distinct_urls
        return zip(urls, keys)

    @functools.cached_property
    def _distinct_urls(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        # Worked out once: a run asks again.
        seen: dict[str, str] = {}
        for claim in self.claims:
            for citation in claim.citations:
                seen.setdefault(citation.normalised, citation.url)
        for citation in self.standalone:
            seen.setdefault(citation.normalised, citation.url)
        return tuple(seen), tuple(seen.values())

    @property
    def main_claim(self) -> Claim | None:
        """The headline (dated article's first line, Markdown `# title`, HTML <h1>/<title>), if any."""
        return next((claim for claim in self.claims if claim.kind == HEADLINE), None)


def normalise_claim_text(text: str) -> str:
    """The form claim ids hash: NFC, whitespace runs made one space, ends stripped. So re-wrapping
    a paragraph or changing its line endings keeps its id."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def make_claim_id(key: str, text: str, occurrence: int) -> str:
    """A claim's id: `c` + 16 hex digits of SHA-256 over the document key, the normalised text and
    which occurrence of that text in the document this is (0 for the first)."""
    return claim_id_of_normalised(key, normalise_claim_text(text), occurrence)


def claim_id_of_normalised(key: str, normalised: str, occurrence: int) -> str:
    """`make_claim_id` of a text already normalised (normalise_claim_text): reading a document
    needs the normalised text for itself too, and so normalises each claim's once, not twice."""
    material = f"{key}\0{normalised}\0{occurrence}"
    # surrogatepass: command-line text can carry lone surrogates (undecodable argv bytes).
    return "c" + hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:16]
