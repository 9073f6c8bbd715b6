"""A frame's scripts cannot disguise what a browser capture records of it, nor the page's scripts
hide a frame from it: each frame's DOM and text are read in an isolated world of the frame's own,
and whether its element is shown, in one of its parent's, whether Chromium runs the frame in the
page's process (as the headless shell does) or, isolating sites, in a process of its own."""

from __future__ import annotations

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


@pytest.fixture(scope="module", params=["frames in the page's process", "sites isolated"])
def browser(request, site):  # noqa: F811 (the fixture imported above)
    for path, body in (("/hiding.html", HIDING), ("/post.html", EMBEDDED), ("/local-post.html", EMBEDDED)):
        site[0].routes[path] = (200, "text/html; charset=utf-8", body.encode(), 0)
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "sites isolated":  # a frame from another site then runs in a process of its own
            flags = chromium_module.browser_flags
            patch.setattr(chromium_module, "browser_flags", lambda pin: [*flags(pin), "--site-per-process"])
        launched = Browser.launch(CHROMIUM, PIN, site[2].address, limits=LIMITS, viewport=VIEWPORT)
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
