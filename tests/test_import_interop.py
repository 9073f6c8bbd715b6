"""Files other tools write, imported then bundled (found by the interoperability QA pass): a
WARC no player can read record by record is refused before anything is stored, a bundle holds
only the selected captures' records, each once, and a revisit's payload held in the same file
is found there."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zipfile
from collections import Counter
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from tests.conftest import corpus, fingerprint_of, make_collection

CATALOG_BACKENDS = ("sqlite",)




def gzipped_as_a_whole(tmp_path: Path) -> Path:
    """warcio's example WARC, its six records in one gzip member: it fails `warcio check`."""
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(gzip.decompress(corpus("warcio-example.warc.gz").read_bytes())))
    return whole



def test_a_warc_gzipped_as_a_whole_is_refused_and_nothing_is_stored(run_cli, collection, tmp_path):
    result = run_cli("import", "-C", collection.root, gzipped_as_a_whole(tmp_path))
    assert result.exit_code == 2 and "internal error" not in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "gzipped as a whole" in result.stderr and "warcio recompress" in result.stderr
    assert not list(collection.storage.folder.iterdir())
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_doctor_sets_aside_a_warc_gzipped_as_a_whole_that_an_earlier_import_stored(run_cli, collection, tmp_path):
    # What an earlier version's import left: the file stored under its hash, never cataloged.
    whole = gzipped_as_a_whole(tmp_path)
    assert run_cli("captures", "-C", collection.root).exit_code == 0  # the catalog made, as before any import
    stored = collection.storage.folder / f"imported-{hashlib.sha256(whole.read_bytes()).hexdigest()[:16]}.warc.gz"
    stored.write_bytes(whole.read_bytes())
    found = json.loads(run_cli("doctor", "-C", collection.root, "--json").stdout)["findings"]
    assert [(f["kind"], f["where"]) for f in found] == [("unimportable import", f"warcs/{stored.name}")]
    assert "gzipped as a whole" in found[0]["detail"]
    fixed = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert fixed.exit_code == 0, fixed.output
    aside = collection.storage.folder / "quarantine" / stored.name
    assert not stored.exists() and aside.read_bytes() == whole.read_bytes()  # set aside, its bytes kept
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_a_warc_that_warcio_cannot_read_is_refused_before_it_is_stored(run_cli, collection, tmp_path):
    # Each record's digests hold, and each starts a gzip member, but the last is split across two members.
    example = corpus("warcio-example.warc.gz").read_bytes()
    last = gzip.decompress(example[3207:])
    split = tmp_path / "split.warc.gz"
    split.write_bytes(example[:3207] + gzip.compress(last[:100]) + gzip.compress(last[100:]))
    result = run_cli("import", "-C", collection.root, split)
    assert result.exit_code == 2 and "internal error" not in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "record by record" in result.stderr, result.stderr
    assert not list(collection.storage.folder.iterdir()) and not list(collection.tmp.glob("import-*"))
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_warc_naming_one_record_id_twice_is_refused(run_cli, collection, tmp_path):
    example = corpus("warcio-example.warc.gz").read_bytes()
    last_member = example[3207:]  # warcio's example: its last record, a request, is the member at 3207
    assert gzip.decompress(last_member).startswith(b"WARC/1.0\r\nWARC-Type: request")
    twice = tmp_path / "twice.warc.gz"
    twice.write_bytes(example + last_member)
    result = run_cli("import", "-C", collection.root, twice)
    assert result.exit_code == 2 and "record ids unique" in result.stderr, result.output
    assert not list(collection.storage.folder.iterdir())


def crawl_warc(tmp_path: Path) -> Path:
    """The Browsertrix WARC of py-wacz's signed example, without its WACZ (so without its pages.jsonl):
    https://example.com/ and its favicon, a 404 page in HTML, each a capture."""
    with zipfile.ZipFile(corpus("py-wacz-valid_signed_example_1.wacz")) as wacz:
        [name] = [n for n in wacz.namelist() if n.startswith("archive/")]
        warc = tmp_path / Path(name).name
        warc.write_bytes(wacz.read(name))
    return warc


