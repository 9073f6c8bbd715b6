"""`archiver verify` against an intruder who edits the catalog's own columns so that checks
are passed by: a capture moved out of its WARC file, a failed capture rewritten, a file of
archiver's own passed off as imported. Each edit needs no key, so each must fail."""

from __future__ import annotations

import sqlite3

from tests.conftest import make_collection
from tests.test_verify import verify
from tests.test_verify_forgery import honest  # noqa: F401  (a fixture)


def edit_catalog(collection, statement: str, parameters: tuple = ()) -> None:
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    catalog.execute(statement, parameters)
    catalog.commit()
    catalog.close()


def test_a_capture_whose_warc_file_is_erased_is_still_held_to_its_attestation(run_cli, honest):  # noqa: F811
    """Only a capture that failed before any byte was stored has no file and no attestation:
    erasing a stored capture's file from the catalog must not spare it the attestation's checks."""
    assert verify(run_cli, honest)["ok"]
    edit_catalog(honest, "UPDATE captures SET warc_file = NULL, http_status = 404, verdict = 'not-found'")
    details = {f["detail"] for f in verify(run_cli, honest)["failures"] if f["check"] == "attestation claims"}
    assert details == {"http_status: attested 200, catalog has 404", "verdict: attested content, catalog has not-found"}


def test_a_failed_capture_rewritten_in_the_catalog_fails_against_its_custody_entry(run_cli, closed_port, tmp_path):
    """A failure has no attestation: its custody entry (URL, outcome, error) is what holds it."""
    collection = make_collection(tmp_path / "failed")
    assert run_cli("capture", "-C", collection.root, f"http://127.0.0.1:{closed_port}/gone").exit_code == 1
    assert verify(run_cli, collection)["ok"]
    edit_catalog(collection, "UPDATE captures SET outcome = 'ok', error = NULL")
    failures = verify(run_cli, collection)["failures"]
    assert {f["check"] for f in failures} == {"failed capture as logged"}
    assert failures[0]["detail"].startswith("outcome: logged 'failed', catalog has 'ok'; error: logged ")
