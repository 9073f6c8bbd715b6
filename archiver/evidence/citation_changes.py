"""What a read of a document changed in what its claims cite, as the catalog dates it: signed in
the read's "document read" entry, so that verify holds the dates by which the evidence report
marks a capture as made while, before or after a claim cited its URL (exchange/report_claims.py).

A read at `read_at` lists, each as [claim id, url_key] in that order:
- citations_begun: the URLs a claim found before began citing at this read (cited_since = read_at);
- citations_dropped: the URLs a claim stopped citing at this read (dropped_at = read_at).
The URLs of a claim first found at this read are left out: they begin with the claim (their
cited_since is its first_seen_at, held to the first signed read listing the claim), and listing
them would sign each row of a sheet's first read twice over."""

from __future__ import annotations

from typing import Iterable

from archiver.evidence.long_lists import LongList
from archiver.store.catalog import Catalog
from archiver.store.database import in_batches

# The URLs of claims of a document that began citing at a time, or stopped then; ? are the
# document's key and the time (twice for those begun: in the citations still held and the former).
BEGUN = ("SELECT ci.claim_id, ci.url_key FROM {} ci JOIN claims cl ON cl.id = ci.claim_id"
         " WHERE cl.document_key = ? AND ci.cited_since = ? AND ci.cited_since <> cl.first_seen_at")
_BEGUN_AT = (f"{BEGUN.format('citations')} UNION ALL {BEGUN.format('former_citations')}"
             " ORDER BY 1, 2")
_DROPPED_AT = ("SELECT fc.claim_id, fc.url_key FROM former_citations fc JOIN claims cl ON cl.id = fc.claim_id"
               " WHERE cl.document_key = ? AND fc.dropped_at = ? ORDER BY 1, 2")


def read_changes(catalog: Catalog, document_key: str, read_at: str) -> dict:
    """The fields a "document read" entry signs of the read of `document_key` at `read_at`
    (the time the catalog recorded it at), with the citations it changed, as the catalog holds
    them now: a re-read of a sheet that edited every row's URL changes a million, kept on disk."""
    return {"read_at": read_at,
            "citations_begun": _listed(catalog.stream(_BEGUN_AT, (document_key, read_at, document_key, read_at))),
            "citations_dropped": _listed(catalog.stream(_DROPPED_AT, (document_key, read_at)))}


def _listed(rows: Iterable[tuple]) -> LongList:
    listed = LongList()
    for batch in in_batches(rows):  # encoded a batch at a time, not a million rows at once
        listed.extend([claim_id, url_key] for claim_id, url_key in batch)
    return listed
