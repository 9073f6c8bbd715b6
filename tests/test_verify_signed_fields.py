"""`archiver verify` against an intruder who edits what the catalog says of claims and manifests
that the custody log or the newest signed manifest holds otherwise: what listings and bundles
show (a claim hidden as superseded, a claim sheet's date) and a signed manifest erased whole.
Each edit needs no key, and each is what the next `archiver bundle` would sign anew."""

from __future__ import annotations

import sqlite3

from tests.test_verify import verify
from tests.test_verify_forgery import cited, honest  # noqa: F401  (fixtures)


def edit_catalog(collection, statement: str) -> None:
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    catalog.execute(statement)
    catalog.commit()
    catalog.close()


def test_a_current_claim_marked_superseded_in_the_catalog_fails(run_cli, cited):  # noqa: F811
    """`claims` and `claims --broken` leave a superseded claim out: marking one so hides it, though
    the document's latest read (custody log) names it among its claims and the manifest lists it current."""
    assert verify(run_cli, cited)["ok"]
    edit_catalog(cited, "UPDATE claims SET superseded_at = '2026-12-03T00:00:00Z' WHERE text = 'The minister said it.'")
    assert not verify(run_cli, cited)["ok"]


def test_a_claims_date_written_into_the_catalog_fails(run_cli, cited):  # noqa: F811
    """A claim's extra fields (a sheet row's date, source, notes) are listed by the signed manifest;
    one the document never gave, written into the catalog, must not pass."""
    assert verify(run_cli, cited)["ok"]
    edit_catalog(cited, """UPDATE claims SET extra = '{"date": "2020-01-01"}' WHERE text = 'The minister said it.'""")
    assert not verify(run_cli, cited)["ok"]


def test_a_manifest_erased_with_its_catalog_row_fails_against_its_custody_entry(run_cli, honest):  # noqa: F811
    """The custody log records each manifest signed (sequence, SHA-256): one erased from the
    folder and the catalog is missing, not "none exported yet"."""
    assert verify(run_cli, honest)["ok"]
    for path in (honest.root / "manifests").iterdir():
        path.unlink()
    edit_catalog(honest, "DELETE FROM manifests")
    report = verify(run_cli, honest)
    assert not report["ok"]
    assert not any("none exported yet" in line for line in report["not_checked"])
