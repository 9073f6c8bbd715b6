"""Page verdicts of browser captures: judged on what the browser made of the page (its DOM after
scripts ran and its visible text), and kept, with the page's final response, when a capture
whose catalog entry was lost is cataloged again from its signed attestation."""

from __future__ import annotations

import base64
import json

import pytest

from archiver.store.catalog import Catalog
from archiver.capture.browser.chromium import find_chromium
from tests.conftest import capture, http_response, send_bytes

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

PHOTO = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
SCRIPTED = (b"<html><head><title>Budget</title></head><body><script>document.body.insertAdjacentHTML('beforeend',"
            b"'<h1>Budget passed</h1><p>The council met on Tuesday and passed the budget.</p>')</script></body></html>")
SCRIPTED_WALL = (b"<html><head><title>Members</title></head><body><script>document.body.insertAdjacentHTML('beforeend',"
                 b"'<form><input name=email><input type=password name=pw><button>Go</button></form>')</script>"
                 b"</body></html>")


def test_a_browser_capture_is_judged_on_the_rendered_page(collection, raw_server, monkeypatch):
    server = raw_server({"/scripted": send_bytes(http_response(SCRIPTED)),
                         "/scripted-wall": send_bytes(http_response(SCRIPTED_WALL))})
    urls = [server.url("/scripted"), server.url("/scripted-wall")]
    over_http = capture(collection, *urls, capture_mode="http")
    assert [row.verdict for row in over_http] == ["empty", "empty"]  # the HTML alone shows nothing
    monkeypatch.delenv("ARCHIVER_CHROMIUM")
    rendered = capture(collection, *urls, capture_mode="browser")
    assert [row.verdict for row in rendered] == ["content", "login-wall"]


def test_a_salvaged_browser_capture_keeps_its_final_response_and_verdict(run_cli, collection, raw_server, monkeypatch):
    """Cataloged again from its attestation, a redirected page's payload is the chain's final
    response (not a subresource the page loaded after it), and its verdict is the signed one."""
    page = b"<html><head><title>Final page</title></head><body><p>Here it is.</p><img src='/photo.png'></body></html>"
    server = raw_server({"/old": send_bytes(http_response(b"", "301 Moved Permanently", [("Location", "/new")])),
                         "/new": send_bytes(http_response(page)),
                         "/photo.png": send_bytes(http_response(PHOTO, headers=[("Content-Type", "image/png")]))})
    monkeypatch.delenv("ARCHIVER_CHROMIUM")

    def crash(self, captures, logged=None, closing=None):
        raise RuntimeError("the machine stopped between the fsync and the commit")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(Catalog, "add_captures", crash)
        capture(collection, server.url("/old"), capture_mode="browser")
    result = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert (row["verdict"], row["redirects"], row["final_url"]) == ("content", 1, server.url("/new"))
    catalog = Catalog(collection.catalog_location)
    try:
        record = catalog.payload_record(row["id"])
        assert (record.record_id, record.target_uri) == (row["response_record_id"], server.url("/new"))
    finally:
        catalog.close()
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
