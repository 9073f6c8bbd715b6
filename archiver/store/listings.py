"""The catalog's listings of claims and of captures (`archiver claims`, `archiver captures`):
the statement of each, filtered, in an order made total by a unique last column, and its reading
a page at a time by keyset.

Each page is read by short statements of its own, starting after the last row of the page
before in the listing's order (`WHERE key > last key ORDER BY key LIMIT n`) on an index of that
order (migration 0012), so nothing is held between pages. A cursor over the whole listing, read
as slowly as its reader reads (`archiver claims | less`), held a read transaction all that while:
SQLite could not checkpoint its write-ahead log, which grew as captures wrote, and a PostgreSQL
server held the whole result. A listing read by pages is no single snapshot: a row written
meanwhile may be listed or not, and one whose key changes meanwhile (a claim a re-read of its
document moves) missed or listed twice; every other row is listed once, in its place.
Reads that must see one state (verify, a manifest) stream instead (Database.stream)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

from archiver.store.database import ROWS_PER_STATEMENT, Database


class Ordered(NamedTuple):
    column: str  # as the statement names it
    nulls_first: bool = False  # a column that may be NULL: NULLs first, as SQLite sorts them and PostgreSQL must be told

    def term(self) -> str:
        return f"{self.column} NULLS FIRST" if self.nulls_first else self.column


@dataclass(frozen=True)
class Listing:
    """SELECT `select` WHERE every one of `filters` (their `args` in order) ORDER BY `order`,
    whose last column is unique and never NULL: no two rows tie, so a page's last row says
    where the next page starts."""

    select: str
    filters: tuple[str, ...]
    args: tuple[Any, ...]
    order: tuple[Ordered, ...]

    def whole(self) -> tuple[str, tuple]:
        """The statement listing every row at once, and its arguments."""
        return self._statement(self.filters), self.args

    def pages(self, db: Database) -> Iterator[list[tuple]]:
        """The rows whole() lists, ROWS_PER_STATEMENT at a time, each page read only when asked for."""
        after: tuple | None = None
        while True:
            page, key_at = self._page(db, after)
            if page:
                yield page
            if len(page) < ROWS_PER_STATEMENT:
                return
            after = tuple(page[-1][at] for at in key_at)

    def _page(self, db: Database, after: tuple | None) -> tuple[list[tuple], list[int]]:
        """The page of rows after the key `after` (None: the first page), read a range at a time
        until it is full, and where each column of the order is in its rows."""
        page: list[tuple] = []
        for conditions, args in self._ranges_after(after):
            cursor = db.execute(self._statement(self.filters + conditions) + f" LIMIT {ROWS_PER_STATEMENT - len(page)}",
                                (*self.args, *args))
            page += cursor.fetchall()
            if len(page) == ROWS_PER_STATEMENT:
                break
        names = [column[0] for column in cursor.description]
        return page, [names.index(ordered.column.rpartition(".")[2]) for ordered in self.order]

    def _ranges_after(self, after: tuple | None) -> Iterator[tuple[tuple[str, ...], list]]:
        """The rows after the key `after` as ranges of the order's index, in order: for each
        column from the last, the rows whose key has the columns before it equal to `after`'s
        and its own greater. A row value comparison, (a, b) > (?, ?), would be one range, but
        compares nothing to a NULL: after a key holding one (a note's document) it finds no row."""
        if after is None:
            yield (), []
            return
        for length in reversed(range(len(self.order))):
            conditions, args = [], []
            for ordered, value in zip(self.order[:length], after):
                conditions.append(f"{ordered.column} IS NULL" if value is None else f"{ordered.column} = ?")
                args += [] if value is None else [value]
            column, value = self.order[length].column, after[length]
            conditions.append(f"{column} IS NOT NULL" if value is None else f"{column} > ?")
            yield tuple(conditions), args + ([] if value is None else [value])

    def _statement(self, conditions: tuple[str, ...]) -> str:
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        return f"{self.select}{where} ORDER BY {', '.join(ordered.term() for ordered in self.order)}"


def claims_listing(url_key: str | None, document_key: str | None, uncaptured: bool, include_superseded: bool,
                   broken: bool, formerly: bool) -> Listing:
    """The claims Catalog.claims() and claim_pages() list, notes (of no document) first, then by
    document and place in it. `uncaptured` and `broken` are asked of each claim a page reads,
    from where the page before ended until it is full. Asked of every citation at once (an IN
    list), or through the join PostgreSQL makes of a plain EXISTS, they read every citation for
    each page: for a million claims, all of them 2,000 times. OFFSET 0 keeps PostgreSQL from
    making that join (SQLite takes an OFFSET only after a LIMIT)."""
    filters, args = [], []
    if not include_superseded:
        filters.append("cl.superseded_at IS NULL")
    if url_key is not None:
        filters.append("(cl.id IN (SELECT claim_id FROM citations WHERE url_key = ?)"
                       + (" OR cl.id IN (SELECT claim_id FROM former_citations WHERE url_key = ?))" if formerly else ")"))
        args += [url_key, url_key] if formerly else [url_key]
    if document_key is not None:
        filters.append("cl.document_key = ?")
        args.append(document_key)
    if uncaptured:
        filters.append("EXISTS (SELECT 1 FROM citations ci WHERE ci.claim_id = cl.id AND NOT EXISTS"
                       " (SELECT 1 FROM captures k WHERE k.url_key = ci.url_key AND k.outcome = 'ok') LIMIT 1 OFFSET 0)")
    if broken:
        filters.append("EXISTS (SELECT 1 FROM citations ci JOIN captures k ON k.id ="
                       " (SELECT n.id FROM captures n WHERE n.url_key = ci.url_key ORDER BY n.started_at DESC, n.id DESC LIMIT 1)"
                       " WHERE ci.claim_id = cl.id AND (k.outcome = 'failed' OR k.verdict IS NULL OR k.verdict <> 'content')"
                       " LIMIT 1 OFFSET 0)")
    return Listing("SELECT cl.* FROM claims cl", tuple(filters), tuple(args),
                   (Ordered("cl.document_key", nulls_first=True), Ordered("cl.text_start", nulls_first=True),
                    Ordered("cl.id")))


def captures_listing(url_key: str | None) -> Listing:
    """The captures Catalog.captures() and capture_pages() list, oldest first."""
    filters, args = (("url_key = ?",), (url_key,)) if url_key is not None else ((), ())
    return Listing("SELECT * FROM captures", filters, args, (Ordered("started_at"), Ordered("id")))
