"""Browser captures of the kinds of page issue 11 names, end to end through `archiver capture
--browser` in real Chromium: a frame from another origin, a responsive image, a service worker,
a redirect to a private address, awkward HTTP framing and an endless page. Each recorded response
is what the origin sent, byte for byte, and what the origin was asked is what was recorded."""

from __future__ import annotations

import base64
import gzip
import json
import re

import pytest

from archiver.capture.browser.chromium import find_chromium
from tests.conftest import http_response, send_bytes, warc_records

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

# A 1x1 red PNG.
PHOTO = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")

PNG = [("Content-Type", "image/png")]
SCRIPT = [("Content-Type", "application/javascript")]


@pytest.fixture
def chromium(monkeypatch) -> None:
    """Chromium found as a user's machine has it: on the PATH."""
    monkeypatch.delenv("ARCHIVER_CHROMIUM")


def _serve(raw_server, sent: dict[str, bytes], host: str = "127.0.0.1"):
    routes = {"/favicon.ico": http_response(b"no icon", "404 Not Found", [("Content-Type", "text/plain")]), **sent}
    sent.update(routes)
    return raw_server({path: send_bytes(data) for path, data in routes.items()}, host=host)


def _allow_second_host(collection) -> None:
    """The collection may capture 127.0.0.2 as well as 127.0.0.1 (conftest's `allow_networks`
    fills only an empty list, which the fixture already filled)."""
    config = collection.root / "archiver.toml"
    allowed = 'allow_networks = ["127.0.0.1/32"]'
    assert allowed in config.read_text()
    config.write_text(config.read_text().replace(allowed, 'allow_networks = ["127.0.0.1/32", "127.0.0.2/32"]'))


def _capture(run_cli, collection, url: str, *options: str) -> dict:
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", *options, url)
    assert result.exit_code == 0, result.output
    [capture] = json.loads(result.stdout)["captures"]
    return capture


def _paths(server) -> list[str]:
    """The targets the origin was asked for, in order."""
    return [request.split(b" ", 2)[1].decode() for request in server.requests]


