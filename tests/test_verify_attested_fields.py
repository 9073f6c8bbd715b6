"""`archiver verify` against catalog edits of what a capture's signed attestation covers, though
not column for column: a record's WARC-Truncated (signed with the record), which capture a
revisit stands for (its signed WARC-Refers-To), and a capture's response size and redirects
(signed since this version). Each edit, made in the catalog alone, must fail."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from archiver.check.attestations import ATTESTED, _opened
from archiver.evidence.keys import open_signing_key
from archiver.evidence.signing import canonical_json, sign_statement
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_verify import verify


def edit_catalog(collection, statement: str, args: tuple = ()) -> None:
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    catalog.execute(statement, args)
    catalog.commit()
    catalog.close()


def catalog_rows(collection, query: str, args: tuple = ()) -> list[tuple]:
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    try:
        return catalog.execute(query, args).fetchall()
    finally:
        catalog.close()


@pytest.fixture
def captured(run_cli, raw_server, tmp_path):
    """A collection of a page cut short by --max-size, a page reached through a redirect, a page
    captured twice unchanged (the second a revisit of the first) and another page; no manifest,
    so that what the attestations hold the catalog to is all that can catch an edit."""
    collection = make_collection(tmp_path / "captured")
    server = raw_server({"/long": send_bytes(http_response(b"<p>long</p>" * 20_000)),
                         "/moved": send_bytes(b"HTTP/1.1 302 Found\r\nLocation: /same\r\nContent-Length: 0\r\n\r\n"),
                         "/same": send_bytes(http_response(b"<p>the same page</p>")),
                         "/other": send_bytes(http_response(b"<p>another page, another claim</p>"))})
    for path in ("/long", "/same", "/same", "/moved", "/other"):
        assert run_cli("capture", "-C", collection.root, "--max-size", "10kB", server.url(path)).exit_code == 0
    collection.urls = {path: server.url(path) for path in ("/long", "/same", "/other", "/moved")}
    assert verify(run_cli, collection)["ok"]
    return collection


def capture_of(collection, path: str) -> str:
    """The id of the newest capture of `path`."""
    return catalog_rows(collection, "SELECT id FROM captures WHERE url = ? ORDER BY started_at DESC, id DESC LIMIT 1",
                        (collection.urls[path],))[0][0]


@pytest.mark.parametrize("cut_short", [True, False])
def test_a_records_truncation_changed_in_the_catalog_fails(run_cli, captured, cut_short):
    """A record's WARC-Truncated is signed with it: the catalog's column, which says whether the
    record holds the whole response, is held to the record as read, both ways."""
    edit_catalog(captured, "UPDATE records SET truncated = ? WHERE role = 'response' AND truncated IS "
                 + ("NOT NULL" if cut_short else "NULL"), (None if cut_short else "length",))
    failures = verify(run_cli, captured)["failures"]
    assert {f["check"] for f in failures} == {"record header"}
    assert all("WARC-Truncated: expected " in f["detail"] for f in failures)


@pytest.mark.parametrize("forgery", ["another URL's capture", "none", "on a capture that is no revisit"])
def test_which_capture_a_revisit_stands_for_changed_in_the_catalog_fails(run_cli, captured, forgery):
    """A revisit's signed WARC-Refers-To names the record holding its payload: the catalog's
    revisit_of, which `show` and a bundle follow to give the capture's page (and a bundle of the
    revisit's URL carries), must be the capture holding that record, and no other capture may
    name one at all."""
    revisit, other = capture_of(captured, "/same"), capture_of(captured, "/other")
    assert catalog_rows(captured, "SELECT revisit_of FROM captures WHERE id = ?", (revisit,))[0][0] is not None
    if forgery == "another URL's capture":
        edit_catalog(captured, "UPDATE captures SET revisit_of = ? WHERE id = ?", (other, revisit))
    elif forgery == "none":
        edit_catalog(captured, "UPDATE captures SET revisit_of = NULL WHERE id = ?", (revisit,))
    else:
        edit_catalog(captured, "UPDATE captures SET revisit_of = ? WHERE id = ?", (revisit, other))
    [failure] = verify(run_cli, captured)["failures"]
    assert failure["check"] == "attested records" and "revisit_of" in failure["detail"]
    assert failure["where"] == f"capture {other if forgery == 'on a capture that is no revisit' else revisit}"


@pytest.mark.parametrize("column, value", [("response_length", 5), ("redirects", 0)])
def test_a_captures_response_size_or_redirects_changed_in_the_catalog_fails(run_cli, captured, column, value):
    """`captures` and `show` print a capture's response size and how many redirects it
    followed: its attestation signs them."""
    moved = capture_of(captured, "/moved")
    [(before,)] = catalog_rows(captured, f"SELECT {column} FROM captures WHERE id = ?", (moved,))
    assert before not in (None, value)
    edit_catalog(captured, f"UPDATE captures SET {column} = ? WHERE id = ?", (value, moved))
    [failure] = verify(run_cli, captured)["failures"]
    assert (failure["check"], failure["where"]) == ("attestation claims", f"capture {moved}")
    assert failure["detail"] == f"{column}: attested {before}, catalog has {value}"


def test_an_attestation_from_before_response_size_and_redirects_were_signed_still_verifies(captured):
    """An older archiver's attestation does not name them: it verifies by what it signed, and
    those two columns are held to nothing (verify says so), while one that names them is held to them."""
    from archiver.evidence.attestation import SIGNED_SINCE  # imported here: the other tests run on an archiver without it
    moved = capture_of(captured, "/moved")
    [(text,)] = catalog_rows(captured, "SELECT envelope FROM attestations WHERE capture_id = ?", (moved,))
    [row] = catalog_rows(captured, f"SELECT {', '.join(ATTESTED)} FROM captures WHERE id = ?", (moved,))
    key = open_signing_key(captured, None, None)
    keys = {key.fingerprint: key.public}
    statement = json.loads(base64.b64decode(json.loads(text)["payload"]))
    edited = list(row)
    edited[ATTESTED.index("response_length")] = 5
    assert {name for name, _, _ in _opened(text, keys, moved, edited).differing} == {"response_length"}
    for name in SIGNED_SINCE:
        del statement["predicate"][name]
    older = canonical_json(sign_statement(statement, key)).decode()
    opened = _opened(older, keys, moved, edited)
    assert opened.signers == (key.fingerprint,) and opened.differing == () and opened.unnamed == SIGNED_SINCE


def test_what_a_captures_record_lacks_changed_in_the_catalog_fails(run_cli, captured):
    """The run's summary, `captures` and `show` say from the catalog when a capture's record holds
    less than the page had ("incomplete: …"): its attestation signs it, so that a catalog edited
    to hide it (or to add one) fails."""
    moved = capture_of(captured, "/moved")
    [(before,)] = catalog_rows(captured, "SELECT incomplete FROM captures WHERE id = ?", (moved,))
    assert before is None
    edit_catalog(captured, "UPDATE captures SET incomplete = ? WHERE id = ?", ("incomplete: forged", moved))
    [failure] = verify(run_cli, captured)["failures"]
    assert (failure["check"], failure["where"]) == ("attestation claims", f"capture {moved}")
    assert failure["detail"] == "incomplete: attested None, catalog has incomplete: forged"
