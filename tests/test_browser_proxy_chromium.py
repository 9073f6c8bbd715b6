"""Chromium through the recording proxy: a page, its stylesheet (gzip), a script's fetch() and a
subresource on an address the policy refuses, all asked for by the real browser, every one
fetched by the proxy and recorded as the origin sent it. Skipped where Chromium or Playwright
is missing (CI installs both, and there a skip fails)."""

from __future__ import annotations

import gzip

import pytest

from archiver.capture.browser.chromium import find_chromium
from archiver.capture.browser.proxy import RefusingProxy
from tests.conftest import http_response, send_bytes
from tests.test_browser_proxy import proxies, spooled  # noqa: F401  (proxies is a fixture)

CHROMIUM = find_chromium()  # as archiver finds it, before the tests' settings say: no browser


def test_chromium_loads_a_page_only_through_the_proxy(proxies, raw_server, test_ca):
    chromium = CHROMIUM
    if chromium is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    # 127.0.0.2 is loopback, so even a broken guard could not send anything off this machine,
    # but the collection allows only 127.0.0.1: the policy must refuse it, and its server must see nothing.
    forbidden = raw_server({"/secret.png": send_bytes(http_response(b"secret", headers=[("Content-Type", "image/png")]))},
                           host="127.0.0.2")
    css = gzip.compress(b"h1 { color: rgb(255, 0, 0) }")
    sent = {
        "/page": http_response((f'<html><head><title>Through the proxy</title><link rel="stylesheet" href="/style.css">'
                                f'</head><body><h1>Headline</h1><img src="http://127.0.0.2:{forbidden.port}/secret.png">'
                                '<script>fetch("/data.json").then(r => r.json()).then(d => '
                                'document.body.insertAdjacentHTML("beforeend", "<p id=loaded>" + d.word + "</p>"))'
                                '</script></body></html>').encode(), headers=[("Content-Type", "text/html")]),
        "/style.css": http_response(css, headers=[("Content-Type", "text/css"), ("Content-Encoding", "gzip")]),
        "/data.json": http_response(b'{"word": "fetched"}', headers=[("Content-Type", "application/json")]),
    }
    origin = raw_server({path: send_bytes(data) for path, data in sent.items()}, tls=test_ca.server_context)
    setup = proxies()
    proxy = setup.start()
    refusing = RefusingProxy()
    refusing.start()
    flags = [f"--ignore-certificate-errors-spki-list={setup.authority.spki_pin}", "--proxy-bypass-list=<-loopback>",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--disable-quic",
             "--force-webrtc-ip-handling-policy=disable_non_proxied_udp", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync"]
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=flags,
                                                 proxy={"server": f"http://{refusing.address}"})
            try:
                context = browser.new_context(proxy={"server": f"http://{proxy.address}"})
                page = context.new_page()
                page.goto(f"https://localhost:{origin.port}/page", wait_until="load", timeout=60_000)
                page.wait_for_selector("#loaded", timeout=60_000)  # bounds against a hang, not guesses
                assert page.title() == "Through the proxy"
                assert page.eval_on_selector("h1", "e => getComputedStyle(e).color") == "rgb(255, 0, 0)"
                assert page.inner_text("#loaded") == "fetched"
                context.close()
            finally:
                browser.close()
    finally:
        proxy.close()
        refusing.close()

    recorded = {h.url.removeprefix(f"https://localhost:{origin.port}"): h for h in proxy.hops if h.has_response}
    for path, data in sent.items():
        assert spooled(recorded[path]) == data, path
    # Nothing fetched unrecorded, nothing recorded unfetched.
    assert sorted(bytes(h.exchange.request_bytes) for h in recorded.values()) == sorted(origin.requests)
    [refused] = [h for h in proxy.hops if not h.has_response]
    assert refused.url == f"http://127.0.0.2:{forbidden.port}/secret.png"
    assert "127.0.0.2 is a loopback address" in refused.error and refused.refused
    assert forbidden.requests == [] and forbidden.connections == 0