def test_a_bundle_of_one_capture_from_a_crawl_without_warcinfo_holds_only_its_records(run_cli, collection, tmp_path):
    # Browsertrix writes no warcinfo: the file's first record is the page's response.
    imported = json.loads(run_cli("import", "-C", collection.root, crawl_warc(tmp_path), "--json").stdout)["files"][0]
    [favicon] = [c for c in imported["captures"] if c["url"].endswith("/favicon.ico")]
    cited = json.loads(run_cli("cite", "-C", collection.root, "The favicon was missing", "--capture", favicon["id"],
                               "--json").stdout)
    bundle = tmp_path / "favicon.wacz"
    assert run_cli("bundle", "-C", collection.root, "--claim", cited["note"], "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as zf, zf.open("archive/data.warc.gz") as archive:
        records = [(r.rec_headers.get_header("WARC-Record-ID"), r.rec_headers.get_header("WARC-Target-URI"))
                   for r in ArchiveIterator(archive)]
    assert [rid for rid, n in Counter(rid for rid, _ in records).items() if n > 1] == []  # a record id names one record
    assert {uri for _, uri in records} == {"https://example.com/favicon.ico"}  # no other URL revealed
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert report["ok"], report["failures"]


def test_a_bundle_of_every_capture_of_a_crawl_without_warcinfo_holds_each_record_once(run_cli, collection, tmp_path):
    assert run_cli("import", "-C", collection.root, corpus("py-wacz-valid_signed_example_1.wacz")).exit_code == 0
    bundle = tmp_path / "all.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as zf, zf.open("archive/data.warc.gz") as archive:
        ids = [r.rec_headers.get_header("WARC-Record-ID") for r in ArchiveIterator(archive)]
    assert len(ids) == len(set(ids)) == 4, ids  # two responses, two requests
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert report["ok"], report["failures"]


def test_verify_bundle_fails_a_bundle_holding_one_record_twice(run_cli, collection, tmp_path):
    assert run_cli("import", "-C", collection.root, corpus("py-wacz-valid_signed_example_1.wacz")).exit_code == 0
    bundle, doubled = tmp_path / "all.wacz", tmp_path / "doubled.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(doubled, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "archive/data.warc.gz":
                data += data  # every record again, byte for byte
            out.writestr(info, data)
    report = json.loads(run_cli("verify-bundle", doubled, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert "record ids unique" in {failure["check"] for failure in report["failures"]}


def test_a_revisit_without_refers_to_is_checked_against_its_original_in_the_same_file(run_cli, collection, tmp_path):
    # warcio's example: a revisit naming its original only by payload digest (sha1), as most tools write.
    assert run_cli("import", "-C", collection.root, corpus("warcio-example.warc.gz")).exit_code == 0
    bundle = tmp_path / "all.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert report["ok"], report["failures"]
    assert report["passed"]["revisit payload digest"] == 1
    assert not [line for line in report["not_checked"] if "revisit" in line], report["not_checked"]


def chunked_warc(path: Path, declared_over: bytes) -> Path:
    """An uncompressed WARC of one chunked response whose sha1 payload digest is declared over `declared_over`."""
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    digest = base64.b32encode(hashlib.sha1(declared_over).digest()).decode()
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:6f1c2a4e-0000-4000-8000-000000000001>\r\n"
            f"WARC-Date: 2022-07-21T17:47:43Z\r\nWARC-Target-URI: http://example.com/chunked\r\n"
            f"Content-Type: application/http; msgtype=response\r\nWARC-Payload-Digest: sha1:{digest}\r\n"
            f"Content-Length: {len(block)}\r\n\r\n")
    path.write_bytes(head.encode() + block + b"\r\n\r\n")
    return path


def test_a_payload_digest_of_the_dechunked_body_is_accepted_and_said(run_cli, collection, tmp_path):
    # Heritrix and warcprox (so Perma.cc) hash the body with its chunked coding removed; warcio hashes it as sent.
    warc = chunked_warc(tmp_path / "warcprox.warc", b"hello world")
    result = run_cli("import", "-C", collection.root, warc, "--json")
    assert result.exit_code == 0, result.output
    [imported] = json.loads(result.stdout)["files"]
    assert imported["dechunked_payload_digests"] == 1 and len(imported["captures"]) == 1
    [logged] = json.loads(run_cli("log", "-C", collection.root, "--json", "--event", "import").stdout)
    assert logged["subject"]["dechunked_payload_digests"] == 1
    said = run_cli("import", "-C", collection.root, chunked_warc(tmp_path / "again.warc", b"hello world")).stdout
    assert "already imported" in said  # the same bytes: one import
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_a_chunked_payload_digest_that_matches_neither_body_is_refused(run_cli, collection, tmp_path):
    result = run_cli("import", "-C", collection.root, chunked_warc(tmp_path / "forged.warc", b"hello there"))
    assert result.exit_code == 2 and "record payload digest" in result.stderr, result.output
    assert not list(collection.storage.folder.iterdir())


def test_a_perma_wacz_imports_and_its_bundle_says_which_digests_are_of_dechunked_bodies(run_cli, tmp_path):
    # Not the `collection` fixture, which holds every stored WARC to `warcio check`: warcio reads these digests otherwise.
    collection = make_collection(tmp_path / "collection")
    imported = run_cli("import", "-C", collection.root, corpus("wacz-signing-not-signed.wacz"), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["files"][0]["dechunked_payload_digests"] == 5
    bundle = tmp_path / "perma.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert report["ok"], report["failures"]
    assert report["passed"]["record payload digest of the de-chunked body"] == 5
