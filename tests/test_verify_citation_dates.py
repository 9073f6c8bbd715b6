"""`archiver verify` holds the dates the evidence report marks captures by (a claim first found,
a URL begun and stopped citing) and where each document was read from to the signed "document
read" entries: an intruder who edits them in the catalog is named, an honest collection whose
re-reads dropped and added URLs verifies."""

from __future__ import annotations

import sqlite3

import pytest

from archiver.check.citation_dates import check_citation_dates
from archiver.check.custody_log import Logged
from archiver.check.documents import check_document_paths
from archiver.check.findings import Report
from archiver.store.catalog import Catalog
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_verify import verify

CATALOG_BACKENDS = ("sqlite", "postgresql")  # the honest collection, on both (conftest)


def reread(run_cli, raw_server, collection):
    """A sheet read three times: row A cites /one, then /three instead, then /one again; row B
    cites /two throughout; row C, citing /two, is added at the third read."""
    server = raw_server({f"/{name}": send_bytes(http_response(f"<p>page {name}</p>".encode()))
                         for name in ("one", "two", "three")})
    sheet = collection.root / "seeds" / "sheet.csv"
    for rows in ((("A", "one"), ("B", "two")), (("A", "three"), ("B", "two")),
                 (("A", "one"), ("B", "two"), ("C", "two"))):
        sheet.write_text("claim,url\n" + "".join(f"Row {claim} says so,{server.url('/' + url)}\n" for claim, url in rows))
        assert run_cli("capture", "-C", collection.root, sheet).exit_code == 0
    collection.server = server
    return collection


@pytest.fixture
def rows(run_cli, raw_server, tmp_path):
    return reread(run_cli, raw_server, make_collection(tmp_path / "rows"))


def test_a_sheet_whose_rereads_drop_and_add_urls_verifies(run_cli, raw_server, collection):
    report = verify(run_cli, reread(run_cli, raw_server, collection))
    assert report["ok"], report["failures"]
    # Each claim's first read, the URLs begun at the second and third reads, those dropped.
    assert report["passed"]["claim first found"] == 3 and report["passed"]["citation dates"] >= 6, report["passed"]
    assert report["passed"]["document path"] == 1


def edit(collection, statement: str, parameters: tuple = ()) -> None:
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    catalog.execute(statement, parameters)
    catalog.commit()
    catalog.close()


def query(collection, statement: str, parameters: tuple = ()) -> list[tuple]:
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    try:
        return catalog.execute(statement, parameters).fetchall()
    finally:
        catalog.close()


def claim_of(collection, row: str) -> tuple[str, str]:
    """(id, first_seen_at) of the claim of a sheet row."""
    [found] = query(collection, "SELECT id, first_seen_at FROM claims WHERE text = ?", (f"Row {row} says so",))
    return found


def findings(collection, run_cli) -> list[tuple[str, str, str]]:
    report = verify(run_cli, collection)
    assert not report["ok"]
    return [(f["check"], f["where"], f["detail"]) for f in report["failures"]]


def test_a_url_moved_to_have_been_cited_from_the_claims_first_read_fails(run_cli, rows):
    """Row A began citing /one again at the third read: dated back to its first read, the report
    would mark a capture of /one made between as made while the claim cited it."""
    claim_id, first_seen_at = claim_of(rows, "A")
    edit(rows, "UPDATE citations SET cited_since = ? WHERE claim_id = ?", (first_seen_at, claim_id))
    [(check, where, detail)] = findings(rows, run_cli)
    assert (check, where) == ("citation dates", f"claim {claim_id}")
    assert f"signed that it began citing {rows.server.url('/one')} then; the catalog dates that otherwise" in detail


def test_a_dropped_url_given_another_end_fails(run_cli, rows):
    claim_id, _ = claim_of(rows, "A")
    edit(rows, "UPDATE former_citations SET dropped_at = '2099-01-01T00:00:00.000000Z'"
               " WHERE claim_id = ? AND url_key LIKE '%/three'", (claim_id,))
    failures = findings(rows, run_cli)
    assert ("citation dates", f"claim {claim_id}", f"stopped citing {rows.server.url('/three')} at "
            "2099-01-01T00:00:00.000000Z in the catalog, a time no signed read of document seeds/sheet.csv has") \
        in failures
    # and the read that dropped it says so
    assert any(f"signed that it stopped citing {rows.server.url('/three')} then" in detail for *_, detail in failures)


