"""Captures made by other tools come in checked, marked as imported, and citable."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import gzip
import zipfile
import zlib
from operator import itemgetter
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.store.catalog import Catalog
from tests.conftest import http_response, make_collection, send_bytes
from tests.faults import KILLED

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture
def wget_warc(raw_server, tmp_path) -> Path:
    """A WARC written by `wget --warc-file` from a test server (sha1 digests, wget's own layout)."""
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed (.ci/run installs it)")
    server = raw_server({"/leak": send_bytes(http_response(b"<html><title>Leaked memo</title>the memo</html>"))})
    subprocess.run(["wget", "--quiet", "--warc-file", str(tmp_path / "wget"), "-O", "/dev/null", server.url("/leak")],
                   check=True, cwd=tmp_path, timeout=30)
    return tmp_path / "wget.warc.gz"


def test_a_wget_warc_is_imported_marked_and_citable(run_cli, collection, wget_warc):
    result = run_cli("import", "-C", collection.root, wget_warc, "--json")
    assert result.exit_code == 0, result.output
    [imported] = json.loads(result.stdout)["files"]
    assert imported["file"].startswith("imported-") and "wget.warc.gz" in imported["source"]
    [capture] = imported["captures"]
    assert capture["imported_from"].startswith("wget.warc.gz sha256:") and capture["http_status"] == 200
    assert (collection.storage.folder / imported["file"]).read_bytes() == wget_warc.read_bytes()  # byte for byte

    cited = json.loads(run_cli("cite", "-C", collection.root, "The memo was leaked", "--capture", capture["id"],
                               "--json").stdout)
    shown = json.loads(run_cli("show", "-C", collection.root, cited["note"], "--json").stdout)
    assert [c["id"] for c in next(iter(shown["captures"].values()))] == [capture["id"]]
    # Read as text, it says what the capture is: imported, its page not judged by archiver.
    assert "imported, not judged" in run_cli("claims", "-C", collection.root).stdout
    detail = run_cli("show", "-C", collection.root, capture["id"]).stdout
    assert f"imported from:       {capture['imported_from']} (its digests as archiver computed them" in detail, detail
    again = json.loads(run_cli("import", "-C", collection.root, wget_warc, "--json").stdout)
    assert again["files"][0]["already"] is True  # the same file twice is one import
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert report["passed"]["import in custody log"] == 1


def test_a_file_that_fails_its_digests_is_not_imported(run_cli, collection):
    bad = CORPUS / "warcio-example-digest.warc"
    if not bad.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    result = run_cli("import", "-C", collection.root, bad)
    assert result.exit_code == 2 and "not imported" in result.stderr and "payload digest" in result.stderr
    assert not list(collection.storage.folder.iterdir())
    assert json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) == []


def captures_in(warc: bytes) -> list[dict]:
    """What another tool's WARC holds, read with warcio: each response with its status and the
    records that belong to it (the response, then the requests made concurrently with it)."""
    records = []
    iterator = ArchiveIterator(io.BytesIO(warc))
    for record in iterator:
        records.append((record.rec_headers, record.http_headers, iterator.get_record_offset(),
                        iterator.get_record_length()))
    captures = []
    for headers, http, offset, length in records:
        if headers.get_header("WARC-Type") != "response":
            continue
        response_id = headers.get_header("WARC-Record-ID")
        requests = [(h.get_header("WARC-Record-ID"), "request", o, n) for h, _, o, n in records
                    if h.get_header("WARC-Type") == "request" and h.get_header("WARC-Concurrent-To") == response_id]
        captures.append({"url": headers.get_header("WARC-Target-URI"), "http_status": int(http.get_statuscode()),
                         "response_record_id": response_id,
                         "records": [(response_id, "response", offset, length), *requests]})
    return captures


