"""A frame's scripts cannot disguise what a browser capture records of it, nor the page's scripts
hide a frame from it: each frame's DOM and text are read in an isolated world of the frame's own,
and whether its element is shown, in one of its parent's, whether Chromium runs the frame in the
page's process (as the headless shell does) or, isolating sites, in a process of its own."""

from __future__ import annotations

import dataclasses
import time

import pytest

from archiver.capture.browser import chromium as chromium_module
from archiver.capture.browser.chromium import Browser
from tests.test_browser_page import (CHROMIUM, LIMITS, PIN, VIEWPORT, namespace, site)  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium, "
                                "or set ARCHIVER_CHROMIUM); browser captures cannot be tested")

STORY = "The minister said on Monday that the regional hospitals would get their funding back. " * 5
# Each getter a reader's view never uses, redefined in the frame to say it is gone.
DECOYS = ("<script>const decoy = (proto, name, value) => Object.defineProperty(proto, name, "
          "{get: () => value, configurable: true});"
          "decoy(Element.prototype, 'outerHTML', '<html><body><h1>Decoy ' + 'markup</h1></body></html>');"
          "decoy(HTMLElement.prototype, 'innerText', 'Sorry, this post does not exist');</script>")
EMBEDDED = f"<!doctype html><html><body><h1>Embedded post</h1><p id=post>{STORY}</p>{DECOYS}</body></html>"
# The page says no element is shown: read in its world, every frame would be passed over.
HIDING = ("<!doctype html><html><head><title>Ministry</title></head><body><h1>Ministry</h1>"
          '<iframe src="http://cdn.test/post.html" width="400" height="200"></iframe>'
          '<iframe src="/local-post.html" width="400" height="200"></iframe>'
          "<script>Element.prototype.checkVisibility = () => false;</script></body></html>")


# Hidden frames and tracking pixels, more than MAX_FRAMES of them, before the one a reader sees.
BEHIND_PIXELS = ("<!doctype html><html><body><h1>Ministry</h1>"
                 + '<iframe style="display:none" srcdoc="<p>hidden</p>"></iframe>' * 60
                 + '<iframe width="1" height="1" srcdoc="<p>pixel</p>"></iframe>' * 60
                 + '<iframe src="http://cdn.test/post.html" width="400" height="200"></iframe></body></html>')
TWO_POSTS = ("<!doctype html><html><body><h1>Ministry</h1>"
             '<iframe src="/local-post.html" width="400" height="200"></iframe>'
             '<iframe src="http://cdn.test/post.html" width="400" height="200"></iframe></body></html>')
# A frame from another site whose script keeps its renderer busy for good, beside one that does not.
BUSY = "<!doctype html><html><body><p>busy</p><script>setTimeout(() => { for (;;) {} }, 100)</script></body></html>"
BESIDE_BUSY = ("<!doctype html><html><body><h1>Ministry</h1>"
               '<iframe src="/local-post.html" width="400" height="200"></iframe>'
               '<iframe src="http://cdn.test/busy.html" width="400" height="200"></iframe></body></html>')


def _launch(site, sites_isolated: bool) -> Browser:  # noqa: F811 (the fixture imported above)
    for path, body in (("/hiding.html", HIDING), ("/post.html", EMBEDDED), ("/local-post.html", EMBEDDED),
                       ("/behind-pixels.html", BEHIND_PIXELS), ("/two-posts.html", TWO_POSTS), ("/busy.html", BUSY),
                       ("/beside-busy.html", BESIDE_BUSY)):
        site[0].routes[path] = (200, "text/html; charset=utf-8", body.encode(), 0)
    with pytest.MonkeyPatch.context() as patch:
        if sites_isolated:  # a frame from another site then runs in a process of its own
            flags = chromium_module.browser_flags
            patch.setattr(chromium_module, "browser_flags", lambda pin: [*flags(pin), "--site-per-process"])
        return Browser.launch(CHROMIUM, PIN, site[2].address, limits=LIMITS, viewport=VIEWPORT)


@pytest.fixture(scope="module", params=["frames in the page's process", "sites isolated"])
def browser(request, site):  # noqa: F811 (the fixture imported above)
    launched = _launch(site, request.param == "sites isolated")
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def isolating_browser(site):  # noqa: F811 (the fixture imported above)
    """Only where sites are isolated can a frame keep its own renderer busy and not the page's."""
    launched = _launch(site, True)
    yield launched
    launched.close()


def test_each_frame_is_read_as_its_document_holds_it_whatever_the_page_or_the_frame_redefine(browser, site):
    page = browser.capture("http://news.test/hiding.html", site[1], time.monotonic() + 30)
    assert page.error is None, page.error
    # Both, each once (a frame in a process of its own comes after those in the page's, so not in the page's order).
    assert sorted(frame.url for frame in page.frames) == ["http://cdn.test/post.html", "http://news.test/local-post.html"]
    for frame in page.frames:
        assert frame.text.startswith("Embedded post\n") and STORY.strip() in frame.text, frame.text[:200]
        dom = frame.dom.markup
        assert dom.startswith("<!DOCTYPE html><html><head></head><body><h1>Embedded post</h1>"), dom[:200]
        assert "Decoy markup" not in dom and f'<p id="post">{STORY}</p>' in dom, dom[:300]
    assert "does not exist" not in page.text and page.text.count("Embedded post") == 2, page.text[:500]


def test_hidden_frames_and_tracking_pixels_do_not_use_up_the_frames_recorded(browser, site):
    page = browser.capture("http://news.test/behind-pixels.html", site[1], time.monotonic() + 30)
    assert page.error is None, page.error
    assert [frame.url for frame in page.frames] == ["http://cdn.test/post.html"], [f.url for f in page.frames][:5]


def test_a_frame_whose_text_fills_the_budget_leaves_the_next_frames_dom_recorded(browser, site):
    limits = dataclasses.replace(LIMITS, text_chars=len("Ministry") + 20)  # the first frame's text fills it
    page = browser.capture("http://news.test/two-posts.html", site[1], time.monotonic() + 30, limits=limits)
    assert page.error is None, page.error
    assert len(page.frames) == 2, [f.url for f in page.frames]
    assert all(f'<p id="post">{STORY}</p>' in frame.dom.markup for frame in page.frames)
    assert sum(len(frame.text) for frame in page.frames) <= 20


def test_a_frame_from_another_site_keeping_its_renderer_busy_leaves_the_others_read(isolating_browser, site):
    page = isolating_browser.capture("http://news.test/beside-busy.html", site[1], time.monotonic() + 30)
    assert page.error is None, page.error
    assert [frame.url for frame in page.frames] == ["http://news.test/local-post.html"]
    assert any(note.startswith("frames: 1 could not be read") for note in page.notes), page.notes
