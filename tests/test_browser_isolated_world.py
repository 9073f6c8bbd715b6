"""A page's scripts cannot disguise what a browser capture records of its document: its DOM, text
and title are read in a world of their own, where the page's redefinitions of the DOM's getters
do not reach, so that the DOM record, the verdict and the title are of what the document holds."""

from __future__ import annotations

import json

import pytest

from tests.conftest import http_response, send_bytes, warc_records
from tests.test_browser_capture import CHROMIUM, chromium  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

STORY = "The minister said on Monday that the regional hospitals would get their funding back. " * 20
# Each getter a reader's view never uses, redefined to say the page is gone: read in the page's
# own world, the capture would record a not-found page that no reader saw.
DISGUISED = ("<!doctype html><html><head><title>Hospitals funded</title></head><body><h1>Hospitals funded</h1>"
             f"<p id=story>{STORY}</p><script>"
             "const decoy = (proto, name, value) => Object.defineProperty(proto, name, {get: () => value, configurable: true});"
             "decoy(Element.prototype, 'outerHTML', '<html><body><h1>Decoy ' + 'markup</h1></body></html>');"
             "decoy(HTMLElement.prototype, 'innerText', 'Sorry, this page does not exist');"
             "decoy(Document.prototype, 'title', 'Page not found');"
             "</script></body></html>")


def test_a_pages_scripts_cannot_disguise_its_dom_text_or_title(run_cli, raw_server, collection, chromium,
                                                              network_sandbox):
    server = raw_server({"/disguised": send_bytes(http_response(DISGUISED.encode()))})
    url = server.url("/disguised")
    result = run_cli("capture", "-C", collection.root, "--browser", url, "--json")
    assert result.exit_code == 0, result.output
    [captured] = json.loads(result.stdout)["captures"]
    assert captured["verdict"] == "content", captured  # of the real text, not the decoy's "does not exist"

    records = warc_records(collection.storage.folder)
    [dom] = [r.block.decode() for r in records if r.headers.get("WARC-Target-URI") == f"urn:dom:{url}"]
    assert dom.startswith("<!DOCTYPE html><html><head><title>Hospitals funded</title>"), dom[:300]
    assert "Decoy markup" not in dom and f'<p id="story">{STORY}</p>' in dom, dom[:300]
    [metadata] = [r for r in records if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    assert json.loads(metadata.block)["page"]["title"] == "Hospitals funded"
    assert network_sandbox == []


def test_a_read_whose_isolated_world_went_with_its_document_is_said_in_a_users_words():
    """Chromium's reply when the page replaced its document between the world's making and the
    read: the same plain words as Playwright's own 'context was destroyed'."""
    from playwright.async_api import Error as PlaywrightError

    from archiver.capture.browser.page_events import in_words

    said = in_words(PlaywrightError("Protocol error (Runtime.evaluate): Cannot find context with specified id"))
    assert said == "cut short: the page went on to another document meanwhile"
