"""Imported pages, as an archivist expects them from Webrecorder and Browsertrix files (found by
the interop QA pass: every response became a capture): a WACZ's pages/pages.jsonl names its
captures and its other responses are their subresources; a WARC alone keeps its HTML documents
as captures, a response its page's request named as Referer a subresource; a browser WARC
archiver wrote is one capture again, its screenshot and DOM records linked to its page."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver.capture.browser.chromium import find_chromium
from tests.conftest import corpus, fingerprint_of, http_response, make_collection, send_bytes

CATALOG_BACKENDS = ("sqlite",)





def records_of(run_cli, collection, capture_id: str) -> list[dict]:
    return json.loads(run_cli("show", "-C", collection.root, capture_id, "--json").stdout)["records"]


def bundled_pages(run_cli, collection, tmp_path) -> list[str]:
    bundle = tmp_path / "all.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    report = json.loads(run_cli("verify-bundle", bundle, "--fingerprint", fingerprint_of(run_cli, collection),
                                "--json").stdout)
    assert report["ok"], report["failures"]
    lines = zipfile.ZipFile(bundle).read("pages/pages.jsonl").decode().splitlines()
    return [json.loads(line)["url"] for line in lines[1:]]


def test_a_wacz_s_listed_pages_are_its_captures_and_its_other_responses_their_subresources(run_cli, collection, tmp_path):
    # Browsertrix's crawl of https://example.com/, which fetched its favicon (a 404 page): one page.
    result = run_cli("import", "-C", collection.root, corpus("py-wacz-valid_signed_example_1.wacz"), "--json")
    assert result.exit_code == 0, result.output
    [page] = json.loads(result.stdout)["files"][0]["captures"]
    assert page["url"] == "https://example.com/" and page["http_status"] == 200
    assert [c["id"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)] == [page["id"]]
    held = {(r["warc_type"], r["target_uri"]) for r in records_of(run_cli, collection, page["id"])}
    assert ("response", "https://example.com/favicon.ico") in held and ("request", "https://example.com/favicon.ico") in held
    assert run_cli("verify", "-C", collection.root).exit_code == 0
    assert bundled_pages(run_cli, collection, tmp_path) == ["https://example.com/"]


def _page_with_its_stylesheet(path: Path) -> Path:
    """A WARC alone, as warcio writes one: a page, the stylesheet its request says the page
    fetched (Referer), and an image fetched on its own (no Referer)."""
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, media_type, body, referer in (
                ("http://example.org/article", "text/html", b"<link rel=stylesheet href=/style.css><p>Moved</p>", None),
                ("http://example.org/style.css", "text/css", b"p { color: red }", "http://example.org/article"),
                ("http://example.org/chart.png", "image/png", b"\x89PNG not really", None)):
            http = StatusAndHeaders("200 OK", [("Content-Type", media_type)], protocol="HTTP/1.1")
            response = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
            asked = StatusAndHeaders(f"GET {urlsplit(url).path} HTTP/1.1",
                                     [("Host", "example.org")] + ([("Referer", referer)] if referer else []),
                                     is_http_request=True)
            request = writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=asked, warc_headers_dict={
                "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")})
            writer.write_record(response)
            writer.write_record(request)
    return path


def test_a_warc_alone_keeps_documents_as_captures_and_a_stylesheet_its_page_fetched_as_the_page_s(run_cli, collection,
                                                                                                   tmp_path):
    warc = _page_with_its_stylesheet(tmp_path / "crawl.warc.gz")
    result = run_cli("import", "-C", collection.root, warc, "--json")
    assert result.exit_code == 0, result.output
    captures = {c["url"]: c for c in json.loads(result.stdout)["files"][0]["captures"]}
    # The image names no page it was fetched for: a capture of its own, as before.
    assert sorted(captures) == ["http://example.org/article", "http://example.org/chart.png"]
    held = [(r["warc_type"], r["target_uri"]) for r in records_of(run_cli, collection, captures["http://example.org/article"]["id"])]
    assert ("response", "http://example.org/style.css") in held
    assert run_cli("verify", "-C", collection.root).exit_code == 0
    assert sorted(bundled_pages(run_cli, collection, tmp_path)) == ["http://example.org/article", "http://example.org/chart.png"]


def test_a_crawlers_dns_lookups_are_no_captures(run_cli, collection, tmp_path):
    """Heritrix records each DNS lookup as a response of a dns: URI (text/dns, no HTTP): stored with
    the file, but no page a claim could cite, nor a page's subresource; a file of them alone is refused."""
    lookup = (b"20250101000000\nexample.org. 300 IN A 192.0.2.7\n", "dns:example.org")
    warc = tmp_path / "heritrix.warc.gz"
    with open(warc, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warc_record(lookup[1], "response", payload=io.BytesIO(lookup[0]),
                                                      warc_content_type="text/dns"))
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("http://example.org/", "response", http_headers=http,
                                                      payload=io.BytesIO(b"<html><p>Moved</p></html>")))
    result = run_cli("import", "-C", collection.root, warc, "--json")
    assert result.exit_code == 0, result.output
    [capture] = json.loads(result.stdout)["files"][0]["captures"]
    assert capture["url"] == "http://example.org/"
    assert ("response", lookup[1]) not in [(r["warc_type"], r["target_uri"])
                                           for r in records_of(run_cli, collection, capture["id"])]
    assert run_cli("verify", "-C", collection.root).exit_code == 0
    alone = tmp_path / "lookups.warc.gz"
    with open(alone, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warc_record(lookup[1], "response", payload=io.BytesIO(lookup[0]),
                                                      warc_content_type="text/dns"))
    refused = run_cli("import", "-C", collection.root, alone)
    assert refused.exit_code == 2 and "holds no response or revisit record of an http or https URL" in refused.stderr


