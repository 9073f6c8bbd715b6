"""`verify --live --recapture` captures a changed page again the way it was captured before:
a page rendered in Chromium is rendered again (also one that ended before the browser made
anything of it), a page fetched over HTTP alone is fetched so again, whatever capture_mode the
collection has now."""

from __future__ import annotations

import json

import pytest

from tests.conftest import http_response, warc_records
from tests.test_browser_capture import CHROMIUM, PHOTO, chromium  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")


def _page(text: str) -> bytes:
    return f'<html><body><h1>{text}</h1><img src="/photo.png"></body></html>'.encode()


# "auto" would render every page (Chromium is there), "http" none: either way one of the two
# pages is recaptured in a mode other than the collection's.
@pytest.mark.parametrize("capture_mode", ["auto", "http"])
def test_a_changed_page_is_recaptured_in_the_mode_of_its_capture(
        run_cli, raw_server, collection, chromium, network_sandbox, capture_mode):
    now = {"/rendered": _page("Rendered, first version"), "/plain": _page("Plain, first version"),
           "/download": b"first version"}
    # A download ends the page before a screenshot, PDF or DOM: only its metadata names the browser.
    download = [("Content-Type", "application/octet-stream"), ("Content-Disposition", "attachment; filename=d.bin")]

    def serve(path: str):
        def respond(conn, request: bytes) -> None:
            conn.sendall(http_response(now[path], headers=download if path == "/download" else None))
        return respond

    server = raw_server({**{path: serve(path) for path in now},
                         "/photo.png": lambda conn, request: conn.sendall(
                             http_response(PHOTO, headers=[("Content-Type", "image/png")]))})
    rendered, plain, ended = server.url("/rendered"), server.url("/plain"), server.url("/download")
    first = run_cli("capture", "-C", collection.root, "--browser", rendered, ended, "--json")
    assert first.exit_code == 0, first.stdout
    assert run_cli("capture", "-C", collection.root, "--no-browser", plain).exit_code == 0
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace('capture_mode = "auto"', f'capture_mode = "{capture_mode}"'))
    now.update({"/rendered": _page("Rendered, rewritten"), "/plain": _page("Plain, rewritten"),
                "/download": b"second version"})

    result = run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {d["url"]: d["state"] for d in report["live"]} == {rendered: "changed", plain: "changed", ended: "changed"}
    assert sorted(r["url"] for r in report["recaptured"]) == sorted([rendered, plain, ended])
    assert {r["outcome"] for r in report["recaptured"]} == {"ok"}, [(r["url"], r["error"]) for r in report["recaptured"]]

    records = warc_records(collection.storage.folder)
    screenshots = [r.headers["WARC-Target-URI"] for r in records if r.type == "resource"
                   and r.headers["WARC-Target-URI"].startswith("urn:screenshot:")]
    assert sorted(screenshots) == [f"urn:screenshot:{rendered}"] * 2  # first capture and recapture
    doms = [r.block for r in records if r.headers.get("WARC-Target-URI") == f"urn:dom:{rendered}"]
    assert sum(b"Rendered, rewritten" in dom for dom in doms) == 1
    images = [r for r in records if r.type == "response" and r.headers["WARC-Target-URI"] == server.url("/photo.png")]
    assert len(images) == 2  # the rendered page's image, each time; the plain page's never
    metadata = [json.loads(r.block) for r in records
                if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    recaptured = {r["id"] for r in report["recaptured"]}
    newest = {m["requested_url"]: m for m in metadata if m["capture_id"] in recaptured}
    assert "browser" in newest[rendered] and "browser" in newest[ended] and "browser" not in newest[plain]
    assert newest[ended]["page"]["ended_early"] and newest[ended]["artifacts"] == {}
    assert newest[plain]["settings"]["capture_mode"] == "http"
    assert network_sandbox == []

    assert run_cli("verify", "-C", collection.root, "--json").exit_code == 0
