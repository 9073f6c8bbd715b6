"""Which claim of a document read again is which claim of its previous read, among claims of the
same words (sheet rows "Same claim", HTML links each reading "Source").

A claim's id is made of its document, its words and which occurrence of those words it is
(archiver.read.model.make_claim_id), and reading counts occurrences in document order. Rows
sorted, or a link put first, would then move each id of those words to another claim, which
would take over what the other cited as its own former citations: history the document never
had. So each claim of repeated words takes the occurrence of the previous read's claim it
matches: the one with the same sheet `id`, else the one citing the same URLs, else the next
unmatched in order (its words unchanged, what it cites edited). One matching none is a claim
an earlier read superseded, back (the same sheet `id`, else the same URLs), or else new: it
takes an occurrence no claim of those words in the catalog has had."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable, Iterator

from archiver.read.model import claim_id_of_normalised, normalise_claim_text
from archiver.store.database import Database, in_batches, placeholders

if TYPE_CHECKING:
    from archiver.read.model import Claim, Document


@dataclass
class _Member:
    """A claim of repeated words: in the previous read, its occurrence; in this one, its id as read."""

    at: int | str
    urls: frozenset[str]
    row_id: object


def paired_claims(db: Database, document: "Document") -> Iterable["Claim"]:
    """The claims of `document`, those of repeated words with the id of the claim of the
    document's previous read (its claims not superseded in `db`) each matches."""
    ids = _paired_ids(db, document)
    if not ids:
        return document.claims
    return (replace(claim, id=ids[claim.id]) if claim.id in ids else claim for claim in document.claims)


def _paired_ids(db: Database, document: "Document") -> dict[str, str]:
    """Id as read → id, for each claim whose id its pairing changes."""
    # Raw texts, grouped by the database: the claims of a sheet read before may be a million.
    repeated_before = [text for (text,) in db.execute(
        "SELECT text FROM claims WHERE document_key = ? AND superseded_at IS NULL GROUP BY text HAVING COUNT(*) > 1",
        (document.key,))]
    texts = set(document.repeated) | {normalise_claim_text(text) for text in repeated_before}
    if not texts:
        return {}
    now: dict[str, list[_Member]] = defaultdict(list)
    raw = set(repeated_before)
    for claim in document.claims:
        if (normalised := normalise_claim_text(claim.text)) in texts:
            now[normalised].append(_Member(claim.id, frozenset(c.normalised for c in claim.citations), _row_id(claim.row)))
            raw.add(claim.text)
    before, retired, held = _previous(db, document.key, texts, sorted(raw))
    paired: dict[str, str] = {}
    for normalised, members in now.items():
        occurrences = _pair(members, before.get(normalised, []), retired.get(normalised, []), held[normalised])
        for member, occurrence in zip(members, occurrences):
            if (paired_id := claim_id_of_normalised(document.key, normalised, occurrence)) != member.at:
                paired[str(member.at)] = paired_id
    return paired


def _previous(db: Database, key: str, texts: set[str], raw: list[str]
              ) -> tuple[dict[str, list[_Member]], dict[str, list[_Member]], dict[str, set[int]]]:
    """Of the words `texts`: the claims of the previous read, and those superseded before, each
    by occurrence; and the occurrences they have (a new claim takes none of them)."""
    found: dict[str, list[tuple[str, bool, object]]] = defaultdict(list)
    for batch in in_batches(raw):
        for claim_id, text, superseded_at, extra in db.execute(
                f"SELECT id, text, superseded_at, extra FROM claims WHERE document_key = ? AND text IN ({placeholders(batch)})",
                [key, *batch]):
            if (normalised := normalise_claim_text(text)) in texts:
                found[normalised].append((claim_id, superseded_at is None, _row_id(json.loads(extra) if extra else None)))
    urls: dict[str, set[str]] = defaultdict(set)
    for batch in in_batches([claim_id for claims in found.values() for claim_id, _, _ in claims]):
        for claim_id, url_key in db.execute(
                f"SELECT claim_id, url_key FROM citations WHERE claim_id IN ({placeholders(batch)})", batch):
            urls[claim_id].add(url_key)
    before: dict[str, list[_Member]] = defaultdict(list)
    retired: dict[str, list[_Member]] = defaultdict(list)
    held: dict[str, set[int]] = defaultdict(set)
    for normalised, claims in found.items():
        # Occurrences are given from 0 with none skipped: the claims' count bounds them.
        occurrence_of = {claim_id_of_normalised(key, normalised, occurrence): occurrence
                         for occurrence in range(len(claims))}
        for claim_id, is_current, row_id in sorted(claims, key=lambda claim: occurrence_of.get(claim[0], -1)):
            if claim_id in occurrence_of:
                held[normalised].add(occurrence_of[claim_id])
                (before if is_current else retired)[normalised].append(
                    _Member(occurrence_of[claim_id], frozenset(urls[claim_id]), row_id))
    return before, retired, held


def _pair(now: list[_Member], before: list[_Member], retired: list[_Member], held: set[int]) -> list[int]:
    """The occurrence each of `now` takes, in order: see the module's docstring."""
    taken: list[int | None] = [None] * len(now)
    for free, passes in ((before, (_row_key, _urls_key, _any_key)), (retired, (_row_key, _urls_key))):
        unpaired = dict.fromkeys(range(len(free)))  # in occurrence order
        for key in passes:
            _match(now, taken, free, unpaired, key)
    fresh = _unheld(held | {occurrence for occurrence in taken if occurrence is not None})
    return [next(fresh) if occurrence is None else occurrence for occurrence in taken]


def _row_key(member: _Member) -> object:
    return member.row_id


def _urls_key(member: _Member) -> object:
    return member.urls


def _any_key(member: _Member) -> object:
    return True


def _match(now: list[_Member], taken: list[int | None], free: list[_Member], unpaired: dict[int, None], key) -> None:
    """Each of `now` not yet matched takes the first of `free` still unpaired with the same `key`:
    through an index, not claim by claim (a sheet may hold a thousand rows of the same words).
    Two sheet ids that differ are two rows: past _row_key, a row with an id goes with one without."""
    waiting: dict[object, deque[int]] = defaultdict(deque)
    idless: dict[object, deque[int]] = defaultdict(deque)
    for index in unpaired:
        if (value := key(free[index])) is not None:
            waiting[value].append(index)
            if free[index].row_id is None:
                idless[value].append(index)
    for at, member in enumerate(now):
        if taken[at] is not None or (value := key(member)) is None:
            continue
        queue = (waiting if key is _row_key or member.row_id is None else idless).get(value)
        while queue:
            if (index := queue.popleft()) in unpaired:
                del unpaired[index]
                taken[at] = int(free[index].at)
                break


def _unheld(held: set[int]) -> Iterator[int]:
    occurrence = 0
    while True:
        if occurrence not in held:
            yield occurrence
        occurrence += 1


def _row_id(row: dict | None) -> object:
    """A sheet row's `id` cell, which tells rows of the same words apart; None if it has none."""
    value = (row or {}).get("id")
    return None if value in (None, "") else json.dumps(value, sort_keys=True)
