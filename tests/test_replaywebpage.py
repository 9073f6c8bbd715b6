"""A bundle opened as its recipient may open it: in ReplayWeb.page (the `replaywebpage` npm
package, fetched by .ci/run before the tests), in real Chromium, served from 127.0.0.1. The
page replays from the bundle alone, and ReplayWeb.page's own verifier accepts the bundle's
P-384 signedData, and rejects it when one byte of the signature is flipped.

The verdict is read where ReplayWeb.page stores it, not from its UI: the collection's IndexedDB
database ("db:<id>") has a "verification" store whose "signature" row holds `matched`, the
result of its crypto.subtle.verify over the digest file's hash. (Its UI's "N hashes verified,
M invalid" counts file hashes it only checks when a flag is on: not a verdict on our bundle.)"""

from __future__ import annotations

import json
import os
import re
import threading
import zipfile
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from archiver.capture.browser.chromium import find_chromium
from tests.conftest import http_response, send_bytes
from tests.test_bundle import flip_signature_byte

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
# Where .ci/run unpacks the pinned package (its sw.js, ui.js and index.html); $ARCHIVER_REPLAYWEBPAGE overrides.
REPLAYWEBPAGE = Path(os.environ.get("ARCHIVER_REPLAYWEBPAGE")
                     or Path(__file__).resolve().parent.parent / ".cache" / "replaywebpage" / "package")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)"),
    pytest.mark.skipif(not (REPLAYWEBPAGE / "sw.js").is_file(),
                       reason=f"ReplayWeb.page is not at {REPLAYWEBPAGE} (.ci/run fetches it with npm)"),
]

ARTICLE = (b'<html><head><title>Ministry report</title><link rel="icon" href="data:,"></head>'
           b'<body><h1>Troops moved on Monday</h1><p id="said">The ministry confirmed it in a statement.</p></body></html>')

# The stored verdict: every row of every collection database's "verification" store.
VERIFICATION_ROWS = """async () => {
    const request = (r) => new Promise((done, failed) => { r.onsuccess = () => done(r.result); r.onerror = () => failed(r.error); });
    const rows = [];
    for (const {name} of await indexedDB.databases()) {
        if (!name.startsWith("db:")) continue;
        const db = await request(indexedDB.open(name));
        if (db.objectStoreNames.contains("verification")) {
            rows.push(...await request(db.transaction("verification").objectStore("verification").getAll()));
        }
        db.close();
    }
    return rows;
}"""


class _Handler(SimpleHTTPRequestHandler):
    """ReplayWeb.page's files from its package folder, and the bundles by name with Range
    support (ReplayWeb.page reads a WACZ by byte ranges)."""

    # A service worker's script must be served as JavaScript.
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "application/javascript"}

    def __init__(self, *args, bundles: dict[str, Path], **kwargs):
        self.bundles = bundles
        super().__init__(*args, **kwargs)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path not in self.bundles:
            return super().do_GET()
        data = self.bundles[path].read_bytes()
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = (int(wanted[1]), min(int(wanted[2] or len(data) - 1), len(data) - 1)) if wanted else (0, len(data) - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted else HTTPStatus.OK)
        self.send_header("Content-Type", "application/wacz")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[start:end + 1])

    def do_HEAD(self) -> None:
        path = urlsplit(self.path).path
        if path not in self.bundles:
            return super().do_HEAD()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/wacz")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(self.bundles[path].stat().st_size))
        self.end_headers()


@pytest.fixture
def replaywebpage_server():
    """A function serving ReplayWeb.page and the given bundles ({"/name.wacz": path}) on
    127.0.0.1; returns the server's base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(bundles: dict[str, Path]) -> str:
        handler = partial(_Handler, bundles=bundles, directory=str(REPLAYWEBPAGE))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _replay(base: str, bundle: str, page_url: str) -> tuple[str, list[dict]]:
    """The captured page's text as ReplayWeb.page replays it from `bundle`, and the rows of its
    verification store once the signature's row is there, in a fresh Chromium profile."""
    from playwright.sync_api import sync_playwright

    from archiver.capture.browser.chromium import find_chromium

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium())
        try:
            page = browser.new_page()
            page.goto(f"{base}/?source={quote(base + bundle, safe='')}#view=replay&url={quote(page_url, safe='')}")
            # The replay is an iframe the service worker serves, at /w/<collection>/<timestamp>mp_/<url>.
            def replaying(frame) -> bool:
                return frame.url.endswith("mp_/" + page_url)
            frame = next(filter(replaying, page.frames), None) or page.wait_for_event("framenavigated", replaying)
            frame.wait_for_selector("#said")
            text = frame.inner_text("body")
            page.wait_for_function(f"({VERIFICATION_ROWS})().then(rows => rows.some(row => row.id == 'signature'))",
                                   polling=100)
            return text, page.evaluate(VERIFICATION_ROWS)
        finally:
            browser.close()


def _signature_verdict(rows: list[dict]) -> dict:
    [signature] = [row for row in rows if row["id"] == "signature"]
    return signature


def test_replaywebpage_replays_the_bundle_and_its_verifier_accepts_only_the_true_signature(
        run_cli, raw_server, collection, monkeypatch, replaywebpage_server, tmp_path):
    origin = raw_server({"/report": send_bytes(http_response(ARTICLE))})
    page_url = origin.url("/report")
    assert run_cli("capture", "-C", collection.root, page_url).exit_code == 0
    bundle = tmp_path / "bundle.wacz"
    made = run_cli("bundle", "-C", collection.root, "--url", page_url, "-o", bundle)
    assert made.exit_code == 0, made.output
    tampered = flip_signature_byte(bundle)
    asked = len(origin.requests)

    monkeypatch.delenv("ARCHIVER_CHROMIUM")  # the test's own browser; the capture above was plain HTTP
    base = replaywebpage_server({"/bundle.wacz": bundle, "/tampered.wacz": tampered})

    text, rows = _replay(base, "/bundle.wacz", page_url)
    assert "Troops moved on Monday" in text and "The ministry confirmed it in a statement." in text
    assert _signature_verdict(rows) == {"id": "signature", "expected": True, "matched": True}, rows
    # The key it verified with is the bundle's P-384 key.
    signed = json.loads(zipfile.ZipFile(bundle).read("datapackage-digest.json"))["signedData"]
    assert [row["expected"] for row in rows if row["id"] == "publicKey"] == [signed["publicKey"]]

    text, rows = _replay(base, "/tampered.wacz", page_url)
    assert "Troops moved on Monday" in text  # still replays: the records are untouched
    assert _signature_verdict(rows) == {"id": "signature", "expected": True, "matched": False}, rows
    assert len(origin.requests) == asked  # replayed from the bundles, never from the origin
