"""Captures stored together (a group commit) cost the catalog a few statements, not a few per
capture: on a PostgreSQL catalog each statement is a round trip, made by a worker under its
store's lock or in the transaction at upload that every worker's listing waits for."""

from __future__ import annotations

from archiver.capture.run import CaptureRun
from archiver.evidence.keys import open_signing_key
from tests.conftest import capture, make_collection
from tests.test_doctor import page

CATALOG_BACKENDS = ["sqlite", "postgresql"]


def statements_of(catalog, monkeypatch) -> list[str]:
    """The SQL of every statement `catalog` runs from now on."""
    statements: list[str] = []
    db = catalog._db
    execute, executemany = db.execute, db.executemany
    monkeypatch.setattr(db, "execute", lambda sql, args=(): statements.append(sql) or execute(sql, args))
    monkeypatch.setattr(db, "executemany", lambda sql, rows: statements.append(sql) or executemany(sql, rows))
    return statements


def stored_together(collection, urls: list[str], monkeypatch) -> tuple[list, list[str]]:
    """`urls` fetched, then stored in one group; the rows and the catalog's statements meanwhile."""
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        results = [run.pages.fetch(url) for url in urls]
        statements = statements_of(run.catalog, monkeypatch)
        try:
            rows = run._store(results)
        finally:
            for result in results:
                result.release()
            monkeypatch.undo()
    return rows, statements


def test_captures_stored_together_are_listed_with_one_statement_per_table(raw_server, collection, monkeypatch):
    server = raw_server({f"/{i}": page for i in range(4)})
    rows, statements = stored_together(collection, [server.url(f"/{i}") for i in range(4)], monkeypatch)
    tables = ("captures", "records", "attestations")
    inserts = [sql.split()[2] for sql in statements if sql.startswith("INSERT INTO")]
    assert sorted(table for table in inserts if table in tables) == sorted(tables)  # once each, for 4 captures
    with collection:
        catalog = collection.catalog
        assert sorted(c.id for c in catalog.captures()) == sorted(row.id for row in rows)
        for row in rows:
            assert [r.warc_type for r in catalog.records(row.id)] == ["request", "response", "metadata", "metadata"]
            assert catalog.attestation(row.id) is not None


def test_a_capture_whose_job_was_listed_elsewhere_is_listed_in_a_group_as_of_no_job(raw_server, tmp_path,
                                                                                    postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page, "/b": page})
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        elsewhere = run.capture_job(server.url("/a"), "7")
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        results = [run.pages.fetch(server.url(path)) for path in ("/a", "/b")]
        try:
            again, other = run._store(results, ["7", "8"])
        finally:
            for result in results:
                result.release()
    with collection:
        jobs = {c.id: c.job_id for c in collection.catalog.captures()}
    assert jobs == {elsewhere.id: "7", again.id: None, other.id: "8"}


def test_captures_stored_together_ask_the_catalog_once_for_earlier_identical_payloads(raw_server, collection,
                                                                                      monkeypatch):
    server = raw_server({"/a": page, "/b": page})
    [first] = capture(collection, server.url("/a"))
    rows, statements = stored_together(collection, [server.url("/a"), server.url("/b")], monkeypatch)
    assert len([sql for sql in statements if "payload_digest IS NOT NULL" in sql]) == 1
    assert [row.revisit_of for row in rows] == [first.id, None]  # /a unchanged: a revisit of the first
