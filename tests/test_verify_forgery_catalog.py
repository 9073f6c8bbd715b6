"""`archiver verify` against an intruder who edits the catalog's columns and the WARC files
so that checks are passed by: a capture moved out of its WARC file, a failed capture
rewritten, a record that readers read otherwise than verify (a header given twice), a record
appended under an id the catalog lists elsewhere, a file of archiver's own passed off as
imported. None needs the key, so each must fail."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sqlite3

import pytest

from archiver.check.custody_log import Logged
from archiver.check.findings import Report
from archiver.check.manifest_entries import ManifestEntries
from archiver.check.scan import scan_warc
from archiver.store.catalog import Catalog
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_verify import verify
from tests.test_verify_forgery import cited, honest, same_length_member  # noqa: F401  (fixtures)


# What any edit of a closed file's bytes fails besides, once the catalog's SHA-256 of it is
# made to agree: the size and SHA-256 the file's close and the newest manifest signed.
FILE_DIGEST_SIGNED = {"WARC file close in custody log", "manifest matches catalog", "WARC file SHA-256", "WARC file size"}


def other_failures(report: dict) -> list[dict]:
    """The failures of `report` but those FILE_DIGEST_SIGNED, each of which the test also asserts."""
    assert {f["check"] for f in report["failures"]} & FILE_DIGEST_SIGNED, report["failures"]
    return [f for f in report["failures"] if f["check"] not in FILE_DIGEST_SIGNED]


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


def warc_record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    """One WARC record's bytes, its headers in the order given (repeats kept)."""
    head = "WARC/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode() + f"Content-Length: {len(block)}\r\n\r\n".encode() + block + b"\r\n\r\n"


def append_member(collection, name: str, record: bytes) -> None:
    """`record` appended to the WARC file `name` as a gzip member of its own, with the
    catalog's size and SHA-256 of the file made to agree."""
    path = collection.storage.folder / name
    data = path.read_bytes() + gzip.compress(record)
    path.write_bytes(data)
    edit_catalog(collection, "UPDATE warc_files SET size = ?, sha256 = ? WHERE name = ?",
                 (len(data), hashlib.sha256(data).hexdigest(), name))


def a_forged_response(collection, record_id: str, extra: list[tuple[str, str]] = ()) -> bytes:
    """A made-up response for the URL of the collection's first capture, as a replay would index it."""
    [url] = sqlite3.connect(collection.root / "catalog.sqlite").execute("SELECT url FROM captures LIMIT 1").fetchone()
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>troops left</p>"
    return warc_record([("WARC-Type", "response"), ("WARC-Record-ID", record_id), ("WARC-Date", "2026-12-01T00:00:00Z"),
                        ("WARC-Target-URI", url), ("Content-Type", "application/http;msgtype=response"),
                        ("WARC-Block-Digest", "sha256:" + hashlib.sha256(block).hexdigest()), *extra], block)


def files_and_ids(collection) -> list[tuple[str, str, str]]:
    """(file, record id, warcinfo id of the file) of each cataloged record, oldest file first."""
    return sqlite3.connect(collection.root / "catalog.sqlite").execute(
        "SELECT r.warc_file, r.record_id, f.warcinfo_id FROM records r JOIN warc_files f ON f.name = r.warc_file"
        " ORDER BY f.opened_at, r.warc_offset").fetchall()


def test_a_record_giving_its_type_twice_fails_as_a_file_no_reader_reads_alike(run_cli, honest):  # noqa: F811
    """warcio (and so every replay) takes a header's first value; a record naming itself a
    response and then the file's warcinfo must not pass as the warcinfo."""
    name, _, warcinfo_id = files_and_ids(honest)[0]
    append_member(honest, name, a_forged_response(honest, warcinfo_id, [("warc-type", "warcinfo")]))
    [failure] = other_failures(verify(run_cli, honest))
    assert failure["check"] == "WARC file readable" and "warc-type header twice" in failure["detail"]