def test_a_url_whose_start_is_emptied_fails(run_cli, rows):
    """An empty start reads 'from no earlier than its first read' in the report: only a citation
    from before archiver dated them may have one."""
    claim_id, _ = claim_of(rows, "C")
    edit(rows, "UPDATE citations SET cited_since = NULL WHERE claim_id = ?", (claim_id,))
    [(check, where, detail)] = findings(rows, run_cli)
    assert (check, where) == ("citation dates", f"claim {claim_id}")
    assert detail.startswith(f"cites {rows.server.url('/two')} since no recorded time")


def test_a_claim_and_its_url_dated_back_together_fail(run_cli, rows):
    """Row C, first found at the third read, made to look found (and citing /two) from the first."""
    claim_id, _ = claim_of(rows, "C")
    _, first_read = claim_of(rows, "A")
    edit(rows, "UPDATE claims SET first_seen_at = ? WHERE id = ?", (first_read, claim_id))
    edit(rows, "UPDATE citations SET cited_since = ? WHERE claim_id = ?", (first_read, claim_id))
    [(check, where, detail)] = findings(rows, run_cli)
    assert (check, where) == ("claim first found", f"claim {claim_id}")
    assert detail.startswith(f"first found at {first_read} in the catalog, but the first signed read listing it was at")


def test_a_documents_path_edited_fails(run_cli, rows):
    edit(rows, "UPDATE documents SET path = '/elsewhere/sheet.csv'")
    [(check, where, detail)] = findings(rows, run_cli)
    assert (check, where) == ("document path", "document seeds/sheet.csv")
    assert detail.startswith("read from '/elsewhere/sheet.csv', the catalog says; its latest signed read names '")


@pytest.fixture
def noted(run_cli, raw_server, tmp_path):
    """A note cited twice: /one, then /two as well."""
    collection = make_collection(tmp_path / "noted")
    server = raw_server({f"/{name}": send_bytes(http_response(f"<p>page {name}</p>".encode())) for name in ("one", "two")})
    for url in ("/one", "/two"):
        assert run_cli("cite", "-C", collection.root, "The minister said it on Monday", server.url(url)).exit_code == 0
    collection.server = server
    assert verify(run_cli, collection)["ok"]
    return collection


def test_a_notes_second_url_dated_back_to_its_first_entry_fails(run_cli, noted):
    [(claim_id, first_seen_at)] = query(noted, "SELECT id, first_seen_at FROM claims")
    edit(noted, "UPDATE citations SET cited_since = ? WHERE url_key LIKE '%/two'", (first_seen_at,))
    [(check, where, detail)] = findings(noted, run_cli)
    assert (check, where) == ("citation dates", f"claim {claim_id}")
    assert detail.startswith(f"began citing {noted.server.url('/two')} at {first_seen_at} in the catalog, but the first "
                             "note entry naming it was at ")


def test_a_note_dated_back_fails(run_cli, noted):
    [(claim_id, _)] = query(noted, "SELECT id, first_seen_at FROM claims")
    edit(noted, "UPDATE claims SET first_seen_at = '2020-01-01T00:00:00.000000Z'")
    [(check, where, detail)] = findings(noted, run_cli)
    assert (check, where) == ("claim first found", f"claim {claim_id}")
    assert detail.startswith("first recorded at 2020-01-01T00:00:00.000000Z in the catalog, but its first note entry was at ")


def test_what_reads_signed_before_their_path_and_time_say_is_not_checked_never_passed(rows):
    """Reads logged by an archiver that signed neither: the dates and the path are named under
    not checked, and no check of them is counted as passed."""
    catalog = Catalog(rows.catalog_location)
    claims = [claim_id for (claim_id,) in catalog.query("SELECT id FROM claims")]
    custody = Logged(claims_read=dict.fromkeys(claims, 1), documents_last_read={"seeds/sheet.csv": 3},
                     documents_path={"seeds/sheet.csv": None}, claims_first_read=dict.fromkeys(claims))
    report = Report()
    check_citation_dates(catalog, custody, report)
    check_document_paths(catalog, custody, report)
    catalog.close()
    assert not report.failures and not report.passed
    assert report.not_checked == [
        "claims: 10 date(s) a claim was first found or began or stopped citing a URL, set by reads signed before "
        "archiver signed their time and what they changed: not checked",
        "documents: the path of 1 document(s) last read before archiver signed where a document was read from"]
