"""What a reader sees of a rendered page, which the DOM and innerText alone leave out: the text
of open shadow roots (a custom element's article) and of the page's shown frames (with their
DOMs, recorded beside the page's), and a DOM that holds its open shadow roots. Closed shadow
roots cannot be read by a page's scripts, nor by these. Every string is cut in the page before
it reaches Python: a page can make its DOM as large as its renderer's memory (one attribute of
millions of characters, in each of its frames), and each would otherwise be copied whole, several
times over, through Playwright's driver into this process.

The page's own document is read in an isolated world, as an extension's content script reads it:
the same DOM, but JavaScript built-ins of its own, so that a page's script redefining what these
functions call (the getters of outerHTML, innerText or document.title, TextEncoder, slice) cannot
make the DOM record, text or title say what the document does not. Playwright evaluates only in
the page's main world (its utility world is not offered to clients), so this is done through CDP.
Its frames are still read in their main worlds: Playwright names no frame by its CDP id, so a
frame could not be matched surely to the world to make for it (and one from another site needs a
CDP session of its own); a frame's own scripts can thus still disguise its text and DOM."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page

from archiver.capture.browser.page_events import clip

MAX_FRAMES = 50  # frames read, in the order Chromium lists them (the page's first)
# Bytes (UTF-8) kept of the page's own DOM: the largest real pages' DOMs are a few MB; a page
# past this is a bomb, or a page whose DOM record would be unreadable anyway. What is read passes
# through Playwright's driver as JSON, then a str, then bytes: the capture's Python holds about
# three times what is kept (a page filling both bounds took its capture from 67 MB to 220 MB).
DOM_BYTES = 25 * 10**6
# Bytes kept of the DOMs of all the page's shown frames together (each gets what the ones before
# left): up to MAX_FRAMES frames of DOM_BYTES each would be 1.25 GB of one page.
FRAME_DOM_BYTES = 25 * 10**6
TITLE_CHARS = 2000  # of the page's title: a title is a line; a longer one is a page's bomb

# innerText leaves out shadow trees: each open one's text follows its document's, in document
# order, but a <slot>'s (its host's own children, already in innerText) and what is not shown.
_TEXT = """n => {
  const parts = [document.body ? document.body.innerText : ''];
  const visit = root => {
    for (const host of root.querySelectorAll('*')) {
      const shadow = host.shadowRoot;
      if (!shadow) continue;
      for (const child of shadow.childNodes) {
        if (child.nodeType === Node.ELEMENT_NODE && child.localName !== 'slot' && child.checkVisibility()) {
          parts.push(child.innerText);
        } else if (child.nodeType === Node.TEXT_NODE && host.checkVisibility()) {
          parts.push(child.data);
        }
      }
      visit(shadow);
    }
  };
  visit(document);
  return parts.join('\\n').slice(0, n);
}"""
# A frame shown to the reader: not hidden, and larger than a tracking pixel.
_SHOWN = "frame => frame.checkVisibility({visibilityProperty: true}) && frame.offsetWidth > 1 && frame.offsetHeight > 1"
# The DOM as Playwright's page.content() serialises it (doctype, then <html>'s outerHTML), with
# each open shadow root in place as a declarative one, <template shadowrootmode="open">, which a
# browser parses back into the shadow root; of it, at most the first `limit` bytes of UTF-8 (never
# half a character), and the bytes of the whole, counted a chunk at a time, never encoded at once.
_DOM = """limit => {
  const html = document.documentElement, roots = [];
  const doctype = document.doctype ? new XMLSerializer().serializeToString(document.doctype) : '';
  let whole = doctype + (html ? html.outerHTML : '');
  if (html && document.contentType === 'text/html' && typeof html.getHTML === 'function') {
    const visit = root => {
      for (const host of root.querySelectorAll('*')) {
        if (host.shadowRoot) { roots.push(host.shadowRoot); visit(host.shadowRoot); }
      }
    };
    visit(document);
    if (roots.length) {
      const shell = html.cloneNode(false).outerHTML, close = `</${html.localName}>`;
      whole = doctype + shell.slice(0, shell.length - close.length)
        + html.getHTML({serializableShadowRoots: true, shadowRoots: roots}) + close;
    }
  }
  const encoder = new TextEncoder(), chunk = new Uint8Array(1 << 20);
  const kept = encoder.encodeInto(whole, new Uint8Array(limit));
  if (kept.read === whole.length) return {dom: whole, bytes: kept.written};
  let bytes = kept.written;
  for (let at = kept.read; at < whole.length;) {
    let end = Math.min(whole.length, at + (1 << 18));  // never between the halves of a surrogate pair
    if (end < whole.length && (whole.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
    bytes += encoder.encodeInto(whole.slice(at, end), chunk).written;
    at = end;
  }
  return {dom: whole.slice(0, kept.read), bytes};
}"""
_TITLE = "chars => document.title.slice(0, chars)"
WORLD = "archiver"  # the isolated world's name, as DevTools lists it beside the page's


async def page_text(page: Page, chars: int) -> str:
    """The visible text of the page's own document, its open shadow roots' included; at most `chars`."""
    return await _in_isolated_world(page, _TEXT, chars)


async def page_title(page: Page) -> str:
    """The page's title, at most TITLE_CHARS of it."""
    return await _in_isolated_world(page, _TITLE, TITLE_CHARS)


async def _in_isolated_world(page: Page, function: str, arg: int) -> Any:
    """`function(arg)` run on the page's own document in a world of its own (see above), its
    value returned as Playwright's evaluate returns it; its failure raised as Playwright's."""
    session = await page.context.new_cdp_session(page)
    try:
        tree = await session.send("Page.getFrameTree")
        world = await session.send("Page.createIsolatedWorld", {
            "frameId": tree["frameTree"]["frame"]["id"], "worldName": WORLD, "grantUniveralAccess": False})
        reply = await session.send("Runtime.evaluate", {
            "expression": f"({function})({json.dumps(arg)})", "contextId": world["executionContextId"],
            "returnByValue": True, "awaitPromise": True})
    finally:
        await session.detach()
    if "exceptionDetails" in reply:
        details = reply["exceptionDetails"]
        raise PlaywrightError((details.get("exception") or {}).get("description") or details.get("text")
                              or "the page's document could not be read")
    return reply["result"].get("value")


@dataclass(frozen=True)
class RenderedDom:
    """A DOM serialised (rendered_dom), or its first bytes: `whole_bytes`, of UTF-8, says how
    large the whole was."""

    markup: str
    whole_bytes: int

    @property
    def kept_bytes(self) -> int:
        return len(self.markup.encode("utf-8"))

    @property
    def cut(self) -> bool:
        return self.kept_bytes < self.whole_bytes


@dataclass(frozen=True)
class ShownFrame:
    """A frame of the page shown to the reader: its URL (clipped), visible text and DOM (as rendered_dom's)."""

    url: str
    text: str
    dom: RenderedDom


async def shown_frames(page: Page, chars: int, dom_bytes: Callable[[], int], found: list[ShownFrame]) -> None:
    """Each frame of `page` shown to the reader (from any site), appended to `found` as it is
    read, so that what was read before a time limit is kept; at most `chars` of text in all, and
    of each frame's DOM at most `dom_bytes()` (asked before each: what the frames before left).
    A frame gone or not answering is passed over: it is not the page's to wait for."""
    for frame in page.frames[1:MAX_FRAMES + 1]:
        left = chars - sum(len(shown.text) for shown in found)
        if left <= 0:
            return
        try:
            element = await frame.frame_element()
            if not await element.evaluate(_SHOWN):
                continue
            text, dom = await frame.evaluate(_TEXT, left), await rendered_dom(frame, dom_bytes())
        except PlaywrightError:  # detached, navigating, or its renderer gone
            continue
        found.append(ShownFrame(clip(frame.url), text, dom))  # a data: URL may be megabytes


async def rendered_dom(document: Page | Frame, limit: int) -> RenderedDom:
    """The DOM of a page (or of one of its frames) after scripts ran, serialised, open shadow roots
    included, cut in the page to its first `limit` bytes (see _DOM)."""
    if isinstance(document, Page):
        found = await _in_isolated_world(document, _DOM, max(0, limit))
    else:  # a frame: in its main world (see above)
        found = await document.evaluate(_DOM, max(0, limit))
    return RenderedDom(found["dom"], found["bytes"])
