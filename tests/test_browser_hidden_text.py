"""What a reader sees that innerText and page.content() leave out, in browser captures: an
article inside a custom element's open shadow root (attached by a script, or sent as declarative
shadow DOM) and the text of a page's frames count as the page's text for its verdict, and the DOM
record holds the shadow roots, so that `verify --live` sees them change and `verify --replay`
compares them; and the page sees a reader's browser, not an automated one (navigator.webdriver)."""

from __future__ import annotations

import json

import pytest

from archiver.capture.browser.page_text import RenderedDom
from tests.conftest import http_response, send_bytes, warc_records
from tests.test_browser_capture import CHROMIUM, chromium  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

STORY = "The minister said on Monday that the regional hospitals would get their funding back. " * 20
SCRIPTED = ("<!doctype html><html><head><title>Story</title></head><body><news-article></news-article><script>"
            "customElements.define('news-article', class extends HTMLElement { connectedCallback() {"
            f"this.attachShadow({{mode: 'open'}}).innerHTML = '<h1>Shadow headline</h1><p>{STORY}</p>'; }} }});"
            "</script></body></html>")


def _declarative(text: str) -> bytes:
    return (f'<!doctype html><html><head><title>Story</title></head><body><news-article><template '
            f'shadowrootmode="open"><h1>Declared headline</h1><p>{text}</p></template></news-article>'
            f'</body></html>').encode()


def _page(body: str) -> bytes:
    return http_response(body.encode())


def test_text_in_open_shadow_roots_is_the_pages_for_its_verdict_dom_drift_and_replay(
        run_cli, raw_server, collection, chromium, network_sandbox):
    live = {"story": STORY}
    server = raw_server({"/scripted": send_bytes(_page(SCRIPTED)),
                         "/declared": lambda conn, request: conn.sendall(http_response(_declarative(live["story"])))})
    scripted, declared = server.url("/scripted"), server.url("/declared")
    result = run_cli("capture", "-C", collection.root, "--browser", scripted, declared, "--json")
    assert result.exit_code == 0, result.output
    verdicts = {c["url"]: (c["verdict"], c.get("verdict_reason")) for c in json.loads(result.stdout)["captures"]}
    assert {url: verdict for url, (verdict, _) in verdicts.items()} == {scripted: "content", declared: "content"}, verdicts

    doms = {r.headers["WARC-Target-URI"]: r.block.decode() for r in warc_records(collection.storage.folder)
            if r.type == "resource" and r.headers["WARC-Target-URI"].startswith("urn:dom:")}
    for url, headline in ((scripted, "Shadow headline"), (declared, "Declared headline")):
        dom = doms[f"urn:dom:{url}"]
        assert dom.startswith("<!DOCTYPE html><html><head>"), dom[:200]
        assert f'<news-article><template shadowrootmode="open"><h1>{headline}</h1>' in dom, dom

    replayed = run_cli("verify", "-C", collection.root, "--replay", "--json")
    assert replayed.exit_code == 0, replayed.output
    assert [r["text_similarity"] for r in json.loads(replayed.stdout)["replay"]] == [1.0, 1.0], replayed.stdout

    checked = {d["url"]: d for d in json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]}
    assert {url: d["state"] for url, d in checked.items()} == {scripted: "unchanged", declared: "unchanged"}, checked
    live["story"] = STORY.replace("get their funding back", "lose their funding")
    checked = {d["url"]: d for d in json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]}
    assert checked[declared]["state"] == "changed" and "lose" in checked[declared]["detail"], checked[declared]
    assert checked[scripted]["state"] == "unchanged", checked[scripted]
    assert network_sandbox == []


def test_the_text_of_a_pages_frames_is_the_pages_for_its_verdict(run_cli, raw_server, collection, chromium,
                                                                 network_sandbox):
    other = raw_server({"/gone": send_bytes(_page(
        "<html><head><title>Embed</title></head><body><h1>Sorry, this page does not exist</h1></body></html>"))})
    server = raw_server({
        "/frameset": send_bytes(_page('<html><head><title>Archive</title></head><frameset cols="20%,80%">'
                                      '<frame src="/menu"><frame src="/article"></frameset></html>')),
        "/menu": send_bytes(_page("<html><body><p>Menu</p></body></html>")),
        "/article": send_bytes(_page(f"<html><head><title>Story</title></head><body><h1>Story</h1><p>{STORY}</p>"
                                     "</body></html>")),
        "/embeds-gone": send_bytes(_page(
            '<!doctype html><html><head><title>Ministry</title></head><body style="margin:0"><iframe src="'
            f'{other.url("/gone")}" style="border:0;width:100%;height:95vh"></iframe></body></html>')),
    })
    frameset, embeds_gone = server.url("/frameset"), server.url("/embeds-gone")
    result = run_cli("capture", "-C", collection.root, "--browser", frameset, embeds_gone, "--json")
    assert result.exit_code == 0, result.output
    verdicts = {c["url"]: c["verdict"] for c in json.loads(result.stdout)["captures"]}
    assert verdicts == {frameset: "content", embeds_gone: "not-found"}, result.stdout
    assert network_sandbox == []


def test_the_page_sees_a_readers_browser_not_an_automated_one(run_cli, raw_server, collection, chromium,
                                                             network_sandbox):
    server = raw_server({"/botcheck": send_bytes(_page(
        "<!doctype html><html><head><title>Daily Story</title></head><body><div id=r></div><script>"
        "document.getElementById('r').innerHTML = navigator.webdriver ? '<h1>Access denied</h1><p>Automated browsers"
        f" are not allowed on this site.</p>' : '<h1>Story</h1><p>{STORY}</p>';</script></body></html>"))})
    result = run_cli("capture", "-C", collection.root, "--browser", server.url("/botcheck"), "--json")
    assert result.exit_code == 0, result.output
    [captured] = json.loads(result.stdout)["captures"]
    assert captured["verdict"] == "content", captured
    [dom] = [r.block.decode() for r in warc_records(collection.storage.folder)
             if r.headers.get("WARC-Target-URI", "").startswith("urn:dom:")]
    assert '<div id="r"><h1>Story</h1>' in dom, dom
    assert network_sandbox == []


async def _without_shadow_roots(page, limit: int) -> RenderedDom:
    """The DOM as archiver read it before open shadow roots were recorded: Playwright's page.content()."""
    markup = await page.content()
    return RenderedDom(markup, len(markup.encode("utf-8")))


def test_a_dom_recorded_without_its_shadow_roots_still_replays_alike(run_cli, raw_server, collection, chromium,
                                                                      network_sandbox, monkeypatch):
    """A capture made before open shadow roots were recorded in the DOM holds none: its replay is
    compared without the replay's, and is alike, not a changed archive."""
    server = raw_server({"/scripted": send_bytes(_page(SCRIPTED))})
    with monkeypatch.context() as before:
        before.setattr("archiver.capture.browser.render.rendered_dom", _without_shadow_roots)
        result = run_cli("capture", "-C", collection.root, "--browser", server.url("/scripted"), "--json")
    assert result.exit_code == 0, result.output
    [dom] = [r.block for r in warc_records(collection.storage.folder)
             if r.headers.get("WARC-Target-URI", "").startswith("urn:dom:")]
    assert b"<news-article></news-article>" in dom, dom
    replayed = run_cli("verify", "-C", collection.root, "--replay", "--json")
    assert replayed.exit_code == 0, replayed.output
    [replay] = json.loads(replayed.stdout)["replay"]
    assert (replay["verdict"], replay["text_similarity"]) == ("alike", 1.0), replay
    assert run_cli("verify", "-C", collection.root).exit_code == 0