def _recorded(collection) -> tuple[list, dict, dict]:
    """Every record, the responses by URL, and the capture's metadata."""
    records = warc_records(collection.storage.folder)
    responses = {r.headers["WARC-Target-URI"]: r for r in records if r.type == "response"}
    [metadata] = [r for r in records if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    return records, responses, json.loads(metadata.block)


def _exactly_as_served(records, responses, servers_and_sent) -> None:
    """What each origin was asked is what was recorded, one request record a request, and each
    response block is what the origin sent."""
    asked = {server.url(path): sent[path] for server, sent in servers_and_sent for path in _paths(server)}
    assert set(responses) == set(asked)
    for url, data in asked.items():
        assert responses[url].block == data, url
    requests = [r for r in records if r.type == "request"]
    assert len(requests) == len(responses) == sum(len(server.requests) for server, _ in servers_and_sent)


def test_a_frame_from_another_origin_is_captured_with_its_subresources(
        run_cli, raw_server, collection, chromium, network_sandbox):
    _allow_second_host(collection)
    framed = {"/frame": http_response(b'<html><body><p>Embedded map</p><img src="/inner.png"></body></html>'),
              "/inner.png": http_response(PHOTO, headers=PNG)}
    other = _serve(raw_server, framed, host="127.0.0.2")
    page = {"/story": http_response(b'<html><body><h1>Story</h1><iframe src="%s" width="300" height="200">'
                                    b'</iframe></body></html>' % other.url("/frame").encode())}
    server = _serve(raw_server, page)
    capture = _capture(run_cli, collection, server.url("/story"))
    assert capture["outcome"] == "ok"

    records, responses, details = _recorded(collection)
    assert {"/frame", "/inner.png"} <= set(_paths(other)), details["resources"]
    _exactly_as_served(records, responses, [(server, page), (other, framed)])
    # One capture: every record of both origins is under the one capture's metadata.
    listed = {resource["url"]: resource["response_record_id"] for resource in details["resources"]}
    for path in ("/frame", "/inner.png"):
        assert listed[other.url(path)] == responses[other.url(path)].headers["WARC-Record-ID"]
    assert network_sandbox == []


def test_of_an_image_srcset_the_candidate_the_browser_chose_is_recorded(
        run_cli, raw_server, collection, chromium, network_sandbox):
    # The viewport's device pixel ratio is 1, so the browser picks the 1x candidate.
    sent = {"/gallery": http_response(b'<html><body><img srcset="/small.png 1x, /large.png 2x" '
                                      b'src="/fallback.png" width="100" height="100"></body></html>'),
            "/small.png": http_response(PHOTO, headers=PNG),
            "/large.png": http_response(PHOTO + b"large", headers=PNG),
            "/fallback.png": http_response(PHOTO + b"fallback", headers=PNG)}
    server = _serve(raw_server, sent)
    assert _capture(run_cli, collection, server.url("/gallery"))["outcome"] == "ok"

    records, responses, _ = _recorded(collection)
    assert "/small.png" in _paths(server)
    assert not {"/large.png", "/fallback.png"} & set(_paths(server))
    _exactly_as_served(records, responses, [(server, sent)])


def test_a_service_worker_the_page_registers_is_recorded_with_what_it_fetched(
        run_cli, raw_server, collection, chromium, network_sandbox):
    page = (b"<html><head><title>Offline ready</title></head><body><p id=state>waiting</p><script>"
            b"navigator.serviceWorker.register('/sw.js').then(() => navigator.serviceWorker.ready)"
            b".then(() => { document.getElementById('state').textContent = 'worker active'; })"
            b".catch(e => { document.getElementById('state').textContent = 'no worker: ' + e; });"
            b"</script></body></html>")
    worker = (b"self.addEventListener('install', e => e.waitUntil("
              b"fetch('/cached.txt').then(r => r.text()).then(() => self.skipWaiting())));")
    sent = {"/offline": http_response(page), "/sw.js": http_response(worker, headers=SCRIPT),
            "/cached.txt": http_response(b"kept for offline", headers=[("Content-Type", "text/plain")])}
    server = _serve(raw_server, sent)
    assert _capture(run_cli, collection, server.url("/offline"))["outcome"] == "ok"

    records, responses, _ = _recorded(collection)
    # http://127.0.0.1 is a secure context to Chromium even behind the proxy: the worker
    # registered, installed, and its own fetch went through the recording proxy too.
    [dom] = [r for r in records if r.type == "resource" and r.headers["WARC-Target-URI"].startswith("urn:dom:")]
    assert b'<p id="state">worker active</p>' in dom.block, dom.block
    assert {"/offline", "/sw.js", "/cached.txt"} <= set(_paths(server))
    _exactly_as_served(records, responses, [(server, sent)])


def test_lazy_content_in_an_inner_scroll_container_below_the_first_screen_is_loaded_and_recorded(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """A comment thread in a box of its own, far down in which a script loads a picture and a
    paragraph once they are seen. Scrolling the window passes the box by; only scrolling inside
    it, in view, shows them. (Chromium loads an <img loading=lazy> in such a box unscrolled.)"""
    page = (b'<html><head><title>Comments</title></head><body style="margin:0">'
            b'<div style="height:1200px">The story</div>'
            b'<div style="overflow:auto;height:400px;width:600px"><div style="height:3000px">First comments</div>'
            b'<p id=later>not seen</p><img id=picture width=10 height=10 onload="this.dataset.loaded = \'yes\'">'
            b'<div style="height:3000px"></div></div>'
            b"<script>new IntersectionObserver((seen, observer) => { if (seen.some(e => e.isIntersecting)) {"
            b" observer.disconnect(); document.getElementById('picture').src = '/seen.png';"
            b" fetch('/later.json').then(r => r.json()).then(d => {"
            b" document.getElementById('later').textContent = d.text; }); } }"
            b").observe(document.getElementById('later'));</script></body></html>")
    sent = {"/thread": http_response(page), "/seen.png": http_response(PHOTO, headers=PNG),
            "/later.json": http_response(b'{"text": "Loaded once seen"}', headers=[("Content-Type", "application/json")])}
    server = _serve(raw_server, sent)
    assert _capture(run_cli, collection, server.url("/thread"))["outcome"] == "ok"

    records, responses, _ = _recorded(collection)
    assert {"/later.json", "/seen.png"} <= set(_paths(server))
    _exactly_as_served(records, responses, [(server, sent)])
    [dom] = [r for r in records if r.type == "resource" and r.headers["WARC-Target-URI"].startswith("urn:dom:")]
    assert b'<p id="later">Loaded once seen</p>' in dom.block and b'data-loaded="yes"' in dom.block
    assert network_sandbox == []


def test_a_subresource_redirected_to_a_private_address_keeps_the_redirect_and_refuses_the_target(
        run_cli, raw_server, collection, chromium, network_sandbox):
    moved = http_response(b"moved", "302 Found", [("Location", "http://10.0.0.1/x.png")])
    sent = {"/news": http_response(b'<html><body><p>News</p><img src="/moved.png"></body></html>'),
            "/moved.png": moved}
    server = _serve(raw_server, sent)
    assert _capture(run_cli, collection, server.url("/news"))["outcome"] == "ok"

    records, responses, details = _recorded(collection)
    _exactly_as_served(records, responses, [(server, sent)])
    assert responses[server.url("/moved.png")].block == moved
    listed = {resource["url"]: resource for resource in details["resources"]}
    assert listed[server.url("/moved.png")]["status"] == 302
    target = listed["http://10.0.0.1/x.png"]
    assert target["response_record_id"] is None and target["status"] is None
    assert "refused" in target["error"] or "not allowed" in target["error"], target
    assert network_sandbox == []  # refused before any connection was tried


def test_a_page_redirected_to_an_unreadable_location_is_captured_as_it_ended(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """A Location no URL parser accepts ends the page's chain at its redirect, recorded; the run
    goes on. No page was rendered, so the capture failed, with the browser's reason (as over HTTP)."""
    moved = http_response(b"moved", "302 Found", [("Location", "http://[bold]/x")])
    server = _serve(raw_server, {"/odd": moved})
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", server.url("/odd"))
    assert result.exit_code == 1, result.output
    [capture] = json.loads(result.stdout)["captures"]
    records, responses, _ = _recorded(collection)
    assert responses[server.url("/odd")].block == moved
    assert (capture["url"], capture["http_status"], capture["outcome"]) == (server.url("/odd"), 302, "failed")
    assert "the browser did not render the page (navigation failed" in capture["error"] and "ERR_INVALID_REDIRECT" in capture["error"]


def _chunked(data: bytes, size: int) -> bytes:
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def test_duplicate_cookies_and_a_gzipped_chunked_stylesheet_are_recorded_byte_for_byte(
        run_cli, raw_server, collection, chromium, network_sandbox):
    page = http_response(b'<html><head><link rel="stylesheet" href="/site.css"></head><body><p id=colour></p><script>'
                         b"document.getElementById('colour').textContent = getComputedStyle(document.body).color;"
                         b'</script></body></html>',
                         headers=[("Content-Type", "text/html"), ("Set-Cookie", "session=one; Path=/"),
                                  ("Set-Cookie", "session=two; Path=/"), ("Set-Cookie", "theme=dark")])
    style = gzip.compress(b"body { color: #123456; margin: 0 }\n" * 50, mtime=0)
    stylesheet = (b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Encoding: gzip\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + _chunked(style, 40))
    sent = {"/cookies": page, "/site.css": stylesheet}
    server = _serve(raw_server, sent)
    assert _capture(run_cli, collection, server.url("/cookies"))["outcome"] == "ok"

    records, responses, _ = _recorded(collection)
    _exactly_as_served(records, responses, [(server, sent)])
    assert responses[server.url("/cookies")].block.count(b"Set-Cookie: session=") == 2
    css = responses[server.url("/site.css")].block
    assert b"Content-Encoding: gzip" in css and css.endswith(b"\r\n0\r\n\r\n") and style not in css
    # The browser got it whole through the proxy: the page was styled from those bytes.
    [dom] = [r for r in records if r.type == "resource" and r.headers["WARC-Target-URI"].startswith("urn:dom:")]
    assert b'<p id="colour">rgb(18, 52, 86)</p>' in dom.block, dom.block


class _Endless(dict):
    """Routes where any `/more?n=N` is answered with another screenful of items."""

    def get(self, path, default=None):
        match = re.fullmatch(r"/more\?n=(\d+)", path)
        if match:
            return send_bytes(_more(int(match.group(1))))
        return super().get(path, default)


def _more(n: int) -> bytes:
    return http_response(b"".join(b"<div class=item>Item %d.%d</div>" % (n, i) for i in range(10)))


def test_an_endless_page_ends_within_its_deadline_with_every_request_recorded(
        run_cli, raw_server, collection, chromium, network_sandbox):
    page = (b"<html><head><title>Feed</title><style>.item { height: 120px }</style></head><body>"
            b"<div id=feed></div><script>let n = 0, busy = false;"
            b"function more() { if (busy) return; busy = true; n += 1;"
            b" fetch('/more?n=' + n).then(r => r.text()).then(html => {"
            b"  document.getElementById('feed').insertAdjacentHTML('beforeend', html); busy = false; }); }"
            b"more(); window.addEventListener('scroll', () => {"
            b" if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 200) more(); });"
            b"</script></body></html>")
    sent = {"/feed": http_response(page)}
    server = _serve(raw_server, sent)
    server.routes = _Endless(server.routes)
    capture = _capture(run_cli, collection, server.url("/feed"), "--timeout", "20")
    assert capture["outcome"] == "ok", capture

    records, responses, details = _recorded(collection)
    asked = _paths(server)
    more = [path for path in asked if path.startswith("/more?n=")]
    assert len(more) > 2, asked  # the scroll reached the bottom again and again
    for path in more:
        sent[path] = _more(int(path.removeprefix("/more?n=")))
    _exactly_as_served(records, responses, [(server, sent)])
    [screenshot] = [r for r in records if r.type == "resource" and r.headers["WARC-Target-URI"].startswith("urn:screenshot:")]
    assert screenshot.block.startswith(b"\x89PNG")
    assert details["page"]["ended_early"] is None


def test_every_request_names_the_same_browser_and_a_language(run_cli, raw_server, collection, chromium, network_sandbox):
    """The user agent and the client hints agree (Chromium, never HeadlessChrome, which some sites
    answer with a bot wall), and every request asks for a language, as a reader's browser does."""
    sent = {"/page": http_response(b"<html><p>Text</p><img src='/image.png'></html>"), "/image.png": http_response(PHOTO, headers=PNG)}
    server = _serve(raw_server, sent)
    _capture(run_cli, collection, server.url("/page"))
    asked = [request.decode("latin-1").lower() for request in server.requests]
    assert len(asked) >= 2 and all("headless" not in request for request in asked), asked
    assert all('sec-ch-ua: "chromium";v="' in request and "accept-language: en-us" in request for request in asked), asked
    assert network_sandbox == []
