"""The catalog's writes of claims, inside a transaction the catalog holds: a document's claims
as read now, with those gone from it superseded, and each claim with what it cites.

Which claims are gone is never listed: each claim a document held is marked superseded first,
and those read now are marked current again as they are written, in the same transaction.
A `NOT IN` list of what is still there would bind one variable per claim in one statement,
which SQLite refuses past its limit (250,000 where Debian builds it) and PostgreSQL past
65,535 parameters; and a set of either, in Python, grows with a sheet of a million rows.
Which citations a claim no longer has is found in Python, a few hundred claims at a time."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable, Iterable

from archiver.store.database import Database, in_batches, placeholders

if TYPE_CHECKING:
    from archiver.read.seeds import Claim


def supersede_held(db: Database, document_key: str, at: str) -> None:
    """Mark each claim of `document_key` not superseded as superseded at `at`: those read again
    are then made current by `upsert_claims`, those gone stay so (never deleted)."""
    db.execute("UPDATE claims SET superseded_at = ? WHERE document_key = ? AND superseded_at IS NULL",
               (at, document_key))


def upsert_claims(db: Database, claims: Iterable["Claim"], document_key: str | None, seen_at: str,
                  keep_citations: bool, upserted: Callable[[list[str]], None] = lambda ids: None) -> None:
    """The claims as seen at `seen_at`, no longer superseded, with their citations: added to those
    each had with `keep_citations` (a note), else replacing them. A few statements for every few
    hundred claims, not a few each: to a server each is a round trip (a 65,536-row sheet took
    20 s on PostgreSQL one claim at a time). `claims` are taken a batch at a time, in one pass (a
    sheet's are read back from disk for it): the ids of each batch are told to `upserted`, in order."""
    for batch in in_batches(claims):
        ids = [claim.id for claim in batch]
        rows = [(claim.id, document_key, claim.text, claim.start, claim.end, claim.kind,
                 _row_json(claim.row) if claim.row else None, seen_at, int(claim.verbatim))
                for claim in batch]
        db.execute(
            "INSERT INTO claims (id, document_key, text, text_start, text_end, kind, extra, first_seen_at, verbatim)"
            f" VALUES {', '.join([f'({placeholders(rows[0])})'] * len(rows))} ON CONFLICT (id) DO UPDATE SET"
            " text = excluded.text, text_start = excluded.text_start, text_end = excluded.text_end, extra = excluded.extra,"
            " verbatim = excluded.verbatim, superseded_at = NULL", [value for row in rows for value in row])
        first: dict[str, int] = {}
        since: dict[tuple[str, str], str | None] = {}  # of the citations a claim goes on citing: since when
        if keep_citations:
            first = dict(db.execute(f"SELECT claim_id, MAX(position) + 1 FROM citations WHERE claim_id IN"
                                    f" ({placeholders(ids)}) GROUP BY claim_id", ids).fetchall())
        else:
            # Which URLs a claim cites can change without its text changing (a standalone URL edited,
            # an href): those it no longer cites are kept as former citations, dropped at this read.
            kept = {(claim.id, citation.normalised) for claim in batch for citation in claim.citations}
            held = db.execute(f"SELECT claim_id, url_key, url, standalone, cited_since FROM citations WHERE claim_id IN"
                              f" ({placeholders(ids)})", ids).fetchall()
            since = {(row[0], row[1]): row[4] for row in held if (row[0], row[1]) in kept}
            db.executemany("INSERT INTO former_citations (claim_id, url_key, url, standalone, cited_since, dropped_at)"
                           " VALUES (?, ?, ?, ?, ?, ?)", [(*row, seen_at) for row in held if (row[0], row[1]) not in kept])
            db.execute(f"DELETE FROM citations WHERE claim_id IN ({placeholders(ids)})", ids)
        # A note cited again keeps its citations as they are (ON CONFLICT): only a URL new to it starts now.
        db.executemany("INSERT INTO citations (claim_id, url_key, url, standalone, position, cited_since)"
                       " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       [(claim.id, c.normalised, c.url, int(c.standalone), position,
                         since[claim.id, c.normalised] if (claim.id, c.normalised) in since else seen_at)
                        for claim in batch for position, c in enumerate(claim.citations, first.get(claim.id, 0))])
        upserted(ids)


# json.dumps(row, sort_keys=True), whose options would build an encoder for every claim.
_row_json = json.JSONEncoder(sort_keys=True).encode
