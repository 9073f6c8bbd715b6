"""An imported revisit whose original response the collection does not hold (found by the
interop QA pass: it became a citable 'ok 200' capture whose bundle had no content): said at
import, by `captures` and `show`, when a claim cites it, in the bundle's report and by
verify-bundle; and resolved by the import that brings its original."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.conftest import fingerprint_of

CATALOG_BACKENDS = ("sqlite",)
NO_PAYLOAD = "revisit; the payload it refers to is not in the collection"  # as every listing says it
URL = "http://example.org/memo"


def _crawl_and_its_revisit(tmp_path: Path) -> tuple[Path, Path]:
    """Two WARCs as warcio writes them: a response, and in another file a later revisit of it,
    naming it by URL, date and payload digest (sha1), not by record id."""
    original, later = tmp_path / "first.warc.gz", tmp_path / "second.warc.gz"
    with open(original, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        response = writer.create_warc_record(URL, "response", payload=io.BytesIO(b"<title>Memo</title><p>leaked</p>"),
                                             http_headers=http)
        writer.write_record(response)
    with open(later, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_revisit_record(URL, response.rec_headers.get_header("WARC-Payload-Digest"), URL,
                                                         response.rec_headers.get_header("WARC-Date"), http_headers=http))
    return original, later



def test_a_revisit_imported_without_its_original_is_said_to_have_no_content_wherever_it_is_shown(run_cli, collection,
                                                                                                 tmp_path):
    _, later = _crawl_and_its_revisit(tmp_path)
    imported = run_cli("import", "-C", collection.root, later)
    assert imported.exit_code == 0 and NO_PAYLOAD in imported.output, imported.output
    [revisit] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert revisit["incomplete"] == NO_PAYLOAD and revisit["revisit_of"] is None
    assert NO_PAYLOAD in run_cli("captures", "-C", collection.root).output
    assert NO_PAYLOAD in run_cli("show", "-C", collection.root, revisit["id"]).output

    cited = run_cli("cite", "-C", collection.root, "The memo leaked", "--capture", revisit["id"])
    assert cited.exit_code == 0 and f"capture {revisit['id']} of {URL} is a {NO_PAYLOAD}" in cited.output, cited.output
    note = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)[0]["id"]
    bundle = tmp_path / "memo.wacz"
    assert run_cli("bundle", "-C", collection.root, "--claim", note, "-o", bundle).exit_code == 0
    assert NO_PAYLOAD in zipfile.ZipFile(bundle).read("evidence/report.html").decode()
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert [line for line in report["not_checked"] if line.startswith(f"capture {revisit['id']}: a {NO_PAYLOAD}")
            and "has no content" in line], report["not_checked"]


def test_a_revisit_imported_first_has_its_payload_once_its_original_is_imported(run_cli, collection, tmp_path):
    original, later = _crawl_and_its_revisit(tmp_path)
    [revisit] = json.loads(run_cli("import", "-C", collection.root, later, "--json").stdout)["files"][0]["captures"]
    assert revisit["payload_missing"]
    # A bundle signs a manifest listing it without its original: the import giving it one since is signed too.
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "before.wacz").exit_code == 0
    [imported] = json.loads(run_cli("import", "-C", collection.root, original, "--json").stdout)["files"]
    [response] = imported["captures"]
    assert imported["revisits_resolved"] == [{"capture": revisit["id"], "revisit_of": response["id"]}]
    shown = json.loads(run_cli("show", "-C", collection.root, revisit["id"], "--json").stdout)
    assert shown["revisit_of"] == response["id"] and shown["incomplete"] is None
    verified = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert verified["ok"], verified["failures"]
    cited = run_cli("cite", "-C", collection.root, "The memo leaked", "--capture", revisit["id"])
    assert cited.exit_code == 0 and NO_PAYLOAD not in cited.output, cited.output


def test_a_revisit_and_its_original_in_one_file_are_joined_by_url_and_date(run_cli, collection, tmp_path):
    # warcio's example: the revisit names its original by WARC-Refers-To-Target-URI and -Date, not by record id.
    original, later = _crawl_and_its_revisit(tmp_path)
    both = tmp_path / "both.warc.gz"
    both.write_bytes(original.read_bytes() + later.read_bytes())
    captures = json.loads(run_cli("import", "-C", collection.root, both, "--json").stdout)["files"][0]["captures"]
    response, revisit = sorted(captures, key=lambda c: c["revisit_of"] is not None)
    assert revisit["revisit_of"] == response["id"] and not revisit["payload_missing"]
