"""A run stopped between the catalog's commit of what it read (a document, a note) and the
custody log's entry for it: `doctor --fix` reads the document again from its kept copy and
records what that reading gives, marked late; a claim the copy does not make stays unrecorded."""

from __future__ import annotations

import json
import sqlite3

from archiver.capture.targets import read_targets
from archiver.read.model import make_claim_id
from archiver.store.documents import DocumentCopies
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_verify import verify


def drop_last_entry(collection) -> dict:
    """The custody log as a run stopped just before its last entry left it; that entry."""
    log = collection.root / "custody.jsonl"
    *kept, last = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(kept))
    return json.loads(last)


def last_entry(collection, event: str) -> dict:
    lines = (collection.root / "custody.jsonl").read_bytes().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == event][-1]


def doctor_fix(run_cli, collection) -> list[dict]:
    result = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    return json.loads(result.stdout)["findings"]


def read_then_unlogged(run_cli, tmp_path):
    """A collection whose last document read reached the catalog but not the custody log."""
    collection = make_collection(tmp_path / "c")
    document = collection.root / "seeds" / "claims.md"
    document.write_text("The minister said the border stays closed.\n\nA second claim, citing nothing either.\n")
    assert run_cli("capture", "-C", collection.root, document).exit_code == 0
    assert drop_last_entry(collection)["event"] == "document read"
    assert {f["check"] for f in verify(run_cli, collection)["failures"]} == {"claim in custody log"}
    return collection


def test_a_document_read_the_log_never_recorded_is_read_again_from_its_copy(run_cli, tmp_path):
    collection = read_then_unlogged(run_cli, tmp_path)
    [finding] = [f for f in doctor_fix(run_cli, collection) if f["kind"] == "unlogged document read"]
    assert finding["fixed"] == "read again from its kept copy and recorded in the custody log, marked late"
    assert last_entry(collection, "document read")["subject"]["recorded_late"] is True
    report = verify(run_cli, collection)
    assert report["ok"], report["failures"]
    [late] = [line for line in report["not_checked"] if "recorded later by `archiver doctor --fix`" in line]
    assert "document seeds/claims.md (read again from the copy kept of it)" in late


def test_a_claim_written_into_the_catalog_is_never_recorded_by_doctor(run_cli, tmp_path):
    """Doctor records what reading the kept copy makes, nothing the catalog holds beside it."""
    collection = read_then_unlogged(run_cli, tmp_path)
    forged = make_claim_id("seeds/claims.md", "A claim the document never made.", 0)
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    catalog.execute("INSERT INTO claims (id, document_key, text, text_start, text_end, kind, first_seen_at, verbatim)"
                    " VALUES (?, 'seeds/claims.md', 'A claim the document never made.', 0, 32, 'paragraph',"
                    " '2026-01-01T00:00:00Z', 1)", (forged,))
    catalog.commit()
    catalog.close()
    [finding] = [f for f in doctor_fix(run_cli, collection) if f["kind"] == "unlogged document read"]
    assert finding["fixed"] is None and "not what its kept copy makes: read the document again" in finding["detail"]
    assert {(f["check"], f["where"]) for f in verify(run_cli, collection)["failures"]} >= {
        ("claim in custody log", f"claim {forged}")}


def note_then_unlogged(run_cli, raw_server, tmp_path):
    """A collection whose last note reached the catalog but not the custody log; the entry dropped."""
    collection = make_collection(tmp_path / "c")
    server = raw_server({"/": send_bytes(http_response(b"<p>page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    [capture] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert run_cli("cite", "-C", collection.root, "As the page showed", "--capture", capture["id"]).exit_code == 0
    dropped = drop_last_entry(collection)
    assert dropped["event"] == "note recorded"
    return collection, dropped


def test_another_commands_repair_never_records_a_note_the_log_missed(run_cli, raw_server, tmp_path):
    """A repair a capture or export makes unasked never signs what only the catalog says."""
    collection, _ = note_then_unlogged(run_cli, raw_server, tmp_path)
    (collection.tmp / "tmpleftover").write_bytes(b"")  # a sign of an interrupted run: the next command repairs
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    assert not [line for line in (collection.root / "custody.jsonl").read_bytes().splitlines()
                if json.loads(line)["event"] == "note recorded"]
    assert "claim in custody log" in {f["check"] for f in verify(run_cli, collection)["failures"]}


def test_a_note_the_log_never_recorded_is_recorded_late(run_cli, raw_server, tmp_path):
    collection, dropped = note_then_unlogged(run_cli, raw_server, tmp_path)
    assert not verify(run_cli, collection)["ok"]
    [finding] = [f for f in doctor_fix(run_cli, collection) if f["kind"] == "unlogged note"]
    assert finding["fixed"] == "recorded in the custody log as the catalog holds it, marked late"
    report = verify(run_cli, collection)
    assert report["ok"]
    # Its URLs as the catalog holds them, but no time: when it began citing each is the catalog's word
    # alone; nor the captures it cited by id, which only the lost entry held.
    lost = {name: value for name, value in dropped["subject"].items() if name not in ("at", "captures")}
    assert last_entry(collection, "note recorded")["subject"] == {**lost, "recorded_late": True}
    assert any(line.startswith("claims: 2 date(s) a claim was first found or began") for line in report["not_checked"])


def test_a_sheets_reordered_rows_of_the_same_words_read_again_by_doctor_have_the_ids_their_read_gave(
        run_cli, raw_server, tmp_path):
    """Their ids were paired with the previous read's (store/claim_pairing.py), not counted in
    order: read again from the copy, they are paired the same, so doctor records that read."""
    server = raw_server({"/a": send_bytes(http_response(b"<p>a</p>")), "/b": send_bytes(http_response(b"<p>b</p>"))})
    collection = make_collection(tmp_path / "c")
    sheet = collection.root / "seeds" / "s.csv"

    def write(order: str) -> None:
        sheet.write_text("claim,url\n" + "".join(f"Same claim,{server.url('/' + path)}\n" for path in order))

    write("ab")
    assert run_cli("capture", "-C", collection.root, sheet).exit_code == 0
    write("ba")  # read, its copy kept and its claims cataloged, as a run that stopped before its custody entry
    [document] = read_targets([str(sheet)], collection.root).documents
    with collection:
        DocumentCopies(collection.root, collection.storage).keep_file(document.open_content(), document.sha256)
        collection.catalog.record_document(document, "2030-01-01T00:00:00Z")
    assert {c["former_citations"] == [] for c in json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)} == {True}
    [finding] = [f for f in doctor_fix(run_cli, collection) if f["kind"] == "unlogged document read"]
    assert finding["fixed"] == "read again from its kept copy and recorded in the custody log, marked late", finding
    report = verify(run_cli, collection)
    assert report["ok"], report["failures"]
