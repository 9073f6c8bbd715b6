"""A page cannot make the capture hold its DOM whole: one attribute of millions of characters in
the page and in each of its frames (a few hundred bytes served) is cut in the browser, before it
reaches Python, to the DOM bound (here 1 MB, of the page's DOM and of its frames' together, made
small for the test), so the capture's memory stays bounded; the DOM records say they were cut
(WARC-Truncated), the capture is incomplete and says how much was kept, and a cut DOM is never
compared as whole: a recapture of the same HTML is not called unchanged, nor the live page or
the replay alike."""

from __future__ import annotations

import asyncio
import functools
import json
import tracemalloc

import pytest

from archiver.capture.browser import pages
from archiver.capture.browser.proxy import RecordingProxy
from archiver.capture.browser.render import PageLimits
from tests.conftest import http_response, send_bytes, warc_records
from tests.test_browser_capture import CHROMIUM, chromium  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

BOUND = 10**6  # bytes of the page's DOM kept, and of its frames' DOMs together
CHARS = 8 * 10**6  # '€' in the attribute of the page and of each frame: 24 MB of UTF-8 each, 96 MB in all
MEMORY_BOUND = 48 * 10**6  # bytes of Python memory at the peak: less than half of the DOMs the page made
BOMB = f"<script>var d=document.createElement('template');d.setAttribute('data-x','\\u20ac'.repeat({CHARS}));" \
       "document.body.appendChild(d);</script>"
PAGE = ("<!doctype html><html><head><title>dom bomb</title></head><body><p>hello</p>" + BOMB
        + "<iframe src='/frame' width=300 height=300></iframe>" * 3 + "</body></html>").encode()
FRAME = f"<!doctype html><html><body><p>frame</p>{BOMB}</body></html>".encode()


