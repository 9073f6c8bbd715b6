"""The browser side of a browser capture: real Chromium, through proxies on 127.0.0.1, against local
origins under reserved names (news.test, cdn.test) that only the test's forward proxy answers, so a
request Chromium made by itself could reach nothing. Where the machine allows, Chromium runs in a
network namespace holding only loopback. The recording proxy is tested on its own; here a small
forward proxy stands in for it and logs what it forwarded."""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import fcntl
import glob
import http.client
import json
import os
import signal
import socket
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

pytest.importorskip("playwright", reason="Playwright is not installed (pip install 'playwright>=1.45')")

from archiver.capture.browser.activity import NetworkActivity
from archiver.capture.browser.chromium import Browser, PageLimits, find_chromium
from archiver.capture.browser.screenshot import FRAMES_BLANK_NOTE, TALL_WINDOW_NOTE
from tests.conftest import eventually

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium, "
                                "or set ARCHIVER_CHROMIUM); browser captures cannot be tested")
VIEWPORT = {"width": 480, "height": 320}
LIMITS = PageLimits(load=5, network_idle=4, fonts=3, scroll=8, artifacts=5)
PAGE_HEIGHT = 11000
LAZY_TOP = 10500  # beyond Chromium's lazy-loading distance (8000 px when it rates the network slow), unscrolled
BACKGROUND = (0x12, 0x34, 0x56)  # from the stylesheet
LAZY_COLOUR = (0xEE, 0x11, 0x22)
OBSERVED_TOP = 5000  # mid-page: in view during one scroll step only


# -- PNG, read without an imaging library ------------------------------------------------

def png_chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks[kind] = chunks.get(kind, b"") + data[at + 8:at + 8 + length]
        at += 12 + length
    return chunks


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png_chunks(data)[b"IHDR"][:8])


