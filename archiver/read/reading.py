"""What a format reader hands on: passages of decoded text and the links each offers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Passage:
    """A claim before it has an id and citations."""

    text: str
    start: int
    end: int
    kind: str
    links: list[str]            # as written, in order, repeats included
    row: dict | None = None
    verbatim: bool = True       # see Claim.verbatim


@dataclass
class Reading:
    """One format reader's result, for archiver.read.citations to turn into claims."""

    kind: str
    passages: list[Passage] = field(default_factory=list)
    standalone_links: list[str] = field(default_factory=list)
    unusable_links: list[tuple[str, str]] = field(default_factory=list)   # (link, why it is not cited)
    warnings: list[str] = field(default_factory=list)
    date: str | None = None
    title: str | None = None