def test_a_signed_record_given_a_second_date_first_fails(run_cli, honest):  # noqa: F811
    """A second WARC-Date put before the signed one dates the capture for every replay."""
    catalog = sqlite3.connect(honest.root / "catalog.sqlite")
    record_id, name, offset, length = catalog.execute(
        "SELECT record_id, warc_file, warc_offset, length FROM records WHERE warc_type = 'response'").fetchone()
    path = honest.storage.folder / name
    data = path.read_bytes()
    record = gzip.decompress(data[offset:offset + length]).replace(b"WARC/1.1\r\n", b"WARC/1.1\r\nWARC-Date: 2019-03-01T09:00:00Z\r\n", 1)
    record = re.sub(rb"WARC-(Warcinfo-ID|Concurrent-To): [^\r]*\r\n", b"", record)  # unsigned: room for the date
    data = data[:offset] + same_length_member(record, length) + data[offset + length:]
    path.write_bytes(data)
    edit_catalog(honest, "UPDATE warc_files SET size = ?, sha256 = ? WHERE name = ?",
                 (len(data), hashlib.sha256(data).hexdigest(), name))
    failures = other_failures(verify(run_cli, honest))
    assert failures[0]["check"] == "WARC file readable" and "WARC-Date header twice" in failures[0]["detail"]
    assert {"record present", "attested records"} <= {f["check"] for f in failures}


def test_a_record_appended_with_the_id_of_a_record_in_another_file_fails(run_cli, raw_server, honest):  # noqa: F811
    """The id of a record cataloged elsewhere is no licence to be in this file."""
    server = raw_server({"/later": send_bytes(http_response(b"<p>later</p>"))})
    assert run_cli("capture", "-C", honest.root, server.url("/later")).exit_code == 0
    [(first, record_id, _), *_rest] = files_and_ids(honest)
    later = files_and_ids(honest)[-1][0]
    assert later != first
    append_member(honest, later, a_forged_response(honest, record_id))
    [failure] = other_failures(verify(run_cli, honest))
    assert (failure["check"], failure["where"]) == ("record listed", f"warcs/{later} {record_id}")
    assert failure["detail"] == f"a response record the catalog lists in {first}, not in this file"


def test_a_record_appended_with_the_id_of_one_before_it_in_the_file_fails(run_cli, honest):  # noqa: F811
    name, record_id, _ = [row for row in files_and_ids(honest)][1]
    append_member(honest, name, a_forged_response(honest, record_id))
    failed = {(f["check"], f["where"]) for f in verify(run_cli, honest)["failures"]}
    assert ("record listed", f"warcs/{name} {record_id}") in failed


def test_a_file_of_archivers_own_marked_as_imported_fails(run_cli, honest):  # noqa: F811
    """An imported file's records need not be captures; only a signed import makes a file one."""
    name, _, _ = files_and_ids(honest)[0]
    append_member(honest, name, a_forged_response(honest, "<urn:uuid:00000000-0000-4000-8000-000000000000>"))
    edit_catalog(honest, "UPDATE warc_files SET imported_from = 'crawl.warc.gz sha256:00'")
    [failure] = other_failures(verify(run_cli, honest))
    assert (failure["check"], failure["where"]) == ("imported file in custody log", f"warcs/{name}")


def test_an_attestation_edited_into_no_json_is_a_finding_not_a_crash(run_cli, honest):  # noqa: F811
    edit_catalog(honest, "UPDATE attestations SET envelope = 'not json'")
    failed = {(f["check"], f["detail"]) for f in verify(run_cli, honest)["failures"]}
    assert ("attestation signature", "the stored attestation is no JSON") in failed


def test_a_document_version_edited_to_name_a_path_is_a_finding_not_a_crash(run_cli, cited):  # noqa: F811
    edit_catalog(cited, "UPDATE document_versions SET sha256 = '../../../../etc/hostname'")
    failed = {(f["check"], f["where"]) for f in verify(run_cli, cited)["failures"]}
    assert ("document version listed", "document version '../../../../etc/hostname'") in failed


def test_a_closed_files_digest_edited_in_the_catalog_fails_against_the_newest_manifest(run_cli, honest):  # noqa: F811
    """What the newest manifest signed of each closed WARC file, its SHA-256 and size, is what
    the catalog must still say: the file's bytes are held to the catalog's."""
    name, _, _ = files_and_ids(honest)[0]
    append_member(honest, name, warc_record([("WARC-Type", "resource"), ("WARC-Record-ID", "<urn:uuid:1>")], b""))
    failed = {(f["check"], f["where"]) for f in verify(run_cli, honest)["failures"]}
    assert ("manifest matches catalog", f"manifests/manifest-1.json WARC file {name}") in failed