def png_rows(data: bytes):
    """Each row of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) as a list of RGB tuples."""
    chunks = png_chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and colour in (2, 6) and interlace == 0, "an unexpected PNG layout"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * bpp
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + previous[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a, b, c = (line[i - bpp] if i >= bpp else 0), previous[i], (previous[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        previous = line
        yield [tuple(line[x:x + 3]) for x in range(0, stride, bpp)]


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = (b"\x00" + bytes(rgb) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# -- a network namespace with loopback only ----------------------------------------------

def enter_loopback_namespace() -> int | None:
    """Move this thread (and every thread and process it starts from now on) into a new network
    namespace with only loopback, up; the descriptor of the old one, or None where not allowed."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        old = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    except OSError:
        return None
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        os.close(old)
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack("16sh", fcntl.ioctl(sock, 0x8913, struct.pack("16sh", b"lo", 0)))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sh", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP
    return old


def leave_namespace(old: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.setns(old, 0x40000000) == 0, "could not return to the original network namespace"
    os.close(old)


# -- origins, and the proxies Chromium is given ------------------------------------------

def _font() -> bytes:
    found = sorted(glob.glob("/usr/share/fonts/truetype/**/*.ttf", recursive=True))
    return open(found[0], "rb").read() if found else b"not a font"


ARTICLE = f"""<!doctype html><html><head><meta charset="utf-8"><title>A cited article</title>
<link rel="stylesheet" href="http://cdn.test/style.css"></head><body>
<main style="position:relative;height:{PAGE_HEIGHT}px;overflow:hidden">
<h1 class="headline">Headline in the web font</h1>
<img src="http://cdn.test/photo.png" width="64" height="64" style="position:absolute;top:100px;left:0">
<p id="out" style="position:absolute;top:200px">Loading…</p>
<img id="lazy" loading="lazy" src="http://cdn.test/lazy.png" width="{VIEWPORT['width']}" height="200"
     style="position:absolute;top:{LAZY_TOP}px;left:0" onload="this.dataset.loaded = 'yes'">
<img id="observed" width="{VIEWPORT['width']}" height="10" style="position:absolute;top:{OBSERVED_TOP}px;left:0">
</main>
<script>fetch('/data.json').then(r => r.json()).then(d => {{ document.getElementById('out').textContent = d.text; }});
// A script's lazy loader, with no margin: only a scroll step that brings it into view loads it.
new IntersectionObserver((seen, observer) => {{ if (seen.some(e => e.isIntersecting)) {{
  document.getElementById('observed').src = 'http://cdn.test/observed.png'; observer.disconnect(); }} }}
).observe(document.getElementById('observed'));
</script></body></html>"""
STYLE = """body { margin: 0; background: rgb(18, 52, 86); color: white; }
@font-face { font-family: "Cited"; src: url("http://cdn.test/font.ttf"); }
.headline { font-family: "Cited"; margin: 0; position: absolute; top: 0; }"""
DIALOGS = """<!doctype html><title>asks</title><body><script>
alert('hello from the page'); const answer = confirm('really?');
document.body.append('confirm answered ' + answer);</script>"""
POPUP = """<!doctype html><title>opener</title><body><p>opens a window</p>
<script>window.open('http://news.test/opened.html', '_blank');</script>"""
NEVER = """<!doctype html><title>never settles</title><body style="background:#fff"><p>still loading</p>
<img src="/hang.png" width="10" height="10"><script>fetch('/poll');</script>"""
# Short at load; a script then makes it tall, with an image at the new end that a script loads
# only once it is scrolled into view.
GROWS = f"""<!doctype html><title>grows</title><body style="margin:0"><p>short at first</p><script>
fetch('/grow.json').then(r => r.json()).then(() => {{
  const tall = document.createElement('div'); tall.style.height = '{PAGE_HEIGHT}px'; document.body.append(tall);
  const img = document.createElement('img'); img.width = 10; img.height = 10;
  img.onload = () => {{ img.dataset.loaded = 'yes'; }}; document.body.append(img);
  new IntersectionObserver((seen, observer) => {{ if (seen.some(e => e.isIntersecting)) {{
    img.src = 'http://cdn.test/late.png'; observer.disconnect(); }} }}).observe(img);
}});</script>"""

# A post embedded from another site below the first screen; the page notes each window height it is given.
EMBED_TOP, EMBED_COLOUR = 1000, (0x22, 0x88, 0x44)
EMBED = f"""<!doctype html><title>embeds</title><body style="margin:0"><div style="height:{EMBED_TOP}px">story</div>
<iframe src="http://cdn.test/embedded.html" width="200" height="100" style="border:0;display:block"></iframe>
<div style="height:200px"></div><script>
document.body.dataset.window = innerHeight;
addEventListener('resize', () => {{ document.body.dataset.window = innerHeight; }});</script>"""
# The same below a first section as tall as the window: its layout follows the window's height.
HERO_COLOUR = (0x99, 0x22, 0x99)
EMBED_UNDER_HERO = EMBED.replace('<body style="margin:0">', '<body style="margin:0"><section style="height:100vh;'
                                 'background:#{:02x}{:02x}{:02x}"></section>'.format(*HERO_COLOUR))
EMBEDDED = f"""<!doctype html><body style="margin:0;background:#{''.join(f'{c:02x}' for c in EMBED_COLOUR)}">post"""


class Origin(ThreadingHTTPServer):
    """news.test and cdn.test: routes of (status, headers, body, delay); /hang.png and /poll
    never answer (until the test ends)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OriginHandler)
        self.log: list[tuple[str, str, str]] = []  # (method, host, path) as received
        self.release = threading.Event()
        font = _font()
        self.routes = {
            "/article.html": (200, "text/html; charset=utf-8", ARTICLE.encode(), 0),
            "/style.css": (200, "text/css", STYLE.encode(), 0),
            "/font.ttf": (200, "font/ttf", font, 0),
            "/photo.png": (200, "image/png", solid_png(64, 64, (0, 160, 0)), 0),
            # Slow, so that a lazy image not requested before the screenshot cannot be in it either.
            "/lazy.png": (200, "image/png", solid_png(VIEWPORT["width"], 200, LAZY_COLOUR), 1.0),
            "/data.json": (200, "application/json", json.dumps({"text": "Inserted by fetch()"}).encode(), 0),
            "/dialogs.html": (200, "text/html", DIALOGS.encode(), 0),
            "/popup.html": (200, "text/html", POPUP.encode(), 0),
            "/opened.html": (200, "text/html", b"<!doctype html><title>popup</title><p>popup", 0),
            "/never.html": (200, "text/html", NEVER.encode(), 0),
            "/plain.html": (200, "text/html", b"<!doctype html><title>plain</title><p>plain page", 0),
            "/grows.html": (200, "text/html", GROWS.encode(), 0),
            "/grow.json": (200, "application/json", b"{}", 0.5),
            "/late.png": (200, "image/png", solid_png(10, 10, LAZY_COLOUR), 0),
            "/observed.png": (200, "image/png", solid_png(VIEWPORT["width"], 10, LAZY_COLOUR), 0),
            "/file.bin": (200, "application/octet-stream", b"\x00" * 1000, 0),
            "/favicon.ico": (200, "image/png", solid_png(16, 16, (0, 0, 0)), 0),
            "/embed.html": (200, "text/html", EMBED.encode(), 0),
            "/embed-under-hero.html": (200, "text/html", EMBED_UNDER_HERO.encode(), 0),
            "/embedded.html": (200, "text/html", EMBEDDED.encode(), 0),
        }


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Origin

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.log.append((self.command, self.headers.get("Host", ""), path))
        if path in ("/hang.png", "/poll"):
            self.server.release.wait(120)
            self.close_connection = True
            return
        if path == "/loop":
            return self._send(302, "text/plain", b"again", extra=[("Location", "/loop")])
        status, kind, body, delay = self.server.routes.get(path, (404, "text/plain", b"not here", 0))
        time.sleep(delay)
        extra = [("Content-Disposition", "attachment; filename=file.bin")] if path == "/file.bin" else \
            [("Access-Control-Allow-Origin", "*")] if path == "/font.ttf" else []  # fonts are fetched with CORS
        self._send(status, kind, body, extra)

    def _send(self, status: int, kind: str, body: bytes, extra: list | None = None) -> None:
        self.send_response(status)
        for name, value in [("Content-Type", kind), ("Content-Length", str(len(body)))] + (extra or []):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class ForwardProxy(ThreadingHTTPServer):
    """Stands in for the recording proxy: plain-HTTP absolute-URI requests for *.test are
    forwarded to the origin, as sent; everything it forwarded is logged."""

    daemon_threads = True

    def __init__(self, origin: Origin) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardHandler)
        self.origin = origin
        self.log: list[tuple[str, str]] = []  # (method, absolute URL)
        self.activity = NetworkActivity()  # what a page's network idle is measured by, as in the recording proxy
        self.page_bytes = None  # no byte budget: the recording proxy's is tested on its own

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ForwardHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.activity.started()
        try:
            self._forward()
        finally:
            self.server.activity.ended()

    def _forward(self) -> None:
        target = urlsplit(self.path)
        if target.scheme != "http" or not (target.hostname or "").endswith(".test"):
            return self._refuse()
        self.server.log.append((self.command, self.path))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.origin.server_address[1], timeout=150)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                             headers=headers)
            response = upstream.getresponse()
            body = response.read()
        except OSError:
            self.close_connection = True
            return
        finally:
            upstream.close()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_HEAD = do_GET

    def do_CONNECT(self) -> None:
        self._refuse()

    def _refuse(self) -> None:
        self.server.log.append((self.command, f"refused {self.path}"))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Refusing(ThreadingHTTPServer):
    """The browser-level proxy: Chromium's own traffic is refused, and logged."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RefusingHandler)
        self.refused: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _RefusingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Refusing

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.refused.append(f"{self.command} {self.path}")
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_HEAD = do_CONNECT = do_PUT = do_OPTIONS = do_GET


def _quiet(self, request: object, client_address: object) -> None:
    """A browser closing a keep-alive connection, or closed while a request hangs, is no error here."""


for _server in (Origin, ForwardProxy, Refusing):
    _server.handle_error = _quiet


def _serve(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def namespace():
    """True when Chromium and the servers run in a namespace of their own with only loopback."""
    old = enter_loopback_namespace()
    try:
        yield old is not None
    finally:
        if old is not None:
            leave_namespace(old)


@pytest.fixture(scope="module")
def site(namespace):
    origin = _serve(Origin())
    proxy = _serve(ForwardProxy(origin))
    refusing = _serve(Refusing())
    yield origin, proxy, refusing
    origin.release.set()
    for server in (proxy, refusing, origin):
        server.shutdown()
        server.server_close()


def unique_pin() -> str:
    """A key pin of this run's own: a browser is found among the machine's processes by its pin,
    so a test that kills its renderers never kills those of another run on the same machine."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