def test_a_page_building_a_huge_dom_is_cut_in_the_browser_and_never_compared_as_whole(
        run_cli, raw_server, collection, chromium, network_sandbox, monkeypatch):
    monkeypatch.setattr(pages, "PageLimits", functools.partial(PageLimits, dom_bytes=BOUND, frame_dom_bytes=BOUND))
    server = raw_server({"/": send_bytes(http_response(PAGE)), "/frame": send_bytes(http_response(FRAME))})
    url = server.url("/")
    tracemalloc.start()
    try:
        result = run_cli("capture", "-C", collection.root, "--browser", url, "--json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert peak < MEMORY_BOUND, f"peak Python memory {peak / 1e6:.0f} MB"
    [row] = json.loads(result.stdout)["captures"]
    whole = f"{CHARS * 3 / 10**6:.1f} MB"
    assert f"the DOM record holds the first 1.0 MB of {whole}" in row["incomplete"], row
    assert "the DOM records of the page's frames hold the first 1.0 MB of " in row["incomplete"], row

    doms = [r for r in warc_records(collection.storage.folder) if r.type == "resource"
            and r.headers["WARC-Target-URI"].startswith(("urn:dom:", "urn:frame-dom:"))]
    page_dom = [r for r in doms if r.headers["WARC-Target-URI"].startswith("urn:dom:")]
    assert len(page_dom) == 1 and len(page_dom[0].block) <= BOUND, [len(r.block) for r in doms]
    assert page_dom[0].headers.get("WARC-Truncated") == "length"
    assert page_dom[0].block.decode().startswith("<!DOCTYPE html><html><head><title>dom bomb</title>")
    frame_doms = [r for r in doms if r not in page_dom]
    assert frame_doms and sum(len(r.block) for r in frame_doms) <= BOUND, [len(r.block) for r in frame_doms]
    assert all(r.headers.get("WARC-Truncated") == "length" for r in frame_doms if len(r.block) < 3 * CHARS)
    for record in doms:
        record.block.decode("utf-8")  # cut between characters, never inside one

    again = run_cli("capture", "-C", collection.root, "--browser", url, "--json")
    [same] = json.loads(again.stdout)["captures"]
    assert same["revisit_of"], same  # the same HTML, stored once
    assert same["unchanged_since"] is None, same
    assert same["rendered_change"] == "same HTML, rendered page not compared: the DOM record was cut", same
    history = json.loads(run_cli("history", "-C", collection.root, url, "--json").stdout)
    assert [h["change"] for h in history] == ["first capture",
                                              "same HTML, rendered page not compared: the DOM record was cut"]

    live = json.loads(run_cli("verify", "-C", collection.root, "--live", "--json").stdout)["live"]
    assert [(d["state"], d["detail"]) for d in live] == [
        ("not compared", "rendered page not compared: the DOM record was cut")], live

    replayed = run_cli("verify", "-C", collection.root, "--replay", "--json")
    checks = json.loads(replayed.stdout)["replay"]
    assert checks and all(c["text_similarity"] is None and "texts not compared: the DOM record was cut" in c["notes"]
                          for c in checks), checks
    assert network_sandbox == []


def test_the_doms_are_counted_in_the_pages_byte_budget(run_cli, raw_server, collection, chromium, network_sandbox,
                                                        monkeypatch):
    """The page's DOM takes what its responses, screenshot and PDF left of its byte budget
    (max_page_bytes), its frames' what the page's DOM left: none here, so their records are empty,
    and say they were cut."""
    monkeypatch.setattr(pages, "RecordingProxy", functools.partial(RecordingProxy, max_page_bytes=BOUND))
    server = raw_server({"/": send_bytes(http_response(PAGE)), "/frame": send_bytes(http_response(FRAME))})
    result = run_cli("capture", "-C", collection.root, "--browser", server.url("/"), "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["captures"]
    assert "the DOM records of the page's frames hold the first 0.0 MB of " in row["incomplete"], row
    records = [r for r in warc_records(collection.storage.folder) if r.type == "resource"]
    doms = [r for r in records if r.headers["WARC-Target-URI"].startswith(("urn:dom:", "urn:frame-dom:"))]
    pictures = [r for r in records if r.headers["WARC-Target-URI"].startswith(("urn:screenshot:", "urn:pdf:"))]
    assert len(pictures) == 2, pictures  # made first, and kept: the budget had room for them
    made = sum(len(r.block) for r in doms + pictures)
    served = len(PAGE) + 3 * len(FRAME)
    assert made <= BOUND - len(PAGE), [len(r.block) for r in doms + pictures]
    assert made > BOUND - served - 10_000, [len(r.block) for r in doms + pictures]
    assert len(doms) == 4 and all(r.headers.get("WARC-Truncated") == "length" for r in doms), doms
    assert network_sandbox == []


def test_a_page_pictured_but_whose_dom_was_never_read_is_incomplete_not_complete(
        run_cli, raw_server, collection, chromium, network_sandbox, monkeypatch):
    """Its screenshot made, the page's DOM step did not finish (here it never answers, as when the
    capture's deadline comes first): what a reader saw is in the screenshot alone, and the capture
    must say so rather than pass for whole."""
    from archiver.capture.browser import render

    async def never_read(page, limit):
        await asyncio.sleep(3600)

    monkeypatch.setattr(render, "rendered_dom", never_read)
    monkeypatch.setattr(pages, "PageLimits", functools.partial(PageLimits, artifacts=2))
    server = raw_server({"/": send_bytes(http_response(b"<!doctype html><title>Story</title><p>The story.</p>"))})
    result = run_cli("capture", "-C", collection.root, "--browser", server.url("/"), "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["captures"]
    assert row["outcome"] == "ok" and "the page's DOM and text were not recorded" in (row["incomplete"] or ""), row
    assert not [r for r in warc_records(collection.storage.folder)
                if r.type == "resource" and r.headers["WARC-Target-URI"].startswith("urn:dom:")]
