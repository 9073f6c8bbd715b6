"""Checks of when the catalog says each claim was first found and began and stopped citing each
URL: the dates by which the evidence report marks a capture as made while, before or after the
claim cited its URL (exchange/report_claims.py). Each "document read" entry signs its time and
the citations it began and dropped (evidence/citation_changes.py), so:
- a claim is first found at the earliest signed read listing it, and the URLs it cited then
  begin with it;
- any other date a citation begins or ends is the time of a signed read of its document, and
  that read's entry lists it; and each citation such an entry lists is dated so in the catalog;
- a note (a claim no document holds) is first found at its first entry's time, and begins citing
  each URL at the first entry naming it.
Only the citations changed are held per read, never a tree per read: a sheet of 250,000 rows
read a hundred times is checked in one pass over its citations."""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from archiver.check.custody_log import Logged, TimedRead
from archiver.check.documents import note_url_key
from archiver.check.findings import Report
from archiver.store.catalog import Catalog

_CITATIONS = ("SELECT cl.document_key, cl.id, cl.first_seen_at, ci.url, ci.url_key, ci.cited_since, NULL"
              " FROM citations ci JOIN claims cl ON cl.id = ci.claim_id WHERE cl.document_key IS NOT NULL"
              " UNION ALL SELECT cl.document_key, cl.id, cl.first_seen_at, fc.url, fc.url_key, fc.cited_since,"
              " fc.dropped_at FROM former_citations fc JOIN claims cl ON cl.id = fc.claim_id"
              " WHERE cl.document_key IS NOT NULL ORDER BY 2, 5, 6")


def check_citation_dates(catalog: Catalog, custody: Logged, report: Report) -> None:
    first_found = custody.claims_first_read
    dated = _Dated(custody, report)
    for claim_id, first_seen_at in catalog.stream(
            "SELECT id, first_seen_at FROM claims WHERE document_key IS NOT NULL ORDER BY id"):
        signed = first_found.get(claim_id, "")  # "": read by no signed entry, which check_claims names
        if signed is None:
            dated.unchecked += 1
        elif signed:
            report.check("claim first found", first_seen_at == signed, f"claim {claim_id}", lambda: (
                f"first found at {first_seen_at} in the catalog, but the first signed read listing it was at {signed}"))
    for key, claim_id, first_seen_at, url, url_key, since, dropped_at in catalog.stream(_CITATIONS):
        if claim_id in first_found:  # else read by no signed entry: check_claims names it
            dated.citation(key, claim_id, first_seen_at, url, url_key, since, dropped_at)
    dated.compare_with_reads()
    for claim_id, rows in groupby(catalog.stream(
            "SELECT cl.id, cl.first_seen_at, ci.url, ci.url_key, ci.cited_since FROM claims cl LEFT JOIN citations ci"
            " ON ci.claim_id = cl.id WHERE cl.document_key IS NULL ORDER BY cl.id, ci.url_key"), key=itemgetter(0)):
        dated.unchecked += _check_note(claim_id, list(rows), custody.notes_at.get(claim_id), report)
    if dated.unchecked:
        report.not_checked.append(f"claims: {dated.unchecked} date(s) a claim was first found or began or stopped citing "
                                  "a URL, set by reads signed before archiver signed their time and what they changed: "
                                  "not checked")


def _check_note(claim_id: str, rows: list[tuple], entries: list[tuple[object, list]] | None, report: Report) -> int:
    """Hold a note's first_seen_at to its first entry's time, and the time it began citing each
    URL to the first entry naming it; how many dates are left unchecked (entries signing no time)."""
    if entries is None:
        return 0  # recorded by no entry: check_claims names it
    if not all(isinstance(at, str) for at, _ in entries):
        return 1 + sum(1 for row in rows if row[3] is not None)
    where = f"claim {claim_id}"
    first = min(at for at, _ in entries)
    report.check("claim first found", rows[0][1] == first, where,
                 lambda: f"first recorded at {rows[0][1]} in the catalog, but its first note entry was at {first}")
    begun: dict[str, str] = {}
    for at, urls in sorted(entries, key=itemgetter(0)):
        for url in urls:
            begun.setdefault(note_url_key(url), at)
    for _, _, url, url_key, since in rows:
        if url_key is not None:  # a URL no entry named: check_claims_trees names it
            report.check("citation dates", url_key not in begun or since == begun[url_key], where,
                         lambda: f"began citing {url} at {since} in the catalog, but the first note entry naming "
                                 f"it was at {begun[url_key]}")
    return 0


class _Dated:
    """The catalog's citation dates, each held as it is read, and those a signed read lists kept
    (what reads changed, a few each) to compare with what those reads signed at the end."""

    def __init__(self, custody: Logged, report: Report) -> None:
        self._custody = custody
        self._report = report
        self._begun: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (document, read_at) → (claim, url_key)
        self._dropped: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.unchecked = 0

    def citation(self, key: str, claim_id: str, first_seen_at: str, url: str, url_key: str, since: str | None,
                 dropped_at: str | None) -> None:
        held = isinstance(self._custody.claims_first_read[claim_id], str)  # first found by a read signing its time
        where = f"claim {claim_id}"
        if since is None:  # cited before archiver dated citations, so before any read signing its time
            if held:
                self._report.check("citation dates", False, where, f"cites {url} since no recorded time, though its "
                                   "first read dated what it cited: cited_since emptied in the catalog")
            else:
                self.unchecked += 1
        elif since == first_seen_at:  # begun with the claim: held by its first read (check_citation_dates)
            if held:
                self._report.count_passed("citation dates")
            else:
                self.unchecked += 1
        else:
            self._at_read(self._begun, key, claim_id, url, url_key, since, held, "began citing")
        if dropped_at is not None:
            self._at_read(self._dropped, key, claim_id, url, url_key, dropped_at, held, "stopped citing")

    def _at_read(self, listed: dict, key: str, claim_id: str, url: str, url_key: str, at: str, held: bool,
                 change: str) -> None:
        reads = self._custody.timed_reads.get(key, {})
        if at in reads:
            listed.setdefault((key, at), set()).add((claim_id, url_key))
        elif held or (reads and at >= min(reads)):
            self._report.check("citation dates", False, f"claim {claim_id}", f"{change} {url} at {at} in the catalog, "
                               f"a time no signed read of document {key} has")
        else:
            self.unchecked += 1

    def compare_with_reads(self) -> None:
        """Each signed read lists exactly the citations the catalog dates to its time."""
        for key, reads in sorted(self._custody.timed_reads.items()):
            for read_at, read in sorted(reads.items()):
                self._compare(key, read_at, read, read.begun, self._begun.get((key, read_at), set()), "began citing")
                self._compare(key, read_at, read, read.dropped, self._dropped.get((key, read_at), set()),
                              "stopped citing")

    def _compare(self, key: str, read_at: str, read: TimedRead, signed: frozenset, held: set, change: str) -> None:
        if agreed := len(signed & held):
            self._report.count_passed("citation dates", agreed)
        when = f"the read of document {key} at {read_at} (custody log seq {read.seq})"
        for claim_id, url_key in sorted(signed - held):
            self._report.check("citation dates", False, f"claim {claim_id}",
                               f"{when} signed that it {change} {url_key} then; the catalog dates that otherwise")
        for claim_id, url_key in sorted(held - signed):
            self._report.check("citation dates", False, f"claim {claim_id}",
                               f"{change} {url_key} at {when}, the catalog says; that read's signed entry does not")