def test_a_warcinfo_rewritten_in_a_file_no_manifest_lists_fails_against_its_signed_close(run_cli, raw_server, tmp_path):
    """The warcinfo record says which software made the file, with which settings: no
    attestation names it, but the file's close signed every byte of it."""
    collection = make_collection(tmp_path / "c")
    server = raw_server({"/": send_bytes(http_response(b"<p>a page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    [(name, warcinfo_id)] = sqlite3.connect(collection.root / "catalog.sqlite").execute(
        "SELECT name, warcinfo_id FROM warc_files").fetchall()
    path = collection.storage.folder / name
    data = path.read_bytes()
    length = next(r.length for r in scan_warc(collection.storage, name).records if r.id == warcinfo_id)
    head, block = gzip.decompress(data[:length])[:-4].split(b"\r\n\r\n", 1)
    # Another software named, and a line dropped to make room in the gzip member's length.
    forged = re.sub(rb"conformsTo: [^\r]*\r\n", b"", block.replace(b"software: archiver", b"software: Archivez", 1))
    assert forged != block
    head = re.sub(rb"WARC-Block-Digest: [^\r]*", b"WARC-Block-Digest: sha256:" + hashlib.sha256(forged).hexdigest().encode(), head)
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(forged), head)
    data = same_length_member(head + b"\r\n\r\n" + forged + b"\r\n\r\n", length) + data[length:]
    path.write_bytes(data)
    edit_catalog(collection, "UPDATE warc_files SET sha256 = ? WHERE name = ?", (hashlib.sha256(data).hexdigest(), name))
    failed = {(f["check"], f["where"]) for f in verify(run_cli, collection)["failures"]}
    assert failed == {("WARC file close in custody log", f"warcs/{name}"), ("WARC file SHA-256", f"warcs/{name}")}


@pytest.mark.parametrize("closed_at", [None, ""])
def test_a_file_whose_close_was_signed_is_held_to_it_whatever_the_catalog_says_of_its_close(run_cli, raw_server,
                                                                                            tmp_path, closed_at):
    """A catalog saying a file is still being written must not spare its bytes the SHA-256 its
    close signed."""
    collection = make_collection(tmp_path / "c")
    server = raw_server({"/": send_bytes(http_response(b"<p>a page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    [(name,)] = sqlite3.connect(collection.root / "catalog.sqlite").execute("SELECT name FROM warc_files").fetchall()
    append_member(collection, name, warc_record([("WARC-Type", "resource"), ("WARC-Record-ID", "<urn:uuid:1>")], b"x"))
    edit_catalog(collection, "UPDATE warc_files SET closed_at = ?", (closed_at,))
    failed = {(f["check"], f["where"]) for f in verify(run_cli, collection)["failures"]}
    assert {("WARC file close in custody log", f"warcs/{name}"), ("WARC file SHA-256", f"warcs/{name}")} <= failed


def test_an_imported_file_no_longer_marked_imported_fails_against_its_signed_import(run_cli, raw_server, tmp_path):
    source = make_collection(tmp_path / "source")
    server = raw_server({"/": send_bytes(http_response(b"<p>a page</p>"))})
    assert run_cli("capture", "-C", source.root, server.url("/")).exit_code == 0
    collection = make_collection(tmp_path / "c")
    assert run_cli("import", "-C", collection.root, next(source.storage.folder.glob("*.warc.gz"))).exit_code == 0
    assert verify(run_cli, collection)["ok"]
    edit_catalog(collection, "UPDATE warc_files SET imported_from = NULL")
    assert "imported file in custody log" in {f["check"] for f in verify(run_cli, collection)["failures"]}


def test_a_newest_manifest_naming_a_file_by_a_list_is_a_finding_not_a_crash(run_cli, honest):  # noqa: F811
    manifest = honest.root / "manifests" / "manifest-1.json"
    data = manifest.read_bytes()
    name = files_and_ids(honest)[0][0]
    manifest.unlink()  # manifest.json is a hard link to it
    manifest.write_bytes(data.replace(f'"name":"{name}"'.encode(), b'"name":["x"]', 1))
    report = verify(run_cli, honest)  # altered, it is not the one signed: its entries are held to nothing
    assert "manifest signature" in {f["check"] for f in report["failures"]}
    assert any(line.startswith("manifest entries: not compared with the catalog: manifests/manifest-1.json")
               for line in report["not_checked"]), report["not_checked"]
    # As one signed (by a key stolen, or a writer gone wrong) would be compared: a finding still.
    entry = json.loads(data)["manifest"]["warc_files"][0] | {"name": ["x"]}
    catalog, found = Catalog(honest.catalog_location), Report()
    try:
        ManifestEntries(catalog, "manifests/manifest-1.json", Logged(), 1, found).warc_file(entry, b"")
    finally:
        catalog.close()
    assert [failure.check for failure in found.failures] == ["manifest matches catalog"]


def a_new_file(collection, name: str, closed: bool) -> None:
    """A WARC file of a forged response, listed in the catalog with its record under a capture
    that does not exist (SQLite enforces no foreign key), closed or not."""
    data = gzip.compress(a_forged_response(collection, "<urn:uuid:00000000-0000-4000-8000-00000000000f>"))
    (collection.storage.folder / name).write_bytes(data)
    edit_catalog(collection, "INSERT INTO warc_files (name, warcinfo_id, opened_at, closed_at, size, sha256)"
                 " VALUES (?, '', '2026-12-01T00:00:00Z', ?, ?, ?)",
                 (name, "2026-12-01T00:00:01Z" if closed else None, len(data), hashlib.sha256(data).hexdigest()))
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>troops left</p>"
    edit_catalog(collection, "INSERT INTO records (record_id, capture_id, seq, warc_type, role, target_uri, warc_date,"
                 " warc_file, warc_offset, length, content_length, block_digest)"
                 " SELECT '<urn:uuid:00000000-0000-4000-8000-00000000000f>', 'no-such-capture', 0, 'response', 'response',"
                 " target_uri, '2026-12-01T00:00:00Z', ?, 0, ?, ?, ? FROM records WHERE warc_type = 'response' LIMIT 1",
                 (name, len(data), len(block), "sha256:" + hashlib.sha256(block).hexdigest()))


@pytest.mark.parametrize("closed", [True, False])
def test_a_file_of_records_no_attestation_names_fails_and_doctor_signs_no_close_for_it(run_cli, honest, closed):  # noqa: F811
    a_new_file(honest, "forged.warc.gz", closed)
    failed = {f["check"] for f in verify(run_cli, honest)["failures"]}
    assert "record attested" in failed and (closed or "WARC file close recorded" in failed), failed
    run_cli("doctor", "-C", honest.root, "--fix")
    assert not [line for line in (honest.root / "custody.jsonl").read_bytes().splitlines()
                if b'"warc closed"' in line and b"forged.warc.gz" in line]
    assert "record attested" in {f["check"] for f in verify(run_cli, honest)["failures"]}


@pytest.mark.parametrize("stray", ["stray.warc", "stray.warc.open", "LISTED.open"])
def test_every_file_in_warcs_is_read_whatever_its_name(run_cli, honest, stray):  # noqa: F811
    """A replay indexes *.warc as well as *.warc.gz; an .open file beside the closed one of the
    same name is no part of the evidence either."""
    name = stray.replace("LISTED", files_and_ids(honest)[0][0])
    (honest.storage.folder / name).write_bytes(a_forged_response(honest, "<urn:uuid:0>"))
    failed = {(f["check"], f["where"]) for f in verify(run_cli, honest)["failures"]}
    assert ("WARC file listed" if "LISTED" not in stray else "WARC file closed", f"warcs/{name}") in failed, failed


def test_a_failed_capture_pointed_at_a_response_fails_against_its_custody_entry(run_cli, closed_port, tmp_path):
    collection = make_collection(tmp_path / "failed")
    assert run_cli("capture", "-C", collection.root, f"http://127.0.0.1:{closed_port}/gone").exit_code == 1
    edit_catalog(collection, "UPDATE captures SET response_record_id = '<urn:uuid:1>'")
    [failure] = verify(run_cli, collection)["failures"]
    assert failure["check"] == "failed capture as logged" and "response_record_id" in failure["detail"]


def test_a_catalog_row_naming_no_file_is_a_finding_not_a_crash(run_cli, honest):  # noqa: F811
    edit_catalog(honest, "INSERT INTO warc_files (name, warcinfo_id, opened_at) VALUES (NULL, 'x', '2026')")
    assert ("WARC file listed", "warc_files") in {(f["check"], f["where"]) for f in verify(run_cli, honest)["failures"]}
