"""`verify --live` on browser captures compares like with like: the page is rendered again and
its verdict, rendered text and final URL compared with the capture's, never the bare HTML of a
script-rendered page or the document a redirect started from. Without Chromium such a page is
not compared, and said so. The text of a page's shown frames is the page's: each frame's DOM
is recorded beside the page's and compared too, by the live check, a run's "unchanged since"
and history."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from archiver.capture.browser.records import page_records
from archiver.capture.recorded_frames import FRAMES_NOT_COMPARED
from tests import pywb
from tests.conftest import http_response, send_bytes, warc_records
from tests.test_report_bundle import capture_section, text_of
from tests.test_browser_capture import CHROMIUM, chromium  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

STORY = " ".join(f"Paragraph {i}: the ministry's report on regional hospital funding was discussed." for i in range(60))
SHELL = b"<html><head><title>News</title></head><body><div id=root></div><script src=/app.js></script></body></html>"


def _script(title: str, html: str) -> bytes:
    return (f"document.title = {json.dumps(title)};"
            f"document.getElementById('root').innerHTML = {json.dumps(html)};").encode()


ARTICLE_JS = _script("Story", f"<h1>Story</h1><p>{STORY}</p>")
NOT_FOUND_JS = _script("Page not found | News", "<h1>Page not found</h1>")
# The app now sends /spa on to /moved, the same shell, where it renders the same story.
MOVED_JS = b"if (location.pathname === '/spa') { location.replace('/moved'); } else { " + ARTICLE_JS + b" }"


def _site(raw_server, app: dict[str, bytes]):
    """An app shell whose article a script renders, a page a script sends on to another, and a
    meta refresh to a 404; `app["js"]` is the script the shell loads, changed by the tests."""
    final = f"<html><head><title>Final</title></head><body><p>{STORY}</p></body></html>".encode()
    pages = {
        "/spa": http_response(SHELL),
        "/moved": http_response(SHELL),
        "/jsnav": http_response(b"<html><head><title>Redirecting</title><script>location.replace('/final')</script>"
                                b"</head><body>Redirecting</body></html>"),
        "/final": http_response(final),
        "/refresh": http_response(b"<html><head><meta http-equiv=refresh content='0;url=/gone'><title>Redirecting"
                                  b"</title></head><body>Redirecting</body></html>"),
        "/gone": http_response(b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>",
                               "404 Not Found"),
    }
    routes = {path: (lambda sent: lambda conn, request: conn.sendall(sent))(sent) for path, sent in pages.items()}
    routes["/app.js"] = lambda conn, request: conn.sendall(
        http_response(app["js"], headers=[("Content-Type", "application/javascript")]))
    return raw_server(routes)


def test_live_check_of_browser_captures_renders_them_again(run_cli, raw_server, collection, chromium, network_sandbox,
                                                           monkeypatch):
    app = {"js": ARTICLE_JS}
    server = _site(raw_server, app)
    spa, jsnav, refresh = server.url("/spa"), server.url("/jsnav"), server.url("/refresh")
    captured = run_cli("capture", "-C", collection.root, "--browser", spa, jsnav, refresh, "--json")
    assert captured.exit_code == 0, captured.output
    verdicts = {c["url"]: c["verdict"] for c in json.loads(captured.stdout)["captures"]}
    assert verdicts == {spa: "content", jsnav: "content", refresh: "http-error"}, verdicts

    # Nothing changed on the server: nothing is reported changed.
    result = run_cli("verify", "-C", collection.root, "--live", "--json")
    assert result.exit_code == 0, result.output
    live = {d["url"]: d for d in json.loads(result.stdout)["live"]}
    assert {url: d["state"] for url, d in live.items()} == {spa: "unchanged", jsnav: "unchanged",
                                                            refresh: "unchanged"}, live
    assert "same rendered text" in live[spa]["detail"] and live[refresh]["detail"] == "still 404", live

    # The script now renders "Page not found" in the same shell: the page went.
    app["js"] = NOT_FOUND_JS
    live = {d["url"]: d for d in json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]}
    assert live[spa]["state"] == "gone" and live[spa]["detail"].startswith("now not-found"), live
    assert live[jsnav]["state"] == "unchanged", live

    # It now ends at another URL, rendering the same story there: its rendered text is compared
    # with the capture's rendered text still, not with the capture's bare app shell.
    app["js"] = MOVED_JS
    live = {d["url"]: d for d in json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]}
    assert live[spa]["state"] == "unchanged", live[spa]
    assert "same rendered text" in live[spa]["detail"] and f"now ends at {server.url('/moved')}" in live[spa]["detail"]

    # No Chromium: a browser capture is not compared, and the reason is given; that is no failure.
    monkeypatch.setenv("ARCHIVER_CHROMIUM", "")
    result = run_cli("verify", "-C", collection.root, "--live", "--json")
    assert result.exit_code == 0, result.output
    live = json.loads(result.stdout)["live"]
    assert {d["state"] for d in live} == {"not compared"}, live
    assert all("no Chromium was found" in d["detail"] for d in live), live
    text = run_cli("verify", "-C", collection.root, "--live", "--recapture")
    assert text.exit_code == 0, text.output
    assert text.stdout.count("not compared") == 3 and "Recaptured" not in text.stdout, text.stdout
    assert network_sandbox == []


def test_a_browser_recapture_of_the_same_html_rendered_as_another_page_is_not_unchanged(
        run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    """The app shell's HTML is byte-identical (a revisit record, rightly: it is about bytes), but the
    page it renders went from an article to "Page not found": neither the run nor history says unchanged."""
    app = {"js": ARTICLE_JS}
    spa = _site(raw_server, app).url("/spa")
    assert run_cli("capture", "-C", collection.root, "--browser", spa).exit_code == 0
    again = run_cli("capture", "-C", collection.root, "--browser", spa, "--json")  # nothing changed
    [same] = json.loads(again.stdout)["captures"]
    assert same["revisit_of"] and same["unchanged_since"] and same["rendered_change"] is None, same

    app["js"] = NOT_FOUND_JS
    result = run_cli("capture", "-C", collection.root, "--browser", spa, "--json")
    [changed] = json.loads(result.stdout)["captures"]
    assert changed["revisit_of"], changed  # the same bytes are stored once
    assert changed["unchanged_since"] is None and changed["rendered_change"] == "same HTML, rendered page now not-found"
    app["js"] = ARTICLE_JS
    text = run_cli("capture", "-C", collection.root, "--browser", spa)
    assert "unchanged since" not in text.stdout and "same HTML, rendered page now content" in text.stdout, text.stdout

    history = json.loads(run_cli("history", "-C", collection.root, spa, "--json").stdout)
    assert [h["change"] for h in history] == ["first capture", "unchanged", "same HTML, rendered page now not-found",
                                              "same HTML, rendered page now content"], history

    # The report a court reads says so too, capture by capture.
    bundle = tmp_path / "spa.wacz"
    assert run_cli("bundle", "-C", collection.root, "--url", spa, "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as wacz:
        report = {"text": text_of(wacz.read("evidence/report.html").decode())}
    sections = [capture_section(report, h["id"]) for h in history]
    assert "unchanged since the previous capture" in sections[1]
    for section, verdict in ((sections[2], "not-found"), (sections[3], "content")):
        assert ("changed since the previous capture" in section and "the same payload digest, but the page the browser "
                f"rendered from it differs (page verdict now {verdict})" in section), section
    assert network_sandbox == []


def test_the_same_html_fetched_without_a_browser_after_a_rendered_capture_is_not_unchanged(
        run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    """A page a script turned into "Page not found", then the same HTML fetched alone and judged on
    its own: the run does not call it unchanged, and neither history nor the bundle's report says