PIN = unique_pin()


@pytest.fixture(scope="module")
def browser(site):
    started = time.monotonic()
    chromium = Browser.launch(CHROMIUM, PIN, site[2].address,
                              limits=LIMITS, viewport=VIEWPORT)
    chromium.started_in = time.monotonic() - started
    yield chromium
    chromium.close()


def _capture(browser: Browser, site, path: str, seconds: float = 30.0):
    started = time.monotonic()
    page = browser.capture(f"http://news.test{path}", site[1], started + seconds)
    return page, time.monotonic() - started


@pytest.fixture(scope="module")
def article(browser, site):
    page, seconds = _capture(browser, site, "/article.html")
    return page, seconds, list(site[0].log)


# -- tests ---------------------------------------------------------------------------------

def test_the_browser_runs_where_only_loopback_exists(namespace, browser):
    if namespace:
        assert [name for _, name in socket.if_nameindex()] == ["lo"]
    info = browser.info
    assert info["name"] == "chromium" and info["version"].split(".")[0].isdigit()
    assert info["executable"] == CHROMIUM and info["viewport"] == VIEWPORT
    assert info["user_agent"].startswith("Mozilla/5.0") and "Headless" not in info["user_agent"]
    for flag in ("--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 "--disable-quic", "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--ignore-certificate-errors-spki-list=" + PIN):
        assert flag in info["flags"]
        if info["command_line"] is not None:  # what the process really ran with
            assert flag in info["command_line"]
    assert browser.started_in < 30


def test_a_page_with_its_subresources_is_rendered_after_scripts_and_scrolling(article):
    page, seconds, origin_log = article
    assert page.error is None, page.error
    assert page.final_url == "http://news.test/article.html" and page.status == 200
    assert page.title == "A cited article"
    fetched = {(host, path) for _, host, path in origin_log}
    assert {("news.test", "/article.html"), ("cdn.test", "/style.css"), ("cdn.test", "/font.ttf"),
            ("cdn.test", "/photo.png"), ("news.test", "/data.json"), ("cdn.test", "/lazy.png"),
            ("cdn.test", "/observed.png")} <= fetched
    dom = page.dom.decode("utf-8")
    assert "Inserted by fetch()" in dom and "Loading…" not in dom  # the DOM after scripts, not the source
    assert 'data-loaded="yes"' in dom  # the lazy image had loaded before the DOM was taken
    assert "Inserted by fetch()" in page.text
    assert page.load_seconds is not None and page.settled_seconds is not None
    assert page.load_seconds <= page.settled_seconds < seconds < 30
    assert page.pdf.startswith(b"%PDF-")
    assert page.console_errors == [], page.console_errors
    assert page.dialogs == [] and page.popups == []


def test_the_screenshot_is_the_whole_page_with_its_styles_and_lazy_image(article):
    page = article[0]
    assert png_size(page.screenshot) == (VIEWPORT["width"], PAGE_HEIGHT)
    colours: set = set()
    lazy_row = observed_row = None
    for y, row in enumerate(png_rows(page.screenshot)):
        if y < 320:
            colours.update(row)
        if y == LAZY_TOP + 100:
            lazy_row = row
        if y == OBSERVED_TOP + 5:
            observed_row = row
    assert len(colours) > 1, "the screenshot is blank"
    assert BACKGROUND in colours, "the stylesheet was not applied"
    assert (0, 160, 0) in colours, "the image is missing"
    assert lazy_row is not None and set(lazy_row) == {LAZY_COLOUR}, "the lazy image is not in the screenshot"
    assert observed_row is not None and set(observed_row) == {LAZY_COLOUR}, \
        "the image a script loads when scrolled into view is not in the screenshot"


def test_a_frame_from_another_site_below_the_first_screen_is_in_the_screenshot(browser, site):
    page, _ = _capture(browser, site, "/embed.html")
    assert page.error is None, page.error
    assert png_size(page.screenshot) == (VIEWPORT["width"], EMBED_TOP + 300)
    rows = list(png_rows(page.screenshot))
    assert rows[EMBED_TOP + 50][100] == EMBED_COLOUR, "the embedded post is blank"
    assert TALL_WINDOW_NOTE in page.notes
    # The window was set back before the DOM was taken: the page last saw the reader's height.
    assert f'data-window="{VIEWPORT["height"]}"' in page.dom.decode()


def test_a_page_whose_layout_follows_the_window_keeps_it_and_says_its_frames_may_be_blank(browser, site):
    page, _ = _capture(browser, site, "/embed-under-hero.html")
    assert page.error is None, page.error
    height = VIEWPORT["height"] + EMBED_TOP + 300
    assert png_size(page.screenshot) == (VIEWPORT["width"], height)  # the hero as tall as the reader's window
    rows = list(png_rows(page.screenshot))
    assert rows[VIEWPORT["height"] - 1][0] == HERO_COLOUR and rows[VIEWPORT["height"] + 1][0] != HERO_COLOUR
    assert any(note.startswith(FRAMES_BLANK_NOTE) for note in page.notes), page.notes
    assert TALL_WINDOW_NOTE not in page.notes


def test_a_page_that_grows_after_loading_is_scrolled_to_its_new_end(browser, site):
    seen = len(site[0].log)
    page, _ = _capture(browser, site, "/grows.html")
    assert page.error is None, page.error
    assert ("GET", "cdn.test", "/late.png") in site[0].log[seen:], "the grown page was not scrolled to its end"
    assert 'data-loaded="yes"' in page.dom.decode()


# Three inner scroll containers, largest first, each with a picture a script loads once it is seen:
# in the first, two box heights down (and the box goes on); in the second, further than two steps
# reach; in the third, just below what it shows.
BOXES = """<!doctype html><title>boxes</title><body style="margin:0">{}<script>
const observer = new IntersectionObserver(seen => seen.filter(e => e.isIntersecting).forEach(e => {{
  e.target.src = e.target.dataset.src; observer.unobserve(e.target); }}));
document.querySelectorAll('img[data-src]').forEach(img => observer.observe(img));</script>""".format("".join(
    f'<div style="overflow:auto;height:{height}px;width:400px"><div style="height:{depth}px"></div>'
    f'<img data-src="/box{n}.png" width="10" height="10"><div style="height:5000px"></div></div>'
    for n, (height, depth) in enumerate([(300, 600), (250, 3000), (200, 200)], 1)))


def test_only_the_largest_inner_scroll_containers_are_scrolled_and_each_only_so_far(browser, site):
    """A page cannot hold the capture with scroll containers: only the largest few are scrolled,
    each a bounded number of steps, and what was left is noted."""
    site[0].routes["/boxes.html"] = (200, "text/html", BOXES.encode(), 0)
    for n in (1, 2, 3):
        site[0].routes[f"/box{n}.png"] = (200, "image/png", solid_png(10, 10, LAZY_COLOUR), 0)
    seen = len(site[0].log)
    bounded = dataclasses.replace(LIMITS, inner_boxes=2, inner_steps=2)
    page = browser.capture("http://news.test/boxes.html", site[1], time.monotonic() + 30, limits=bounded)
    assert page.error is None, page.error
    fetched = {path for _, _, path in site[0].log[seen:]}
    assert "/box1.png" in fetched, "the largest box was not scrolled through"
    assert not {"/box2.png", "/box3.png"} & fetched, fetched
    assert "scroll: the 2 largest of 3 inner scroll containers scrolled" in page.notes, page.notes
    assert "scroll: 2 inner scroll container(s) not scrolled to their end (at most 2 steps each, and the time)" \
        in page.notes, page.notes


def test_dialogs_are_dismissed_and_recorded(browser, site):
    page, seconds = _capture(browser, site, "/dialogs.html")
    assert page.error is None
    assert page.dialogs == [{"type": "alert", "message": "hello from the page", "dismissed": True},
                            {"type": "confirm", "message": "really?", "dismissed": True}]
    assert "confirm answered false" in page.dom.decode()
    assert seconds < 15


def test_a_popup_is_closed_and_recorded(browser, site):
    page, _ = _capture(browser, site, "/popup.html")
    assert page.error is None and page.screenshot is not None
    assert page.popups == ["http://news.test/opened.html"]


def test_a_page_that_never_settles_ends_before_its_deadline_with_its_screenshot(browser, site):
    page, _ = _capture(browser, site, "/never.html", seconds=12)
    # Ended by its own waits, not by the deadline, which would have said so; the seconds taken,
    # which count the context's closing after it, are not what shows it on a loaded machine.
    assert page.error is None
    assert page.load_seconds is None and page.settled_seconds is None
    assert any(note.startswith("load event: not done") for note in page.notes), page.notes
    assert any(note.startswith("network idle: not done") for note in page.notes), page.notes
    assert page.shortfalls == ["the page's load event never came", "the network never went quiet"], page.shortfalls
    # The page fits one screen: the waits took the scroll's time, but it had nothing to stop.
    assert not any(note.startswith("scroll") for note in page.notes), page.notes
    assert png_size(page.screenshot)[0] == VIEWPORT["width"]
    assert page.pdf.startswith(b"%PDF-") and b"still loading" in page.dom


def test_a_page_with_no_response_fails_naming_the_bound_that_ran_out(browser, site):
    """/hang.png never answers: the wait for it ends at the load limit or, sooner, where the
    capture's deadline leaves only the time kept for the screenshot; the error names which."""
    far = dataclasses.replace(LIMITS, load=600)  # far beyond the capture's deadline
    page = browser.capture("http://news.test/hang.png", site[1], time.monotonic() + 8, limits=far)
    assert page.error.startswith("no response to the page in the "), page.error
    assert page.error.endswith(" s the capture's deadline left for it") and "600" not in page.error, page.error
    short = dataclasses.replace(LIMITS, load=1)
    page = browser.capture("http://news.test/hang.png", site[1], time.monotonic() + 60, limits=short)
    assert page.error == "no response to the page within the load limit of 1 s"


def _renderers_of(browser_pid: int) -> list[int]:
    found = []
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in open(status).read().splitlines() if ":\t" in line)
            cmdline = open(status.replace("status", "cmdline"), "rb").read()
        except OSError:
            continue
        if b"--type=renderer" in cmdline and _descends_from(int(fields["PPid"]), browser_pid):
            found.append(int(status.split("/")[2]))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(next(line for line in open(f"/proc/{pid}/status") if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration):
            return False
    return False


def test_a_renderer_crash_ends_the_page_with_the_reason_and_the_browser_goes_on(browser, site):
    """The renderer of a page that never settles is killed (as the kernel's OOM killer would) mid-capture."""
    assert browser.info["pid"] is not None, "the browser's process is not known here"
    deadline = 120  # the page's: far beyond how long the crash takes to end it, however loaded the machine
    with ThreadPoolExecutor(1) as pool:
        seen = len(site[0].log)
        capturing = pool.submit(_capture, browser, site, "/never.html", deadline)
        # Killed once the page is under way (its script ran), not at a guess of when that is.
        eventually(lambda: ("GET", "news.test", "/poll") in site[0].log[seen:], "the page asked for /poll")
        eventually(lambda: bool(_renderers_of(browser.info["pid"])), "a renderer process found")
        killed = time.monotonic()
        for pid in _renderers_of(browser.info["pid"]):
            os.kill(pid, signal.SIGKILL)
        page, _ = capturing.result()
    assert page.error == "the renderer crashed", (page.error, page.notes)
    assert time.monotonic() - killed < deadline / 2, "the page ran on to its deadline after the crash"
    assert page.screenshot is None
    after, _ = _capture(browser, site, "/plain.html")
    assert after.error is None and after.title == "plain"
    crash = browser.capture("chrome://crash", site[1], time.monotonic() + 20)  # ends, without a hang
    assert crash.error is not None and crash.screenshot is None


def test_a_redirect_loop_and_a_download_end_with_the_reason(browser, site):
    loop, seconds = _capture(browser, site, "/loop")
    assert loop.error is not None and "ERR_TOO_MANY_REDIRECTS" in loop.error and seconds < 30
    download, _ = _capture(browser, site, "/file.bin")
    assert download.error is not None and "download" in download.error.lower()
    assert download.screenshot is None
    assert download.error == "the address is a file the browser downloads: recorded, not shown", download.error


def test_a_page_that_navigates_to_a_download_is_captured_without_waiting_out_the_load_limit(browser, site):
    """A page whose script sends it to a file (Content-Disposition: attachment) stays the page
    shown: its load is not waited for past the download's start, and the download is noted."""
    site[0].routes["/to-file.html"] = (200, "text/html", b"<!doctype html><title>to file</title><h1>Download starts</h1>"
                                       b"<script>location.href = '/file.bin'</script>", 0)
    page, _ = _capture(browser, site, "/to-file.html")
    assert page.error is None and page.title == "to file" and page.screenshot
    assert "http://news.test/file.bin" in page.downloads
    assert "the page started a download of http://news.test/file.bin: recorded, not shown" in page.notes, page.notes
    assert not [note for note in page.notes if note.startswith(("document:", "load event:"))], page.notes


def test_a_page_that_navigates_away_while_scrolled_is_noted_in_a_users_words(browser, site):
    site[0].routes["/leaves.html"] = (200, "text/html", b"<!doctype html><title>leaves</title>"
                                      b"<div style='height:20000px'>tall</div><script>addEventListener('scroll', "
                                      b"() => { location.href = '/plain.html' }, {once: true})</script>", 0)
    page, _ = _capture(browser, site, "/leaves.html")
    assert page.error is None and page.title == "plain"
    assert "scroll: cut short: the page went on to another document meanwhile" in page.notes, page.notes
    assert not [note for note in page.notes if "Execution context" in note or "Page." in note], page.notes


def test_pages_render_concurrently_in_one_browser(browser, site):
    with ThreadPoolExecutor(3) as pool:
        pages = list(pool.map(lambda path: _capture(browser, site, path)[0], ["/plain.html", "/dialogs.html",
                                                                            "/popup.html"]))
    assert [page.title for page in pages] == ["plain", "asks", "opener"]
    assert all(page.error is None and page.screenshot for page in pages)


def test_the_browser_restarts_after_a_crash_and_after_its_page_count_and_cuts_tall_pages(site):
    """A second browser, restarting every 2 pages, with a 3000 px screenshot and scroll limit."""
    limits = dataclasses.replace(LIMITS, screenshot_height=3000, scroll_height=3000)
    with Browser.launch(CHROMIUM, unique_pin(), site[2].address, limits=limits, viewport=VIEWPORT,
                        restart_after=2) as browser:
        first = browser.info
        assert first["pid"] is not None and first["command_line"][0] == CHROMIUM
        tall, _ = _capture(browser, site, "/article.html")
        assert tall.error is None and png_size(tall.screenshot) == (VIEWPORT["width"], 3000)
        assert f"screenshot: the first 3000 px of a page {PAGE_HEIGHT} px high" in tall.notes
        assert f"scroll: stopped at 3000 px of a page {PAGE_HEIGHT} px high" in tall.notes
        assert f"the screenshot holds the first 3000 px of a page {PAGE_HEIGHT} px high" in tall.shortfalls
        _capture(browser, site, "/plain.html")
        third, _ = _capture(browser, site, "/plain.html")  # the third page: a fresh browser
        assert third.title == "plain" and browser.info["pid"] not in (None, first["pid"])
        assert not os.path.exists(f"/proc/{first['pid']}/cmdline"), "the browser it replaced still runs"
        os.kill(browser.info["pid"], signal.SIGKILL)  # the browser itself dies
        eventually(lambda: not os.path.exists(f"/proc/{browser.info['pid']}/cmdline"), "the killed browser gone")
        after, _ = _capture(browser, site, "/plain.html")
        assert after.error is None and after.title == "plain"


def test_chromium_made_no_request_but_through_the_proxies(site, browser):
    """Runs last: over every page above, the origin saw nothing the forward proxy did not send it
    (Chromium never connected to it itself), and the browser-level proxy saw none of the pages' traffic."""
    origin, proxy, refusing = site
    assert all(host in ("news.test", "cdn.test") for _, host, _ in origin.log)
    forwarded = [url for method, url in proxy.log if not url.startswith("refused")]
    assert len(origin.log) == len(forwarded)
    assert not any(".test" in line for line in refusing.refused), refusing.refused



def test_a_page_opened_ahead_is_the_one_used_and_one_from_a_dead_browser_is_replaced(site):
    """The page a capture finds opened ahead is used and closed after it; one left over is closed
    by discard; one whose browser died meanwhile is replaced by a fresh page in a new browser."""
    url = "http://news.test/plain.html"
    with Browser.launch(CHROMIUM, unique_pin(), site[2].address, limits=LIMITS, viewport=VIEWPORT) as browser:
        ahead = browser.open_page(site[1])
        opened = ahead.result(30)
        page = browser.capture(url, site[1], time.monotonic() + 30, ahead)
        assert page.error is None and page.title == "plain"
        assert opened.page.is_closed(), "the capture did not use the page opened ahead for it"

        unused = browser.open_page(site[1])
        browser.discard(unused)
        left = unused.result(30).page
        eventually(left.is_closed, "the page opened ahead and discarded closed")

        stale = browser.open_page(site[1])
        stale.result(30)
        dead = browser.info["pid"]
        os.kill(dead, signal.SIGKILL)
        eventually(lambda: not os.path.exists(f"/proc/{dead}/cmdline"), "the killed browser gone")
        page = browser.capture(url, site[1], time.monotonic() + 30, stale)
        assert page.error is None and page.title == "plain"
        assert browser.info["pid"] not in (None, dead)
