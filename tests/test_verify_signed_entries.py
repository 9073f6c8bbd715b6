"""`archiver verify` holds every field of each entry of the newest signed manifest to the
catalog (as the manifest's writer renders it now), each claim's currency to its document's
latest signed read, and each manifest the custody log signed to its file: edits to any of them
that need no key fail, and name what differs; what a later read or capture changed passes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import http_response, make_collection, use_tsa
from tests.test_verify import honest as two_manifests  # noqa: F401  (a fixture)
from tests.test_verify import verify
from tests.test_verify_forgery import cited  # noqa: F401  (a fixture)
from tests.test_verify_signed_fields import edit_catalog
from tests.tsa import local_tsa  # noqa: F401  (a fixture)

FIRST_CAPTURE = "(SELECT MIN(id) FROM captures)"
LAST_CAPTURE = "(SELECT MAX(id) FROM captures)"
SAID = "text = 'The minister said it.'"


@pytest.mark.parametrize("statement, entry, field", [
    (f"UPDATE claims SET superseded_at = '2026-12-03T00:00:00Z' WHERE {SAID}", "claim", "superseded_at:"),
    (f"""UPDATE claims SET extra = '{{"date": "2020-01-01"}}' WHERE {SAID}""", "claim", "extra:"),
    (f"UPDATE claims SET text_start = text_start + 1 WHERE {SAID}", "claim", "start:"),
    (f"UPDATE claims SET text_end = text_end - 1 WHERE {SAID}", "claim", "end:"),
    (f"UPDATE claims SET kind = 'heading' WHERE {SAID}", "claim", "kind:"),
    ("UPDATE citations SET standalone = 1 - standalone", "claim", "citations["),
    ("UPDATE documents SET date = '2020-01-01'", "document", "date:"),
    ("UPDATE documents SET title = 'Another headline'", "document", "title:"),
    ("""UPDATE documents SET warnings = '["not read whole"]'""", "document", "warnings:"),
    ("UPDATE document_versions SET read_at = '2020-01-01T00:00:00Z'", "document", "versions["),
    (f"UPDATE captures SET response_length = response_length + 1 WHERE id = {FIRST_CAPTURE}", "capture",
     "response_length:"),
    (f"UPDATE captures SET redirects = redirects + 1 WHERE id = {FIRST_CAPTURE}", "capture", "redirects:"),
    (f"UPDATE captures SET revisit_of = {FIRST_CAPTURE} WHERE id = {LAST_CAPTURE}", "capture", "revisit_of:"),
    (f"UPDATE records SET truncated = 'length' WHERE capture_id = {FIRST_CAPTURE}", "capture", "records["),
    ("UPDATE warc_files SET opened_at = '2020-01-01T00:00:00Z'", "WARC file", "opened_at:"),
])
def test_a_field_of_an_entry_of_the_newest_manifest_edited_in_the_catalog_fails_naming_it(
        run_cli, cited, statement, entry, field):  # noqa: F811
    assert verify(run_cli, cited)["ok"]
    edit_catalog(cited, statement)
    failures = [f for f in verify(run_cli, cited)["failures"] if f["check"] == "manifest matches catalog"]
    assert any(f["where"].startswith(f"manifests/manifest-1.json {entry} ") and f["detail"].startswith(field)
               for f in failures), failures


@pytest.mark.parametrize("said", ["\n\nThe minister said it.", ""])
def test_a_document_of_the_newest_manifest_read_again_passes(run_cli, cited, said):  # noqa: F811
    """Read again since the manifest: its claim moved and citing another page, or gone
    (superseded), a new one, the title changed, a new version; the manifest's entries differ
    from the catalog's as that read explains."""
    doc = cited.root / "seeds" / "doc.md"
    doc.write_text(f"# Another headline\n\nThe minister denied it.{said}\n\n{cited.other}\n")
    assert run_cli("capture", "-C", cited.root, doc).exit_code == 0
    assert verify(run_cli, cited)["ok"]


@pytest.mark.parametrize("claim", ["read later", "note"])
def test_a_claim_read_after_the_newest_manifest_marked_superseded_fails(run_cli, cited, claim):  # noqa: F811
    """No manifest lists it: its document's latest read (or its note's entry) found it, so it is current."""
    (cited.root / "seeds" / "later.md").write_text(f"Said later.\n\n{cited.other}\n")
    assert run_cli("capture", "-C", cited.root, cited.root / "seeds" / "later.md").exit_code == 0
    assert run_cli("cite", "-C", cited.root, "A note", cited.other).exit_code == 0
    assert verify(run_cli, cited)["ok"]
    text = "Said later." if claim == "read later" else "A note"
    edit_catalog(cited, f"UPDATE claims SET superseded_at = '2026-12-03T00:00:00Z' WHERE text = '{text}'")
    failures = verify(run_cli, cited)["failures"]
    assert [f["check"] for f in failures] == ["claim current as read"]
    assert "superseded in the catalog" in failures[0]["detail"]