def test_a_wacz_from_another_tool_is_imported(run_cli, collection):
    wacz = CORPUS / "py-wacz-valid_example_2.wacz"
    if not wacz.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    with zipfile.ZipFile(wacz) as package:
        archives = {name: package.read(name) for name in package.namelist() if name.startswith("archive/")}
        pages = [json.loads(line) for line in package.read("pages/pages.jsonl").splitlines()[1:]]
    [(entry, entry_bytes)] = archives.items()
    entry_sha256 = hashlib.sha256(entry_bytes).hexdigest()
    expected = captures_in(entry_bytes)
    assert [c["url"] for c in expected] == [page["url"] for page in pages] == ["http://www.example.com/"]

    logged_before = json.loads(run_cli("log", "-C", collection.root, "--json").stdout)
    result = run_cli("import", "-C", collection.root, wacz, "--json")
    assert result.exit_code == 0, result.output
    logged_by_import = json.loads(run_cli("log", "-C", collection.root, "--json").stdout)[len(logged_before):]
    [imported] = json.loads(result.stdout)["files"]
    assert imported["source"] == f"{wacz.name}!{entry}" and imported["already"] is False
    assert [path.name for path in collection.storage.folder.iterdir()] == [imported["file"]]
    assert hashlib.sha256((collection.storage.folder / imported["file"]).read_bytes()).hexdigest() == entry_sha256

    captures = imported["captures"]
    what_was_captured = itemgetter("url", "http_status", "response_record_id")
    assert [what_was_captured(c) for c in captures] == [what_was_captured(c) for c in expected]
    assert all(c["imported_from"] == f"{wacz.name}!{entry} sha256:{entry_sha256}" for c in captures)
    listed = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert [c["id"] for c in listed] == [c["id"] for c in captures]
    catalog = Catalog(collection.catalog_location)
    try:
        assert [[(r.record_id, r.warc_type, r.offset, r.length) for r in catalog.records(c["id"])] for c in captures] \
            == [c["records"] for c in expected]
    finally:
        catalog.close()
    assert [(logged["event"], logged["subject"]) for logged in logged_by_import] == [
        ("import", {"file": imported["file"], "source": imported["source"], "sha256": entry_sha256,
                    "captures": [c["id"] for c in captures]})]

    verified = run_cli("verify", "-C", collection.root, "--json")
    report = json.loads(verified.stdout)
    assert verified.exit_code == 0 and report["ok"], report["failures"]
    assert report["passed"]["import in custody log"] == 1


def test_a_bundle_of_an_imported_capture_verifies_and_says_it_was_imported(run_cli, collection, wget_warc, tmp_path):
    imported = json.loads(run_cli("import", "-C", collection.root, wget_warc, "--json").stdout)["files"][0]
    [capture] = imported["captures"]
    assert run_cli("cite", "-C", collection.root, "The memo was leaked", "--capture", capture["id"]).exit_code == 0
    bundle = tmp_path / "imported.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    result = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"], report["failures"]
    assert report["passed"]["capture record digest"] >= 1
    assert any(capture["id"] in note and "imported" in note for note in report["not_checked"])


def test_an_import_says_how_many_captures_it_imported_not_each(run_cli, collection, tmp_path):
    # A wget crawl of 1,500 responses printed 1,501 lines.
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    crawl = tmp_path / "crawl.warc.gz"
    with crawl.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for n in range(30):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"http://example.org/{n}", "response",
                                                          payload=io.BytesIO(b"page %d" % n), http_headers=http))
    result = run_cli("import", "-C", collection.root, crawl)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("crawl.warc.gz: 30 capture(s) imported into warcs/imported-") and "example.org" not in line
    assert line.endswith("; list them with `archiver captures`")
    listed = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert sorted(c["url"] for c in listed) == sorted(f"http://example.org/{n}" for n in range(30))


def test_a_failed_digest_is_told_in_the_form_it_was_declared(run_cli, collection, tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=False)  # warcio declares sha1 digests in base32
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain")], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record("http://example.org/", "response", payload=io.BytesIO(b"original"),
                                                  http_headers=http))
    warc = tmp_path / "tampered.warc"
    warc.write_bytes(buffer.getvalue().replace(b"original", b"tampered"))
    result = run_cli("import", "-C", collection.root, warc)
    assert result.exit_code == 2
    declared, computed = re.search(r"declared sha1:(\S+), computed sha1:([^\s;]+)", result.stderr).groups()
    assert re.fullmatch("[A-Z2-7]{32}", declared) and re.fullmatch("[A-Z2-7]{32}", computed), result.stderr
    assert declared != computed


