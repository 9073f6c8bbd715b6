"""`archiver verify` against an intruder who can write every file of the collection, its
catalog included, but does not hold the private signing key (kept outside the collection):
whatever such an intruder changes consistently in the WARCs and the catalog, what the key
signed must still catch it."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sqlite3
import struct
import zlib

import pytest

from archiver.check.records import found_record
from archiver.check.scan import scan_warc
from archiver.check.verify import verify_collection
from archiver.evidence.attestation import PREDICATE_TYPE, statement_problems
from archiver.evidence.keys import custody_log, open_signing_key
from archiver.evidence.signing import STATEMENT_TYPE, canonical_json, sign_statement
from archiver.read.model import make_claim_id
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_verify import verify


@pytest.fixture
def honest(run_cli, raw_server, tmp_path):
    """A collection holding one capture and a signed manifest of it."""
    collection = make_collection(tmp_path / "honest")
    server = raw_server({"/report": send_bytes(http_response(b"<title>Report</title><p>troops stayed</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/report")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    return collection


def same_length_member(data: bytes, length: int) -> bytes:
    """`data` as one gzip member of exactly `length` bytes, padded in the header's FEXTRA
    field: a record rewritten so that no offset after it moves and no manifest notices."""
    for level in range(9, 0, -1):
        deflater = zlib.compressobj(level, zlib.DEFLATED, -15)
        body = deflater.compress(data) + deflater.flush()
        padding = length - (10 + 2 + len(body) + 8)
        if padding >= 0:
            header = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", padding) + b"\0" * padding
            return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    raise AssertionError("the record cannot be squeezed back into its length")


def edit_header(collection, role: str, header: str, value: str, warc_type: str | None = None) -> None:
    """Set `header` of the first `role` record (of `warc_type`, if given) to `value` in its WARC,
    in place, and make the catalog agree (the record's row and the file's size and SHA-256):
    every hash the intruder can reach is recomputed."""
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    record_id, name, offset, length = catalog.execute(
        "SELECT record_id, warc_file, warc_offset, length FROM records WHERE role = ? AND warc_type = COALESCE(?, warc_type)"
        " ORDER BY warc_offset", (role, warc_type)).fetchone()
    path = collection.storage.folder / name
    data = path.read_bytes()
    head, gap, block = gzip.decompress(data[offset:offset + length]).partition(b"\r\n\r\n")
    lines = [f"{header}: {value}".encode() if line.startswith(header.encode() + b":") else line
             for line in head.split(b"\r\n")]
    data = data[:offset] + same_length_member(b"\r\n".join(lines) + gap + block, length) + data[offset + length:]
    path.write_bytes(data)
    column = {"WARC-Target-URI": "target_uri", "WARC-Date": "warc_date", "WARC-Type": "warc_type",
              "WARC-Truncated": "truncated"}.get(header)
    if column:
        catalog.execute(f"UPDATE records SET {column} = ? WHERE record_id = ?", (value, record_id))
    catalog.execute("UPDATE warc_files SET size = ?, sha256 = ? WHERE name = ?",
                    (len(data), hashlib.sha256(data).hexdigest(), name))
    catalog.commit()
    catalog.close()


# Each forged value no longer than the one it replaces (the record's URL holds a random port of
# up to 5 digits): the edited record must fit back into its gzip member's length. A block read
# as text/plain has no HTTP payload: its payload digest, computed anew, differs from the catalog's too.
@pytest.mark.parametrize("header, value, also", [("WARC-Target-URI", "http://127.0.0.1:1/x", set()),
                                                 ("WARC-Date", "2019-01-01T00:00:00.000000Z", set()),
                                                 ("WARC-IP-Address", "127.0.0.9", set()),
                                                 ("Content-Type", "text/plain", {"record payload digest"})])
def test_a_signed_warc_header_changed_in_the_warc_and_the_catalog_alike_fails(run_cli, honest, header, value, also):
    """A replay tool shows the page under its WARC-Target-URI and WARC-Date, reads its block as
    its Content-Type says, a reader takes the server's address from WARC-IP-Address: the
    attestation signs them for every record, so an edit made everywhere the intruder can reach
    still fails."""
    assert verify(run_cli, honest)["ok"]
    edit_header(honest, "response", header, value)
    failures = verify(run_cli, honest)["failures"]
    # The file's bytes, and its new SHA-256 in the catalog, are not what its close and the manifest signed, either.
    assert {f["check"] for f in failures} == {"attested records", "manifest matches catalog", "WARC file SHA-256",
                                              "WARC file close in custody log"} | also
    [failure] = [f for f in failures if f["check"] == "attested records"]
    assert f"{header}: attested " in failure["detail"] and f"found {value}" in failure["detail"]


@pytest.mark.parametrize("header, value", [("WARC-Truncated", "none"), ("WARC-Refers-To-Date", "2000")])
def test_a_truncation_or_a_revisits_reference_changed_in_the_warc_and_the_catalog_alike_fails(
        run_cli, raw_server, tmp_path, header, value):
    """A replay shows a truncated response as whole once WARC-Truncated says otherwise, and a
    revisit as the earlier payload its WARC-Refers-To headers name: the attestation signs them.
    (Each forged value is much shorter than the one it replaces, so that the edited record, a
    small one, always fits back into its gzip member's length.)"""
    collection = make_collection(tmp_path / "signed")
    server = raw_server({"/long": send_bytes(http_response(b"<p>long</p>" * 20_000)),
                         "/same": send_bytes(http_response(b"<p>the same page</p>"))})
    url = server.url("/long" if header == "WARC-Truncated" else "/same")
    for _ in range(1 if header == "WARC-Truncated" else 2):  # captured again unchanged: a revisit
        assert run_cli("capture", "-C", collection.root, "--max-size", "10kB", url).exit_code == 0
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    [(role,)] = catalog.execute("SELECT DISTINCT role FROM records WHERE warc_type = ?",
                                ("response" if header == "WARC-Truncated" else "revisit",)).fetchall()
    catalog.close()
    assert verify(run_cli, collection)["ok"]
    edit_header(collection, role, header, value, warc_type="response" if header == "WARC-Truncated" else "revisit")
    failures = verify(run_cli, collection)["failures"]
    assert {f["check"] for f in failures} == {"attested records", "WARC file close in custody log", "WARC file SHA-256"}
    [failure] = [f for f in failures if f["check"] == "attested records"]
    assert f"{header}: attested " in failure["detail"] and f"found {value}" in failure["detail"]


@pytest.fixture
def cited(run_cli, raw_server, tmp_path):
    """A collection that read a document whose claims cite one page (a URL standing alone on
    its line), and a signed manifest; the server also has a page the document never cited."""
    collection = make_collection(tmp_path / "cited")
    server = raw_server({"/said": send_bytes(http_response(b"<p>what was said</p>")),
                         "/other": send_bytes(http_response(b"<p>something else</p>"))})
    (collection.root / "seeds" / "doc.md").write_text(f"# Headline\n\nThe minister said it.\n\n{server.url('/said')}\n")
    assert run_cli("capture", "-C", collection.root, collection.root / "seeds").exit_code == 0
    assert run_cli("capture", "-C", collection.root, server.url("/other")).exit_code == 0
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    collection.other = server.url("/other")
    return collection


def test_a_claim_written_into_the_catalog_that_no_document_or_note_said_fails(run_cli, cited):
    """The next `archiver manifest` would sign it as read: verify must say so first. Its id is
    made as archiver makes one: anyone can."""
    claim_id = make_claim_id("seeds/doc.md", "The minister admitted it", 0)
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    catalog.execute("INSERT INTO claims (id, document_key, text, text_start, text_end, kind, first_seen_at, verbatim)"
                    " VALUES (?, 'seeds/doc.md', 'The minister admitted it', 0, 24, 'paragraph',"
                    " '2026-01-01T00:00:00Z', 1)", (claim_id,))
    catalog.execute("INSERT INTO citations (claim_id, url_key, url, standalone, position) VALUES (?, ?, ?, 0, 0)",
                    (claim_id, cited.other, cited.other))
    catalog.commit()
    catalog.close()
    failures = verify(run_cli, cited)["failures"]
    # The newest manifest signed the document's claims tree: the claim changed that too.
    assert [(f["check"], f["where"]) for f in failures] == [("claim in custody log", f"claim {claim_id}"),
                                                            ("claims tree", "document seeds/doc.md"),
                                                            ("manifest matches catalog",
                                                             "manifests/manifest-1.json document seeds/doc.md")]


@pytest.mark.parametrize("key, text, occurrence", [("seeds/later.md", "The minister said it.", 0),
                                                    ("seeds/later.md", "Said twice.", 1), ("note", "What the note said", 0)])
def test_a_claim_text_edited_in_the_catalog_after_the_newest_manifest_fails(run_cli, cited, key, text, occurrence):
    """No manifest lists a claim read after it, and its id stays the same when only its text
    is edited: the id, made from the text (and the document, and which occurrence of the text
    it is), must still be the text's. Claims read since the manifest: a paragraph, the second
    of two identical ones, and a note typed with `cite`."""
    (cited.root / "seeds" / "later.md").write_text(f"The minister said it.\n\nSaid twice.\n\nSaid twice.\n\n{cited.other}\n")
    assert run_cli("capture", "-C", cited.root, cited.root / "seeds" / "later.md").exit_code == 0
    assert run_cli("cite", "-C", cited.root, "What  the note\nsaid", cited.other).exit_code == 0
    assert verify(run_cli, cited)["ok"]  # re-spaced words, and the same words twice, are the ids' texts
    claim_id = make_claim_id(key, text, occurrence)
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    assert catalog.execute("UPDATE claims SET text = 'It was denied.' WHERE id = ?", (claim_id,)).rowcount == 1
    catalog.commit()
    catalog.close()
    failures = verify(run_cli, cited)["failures"]
    in_tree = [] if key == "note" else [("claims tree", f"document {key}")]  # a note is in no document's tree
    assert [(f["check"], f["where"]) for f in failures] == [("claim text", f"claim {claim_id}")] + in_tree


def test_a_citation_changed_in_the_catalog_fails_against_the_newest_manifest(run_cli, cited):
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    claim_id = catalog.execute("SELECT claim_id FROM citations ORDER BY claim_id").fetchone()[0]
    catalog.execute("UPDATE citations SET url = ?, url_key = ? WHERE claim_id = ?", (cited.other, cited.other, claim_id))
    catalog.commit()
    catalog.close()
    failures = verify(run_cli, cited)["failures"]
    assert [f["check"] for f in failures] == ["claims tree", "manifest matches catalog", "manifest matches catalog"]
    assert failures[1]["where"].endswith(f"claim {claim_id}") and cited.other in failures[1]["detail"]
    assert failures[2]["where"].endswith("document seeds/doc.md") and failures[2]["detail"].startswith("claims_tree.")


def test_what_a_claim_read_after_the_newest_manifest_cites_changed_in_the_catalog_fails(run_cli, cited):
    """No manifest lists it yet: its document's latest read signed the claims tree its claims,
    texts and citations made, and the catalog must still make it. A note's URLs are in its entries."""
    (cited.root / "seeds" / "later.md").write_text(f"Said later.\n\n{cited.other.replace('other', 'said')}\n")
    assert run_cli("capture", "-C", cited.root, cited.root / "seeds" / "later.md").exit_code == 0
    assert run_cli("cite", "-C", cited.root, "A note", cited.other.replace("other", "said")).exit_code == 0
    assert verify(run_cli, cited)["ok"]
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    for claim_id in (make_claim_id("seeds/later.md", "Said later.", 0), make_claim_id("note", "A note", 0)):
        assert catalog.execute("UPDATE citations SET url = ?, url_key = ? WHERE claim_id = ?",
                               (cited.other, cited.other, claim_id)).rowcount == 1
    catalog.commit()
    catalog.close()
    failures = verify(run_cli, cited)["failures"]
    assert [(f["check"], f["where"]) for f in failures] == [
        ("claims tree", "document seeds/later.md"), ("note citations", f"claim {make_claim_id('note', 'A note', 0)}")]
    assert cited.other in failures[1]["detail"]
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    catalog.execute("DELETE FROM citations WHERE claim_id = ?", (make_claim_id("note", "A note", 0),))
    catalog.commit()
    catalog.close()
    note = [f for f in verify(run_cli, cited)["failures"] if f["check"] == "note citations"]
    assert [f["detail"].split(";")[0] for f in note] == ["cites nothing"]  # a note left citing nothing, too


def test_a_citation_changed_by_reading_the_document_again_verifies(run_cli, cited):
    """Which URL a claim cites may change without its text (a standalone URL edited): read
    again, the catalog rightly differs from the manifest made before."""
    document = cited.root / "seeds" / "doc.md"
    document.write_text(document.read_text().replace(cited.other.replace("other", "said"), cited.other))
    claims = sqlite3.connect(cited.root / "catalog.sqlite").execute("SELECT id FROM claims").fetchall()
    assert run_cli("capture", "-C", cited.root, document).exit_code == 0
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    assert catalog.execute("SELECT id FROM claims").fetchall() == claims  # the same claims, citing another URL
    assert {row[0] for row in catalog.execute("SELECT url FROM citations")} == {cited.other}
    catalog.close()
    assert verify(run_cli, cited)["ok"]


def test_a_log_cut_back_with_all_it_recorded_is_what_verify_cannot_see_and_it_says_so(run_cli, honest):
    """Every entry before a cut still verifies: an intruder who drops the last entries and all
    they recorded (here the manifest) leaves a collection that checks out. Verify says so, and
    names the last entry, for whoever kept a copy of it outside the collection to compare."""
    log = honest.root / "custody.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    assert last["event"] == "manifest signed"
    before = [n for n in verify(run_cli, honest)["not_checked"] if n.startswith("custody.jsonl")]
    last_hash = hashlib.sha256(lines[-1].rstrip(b"\n")).hexdigest()
    assert before == [f"custody.jsonl: that no entry was dropped after its last (seq {last['seq']}, "
                      f"sha256 {last_hash}): only a copy of it kept "
                      "outside the collection can tell (a bundle, a manifest's SHA-256 or RFC 3161 token)"]
    log.write_bytes(b"".join(lines[:-1]))
    for path in (honest.root / "manifests").iterdir():
        path.unlink()
    catalog = sqlite3.connect(honest.root / "catalog.sqlite")
    catalog.execute("DELETE FROM manifests")
    catalog.commit()
    catalog.close()
    report = verify(run_cli, honest)
    assert report["ok"]
    assert any(n.startswith(f"custody.jsonl: that no entry was dropped after its last (seq {last['seq'] - 1}, ")
               for n in report["not_checked"])


def test_a_key_that_announces_itself_beside_the_collection_key_is_named_as_a_second_root(run_cli, honest, tmp_path):
    """Anyone who can write the collection can make a key and announce it with itself, as a
    collection's first key, or a key replacing a lost or revoked one, is announced: nothing in
    the collection tells an intruder's from the owner's. What it signs verifies, so verify
    names it, for its fingerprint to be confirmed outside the collection."""
    intruder = tmp_path / "intruder.pem"
    generated = run_cli("keys", "generate", "-C", honest.root, "--key", intruder, "--json")
    assert generated.exit_code == 0
    fingerprint = json.loads(generated.stdout)["fingerprint"]
    [capture] = json.loads(run_cli("captures", "-C", honest.root, "--json").stdout)
    assert run_cli("cite", "-C", honest.root, "--key", intruder, "The minister resigned", "--capture", capture["id"]).exit_code == 0
    report = verify(run_cli, honest)
    assert report["ok"]  # by design: its signatures hold
    roots = [n for n in report["not_checked"] if fingerprint in n]
    assert len(roots) == 1 and "announced by itself" in roots[0] and "confirm" in roots[0]
    assert not [n for n in verify(run_cli, honest)["not_checked"] if "announced by itself" in n and fingerprint not in n]


def test_a_document_copy_removed_with_its_catalog_row_fails(run_cli, cited):
    """The custody log signed each reading of a document with its SHA-256: the copy kept of it
    cannot go unnoticed, whatever the catalog says."""
    [copy] = [p for p in (cited.root / "documents").rglob("*") if p.is_file()]
    copy.unlink()
    catalog = sqlite3.connect(cited.root / "catalog.sqlite")
    catalog.execute("DELETE FROM document_versions")
    catalog.commit()
    catalog.close()
    failure, listed = verify(run_cli, cited)["failures"]
    assert (failure["check"], failure["where"]) == ("document version listed", f"document version {copy.name}")
    assert (listed["check"], listed["where"]) == ("manifest matches catalog", "manifests/manifest-1.json document seeds/doc.md")
    assert listed["detail"].startswith("versions:")


@pytest.mark.parametrize("column, value", [("error", "connection reset: the page never loaded"),
                                           ("truncated", "length")])
def test_a_signed_capture_column_changed_in_the_catalog_fails(run_cli, honest, column, value):
    """`captures` and `show` print a capture's error and why it was truncated, as its
    attestation signed them."""
    catalog = sqlite3.connect(honest.root / "catalog.sqlite")
    catalog.execute(f"UPDATE captures SET {column} = ?", (value,))
    catalog.commit()
    catalog.close()
    failure, listed = verify(run_cli, honest)["failures"]
    assert failure["check"] == "attestation claims" and failure["detail"] == f"{column}: attested None, catalog has {value}"
    assert listed["check"] == "manifest matches catalog" and listed["detail"] == f"{column}: the manifest lists null, " \
        f'the catalog has "{value}"'


def test_two_captures_records_swapped_in_the_catalog_fail_with_no_manifest_since(run_cli, raw_server, tmp_path):
    """Which capture a record belongs to, as the catalog says, decides what `show`, `history`
    and a bundle give as a capture's page: each attestation names its own records."""
    collection = make_collection(tmp_path / "two")
    server = raw_server({"/a": send_bytes(http_response(b"<p>page a</p>")),
                         "/b": send_bytes(http_response(b"<p>page b</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/a"), server.url("/b")).exit_code == 0
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    (a, a_response), (b, b_response) = catalog.execute("SELECT id, response_record_id FROM captures ORDER BY url").fetchall()
    for capture_id, response in ((a, b_response), (b, a_response)):
        catalog.execute("UPDATE captures SET response_record_id = ? WHERE id = ?", (response, capture_id))
        catalog.execute("UPDATE records SET capture_id = ? WHERE record_id = ?", (capture_id, response))
    catalog.commit()
    catalog.close()
    report = verify(run_cli, collection)
    assert {(f["check"], f["where"]) for f in report["failures"]} == {("attested records", f"capture {a}"),
                                                                     ("attested records", f"capture {b}")}
    assert all(b_response in f["detail"] or a_response in f["detail"] for f in report["failures"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_attestation_stored_as_other_json_of_the_same_envelope_verifies_and_one_altered_fails(run_cli, honest, workers):
    """An attestation's digest is that of its canonical JSON: the same envelope written out
    otherwise in the catalog is still the attestation the custody log names; one whose
    signature is changed is not."""
    catalog = sqlite3.connect(honest.root / "catalog.sqlite")
    [(capture_id, text)] = catalog.execute("SELECT capture_id, envelope FROM attestations LIMIT 1").fetchall()
    envelope = json.loads(text)
    catalog.execute("UPDATE attestations SET envelope = ? WHERE capture_id = ?", (json.dumps(envelope, indent=2), capture_id))
    catalog.commit()
    assert run_cli("verify", "-C", honest.root, "--workers", workers).exit_code == 0
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    catalog.execute("UPDATE attestations SET envelope = ? WHERE capture_id = ?", (json.dumps(envelope, indent=2), capture_id))
    catalog.commit()
    catalog.close()
    report = json.loads(run_cli("verify", "-C", honest.root, "--workers", workers, "--json").stdout)
    assert {(f["check"], f["where"]) for f in report["failures"]} >= {("attestation in custody log", f"capture {capture_id}")}


def test_a_statement_from_before_a_header_was_signed_is_held_to_the_headers_it_names(honest):
    """Attestations made by an older archiver name fewer of SIGNED_HEADERS (none, in the oldest):
    each still verifies by what it signed, and what it signed is still held to."""
    catalog = sqlite3.connect(honest.root / "catalog.sqlite")
    [(envelope,)] = catalog.execute("SELECT envelope FROM attestations").fetchall()
    catalog.close()
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    [scan] = [scan_warc(honest.storage, name) for name in honest.storage.names()]
    found = {record.id: found_record(record) for record in scan.records}
    assert statement_problems(statement, found) == []
    for record in statement["predicate"]["records"]:
        for field in ("content_type", "truncated", "refers_to", "refers_to_target_uri", "refers_to_date"):
            del record[field]
    assert statement_problems(statement, found) == []  # an older statement, as it was signed
    for record in statement["predicate"]["records"]:
        del record["ip"]
    assert statement_problems(statement, found) == []
    response = next(r for r in statement["predicate"]["records"] if r["type"] == "response")
    response["date"] = "2019-01-01T00:00:00Z"
    assert statement_problems(statement, found) == [
        f"record {response['id']} WARC-Date: attested 2019-01-01T00:00:00Z, found {found[response['id']]['date']}"]


def test_a_statement_the_key_signed_naming_records_by_ids_that_are_no_strings_is_reported(honest):
    """Whoever holds the key can sign anything, a broken signer too: records named by a list, a
    number or no id at all, or no object at all, are failures named as written, never an error
    of verify's own."""
    catalog = sqlite3.connect(honest.root / "catalog.sqlite")
    [(capture_id, envelope)] = catalog.execute("SELECT capture_id, envelope FROM attestations").fetchall()
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    records = statement["predicate"]["records"]
    records[0]["id"], records[1]["id"] = ["a list"], 7
    del records[2]["id"]
    records.append("no object")
    resigned = canonical_json(sign_statement(statement, open_signing_key(honest, None, None))).decode()
    catalog.execute("UPDATE attestations SET envelope = ? WHERE capture_id = ?", (resigned, capture_id))
    catalog.commit()
    catalog.close()
    report = verify_collection(honest, workers=1)
    [attested] = [f for f in report.failures if f.check == "attested records"]
    assert attested.where == f"capture {capture_id}"
    for named in ("['a list']", "7", "None", '"no object"'):
        assert f"record {named} named by the attestation is missing" in attested.detail


@pytest.mark.parametrize("predicate, problems", [
    ([], []), ({"records": "none"}, []),
    ({"records": [1, {"id": ["x"]}]}, ["a record the attestation names is no object: 1",
                                       "record ['x'] named by the attestation is missing"])])
def test_a_signed_statement_of_any_shape_gives_findings_to_verify_bundle_too(predicate, problems):
    """verify-bundle holds a bundle's statements to its records with statement_problems: a
    statement its signer shaped otherwise is a finding there as well, never an error."""
    statement = {"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE, "predicate": predicate}
    assert statement_problems(statement, {"x": {}}) == problems


def test_custody_entries_the_key_signed_with_subjects_of_another_shape_are_findings(honest):
    """A worker key, or the collection's, signs what its holder gives it: an entry whose subject
    holds a list where archiver writes an id (a capture, a manifest's sequence, a claim) is a
    finding named by its line, never an error of verify's own (they were: unhashable keys)."""
    odd = [("capture", {"capture": ["c1"]}), ("manifest signed", {"sequence": [2]}), ("timestamp", {"sequence": "2"}),
           ("import", {"captures": 5}), ("document read", {"sha256": "ab", "claims": [["c2"]]}),
           ("note recorded", {"claim": {"id": "c3"}})]
    log = custody_log(honest, open_signing_key(honest, None, None))
    first = len((honest.root / "custody.jsonl").read_bytes().splitlines()) + 1
    for event, subject in odd:
        log.append(event, subject)
    report = verify_collection(honest, workers=1)
    assert [(f.check, f.where) for f in report.failures] == [
        ("custody entry subject", f"custody.jsonl line {line}") for line in range(first, first + len(odd))]
    assert report.failures[0].detail == "capture: its subject's capture is not what archiver writes there"


@pytest.mark.parametrize("field, value", [("key", ["a list"]), ("time", 20260101), ("event", ["capture"]),
                                          ("subject", "a string"), ("prev", 7), ("sig", {"a": 1})])
def test_a_custody_entry_edited_to_hold_another_kind_of_value_is_named_never_raised(honest, field, value):
    """No key is needed to edit custody.jsonl: a list where the key's fingerprint goes, a number
    for the time, were TypeErrors of verify's own (a dict lookup, a comparison of times)."""
    log = honest.root / "custody.jsonl"
    lines = log.read_bytes().split(b"\n")
    entry = json.loads(lines[1])
    entry[field] = value
    lines[1] = canonical_json(entry)
    log.write_bytes(b"\n".join(lines))
    report = verify_collection(honest, workers=1)
    assert ("custody entry readable", "custody.jsonl line 2") in {(f.check, f.where) for f in report.failures}