it was rendered, as nothing was."""
    spa = _site(raw_server, {"js": NOT_FOUND_JS}).url("/spa")
    assert run_cli("capture", "-C", collection.root, "--browser", spa).exit_code == 0
    result = run_cli("capture", "-C", collection.root, "--no-browser", spa, "--json")
    [fetched] = json.loads(result.stdout)["captures"]
    told = f"same HTML, not rendered (the capture before was): verdict not-found → {fetched['verdict']}"
    assert fetched["revisit_of"] and fetched["verdict"] != "not-found", fetched
    assert fetched["unchanged_since"] is None and fetched["rendered_change"] == told, fetched
    again = json.loads(run_cli("capture", "-C", collection.root, "--no-browser", spa, "--json").stdout)["captures"][0]
    assert again["unchanged_since"] == fetched["started_at"][:19].replace("T", " ") + " UTC", again  # both fetched alone
    history = json.loads(run_cli("history", "-C", collection.root, spa, "--json").stdout)
    assert [h["change"] for h in history] == ["first capture", told, "unchanged"], history
    text = run_cli("capture", "-C", collection.root, "--browser", spa).stdout
    assert "unchanged since" not in text, text
    assert f"same HTML, rendered (the capture before was not): verdict {fetched['verdict']} → not-found" in text, text
    # The same bytes captured another way is not a page that changed, nor counted as one.
    assert "1 the same HTML captured another way (rendered or not)" in text and "another page" not in text, text

    bundle = tmp_path / "spa.wacz"
    assert run_cli("bundle", "-C", collection.root, "--url", spa, "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as wacz:
        report = {"text": text_of(wacz.read("evidence/report.html").decode())}
    ids = [h["id"] for h in json.loads(run_cli("history", "-C", collection.root, spa, "--json").stdout)]
    sections = [capture_section(report, capture_id) for capture_id in ids]
    assert "this capture fetched it alone and the previous one rendered it in a browser" in sections[1], sections[1]
    assert "unchanged since the previous capture" in sections[2], sections[2]
    assert "this capture rendered it in a browser and the previous one fetched it alone" in sections[3], sections[3]
    for section in (sections[1], sections[3]):  # the same payload: captured another way, not changed, nor diffed
        assert "the same payload digest as the previous capture" in section and "captured another way" in section
        assert "changed since the previous capture" not in section and "− " not in section, section
    assert "judged not-found then and" in sections[1] and "now, as a rendered and a plain capture" in sections[1]
    assert network_sandbox == []


def test_a_page_rendered_then_fetched_alone_with_the_same_bytes_is_not_called_changed(
        run_cli, raw_server, collection, chromium, network_sandbox, tmp_path):
    """Rendered in the browser, then fetched without one: the same payload digest, captured another
    way. Neither the run nor the report a court reads calls the page changed or diffs its texts."""
    page = raw_server({"/page": send_bytes(http_response(b"<html><title>T</title><p>same words</p></html>"))}).url("/page")
    assert run_cli("capture", "-C", collection.root, "--browser", page).exit_code == 0
    text = run_cli("capture", "-C", collection.root, "--no-browser", page).stdout
    assert re.search(r"^same bytes +" + re.escape(page) + "  same HTML, not rendered", text, re.MULTILINE), text
    assert "\nchanged" not in text and "1 the same HTML captured another way" in text, text
    bundle = tmp_path / "page.wacz"
    assert run_cli("bundle", "-C", collection.root, "--url", page, "-o", bundle).exit_code == 0
    with zipfile.ZipFile(bundle) as wacz:
        report = {"text": text_of(wacz.read("evidence/report.html").decode())}
    second = capture_section(report, json.loads(run_cli("history", "-C", collection.root, page, "--json").stdout)[1]["id"])
    assert "changed" not in second and "captured another way" in second, second
    first = capture_section(report, json.loads(run_cli("history", "-C", collection.root, page, "--json").stdout)[0]["id"])
    assert re.search(r"Captured with software archiver/\S+ .* chromium/[0-9.]+ playwright/\S+ rendered in chromium "
                     r"[0-9.]+, headless, window \d+×\d+ px, language \S+, user agent Mozilla/", first), first
    assert network_sandbox == []


def test_a_page_showing_a_blob_image_captured_again_unchanged_is_unchanged(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """Its script makes the image a blob: URL, whose id is new at every load: the DOMs differ in that
    id alone, and nothing a reader sees changed, so neither the run nor history tells a change."""
    page = (b'<html><head><title>Photo</title><link rel="icon" href="data:,"></head><body><h1>The minister</h1>'
            b'<img id=photo><script>fetch("/photo.gif").then(r => r.blob()).then(b => {'
            b' document.getElementById("photo").src = URL.createObjectURL(b); });</script></body></html>')
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    server = raw_server({"/photo": lambda conn, request: conn.sendall(http_response(page)),
                         "/photo.gif": lambda conn, request: conn.sendall(
                             http_response(gif, headers=[("Content-Type", "image/gif")]))})
    url = server.url("/photo")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    result = run_cli("capture", "-C", collection.root, "--browser", url, "--json")
    [again] = json.loads(result.stdout)["captures"]
    doms = [r.block for r in warc_records(collection.storage.folder) if r.headers.get("WARC-Target-URI", "")
            .startswith("urn:dom:")]
    assert len(doms) == 2 and doms[0] != doms[1] and all(b'src="blob:' + url.split("/photo")[0].encode() in dom
                                                         for dom in doms)  # the ids differ
    assert again["revisit_of"] and again["rendered_change"] is None and again["unchanged_since"], again
    history = json.loads(run_cli("history", "-C", collection.root, url, "--json").stdout)
    assert [h["change"] for h in history] == ["first capture", "unchanged"], history
    assert network_sandbox == []


def test_history_of_rendered_captures_whose_files_are_gone_is_still_the_catalogs(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """history compares two rendered captures of the same HTML by their DOMs, read from their
    WARC file: with the file gone (verify fails on that), it compares their cataloged digests
    and still lists what the catalog holds, never an error."""
    page = b"<html><head><title>Still</title></head><body><h1>The minister said X</h1></body></html>"
    server = raw_server({"/still": lambda conn, request: conn.sendall(http_response(page))})
    url = server.url("/still")
    for _ in range(2):
        assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    for warc in collection.storage.folder.glob("*.warc.gz"):
        warc.rename(warc.with_name(warc.name + ".moved"))
    result = run_cli("history", "-C", collection.root, url, "--json")
    assert result.exit_code == 0, result.output
    assert [h["change"] for h in json.loads(result.stdout)] == ["first capture", "unchanged"]
    assert network_sandbox == []


FRAMED = (b'<html><head><title>Ministry</title><link rel="icon" href="data:,"></head><body><h1>Ministry news</h1>'
          b'<iframe src="/article" style="border:0;width:100%;height:600px"></iframe>'
          b'<iframe src="/pixel" width="1" height="1" style="border:0"></iframe></body></html>')


def _framed_site(raw_server, article: dict[str, str]):
    """A page whose article is in a frame (and a tracking pixel's frame beside it); `article["text"]`
    is the frame's, changed by the tests."""
    return raw_server({
        "/framed": lambda conn, request: conn.sendall(http_response(FRAMED)),
        "/article": lambda conn, request: conn.sendall(http_response(
            f"<html><body><h2>Story</h2><p>{article['text']}</p></body></html>".encode())),
        "/pixel": lambda conn, request: conn.sendall(http_response(b"<html><body>tracking pixel</body></html>")),
    })


def _live(run_cli, collection) -> dict:
    result = run_cli("verify", "-C", collection.root, "--live", "--json")
    assert result.exit_code == 0, result.output
    [drift] = json.loads(result.stdout)["live"]
    return drift


def test_live_check_sees_the_article_of_a_frame_change(run_cli, raw_server, collection, chromium, network_sandbox):
    """The capture records each shown frame's DOM (not the pixel's), and the live check compares
    the text a reader saw, the frame's included: its article rewritten is a change of the page."""
    article = {"text": STORY}
    url = _framed_site(raw_server, article).url("/framed")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    records = warc_records(collection.storage.folder)
    [frame] = [r for r in records if r.headers.get("WARC-Target-URI") == f"urn:frame-dom:{url}"]
    assert b"regional hospital funding" in frame.block and frame.headers["WARC-Type"] == "resource"
    [dom] = [r for r in records if r.headers.get("WARC-Target-URI") == f"urn:dom:{url}"]
    assert b"regional hospital funding" not in dom.block  # the page's own DOM holds only the <iframe>
    assert frame.headers["WARC-Concurrent-To"] == dom.headers["WARC-Record-ID"]
    [details] = [json.loads(r.block) for r in records if r.type == "metadata"
                 and r.headers.get("Content-Type") == "application/json"]
    assert details["page"]["frames"] == [{"url": url.replace("/framed", "/article"),
                                          "dom_record_id": frame.headers["WARC-Record-ID"]}], details["page"]
    assert _live(run_cli, collection)["state"] == "unchanged"

    article["text"] = STORY.replace("regional hospital funding", "a new motorway to the coast")
    drift = _live(run_cli, collection)
    assert drift["state"] == "changed" and '"regional hospital funding" → "a new motorway to the coast"' in \
        drift["detail"].replace(" was", ""), drift
    verified = run_cli("verify", "-C", collection.root)  # the frame's record is signed and checked as any
    assert verified.exit_code == 0, verified.output
    assert network_sandbox == []


def _as_before_frames(result, page_response_id):
    """page_records as archiver wrote them before frames were recorded: no frame-dom records, and
    no "frames" in the metadata's page section."""
    records, section = page_records(result, page_response_id)
    del section["page"]["frames"]
    return [record for record in records if record.role != "frame-dom"], section


def captured_before_frames(run_cli, collection, url: str, monkeypatch) -> None:
    import archiver.capture.run
    with monkeypatch.context() as before:
        before.setattr(archiver.capture.run, "page_records", _as_before_frames)
        assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0


def _recaptured(run_cli, collection, url: str) -> dict:
    result = run_cli("capture", "-C", collection.root, "--browser", url, "--json")
    assert result.exit_code == 0, result.output
    [capture] = json.loads(result.stdout)["captures"]
    return capture


def _history(run_cli, collection, url: str) -> list[str]:
    return [h["change"] for h in json.loads(run_cli("history", "-C", collection.root, url, "--json").stdout)]


def test_a_recapture_whose_frame_was_rewritten_is_not_unchanged(run_cli, raw_server, collection, chromium,
                                                                 network_sandbox):
    """The page's HTML and its own DOM are the same (a revisit record), but the article its frame
    shows was rewritten: neither the run nor history says unchanged."""
    article = {"text": STORY}
    url = _framed_site(raw_server, article).url("/framed")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    same = _recaptured(run_cli, collection, url)
    assert same["revisit_of"] and same["unchanged_since"] and same["rendered_change"] is None, same

    article["text"] = STORY.replace("regional hospital funding", "a new motorway to the coast")
    changed = _recaptured(run_cli, collection, url)
    assert changed["revisit_of"] and changed["unchanged_since"] is None, changed
    assert changed["rendered_change"] == "same HTML, rendered page changed in its frames", changed
    assert _history(run_cli, collection, url) == ["first capture", "unchanged",
                                                  "same HTML, rendered page changed in its frames"]
    assert network_sandbox == []


def test_a_recapture_after_one_made_before_frames_were_recorded_is_compared_without_them(
        run_cli, raw_server, collection, chromium, network_sandbox, monkeypatch):
    """The capture before holds no frame DOMs to compare with: the page's own DOM is compared, the
    recapture is unchanged since it, and history says the frames were not compared."""
    article = {"text": STORY}
    url = _framed_site(raw_server, article).url("/framed")
    captured_before_frames(run_cli, collection, url, monkeypatch)
    article["text"] = STORY.replace("regional hospital funding", "a new motorway to the coast")
    again = _recaptured(run_cli, collection, url)
    assert again["revisit_of"] and again["unchanged_since"] and again["rendered_change"] is None, again
    assert _history(run_cli, collection, url) == [
        "first capture", f"unchanged ({FRAMES_NOT_COMPARED})"]
    assert network_sandbox == []


def test_a_capture_made_before_frames_were_recorded_is_compared_without_them(
        run_cli, raw_server, collection, chromium, network_sandbox, monkeypatch):
    """Its record holds the page's own DOM only: the live page's frames are left out of the
    comparison, and that is said, rather than their text read as a change (or as no change)."""
    article = {"text": STORY}
    url = _framed_site(raw_server, article).url("/framed")
    captured_before_frames(run_cli, collection, url, monkeypatch)
    assert not [r for r in warc_records(collection.storage.folder)
                if r.headers.get("WARC-Target-URI", "").startswith("urn:frame-dom:")]
    article["text"] = STORY.replace("regional hospital funding", "a new motorway to the coast")
    drift = _live(run_cli, collection)
    assert drift["state"] == "unchanged", drift
    assert FRAMES_NOT_COMPARED in drift["detail"]
    assert network_sandbox == []


def test_a_bundle_holding_a_frames_dom_is_valid_and_pywb_serves_it(run_cli, raw_server, collection, chromium,
                                                                   network_sandbox, tmp_path):
    """The frame's DOM record goes into a bundle as any record of its capture: `wacz validate`
    passes, pywb serves it at its urn: and still replays the page (the collection's WARCs pass
    `warcio check`: the fixture checks)."""
    url = _framed_site(raw_server, {"text": STORY}).url("/framed")
    assert run_cli("capture", "-C", collection.root, "--browser", url).exit_code == 0
    bundle = tmp_path / "framed.wacz"
    made = run_cli("bundle", "-C", collection.root, "--url", url, "-o", bundle)
    assert made.exit_code == 0, made.output
    wacz = shutil.which("wacz") or str(Path(sys.executable).with_name("wacz"))
    result = subprocess.run([wacz, "validate", "-f", str(bundle)], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "Validation succeeded, the passed WACZ is valid", \
        result.stdout + result.stderr
    [frame] = [r for r in warc_records(collection.storage.folder)
               if r.headers.get("WARC-Target-URI") == f"urn:frame-dom:{url}"]
    stamp = re.sub(r"\D", "", frame.headers["WARC-Date"])[:14]
    wayback, port = pywb.serve(bundle, tmp_path / "pywb")
    replay = f"http://127.0.0.1:{port}/evidence/{stamp}id_/"
    try:
        with urllib.request.urlopen(f"{replay}urn:frame-dom:{url}", timeout=10) as served:
            assert served.headers["Content-Type"] == "text/html; charset=utf-8"
            assert served.read() == frame.block
        with urllib.request.urlopen(f"{replay}{url}", timeout=10) as served:
            assert served.read() == FRAMED
    finally:
        wayback.terminate()
        wayback.wait(10)
    assert network_sandbox == []
