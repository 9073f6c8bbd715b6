"""A run stopped between the catalog's commit of its captures and the custody log's entries for
them: `doctor --fix` records each, marked late, all in one go. And a WARC file the catalog
lists as still open, with records in it, that is not there: doctor says so, and never that
it removed it (its captures' bytes are missing, which verify names)."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import http_response, make_collection, send_bytes
from tests.test_doctor_reads import doctor_fix
from tests.test_verify import verify


def captured_twice(run_cli, raw_server, tmp_path):
    collection = make_collection(tmp_path / "c")
    server = raw_server({"/a": send_bytes(http_response(b"<p>first page</p>")),
                         "/b": send_bytes(http_response(b"<p>second page</p>"))})
    assert run_cli("capture", "-C", collection.root, "--no-browser", server.url("/a"), server.url("/b")).exit_code == 0
    return collection


def test_captures_the_log_never_recorded_are_recorded_late(run_cli, raw_server, tmp_path):
    collection = captured_twice(run_cli, raw_server, tmp_path)
    log = collection.root / "custody.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    first_capture = next(n for n, line in enumerate(lines) if json.loads(line)["event"] == "capture")
    log.write_bytes(b"".join(lines[:first_capture]))  # the run died as it was to log them
    captures = {c["id"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}

    findings = [f for f in doctor_fix(run_cli, collection) if f["kind"] == "unlogged capture"]
    assert {f["where"] for f in findings} == {f"capture {capture}" for capture in captures}
    assert all(f["fixed"] == "recorded in the custody log, marked late" for f in findings)
    late = [json.loads(line)["subject"] for line in log.read_bytes().splitlines()
            if json.loads(line)["event"] == "capture"]
    assert {entry["capture"] for entry in late} == captures and all(entry["recorded_late"] for entry in late)
    assert all(entry["attestation"] for entry in late)  # the attestation the catalog holds, vouched for
    report = verify(run_cli, collection)
    assert report["ok"], report["failures"]


def test_an_open_file_with_records_that_is_gone_is_never_said_to_be_removed(run_cli, raw_server, tmp_path):
    collection = captured_twice(run_cli, raw_server, tmp_path)
    [warc] = collection.storage.folder.glob("*.warc.gz")
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    catalog.execute("UPDATE warc_files SET closed_at = NULL, size = NULL, sha256 = NULL WHERE name = ?", (warc.name,))
    catalog.commit()
    catalog.close()
    warc.unlink()

    [finding] = [f for f in doctor_fix(run_cli, collection) if f["where"] == f"warcs/{warc.name}"]
    assert finding["fixed"] is None, finding
    assert "with records listed in it" in finding["detail"] and "`archiver verify` names them" in finding["detail"]
    catalog = sqlite3.connect(collection.root / "catalog.sqlite")
    assert catalog.execute("SELECT count(*) FROM warc_files WHERE name = ?", (warc.name,)).fetchone() == (1,)
    catalog.close()
    assert not verify(run_cli, collection)["ok"]