def test_an_import_killed_at_any_catalog_commit_loses_no_capture(run_cli, raw_server, tmp_path):
    """Killed as it commits any of its catalog transactions, an import is finished by importing
    the file again: every capture in it listed, and the collection verifies. (Once it committed
    the file in one transaction and each capture in another, so an import killed between them
    left the file "already imported", its other captures never listed and verify failing.)"""
    server = raw_server({"/one": send_bytes(http_response(b"first page")),
                         "/two": send_bytes(http_response(b"second page"))})
    source = make_collection(tmp_path / "source")
    assert run_cli("capture", "-C", source.root, server.url("/one"), server.url("/two")).exit_code == 0
    [crawl] = source.storage.folder.glob("*.warc.gz")
    template = make_collection(tmp_path / "template").root

    def importing(n: int) -> tuple[Path, int]:
        copy = tmp_path / f"n{n}"
        shutil.copytree(template, copy, symlinks=True)
        result = subprocess.run([sys.executable, "-m", "tests.catalog_kills", str(n), "import", "-C", str(copy), str(crawl)],
                                capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=120)
        assert result.returncode == (0 if n == 0 else KILLED), (n, result.stderr)
        return copy, int(result.stderr.rsplit("catalog commits: ", 1)[1]) if n == 0 else n

    _, commits = importing(0)
    for n in range(1, commits + 1):
        copy, _ = importing(n)
        doctor = run_cli("doctor", "-C", copy, "--fix", "--json")
        stored = [name for name in os.listdir(copy / "warcs") if name.startswith("imported-")]
        # Stored and never listed: doctor cannot know where it came from, and says how to finish it.
        unlisted = not json.loads(run_cli("captures", "-C", copy, "--json").stdout) and stored
        assert [(f["kind"], f["where"]) for f in json.loads(doctor.stdout)["findings"] if f["kind"] == "interrupted import"] \
            == ([("interrupted import", f"warcs/{stored[0]}")] if unlisted else []), n
        assert doctor.exit_code == (1 if unlisted else 0), n
        again = run_cli("import", "-C", copy, crawl)
        assert again.exit_code == 0, (n, again.output)
        assert run_cli("doctor", "-C", copy).exit_code == 0, n
        urls = sorted(c["url"] for c in json.loads(run_cli("captures", "-C", copy, "--json").stdout))
        assert urls == [server.url("/one"), server.url("/two")], n
        report = json.loads(run_cli("verify", "-C", copy, "--json").stdout)
        assert report["ok"], (n, report["failures"])


def test_a_file_a_killed_import_was_storing_is_removed_by_doctor(run_cli, raw_server, tmp_path):
    """Killed as it stores the file (warcs/.NAME.PID.put, under a name nothing reads), an import
    leaves bytes that doctor removes: nothing lists them, and they may be as large as the file."""
    server = raw_server({"/one": send_bytes(http_response(b"first page"))})
    source = make_collection(tmp_path / "source")
    assert run_cli("capture", "-C", source.root, server.url("/one")).exit_code == 0
    [crawl] = source.storage.folder.glob("*.warc.gz")
    target = make_collection(tmp_path / "target")
    killed = subprocess.run([sys.executable, "-m", "tests.faults", "1", str(target.root / "warcs"), "import", "-C",
                             str(target.root), str(crawl)], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, timeout=120)
    assert killed.returncode == KILLED, killed.stderr
    [left] = (target.root / "warcs").glob(".*.put")
    found = run_cli("doctor", "-C", target.root, "--json")
    assert found.exit_code == 1
    [copied] = (target.root / "tmp").glob("import-*")  # the copy it was storing from
    assert {(f["kind"], f["where"], f["detail"]) for f in json.loads(found.stdout)["findings"]} == {
        ("leftover spool", f"warcs/{left.name}", "a WARC being stored when its run stopped"),
        ("leftover spool", f"tmp/{copied.name}", "a WARC being imported when its run stopped")}
    assert run_cli("doctor", "-C", target.root, "--fix").exit_code == 0
    assert not left.exists() and not copied.exists()
    assert run_cli("import", "-C", target.root, crawl).exit_code == 0
    assert run_cli("verify", "-C", target.root).exit_code == 0


