"""`verify --live` on browser captures compares like with like: the page is rendered again and
its verdict, rendered text and final URL compared with the capture's, never the bare HTML of a
script-rendered page or the document a redirect started from. Without Chromium such a page is
not compared, and said so."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

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
