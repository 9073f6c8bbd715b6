"""What a reader sees of a rendered page, which the DOM and innerText alone leave out: the text
of open shadow roots (a custom element's article) and of the page's shown frames (with their
DOMs, recorded beside the page's), and a DOM that holds its open shadow roots. Closed shadow
roots cannot be read by a page's scripts, nor by these."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Frame, Page

from archiver.capture.browser.page_events import clip

MAX_FRAMES = 50  # frames read, in the order Chromium lists them (the page's first)

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
# The DOM as Playwright's page.content() serialises it (doctype, then <html>), with each open shadow
# root in place as a declarative one, <template shadowrootmode="open">, which a browser parses back
# into the shadow root; null where there is none (or no getHTML), and page.content() is the DOM.
_DOM_WITH_SHADOW_ROOTS = """() => {
  const html = document.documentElement, roots = [];
  if (!html || document.contentType !== 'text/html' || typeof html.getHTML !== 'function') return null;
  const visit = root => {
    for (const host of root.querySelectorAll('*')) {
      if (host.shadowRoot) { roots.push(host.shadowRoot); visit(host.shadowRoot); }
    }
  };
  visit(document);
  if (!roots.length) return null;
  const doctype = document.doctype ? new XMLSerializer().serializeToString(document.doctype) : '';
  const shell = html.cloneNode(false).outerHTML, close = `</${html.localName}>`;
  return doctype + shell.slice(0, shell.length - close.length)
    + html.getHTML({serializableShadowRoots: true, shadowRoots: roots}) + close;
}"""


async def page_text(page: Page, chars: int) -> str:
    """The visible text of the page's own document, its open shadow roots' included; at most `chars`."""
    return await page.main_frame.evaluate(_TEXT, chars)


@dataclass(frozen=True)
class ShownFrame:
    """A frame of the page shown to the reader: its URL (clipped), visible text and DOM (as rendered_dom's)."""

    url: str
    text: str
    dom: str


async def shown_frames(page: Page, chars: int, found: list[ShownFrame]) -> None:
    """Each frame of `page` shown to the reader (from any site), appended to `found` as it is
    read, so that what was read before a time limit is kept; at most `chars` of text in all.
    A frame gone or not answering is passed over: it is not the page's to wait for."""
    for frame in page.frames[1:MAX_FRAMES + 1]:
        left = chars - sum(len(shown.text) for shown in found)
        if left <= 0:
            return
        try:
            element = await frame.frame_element()
            if not await element.evaluate(_SHOWN):
                continue
            text, dom = await frame.evaluate(_TEXT, left), await rendered_dom(frame)
        except PlaywrightError:  # detached, navigating, or its renderer gone
            continue
        found.append(ShownFrame(clip(frame.url), text, dom))  # a data: URL may be megabytes


async def rendered_dom(document: Page | Frame) -> str:
    """The DOM of a page (or of one of its frames) after scripts ran, serialised, open shadow roots
    included (see _DOM_WITH_SHADOW_ROOTS)."""
    with_roots = await document.evaluate(_DOM_WITH_SHADOW_ROOTS)
    return with_roots if with_roots is not None else await document.content()