CHROMIUM = find_chromium()
PAGE = b'<html><head><title>Memo</title><link rel="stylesheet" href="/style.css"></head><body><p>Moved</p>' \
       b'<img src="/chart.png"><script src="/app.js"></script></body></html>'


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_an_archiver_browser_warc_imported_is_one_capture_with_its_subresources_screenshot_and_dom(
        run_cli, raw_server, collection, monkeypatch, network_sandbox, tmp_path):
    monkeypatch.delenv("ARCHIVER_CHROMIUM")
    server = raw_server({path: send_bytes(data) for path, data in {
        "/memo": http_response(PAGE),
        "/style.css": http_response(b"p { color: red }", headers=[("Content-Type", "text/css")]),
        "/chart.png": http_response(b"\x89PNG not really", headers=[("Content-Type", "image/png")]),
        "/app.js": http_response(b"document.title += '!'", headers=[("Content-Type", "application/javascript")]),
        "/favicon.ico": http_response(b"none", "404 Not Found", headers=[("Content-Type", "text/plain")]),
    }.items()})
    made = make_collection(tmp_path / "made")
    captured = run_cli("capture", "-C", made.root, "--browser", server.url("/memo"))
    assert captured.exit_code == 0, captured.output
    [warc] = sorted(made.storage.folder.glob("*.warc.gz"))
    result = run_cli("import", "-C", collection.root, warc, "--json")
    assert result.exit_code == 0, result.output
    [page] = json.loads(result.stdout)["files"][0]["captures"]
    assert page["url"] == server.url("/memo")
    roles = {(r["role"], r["target_uri"]) for r in records_of(run_cli, collection, page["id"])}
    assert {("screenshot", f"urn:screenshot:{page['url']}"), ("dom", f"urn:dom:{page['url']}")} <= roles
    assert {("response", server.url(path)) for path in ("/style.css", "/chart.png", "/app.js")} <= roles
    assert bundled_pages(run_cli, collection, tmp_path) == [page["url"]]
