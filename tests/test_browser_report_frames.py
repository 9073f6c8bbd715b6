"""A bundle's report names the frames a browser capture's page showed (an article or a post
embedded in an iframe): how many, each frame's URL printed literally, and the record holding its
DOM by its id and block digest, saying of one cut at the DOM bound that it holds only the first
part. A page that showed none says nothing of frames; a capture made before frames were recorded
says they were not recorded, never that there were none; an imported one names the frame records
its file holds, but not their URLs, which only the file's own metadata says."""

from __future__ import annotations

import functools
import html
import zipfile

import pytest

from archiver.capture.browser import pages
from archiver.capture.browser.render import PageLimits
from tests.conftest import http_response, make_collection, warc_records
from tests.test_browser_capture import CHROMIUM, chromium  # noqa: F401 (a fixture)
from tests.test_browser_drift import captured_before_frames
from tests.test_report_bundle import text_of

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

STORY = " ".join(f"Paragraph {i}: the ministry's report on regional hospital funding was discussed." for i in range(60))
# Bytes of the frames' DOMs kept, together: the statement's frame whole, the article's (5 kB) cut.
FRAME_BOUND = 1000
# The statement's URL carries "&": the report must print it escaped, as the URL it is.
STATEMENT = "/statement?from=ministry&lang=en"
PAGE = (b'<html><head><title>Ministry</title><link rel="icon" href="data:,"></head><body><h1>Ministry news</h1>'
        b'<iframe src="' + STATEMENT.encode() + b'" style="border:0;width:100%;height:100px"></iframe>'
        b'<iframe src="/article" style="border:0;width:100%;height:600px"></iframe>'
        b'<iframe src="/pixel" width="1" height="1" style="border:0"></iframe></body></html>')
PLAIN = b"<html><head><title>Plain</title></head><body><h1>Ministry news</h1><p>No frames here.</p></body></html>"


def _site(raw_server):
    sent = {"/framed": PAGE, "/plain": PLAIN,
            "/statement": b"<html><body><p>The minister's statement</p></body></html>",
            "/article": f"<html><body><h2>Story</h2><p>{STORY}</p></body></html>".encode(),
            "/pixel": b"<html><body>tracking pixel</body></html>"}
    return raw_server({path: (lambda body: lambda conn, request: conn.sendall(http_response(body)))(body)
                       for path, body in sent.items()})


def _report(run_cli, collection, url: str, tmp_path) -> str:
    bundle = tmp_path / "page.wacz"
    made = run_cli("bundle", "-C", collection.root, "--url", url, "-o", bundle)
    assert made.exit_code == 0, made.output
    return zipfile.ZipFile(bundle).read("evidence/report.html").decode()


def test_the_report_names_each_frame_shown_with_the_record_of_its_dom(
        run_cli, raw_server, collection, chromium, network_sandbox, monkeypatch, tmp_path):
    monkeypatch.setattr(pages, "PageLimits", functools.partial(PageLimits, frame_dom_bytes=FRAME_BOUND))
    server = _site(raw_server)
    url = server.url("/framed")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    frames = [r for r in warc_records(collection.storage.folder) if r.headers.get("WARC-Target-URI") == f"urn:frame-dom:{url}"]
    statement, article = sorted(frames, key=lambda record: b"Story" in record.block)  # the pixel's is not shown
    assert "WARC-Truncated" not in statement.headers and article.headers.get("WARC-Truncated") == "length"

    report = _report(run_cli, collection, url, tmp_path)
    text = text_of(report)
    said = text[text.index("Frames it showed"):]
    assert said.startswith("Frames it showed the page showed 2 frames (an article or a post embedded in it)"), said
    assert f"<code>{html.escape(server.url(STATEMENT))}</code>" in report  # escaped, not markup
    whole, cut = (said[said.index(server.url(path)):] for path in (STATEMENT, "/article"))
    assert whole.startswith(f"{server.url(STATEMENT)}; its DOM in WARC record {statement.headers['WARC-Record-ID']}, "
                            f"block digest "), whole
    assert statement.headers["WARC-Block-Digest"].removeprefix("sha256:") in whole[:whole.index(server.url("/article"))]
    assert "cut:" not in whole[:whole.index(server.url("/article"))]
    assert cut.startswith(f"{server.url('/article')}; its DOM in WARC record {article.headers['WARC-Record-ID']}, "
                          f"block digest "), cut
    assert article.headers["WARC-Block-Digest"].removeprefix("sha256:") in cut
    assert "(cut: the record holds only the first part of the frame's DOM, WARC-Truncated length; " in cut
    assert server.url("/pixel") not in report
    assert network_sandbox == []


def test_a_page_without_frames_says_nothing_of_them(run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    url = _site(raw_server).url("/plain")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    text = text_of(_report(run_cli, collection, url, tmp_path))
    assert "No frames here." in text  # the page section is there
    assert "Frames it showed" not in text and "frame" not in text.lower().replace("no frames here.", "")
    assert network_sandbox == []


def test_a_capture_made_before_frames_were_recorded_says_they_were_not(
        run_cli, raw_server, collection, chromium, network_sandbox, monkeypatch, tmp_path):
    url = _site(raw_server).url("/framed")
    captured_before_frames(run_cli, collection, url, monkeypatch)
    text = text_of(_report(run_cli, collection, url, tmp_path))
    assert ("Frames it showed not recorded: this capture was made before archiver recorded the frames a page showed "
            "(an article or a post embedded in it), so whether it showed any, and what they held, is not in its "
            "records beyond what its screenshot shows") in text
    assert "the page showed" not in text
    assert network_sandbox == []


def test_an_imported_capture_names_its_frame_records_but_not_their_urls(
        run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    url = _site(raw_server).url("/framed")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    frames = [r for r in warc_records(collection.storage.folder) if r.headers.get("WARC-Target-URI") == f"urn:frame-dom:{url}"]
    assert len(frames) == 2
    made = run_cli("bundle", "-C", collection.root, "--url", url, "-o", tmp_path / "made.wacz")
    assert made.exit_code == 0, made.output
    other = make_collection(tmp_path / "other")
    imported = run_cli("import", "-C", other.root, tmp_path / "made.wacz")
    assert imported.exit_code == 0, imported.output
    (tmp_path / "again").mkdir()
    text = text_of(_report(run_cli, other, url, tmp_path / "again"))
    said = text[text.index("Frames it showed"):]
    assert said.startswith("Frames it showed the file holds the DOMs of 2 frames the page showed; which URL each came "
                           "from is not read (the file's metadata is another tool's)"), said
    for frame in frames:
        assert (f"URL not read; its DOM in WARC record {frame.headers['WARC-Record-ID']}, block digest "
                f"{frame.headers['WARC-Block-Digest']}") in said
    assert network_sandbox == []