def _crawl_with_a_revisit_and_foreign_metadata(path: Path) -> Path:
    """A crawler's WARC, as warcio writes one: a response, metadata about it in WARC fields (not
    JSON), and a later identical-payload revisit of the same URL."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        response = writer.create_warc_record("http://example.org/", "response",
                                             payload=io.BytesIO(b"<title>Memo</title><p>leaked</p>"), http_headers=http)
        writer.write_record(response)
        response_id = response.rec_headers.get_header("WARC-Record-ID")
        metadata = writer.create_warc_record("http://example.org/", "metadata", payload=io.BytesIO(b"outlink: http://x/\r\n"),
                                             warc_content_type="application/warc-fields",
                                             warc_headers_dict={"WARC-Refers-To": response_id})
        writer.write_record(metadata)
        revisit = writer.create_revisit_record("http://example.org/", response.rec_headers.get_header("WARC-Payload-Digest"),
                                               "http://example.org/", response.rec_headers.get_header("WARC-Date"))
        revisit.rec_headers.add_header("WARC-Refers-To", response_id)
        writer.write_record(revisit)
    return path


def test_a_crawl_with_a_revisit_and_its_own_metadata_imports_verifies_and_bundles(run_cli, collection, tmp_path):
    crawl = _crawl_with_a_revisit_and_foreign_metadata(tmp_path / "crawl.warc.gz")
    imported = json.loads(run_cli("import", "-C", collection.root, crawl, "--json").stdout)["files"][0]
    original, revisit = sorted(imported["captures"], key=lambda c: c["response_record_id"] != imported["captures"][0]["response_record_id"])
    captures = {c["id"]: c for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert [c["revisit_of"] for c in captures.values()].count(original["id"]) == 1  # the revisit stands for the response
    assert run_cli("verify", "-C", collection.root).exit_code == 0
    bundle = tmp_path / "crawl.wacz"
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", bundle)
    assert made.exit_code == 0, made.output
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    assert json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json").stdout)["ok"]
    with zipfile.ZipFile(bundle) as wacz:
        assert "evidence/attestations.jsonl" not in wacz.namelist()  # imported captures carry none
    assert subprocess.run([str(Path(sys.executable).with_name("wacz")), "validate", "-f", str(bundle)],
                          capture_output=True, text=True).returncode == 0


def test_an_uncompressed_warc_imports_verifies_and_bundles(run_cli, collection, tmp_path):
    source = CORPUS / "warcio-example-iana.org-chunked.warc"
    if not source.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    assert run_cli("import", "-C", collection.root, source).exit_code == 0
    checked = run_cli("verify", "-C", collection.root, "--json")
    assert checked.exit_code == 0, json.loads(checked.stdout)["failures"]
    bundle = tmp_path / "iana.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json").stdout)
    assert report["ok"], report["failures"]


def _each_member_compressed_again(warc: bytes) -> bytes:
    """A gzipped WARC's members, each inflated and compressed again (at another level), one by one."""
    again = b""
    while warc:
        inflater = zlib.decompressobj(31)
        again += gzip.compress(inflater.decompress(warc), compresslevel=1)
        warc = inflater.unused_data
    return again


def test_the_same_records_in_another_file_are_refused_before_anything_is_stored(run_cli, collection, tmp_path):
    crawl = _crawl_with_a_revisit_and_foreign_metadata(tmp_path / "crawl.warc.gz")
    assert run_cli("import", "-C", collection.root, crawl).exit_code == 0
    again = tmp_path / "again.warc.gz"  # the same records, each compressed again: another file, another hash
    again.write_bytes(_each_member_compressed_again(crawl.read_bytes()))
    stored = sorted(path.name for path in collection.storage.folder.iterdir())
    result = run_cli("import", "-C", collection.root, again)
    assert result.exit_code == 2 and "holds records the collection already has" in result.stderr, result.output
    assert sorted(path.name for path in collection.storage.folder.iterdir()) == stored
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_file_with_no_capture_in_it_is_refused_before_anything_is_stored(run_cli, collection):
    source = CORPUS / "warcio-example-resource.warc.gz"  # a resource record alone: nothing a claim could cite
    if not source.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    result = run_cli("import", "-C", collection.root, source)
    assert result.exit_code == 2 and "holds no response or revisit record" in result.stderr, result.output
    assert not list(collection.storage.folder.iterdir())


