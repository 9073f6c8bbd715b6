"""Passages → claims: which URLs each claim cites, and its stable id."""

from __future__ import annotations

from collections import Counter

from archiver.read.model import HEADLINE, Citation, Claim, make_claim_id, normalise_claim_text
from archiver.read.reading import Passage, Reading
from archiver.read.urls import fetchable_problem, normalise_url, without_credentials


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
            problem = fetchable_problem(link)
            if problem:
                self.ignored.setdefault(without_credentials(link), problem)
                continue
            normalised = normalise_url(link)
            citations.setdefault(normalised, Citation(link, normalised, standalone))
        return list(citations.values())

    def warnings(self) -> list[str]:
        return [f"ignored link {link}: {problem}" for link, problem in self.ignored.items()]


def build_claims(key: str, reading: Reading, sorter: LinkSorter) -> tuple[list[Claim], list[Citation]]:
    """The claims of a reading, and its standalone citations.

    Standalone URLs (alone on their line) are cited by the main claim and by every claim that
    cites no URL of its own: the document as a whole offers them as its source."""
    standalone = sorter.cite(reading.standalone_links, standalone=True)
    occurrences: Counter[str] = Counter()
    claims = []
    for passage in reading.passages:
        own = sorter.cite(passage.links, standalone=False)
        cited = own
        if not own or passage.kind == HEADLINE:
            written = {citation.normalised for citation in own}
            cited = own + [citation for citation in standalone if citation.normalised not in written]
        claims.append(_claim(key, passage, cited, occurrences))
    return claims, standalone


def _claim(key: str, passage: Passage, citations: list[Citation], occurrences: Counter[str]) -> Claim:
    text_key = normalise_claim_text(passage.text)
    occurrence = occurrences[text_key]
    occurrences[text_key] += 1
    return Claim(id=make_claim_id(key, passage.text, occurrence), text=passage.text, start=passage.start,
                 end=passage.end, kind=passage.kind, citations=tuple(citations), row=passage.row,
                 verbatim=passage.verbatim)