def test_a_claim_its_documents_latest_read_superseded_made_current_again_fails(run_cli, cited):  # noqa: F811
    later = cited.root / "seeds" / "later.md"
    later.write_text(f"Said later.\n\nTaken back later.\n\n{cited.other}\n")
    assert run_cli("capture", "-C", cited.root, later).exit_code == 0
    later.write_text(f"Said later.\n\n{cited.other}\n")
    assert run_cli("capture", "-C", cited.root, later).exit_code == 0
    assert verify(run_cli, cited)["ok"]
    edit_catalog(cited, "UPDATE claims SET superseded_at = NULL WHERE text = 'Taken back later.'")
    failures = verify(run_cli, cited)["failures"]
    assert [f["check"] for f in failures] == ["claim current as read"]
    assert "did not find it" in failures[0]["detail"]


def erase_manifest(collection, sequence: int) -> None:
    """Every file of manifest `sequence`, and its catalog row; manifest.json made the one before."""
    folder = collection.root / "manifests"
    for path in folder.glob(f"manifest-{sequence}.*"):
        path.unlink()
    edit_catalog(collection, f"DELETE FROM manifests WHERE sequence = {sequence}")
    (folder / "manifest.json").unlink()
    shutil.copyfile(folder / f"manifest-{sequence - 1}.json", folder / "manifest.json")


def test_the_newest_manifest_erased_with_its_catalog_row_fails_against_its_custody_entry(
        run_cli, two_manifests):  # noqa: F811
    assert verify(run_cli, two_manifests)["ok"]
    erase_manifest(two_manifests, 2)
    failures = verify(run_cli, two_manifests)["failures"]
    assert [(f["check"], f["where"]) for f in failures] == [("manifest present", "manifests/manifest-2.json")]
    assert "custody log records signing it" in failures[0]["detail"]


def test_the_timestamp_of_an_erased_manifest_fails(run_cli, cited, local_tsa):  # noqa: F811
    use_tsa(cited.root, local_tsa)
    assert run_cli("capture", "-C", cited.root, cited.other).exit_code == 0
    assert run_cli("manifest", "-C", cited.root).exit_code == 0
    assert (cited.root / "manifests" / "manifest-2.json.tsr").exists()
    assert verify(run_cli, cited)["ok"]
    erase_manifest(cited, 2)
    failed = {(f["check"], f["where"]) for f in verify(run_cli, cited)["failures"]}
    assert ("manifest timestamp", "manifests/manifest-2.json.tsr") in failed


def test_a_warc_file_open_when_the_newest_manifest_was_made_and_closed_since_passes(run_cli, raw_server, tmp_path):
    """A manifest made while a run writes lists its file open; the run closes it later (its size
    and SHA-256 then are held to its close in the custody log)."""
    asked, answer, lock = threading.Event(), threading.Event(), threading.Lock()
    served: list[bytes] = []

    def second_held_back(conn, request: bytes) -> None:  # whichever page the run asks for second
        with lock:
            served.append(request)
            first = len(served) == 1
        if not first:
            asked.set()
            answer.wait()
        conn.sendall(http_response(b"<p>a page</p>"))
    server = raw_server({"/a": second_held_back, "/b": second_held_back})
    collection = make_collection(tmp_path / "collection")
    capturing = subprocess.Popen([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root),
                                  "--concurrency", "1", server.url("/a"), server.url("/b")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert asked.wait(120), "the run never asked for its second page"
        deadline = time.monotonic() + 120  # a guard against a hang, not a guess of how long it takes
        while not json.loads(run_cli("captures", "-C", collection.root, "--json").stdout):
            assert time.monotonic() < deadline, "the run never stored its first page"
            time.sleep(0.05)
        assert run_cli("manifest", "-C", collection.root).exit_code == 0
    finally:
        answer.set()
        _, stderr = capturing.communicate(timeout=120)
    assert capturing.returncode == 0, stderr
    manifest = json.loads((collection.root / "manifests" / "manifest.json").read_bytes())["manifest"]
    assert [f["closed_at"] for f in manifest["warc_files"]] == [None]
    assert verify(run_cli, collection)["ok"]


def test_a_later_manifest_erased_leaves_the_entries_uncompared_not_compared_with_an_older_one(
        run_cli, cited):  # noqa: F811
    """Between the manifests a claim was read again (moved, citing another page), one dropped,
    a page captured and a note cited: all of it is what manifest 2 signed. Erased with its row
    as an intruder would (the custody log kept), manifest 1 is no stand-in for it: its entries
    held to the catalog would fail on what only manifest 2 explains, hiding the one real failure."""
    doc = cited.root / "seeds" / "doc.md"
    doc.write_text(f"# Another headline\n\nThe minister denied it.\n\n{cited.other}\n")
    assert run_cli("capture", "-C", cited.root, doc).exit_code == 0
    assert run_cli("cite", "-C", cited.root, "A note", cited.other).exit_code == 0
    assert run_cli("manifest", "-C", cited.root).exit_code == 0
    assert verify(run_cli, cited)["ok"]
    erase_manifest(cited, 2)
    report = verify(run_cli, cited)
    assert [(f["check"], f["where"]) for f in report["failures"]] == [("manifest present", "manifests/manifest-2.json")]
    assert "manifest matches catalog" not in report["passed"]
    assert any(line.startswith("manifest entries: not compared with the catalog") and "manifest-2.json" in line
               for line in report["not_checked"]), report["not_checked"]