def test_a_wacz_whose_signature_fails_is_not_imported(run_cli, collection, tmp_path):
    source = CORPUS / "py-wacz-valid_signed_example_1.wacz"
    if not source.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    forged = tmp_path / "forged.wacz"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(forged, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "datapackage-digest.json":
                digest = json.loads(data)
                signature = bytearray(base64.b64decode(digest["signedData"]["signature"]))
                signature[5] ^= 1
                digest["signedData"]["signature"] = base64.b64encode(bytes(signature)).decode()
                data = json.dumps(digest).encode()
            copy.writestr(info, data)
    result = run_cli("import", "-C", collection.root, forged)
    assert result.exit_code == 2 and "domain signature" in result.stderr, result.output
    assert not list(collection.storage.folder.iterdir())
    assert run_cli("import", "-C", collection.root, source).exit_code == 0  # as signed, it imports


def test_an_imported_error_page_is_listed_as_broken_not_as_fine(run_cli, collection, tmp_path):
    """archiver judges no imported page: one that is an HTTP 500 (or any page, which may be an
    error or empty) is listed by `claims --broken`, as not judged, never passed over as content."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(tmp_path / "errors.warc.gz", "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("500 Internal Server Error", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("http://example.org/down", "response",
                                                      payload=io.BytesIO(b"<p>Internal error</p>"), http_headers=http))
    [capture] = json.loads(run_cli("import", "-C", collection.root, tmp_path / "errors.warc.gz",
                                   "--json").stdout)["files"][0]["captures"]
    assert capture["http_status"] == 500
    assert run_cli("cite", "-C", collection.root, "The site was up", "--capture", capture["id"]).exit_code == 0
    assert "complete 500" in run_cli("claims", "-C", collection.root).stdout
    broken = run_cli("claims", "-C", collection.root, "--broken")
    assert "The site was up" in broken.stdout and "imported, not judged" in broken.stdout, broken.output
    [listed] = json.loads(run_cli("claims", "-C", collection.root, "--broken", "--json").stdout)
    assert listed["citations"][0]["url"] == "http://example.org/down"


def test_the_report_and_verify_bundle_say_a_capture_was_imported_and_from_what(run_cli, raw_server, collection,
                                                                                tmp_path):
    """A WARC written by hand (any URL, date and server address) imported, cited and bundled beside
    a capture archiver made: the report's header counts it apart, as imported, its section names the
    file it came in (its SHA-256, when and by which key it was imported) and gives its time, address,
    status and outcome as the file's word, never as archiver's; verify-bundle counts it apart too,
    never among the captures archiver made (found by QA: a forged WARC presented as a capture)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from archiver.evidence.signing import grouped
    from tests.test_report_bundle import text_of

    body = b"<html><title>Ministry</title><p>The minister ordered it.</p></html>"
    written = tmp_path / "handmade.warc.gz"
    with written.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            "https://ministry.example/statement", "response", payload=io.BytesIO(body), http_headers=http,
            warc_headers_dict={"WARC-Date": "2020-01-06T09:00:00Z", "WARC-IP-Address": "203.0.113.7"}))
    [capture] = json.loads(run_cli("import", "-C", collection.root, written, "--json").stdout)["files"][0]["captures"]
    detail = run_cli("show", "-C", collection.root, capture["id"]).stdout
    assert "started:             2020-01-06T09:00:00Z (as the imported file says)" in detail, detail
    assert "server IP:           203.0.113.7 (as the imported file says)" in detail, detail
    listed = " ".join(run_cli("captures", "-C", collection.root).stdout.split())
    assert "imported from handmade.warc.gz: its date and IP are the file's word" in listed, listed
    assert run_cli("cite", "-C", collection.root, "The minister ordered it", "--capture", capture["id"]).exit_code == 0
    server = raw_server({"/ours": send_bytes(http_response(b"<html><title>Ours</title><p>Captured here.</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/ours")).exit_code == 0
    bundle = tmp_path / "imported.wacz"
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", bundle, "--json")
    assert made.exit_code == 0, made.output
    fingerprint = json.loads(made.stdout)["fingerprint"]
    text = text_of(zipfile.ZipFile(bundle).read("evidence/report.html").decode())

    header = text[:text.index("How to verify this bundle")]
    assert "2 captures of web pages" in header and "1 made by archiver (1 complete" in header, header
    assert "and 1 imported from files made by other tools" in header and "the imported file's word" in header, header
    start = text.index(f"Capture {capture['id']}")
    section = text[start:text.index(" Capture ", start + 1) if " Capture " in text[start + 1:] else None]
    sha256 = hashlib.sha256(written.read_bytes()).hexdigest()
    assert (f"Made by another tool, not archiver: imported from the file handmade.warc.gz (SHA-256 {sha256}) "
            f"on ") in section, section
    assert f"signed by the key {grouped(fingerprint)}. Its time, server address" in section, section
    assert "Time the file says started 2020-01-06T09:00:00Z" in section
    assert "Server IP address the file says 203.0.113.7" in section and "Outcome the file says complete" in section
    assert "HTTP status the file says 200" in section
    assert "TLS certificate none recorded: the tool that made the imported file recorded no TLS details" in section
    assert "plain HTTP" not in section and "Attested by key not attested: imported" in section

    checked = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint)
    assert checked.exit_code == 0, checked.output
    assert ("1 capture(s) made by archiver proven in it, and 1 imported (its time, IP address and certificate are the "
            "imported file's word; archiver vouches only that its bytes are unchanged since the import)") in checked.stdout
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json").stdout)
    assert report["established"]["captures_proven"] == 1 and report["established"]["captures_imported"] == 1
    assert report["passed"]["import entry matches capture"] == 1
    [said] = [note for note in report["not_checked"] if capture["id"] in note]
    assert "handmade.warc.gz" in said and "imported" in said and "the import" in said, said
