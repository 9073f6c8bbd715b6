"""A page cannot make its screenshot or PDF print unbounded: the screenshot holds at most the
default window's width by its height bound in pixels (a page wide and high of noise would
otherwise make a PNG of gigabytes), the PDF its first pages, and both are counted in the page's
byte budget (max_page_bytes), a screenshot past it left out and said so where a user looks."""

from __future__ import annotations

import functools
import json
import re
import zipfile

import pytest

from archiver.capture.browser import pages
from archiver.capture.browser.proxy import RecordingProxy
from archiver.capture.browser.render import PageLimits
from archiver.capture.browser.screenshot import PDF_PAGES
from tests.conftest import http_response, send_bytes, warc_records
from tests.test_browser_capture import CHROMIUM, chromium  # noqa: F401 (a fixture)
from tests.test_browser_page import png_size

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

HEIGHT_BOUND = PageLimits().screenshot_height  # 20,000 px each way
AREA = PageLimits().screenshot_area  # 1280 × 20,000 px in all


def _page(width: int, height: int) -> bytes:
    return (f"<!doctype html><html><head><title>{width} by {height}</title></head><body style='margin:0'>"
            f"<div style='width:{width}px;height:{height}px;background:#3a6'></div></body></html>").encode()


# Larger than the area, though each side within the height bound (kept whole before), and a page
# as large as the area, and one wider than the window but within it: those two are kept whole.
WIDE = _page(3000, 19_000)
AT_THE_BOUND = _page(1280, 20_000)
WIDER_THAN_THE_WINDOW = _page(2000, 12_000)
# A short page that prints to more pages than the PDF holds: each paragraph on a page of its own.
MANY_SHEETS = ("<!doctype html><html><head><title>sheets</title></head><body>"
               + "<p style='break-after:page'>sheet</p>" * (PDF_PAGES + 20) + "</body></html>").encode()
PLAIN = b"<!doctype html><html><head><title>plain</title></head><body><p>An article</p></body></html>"


def _records(collection, kind: str) -> dict[str, bytes]:
    """The `kind` ("screenshot", "pdf") records' blocks, by their page's URL."""
    prefix = f"urn:{kind}:"
    return {r.headers["WARC-Target-URI"][len(prefix):]: r.block for r in warc_records(collection.storage.folder)
            if r.type == "resource" and r.headers["WARC-Target-URI"].startswith(prefix)}


def _details(collection) -> dict[str, dict]:
    """Each capture's metadata page section, by the URL the page ended on."""
    found = {}
    for record in warc_records(collection.storage.folder):
        if record.type == "metadata" and record.headers.get("Content-Type") == "application/json":
            details = json.loads(record.block)
            if isinstance(details.get("page"), dict):
                found[details["page"]["final_url"]] = details["page"]
    return found


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


def test_the_screenshot_is_bounded_in_area_and_the_pdf_in_pages(run_cli, raw_server, collection, chromium,
                                                                 network_sandbox):
    server = raw_server({"/wide": send_bytes(http_response(WIDE)), "/at": send_bytes(http_response(AT_THE_BOUND)),
                         "/wider": send_bytes(http_response(WIDER_THAN_THE_WINDOW)),
                         "/sheets": send_bytes(http_response(MANY_SHEETS))})
    urls = {path: server.url(f"/{path}") for path in ("wide", "at", "wider", "sheets")}
    result = run_cli("capture", "-C", collection.root, "--browser", *urls.values(), "--json")
    assert result.exit_code == 0, result.output
    rows = {row["url"]: row for row in json.loads(result.stdout)["captures"]}
    shots, pdfs, details = _records(collection, "screenshot"), _records(collection, "pdf"), _details(collection)

    width, height = png_size(shots[urls["wide"]])
    shown = AREA // 19_000  # of its width: all its height, as wide as the area then allows
    assert (width, height) == (shown, 19_000) and width * height <= AREA
    cut = f"the screenshot holds the first {shown} px of a page 3000 px wide"
    assert rows[urls["wide"]]["incomplete"] == f"incomplete: {cut}", rows[urls["wide"]]
    assert cut in details[urls["wide"]]["shortfalls"]
    assert f"screenshot: the first {shown} px of a page 3000 px wide" in details[urls["wide"]]["notes"]

    # As large as the area, or wider than the window within it: the whole page, as before.
    assert png_size(shots[urls["at"]]) == (1280, HEIGHT_BOUND)
    assert png_size(shots[urls["wider"]]) == (2000, 12_000)
    for path in ("at", "wider"):
        assert rows[urls[path]]["incomplete"] is None, rows[urls[path]]
        assert not [n for n in details[urls[path]]["notes"] if n.startswith(("screenshot", "pdf"))], details[urls[path]]

    assert _pdf_pages(pdfs[urls["sheets"]]) == PDF_PAGES
    assert f"pdf: holds the first {PDF_PAGES} pages; the page may print to more" in details[urls["sheets"]]["notes"]
    assert _pdf_pages(pdfs[urls["at"]]) < PDF_PAGES  # a page printing to fewer is printed whole, unnoted
    assert network_sandbox == []


def test_a_screenshot_past_the_pages_byte_budget_is_left_out_and_said_so(run_cli, raw_server, collection, chromium,
                                                                           network_sandbox, monkeypatch, tmp_path):
    """The page's response leaves a few kilobytes of its budget: too few for its screenshot or
    PDF, enough for its DOM. The capture is of the page, rendered, and incomplete, saying why."""
    budget = len(PLAIN) + 4000
    monkeypatch.setattr(pages, "RecordingProxy", functools.partial(RecordingProxy, max_page_bytes=budget))
    server = raw_server({"/": send_bytes(http_response(PLAIN))})
    url = server.url("/")
    result = run_cli("capture", "-C", collection.root, "--browser", url, "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["captures"]
    assert row["outcome"] == "ok" and row["error"] is None, row
    assert _records(collection, "screenshot") == {} and _records(collection, "pdf") == {}
    assert b"An article" in _records(collection, "dom")[url]

    said = re.escape("would have taken the page past its byte budget (max_page_bytes; ") + r"[\d,]+ bytes left\)"
    assert re.search(r"the screenshot was left out: its [\d,]+ bytes " + said, row["incomplete"]), row
    assert re.search(r"the PDF print was left out: its [\d,]+ bytes " + said, row["incomplete"]), row
    page = _details(collection)[url]
    assert any(s.startswith("the screenshot was left out") for s in page["shortfalls"]), page
    assert any(n.startswith("screenshot: left out: its ") and "max_page_bytes" in n for n in page["notes"]), page

    shown = run_cli("show", "-C", collection.root, row["id"])
    assert "record:" in shown.output and "the screenshot was left out: its " in shown.output, shown.output
    bundle = tmp_path / "page.wacz"
    assert run_cli("bundle", "-C", collection.root, "--url", url, "-o", bundle).exit_code == 0
    report = zipfile.ZipFile(bundle).read("evidence/report.html").decode()
    assert "the screenshot was left out of the record." in report and "no screenshot was made" not in report
    assert network_sandbox == []
