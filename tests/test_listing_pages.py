"""The listings' pages (store/listings.py): each read by statements of its own after the last row
of the page before, on the index of the listing's order (migration 0012), holding nothing on the
database between pages, and splitting the listing anywhere, NULL keys too, without a row skipped
or repeated."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from archiver.read.urls import normalise_url
from archiver.store import catalog as catalog_module
from archiver.store import listings
from archiver.store.catalog import Catalog
from archiver.store.database import ROWS_PER_STATEMENT, open_database, write_transaction
from archiver.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.conftest import make_collection
from tests.test_claim_listing import _claim, _document, fill, filled, notes

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

FILTERS = [{}, {"include_superseded": True}, {"uncaptured": True}, {"broken": True},
           {"url_key": normalise_url("https://example.org/page/3"), "formerly": True},
           {"url_key": normalise_url("https://example.org/page/0"), "formerly": True, "include_superseded": True},
           {"document_key": "seeds/c.csv"}, {"document_key": "seeds/tied.txt", "broken": True}]


def test_pages_of_any_size_split_at_every_kind_of_key_list_each_claim_once_in_order(collection, monkeypatch):
    """Pages of one, two and three rows end at every key: a note's (no document), a claim of no
    span (NULL start), one of both, and claims sharing their document and start (told apart by id)."""
    with collection:
        catalog = collection.catalog
        fill(catalog, 40)
        notes(catalog)
        for number in (3, 4, 5):
            catalog.add_note(_claim("note", number, [f"https://example.org/page/{number}"], start=None),
                             "2024-01-06T00:00:00Z")
        tied = [_claim("seeds/tied.txt", 100 + n, [f"https://example.org/page/{n}"], start=-100 - n) for n in range(4)]
        assert {claim.start for claim in tied} == {0}
        catalog.record_document(_document("seeds/tied.txt", tied), "2024-01-06T00:00:00Z")
        for size in (1, 2, 3):
            monkeypatch.setattr(listings, "ROWS_PER_STATEMENT", size)
            for filters in FILTERS:
                expected = [claim.id for claim in catalog.claims(**filters)]
                pages = [[claim.id for claim in page] for page in catalog.claim_pages(**filters)]
                assert [claim for page in pages for claim in page] == expected, (size, filters)
                assert all(len(page) == size for page in pages[:-1]), (size, filters)
            assert [c.id for page in catalog.capture_pages() for c in page] == [c.id for c in catalog.captures()]


def nothing_held(collection) -> None:
    """Another process writes the catalog, and on SQLite checkpoints its whole write-ahead log
    into the file, which no reader may still be reading (a reader in its read transaction keeps
    the log); on PostgreSQL the listing's own session holds no cursor."""
    writer = Catalog(collection.catalog_location)
    writer.add_note(_claim("note", 9, ["https://example.org/page/9"]), "2024-02-01T00:00:00Z")  # listed first: not again
    writer.close()
    if collection.config.catalog_url:
        assert collection.catalog.query("SELECT name FROM pg_cursors").fetchall() == []
        return
    with sqlite3.connect(collection.catalog_path, timeout=0) as other:
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "a reader held the write-ahead log"
    assert collection.catalog_path.with_name("catalog.sqlite-wal").stat().st_size == 0


@pytest.mark.parametrize("listing", ["claims", "captures"])
def test_between_two_pages_of_a_listing_nothing_is_held_on_the_database(collection, listing):
    filled(collection, 2 * ROWS_PER_STATEMENT, with_notes=False)
    with collection:
        catalog = collection.catalog
        expected = [row.id for row in getattr(catalog, listing)()]
        pages = getattr(catalog, listing.removesuffix("s") + "_pages")()
        first = next(pages)
        nothing_held(collection)
        assert [row.id for page in (first, *pages) for row in page] == expected


def test_archiver_claims_read_slowly_lets_another_process_checkpoint_the_write_ahead_log(tmp_path, run_cli):
    """`archiver claims --json | less`: the listing waits to write its first page (far more than
    a pipe holds) while the reader reads its first line; the catalog is written and its log
    checkpointed meanwhile, and the listing goes on to the end."""
    collection = make_collection(tmp_path / "collection")
    filled(collection, 2 * ROWS_PER_STATEMENT + 30, with_notes=False)
    expected = run_cli("claims", "-C", collection.root, "--json").stdout
    assert len(expected) / len(json.loads(expected)) * ROWS_PER_STATEMENT > 4 * 64 * 1024, "a page would fit in a pipe"
    listing = subprocess.Popen([sys.executable, "-m", "archiver", "claims", "-C", str(collection.root), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TTY_COMPATIBLE": "0"})
    first = listing.stdout.readline()
    with collection:
        nothing_held(collection)
    listed = first + listing.stdout.read()
    assert listing.wait(timeout=120) == 0, listing.stderr.read()
    assert listed.decode() == expected


class RecordingDatabase:
    """The catalog's real database, keeping each statement of a page of claims it runs."""

    def __init__(self, db) -> None:
        self._db, self.pages = db, []

    def execute(self, sql, args=()):
        if sql.startswith("SELECT cl.* FROM claims") and " LIMIT " in sql:
            self.pages.append((sql, tuple(args)))
        return self._db.execute(sql, args)

    def __getattr__(self, name):
        return getattr(self._db, name)


def test_an_older_catalog_opened_gains_the_index_each_page_of_claims_is_a_range_of(tmp_path, catalog_backend,
                                                                                   monkeypatch):
    """A catalog at the schema before 0012, with claims, opened by this archiver: upgraded, and
    each statement of a page of claims, from the first claim to the last, reads a range of the
    new index in the listing's order, with no sort (on PostgreSQL, one it could choose no other way)."""
    location = catalog_backend or tmp_path / "catalog.sqlite"
    older = open_database(location)
    with write_transaction(older):  # the catalog as archiver wrote it then
        for migration in MIGRATIONS[:11]:
            for statement in migration.statements(older.kind):
                older.execute(older.migration_statement(statement))
        older.execute("INSERT INTO claims (id, document_key, text, text_start, kind, first_seen_at) VALUES"
                      " ('n1', NULL, 'a note', NULL, 'note', 't'), ('n2', NULL, 'a note', 4, 'note', 't')")
        older.set_schema_version(11)
    older.close()

    recorded = []
    opened = catalog_module.open_database
    monkeypatch.setattr(catalog_module, "open_database",
                        lambda at: recorded.append(RecordingDatabase(opened(at))) or recorded[-1])
    catalog = Catalog(location)
    try:
        [db] = recorded
        assert db.schema_version() == SCHEMA_VERSION
        fill(catalog, 30)
        monkeypatch.setattr(listings, "ROWS_PER_STATEMENT", 4)
        expected = [claim.id for claim in catalog.claims()]
        assert expected[:2] == ["n1", "n2"]
        assert [claim.id for page in catalog.claim_pages() for claim in page] == expected
        assert len(db.pages) > len(expected) / 4
        postgresql = isinstance(location, str)
        if postgresql:
            catalog.query("SET enable_sort = off")
            catalog.query("SET enable_seqscan = off")
        for sql, args in db.pages:
            plan = "\n".join(str(row[-1]) for row in catalog.query(
                ("EXPLAIN " if postgresql else "EXPLAIN QUERY PLAN ") + sql, args).fetchall())
            if postgresql:
                assert "Index Scan using claims_in_listing_order" in plan and "Sort" not in plan, (sql, plan)
            else:
                assert "USING INDEX claims_in_listing_order" in plan and "TEMP B-TREE" not in plan, (sql, plan)
    finally:
        catalog.close()
