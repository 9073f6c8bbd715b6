"""A bundle of a browser capture: it replays in pywb, through real Chromium, with its stylesheet,
image, web font and script-loaded content, and serves the screenshot at its urn:; its report
shows the page (the signed screenshot byte for byte, the URL with the UTC time, the title, the
first lines of text, the claim's words marked) with everything the page wrote escaped."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from archiver.capture.browser.chromium import find_chromium
from tests import pywb
from tests.conftest import http_response, send_bytes, warc_records

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

FONT = min(Path("/usr/share/fonts").rglob("*.ttf"), key=lambda path: path.stat().st_size, default=None)
# A 1x1 red PNG.
PHOTO = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
# The title and the script-loaded text carry markup as text: the report must show it, never obey it.
HOSTILE_TITLE = "Troops moved <script>alert(1)</script>"
HOSTILE_TEXT = "Loaded by a script <img src=x onerror=alert(2)>"
ARTICLE = (f'<html><head><title>{html.escape(HOSTILE_TITLE)}</title><link rel="stylesheet" href="/style.css">'
           '</head><body><h1>Troops moved on Monday</h1><img id="photo" src="/photo.png" width="200" height="100">'
           '<p>The ministry confirmed it in a statement.</p>'
           '<p id="late">Loading</p><script src="/app.js"></script></body></html>').encode()
STYLE = (b"@font-face { font-family: Evidence; src: url(/evidence-font.ttf); }"
         b"h1 { font-family: Evidence; color: #a00; font-size: 40px }")
SCRIPT = (b"fetch('/data.json').then(r => r.json()).then(d => {"
          b"document.getElementById('late').textContent = d.text; });")


def _origin(raw_server):
    sent = {
        "/article": http_response(ARTICLE),
        "/style.css": http_response(STYLE, headers=[("Content-Type", "text/css")]),
        "/evidence-font.ttf": http_response(FONT.read_bytes(), headers=[("Content-Type", "font/ttf")]),
        "/photo.png": http_response(PHOTO, headers=[("Content-Type", "image/png")]),
        "/app.js": http_response(SCRIPT, headers=[("Content-Type", "application/javascript")]),
        "/data.json": http_response(json.dumps({"text": HOSTILE_TEXT}).encode(),
                                    headers=[("Content-Type", "application/json")]),
        "/favicon.ico": http_response(b"no icon", "404 Not Found", headers=[("Content-Type", "text/plain")]),
    }
    return raw_server({path: send_bytes(data) for path, data in sent.items()})


@pytest.fixture
def bundled(run_cli, raw_server, collection, monkeypatch, network_sandbox, tmp_path):
    """A page captured in Chromium from a document with two claims citing it (one quoting words
    the page has, one words it has not), and the bundle of that page."""
    assert FONT is not None, "no .ttf font under /usr/share/fonts for the page's web font"
    monkeypatch.delenv("ARCHIVER_CHROMIUM")
    server = _origin(raw_server)
    page = server.url("/article")
    seeds = collection.root / "seeds"
    (seeds / "report.md").write_text(f"# Army report\n\nThe ministry wrote “troops moved on Monday” in a statement: {page}\n\n"
                                     f"A blog claimed “tanks crossed the river” the same day {page}\n")
    captured = run_cli("capture", "-C", collection.root, "--browser", seeds)
    assert captured.exit_code == 0, captured.output
    bundle = tmp_path / "page.wacz"
    made = run_cli("bundle", "-C", collection.root, "--url", page, "-o", bundle)
    assert made.exit_code == 0, made.output
    records = warc_records(collection.storage.folder)
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    [capture] = json.loads(run_cli("captures", "-C", collection.root, "--url", page, "--json").stdout)
    return {"server": server, "page": page, "bundle": bundle, "records": records, "claims": claims,
            "capture": capture, "tmp": tmp_path}


def test_the_bundle_replays_in_pywb_with_everything_the_page_loaded(bundled, tmp_path):
    from playwright.sync_api import sync_playwright

    from archiver.capture.browser.chromium import find_chromium

    wacz = shutil.which("wacz") or str(Path(sys.executable).with_name("wacz"))
    result = subprocess.run([wacz, "validate", "-f", str(bundled["bundle"])], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "Validation succeeded, the passed WACZ is valid", \
        result.stdout + result.stderr
    # pages.jsonl lists the page, not its subresources.
    pages = zipfile.ZipFile(bundled["bundle"]).read("pages/pages.jsonl").decode().splitlines()
    assert [json.loads(line)["url"] for line in pages[1:]] == [bundled["page"]]
    # With the text a reader saw, for a player's search (wacz validate accepted it above).
    assert "The ministry confirmed it in a statement." in json.loads(pages[1])["text"]

    origin = bundled["server"].url("/")
    recorded = {r.headers["WARC-Target-URI"]: int(r.block.split(b" ", 2)[1])
                for r in bundled["records"] if r.type == "response"}
    assert {origin + path for path in ("style.css", "evidence-font.ttf", "photo.png", "app.js", "data.json")} <= set(recorded)
    [screenshot] = [r for r in bundled["records"] if r.headers.get("WARC-Target-URI") == f"urn:screenshot:{bundled['page']}"]
    stamp = re.sub(r"\D", "", screenshot.headers["WARC-Date"])[:14]
    served_to_origin = len(bundled["server"].requests)

    wayback, port = pywb.serve(bundled["bundle"], tmp_path / "pywb")
    replay = f"http://127.0.0.1:{port}/evidence/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=find_chromium())
            page = browser.new_page()
            responses: list[tuple[str, int]] = []
            page.on("response", lambda response: responses.append((response.url, response.status)))
            page.goto(f"{replay}{stamp}/{bundled['page']}", wait_until="networkidle")
            page.evaluate("document.fonts.ready")
            late = page.inner_text("#late")
            photo_width = page.evaluate("document.getElementById('photo').naturalWidth")
            fonts = page.evaluate("[...document.fonts].filter(f => f.family == 'Evidence').map(f => f.status)")
            browser.close()
        asked = {}
        for url, status in responses:
            if url.startswith(replay):
                original = re.match(r"\d{14}(?:[a-z]{2}_)?/(.*)$", url[len(replay):]).group(1)
                asked[original] = status
        # Every resource the replay asked for is recorded and came back as recorded: no 404.
        assert asked and set(asked) <= set(recorded), set(asked) - set(recorded)
        assert {url: status for url, status in asked.items()} == {url: recorded[url] for url in asked}
        assert {origin + path for path in ("style.css", "evidence-font.ttf", "photo.png", "app.js", "data.json")} <= set(asked)
        assert late == HOSTILE_TEXT
        assert photo_width == 1
        assert fonts == ["loaded"]
        assert len(bundled["server"].requests) == served_to_origin  # replayed from the bundle, not the origin

        with urllib.request.urlopen(f"{replay}{stamp}id_/urn:screenshot:{bundled['page']}", timeout=10) as served:
            assert served.headers["Content-Type"] == "image/png"
            assert served.read() == screenshot.block
    finally:
        wayback.terminate()
        wayback.wait(10)


def _report(bundled) -> str:
    return zipfile.ZipFile(bundled["bundle"]).read("evidence/report.html").decode()


def test_the_report_shows_the_page_a_reader_saw(bundled, tmp_path):
    from playwright.sync_api import sync_playwright

    from archiver.capture.browser.chromium import find_chromium

    report = _report(bundled)
    [screenshot] = [r for r in bundled["records"] if r.headers.get("WARC-Target-URI") == f"urn:screenshot:{bundled['page']}"]
    [embedded] = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', report)
    assert base64.b64decode(embedded) == screenshot.block
    # The same bytes as the record the bundle carries, which its attestation signs.
    archive = gzip.decompress(zipfile.ZipFile(bundled["bundle"]).read("archive/data.warc.gz"))
    assert screenshot.block in archive
    assert screenshot.headers["WARC-Block-Digest"].removeprefix("sha256:") in report

    started = datetime.fromisoformat(bundled["capture"]["started_at"]).astimezone(timezone.utc)
    figure = report[report.index("<figure>"):report.index("</figure>")]
    assert started.strftime("%Y-%m-%d at %H:%M:%S UTC") in figure and html.escape(bundled["page"]) in figure

    # Title and text as the page had them, escaped: nothing the page wrote became markup.
    assert html.escape(HOSTILE_TITLE) in report and html.escape(HOSTILE_TEXT) in report
    assert "<script" not in report and "<img src=x" not in report
    assert "The ministry confirmed it in a statement." in report

    quoted, absent = (next(c for c in bundled["claims"] if words in c["text"])
                      for words in ("troops moved on Monday", "tanks crossed the river"))
    marked = re.findall(r"<mark>(.*?)</mark>", report)
    assert marked == ["<bdi>Troops moved on Monday</bdi>"]
    found = re.search(rf"<li>claim <code>{quoted['id']}</code>: .*?</li>", report, re.S).group()
    assert "appears in the page's text" in found and "<mark>" in found
    missing = re.search(rf"<li>claim <code>{absent['id']}</code>: .*?</li>", report, re.S).group()
    assert "does not appear" in missing and "<mark>" not in missing

    # Opened as a reader would, from the unpacked bundle: the report's CSP lets the screenshot show.
    unpacked = tmp_path / "unpacked.html"
    unpacked.write_text(report)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium())
        page = browser.new_page()
        page.goto(unpacked.as_uri())
        shown = page.evaluate("document.querySelector('figure img').naturalWidth")
        browser.close()
    assert shown > 0
