"""What a reader sees of a rendered page, which the DOM and innerText alone leave out: the text
of open shadow roots (a custom element's article) and of the page's shown frames (with their
DOMs, recorded beside the page's), and a DOM that holds its open shadow roots. Closed shadow
roots cannot be read by a page's scripts, nor by these. Every string is cut in the page before
it reaches Python: a page can make its DOM as large as its renderer's memory (one attribute of
millions of characters, in each of its frames), and each would otherwise be copied whole, several
times over, through Playwright's driver into this process.

The page's own document and each of its frames' is read in an isolated world, as an extension's
content script reads it: the same DOM, but JavaScript built-ins of its own, so that a script of the
page or of a frame redefining what these functions call (the getters of outerHTML, innerText or
document.title, TextEncoder, slice, checkVisibility) cannot make the DOM records, text or title say
what the documents do not, nor hide a frame from them. Playwright evaluates only in a document's
main world (its utility world is not offered to clients), so this is done through CDP: the page's
session, and one for each frame that runs in a process of its own (a frame from another site,
where Chromium isolates sites), whose frames the page's session does not list."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import CDPSession, Page

from archiver.capture.browser.page_events import clip

MAX_FRAMES = 50  # shown frames read, each after its parent, those in the page's process first (_Worlds.frames)
# Frames looked at to find them: hidden frames and tracking pixels before a shown one must not
# use up MAX_FRAMES, but a page of tens of thousands is not looked through to its end.
MAX_FRAMES_LOOKED_AT = 1000
# Of one frame, each question asked of its document: a frame whose scripts keep its renderer busy
# answers none, and must not take the time the other frames are read in.
FRAME_SECONDS = 2.0
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
# A frame shown to the reader: not hidden, and larger than a tracking pixel (within its border:
# a 1 x 1 frame is 5 px wide with the default one).
_SHOWN = "frame => frame.checkVisibility({visibilityProperty: true}) && frame.clientWidth > 1 && frame.clientHeight > 1"
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
    async with _Worlds(page) as worlds:
        return await worlds.evaluate(worlds.top, _TEXT, chars)


async def page_title(page: Page) -> str:
    """The page's title, at most TITLE_CHARS of it."""
    async with _Worlds(page) as worlds:
        return await worlds.evaluate(worlds.top, _TITLE, TITLE_CHARS)


class _Worlds:
    """The CDP sessions of a page: its own, which lists the page's frames and those of its frames
    running in its process, and (after with_frames()) one for each frame running in a process of
    its own, which lists that frame and those in its process; and an isolated world made in each
    frame as it is first asked for. Every failure is raised as Playwright's Error."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._sessions: dict[str, CDPSession] = {}  # frame id → the session listing it
        self._parents: dict[str, str | None] = {}
        self._urls: dict[str, str] = {}
        self._order: list[str] = []  # as each session lists its frames, the page's session first
        self._opened: list[CDPSession] = []
        self._worlds: dict[str, int] = {}  # frame id → its isolated world's execution context
        self.top = ""
        self.unanswered = 0  # frames in a process of their own whose renderer did not answer (with_frames)

    async def __aenter__(self) -> "_Worlds":
        session = await self._page.context.new_cdp_session(self._page)
        self._opened.append(session)
        self.top = await self._list(session)
        return self

    async def __aexit__(self, *exc) -> None:
        for session in self._opened:
            try:  # bounded: a busy renderer's session may never answer, and a step cut short ends here too
                await asyncio.wait_for(session.detach(), FRAME_SECONDS)
            except (PlaywrightError, TimeoutError):  # the page, or a frame's process, is gone or stuck
                pass

    async def with_frames(self) -> None:
        """Add the session of each frame running in a process of its own (Playwright opens one
        for such a frame only; for any other it refuses), of the first MAX_FRAMES_LOOKED_AT
        Playwright lists; one whose renderer does not answer within FRAME_SECONDS is passed over."""
        for frame in self._page.frames[1:MAX_FRAMES_LOOKED_AT + 1]:
            try:
                session = await asyncio.wait_for(self._page.context.new_cdp_session(frame), FRAME_SECONDS)
            except PlaywrightError:  # in the page's process, or in a frame's listed already
                continue
            except TimeoutError:
                self.unanswered += 1
                continue
            self._opened.append(session)
            try:
                await asyncio.wait_for(self._list(session), FRAME_SECONDS)
            except (PlaywrightError, TimeoutError):
                self.unanswered += 1

    async def _list(self, session: CDPSession) -> str:
        """Note every frame `session` lists; its first frame's id."""
        def visit(node: dict, parent: str | None) -> None:
            frame = node["frame"]
            self._sessions[frame["id"]] = session
            self._parents[frame["id"]] = frame.get("parentId", parent)
            self._urls[frame["id"]] = frame["url"] + frame.get("urlFragment", "")
            if frame["id"] not in self._order:  # listed again by its own process's session: read through that one
                self._order.append(frame["id"])
            for child in node.get("childFrames", ()):
                visit(child, frame["id"])

        tree = (await session.send("Page.getFrameTree"))["frameTree"]
        visit(tree, None)
        return tree["frame"]["id"]

    def frames(self) -> list[str]:
        """The ids of the page's frames, each after its parent, in the order their sessions list them."""
        children: dict[str | None, list[str]] = {}
        for frame_id in self._order:
            children.setdefault(self._parents[frame_id], []).append(frame_id)
        ordered, stack = [], list(reversed(children.get(self.top, [])))
        while stack:
            frame_id = stack.pop()
            ordered.append(frame_id)
            stack.extend(reversed(children.get(frame_id, [])))
        return ordered

    def url(self, frame_id: str) -> str:
        return self._urls[frame_id]

    async def _world(self, frame_id: str) -> int:
        if frame_id not in self._worlds:
            world = await self._sessions[frame_id].send("Page.createIsolatedWorld", {
                "frameId": frame_id, "worldName": WORLD, "grantUniveralAccess": False})
            self._worlds[frame_id] = world["executionContextId"]
        return self._worlds[frame_id]

    async def evaluate(self, frame_id: str, function: str, arg: Any) -> Any:
        """`function(arg)` run on the frame's document in its isolated world; its value, as
        Playwright's evaluate returns it."""
        return _value(await self._sessions[frame_id].send("Runtime.evaluate", {
            "expression": f"({function})({json.dumps(arg)})", "contextId": await self._world(frame_id),
            "returnByValue": True, "awaitPromise": True}))

    async def on_element(self, frame_id: str, function: str) -> Any:
        """`function(element)` run on the element holding the frame (its <iframe> or <frame>),
        in the isolated world of the frame that element is in."""
        parent = self._parents[frame_id]
        session = self._sessions[parent]
        owner = await session.send("DOM.getFrameOwner", {"frameId": frame_id})
        element = await session.send("DOM.resolveNode", {"backendNodeId": owner["backendNodeId"],
                                                          "executionContextId": await self._world(parent)})
        return _value(await session.send("Runtime.callFunctionOn", {
            "functionDeclaration": f"function () {{ return ({function})(this); }}",
            "objectId": element["object"]["objectId"], "returnByValue": True, "awaitPromise": True}))


def _value(reply: dict) -> Any:
    """The value of a Runtime.evaluate or callFunctionOn reply; its exception raised as Playwright's Error."""
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


async def shown_frames(page: Page, chars: int, dom_bytes: Callable[[], int], found: list[ShownFrame],
                       notes: list[str]) -> None:
    """Each frame of `page` shown to the reader (from any site), MAX_FRAMES at most, appended to
    `found` as it is read, so that what was read before a time limit is kept; at most `chars` of
    text in all, and of each frame's DOM at most `dom_bytes()` (asked before each: what the frames
    before left). A frame gone, or not answering within FRAME_SECONDS, is passed over: it is not
    the page's to wait for; those, and shown frames past MAX_FRAMES, are said in `notes`."""
    unread = 0
    async with _Worlds(page) as worlds:
        await worlds.with_frames()
        for frame_id in worlds.frames()[:MAX_FRAMES_LOOKED_AT]:
            try:
                if not await asyncio.wait_for(worlds.on_element(frame_id, _SHOWN), FRAME_SECONDS):
                    continue
                if len(found) == MAX_FRAMES:
                    notes.append(f"frames: only the first {MAX_FRAMES} frames shown are recorded; the page shows more")
                    break
                left = chars - sum(len(shown.text) for shown in found)  # its text, if any is left to keep
                text = await asyncio.wait_for(worlds.evaluate(frame_id, _TEXT, left), FRAME_SECONDS) if left > 0 else ""
                dom = await asyncio.wait_for(worlds.evaluate(frame_id, _DOM, max(0, dom_bytes())), FRAME_SECONDS)
            except (PlaywrightError, TimeoutError):  # detached, navigating, its renderer gone or busy
                unread += 1
                continue
            # clip: a data: URL may be megabytes
            found.append(ShownFrame(clip(worlds.url(frame_id)), text, RenderedDom(dom["dom"], dom["bytes"])))
        unread += worlds.unanswered
    if unread:
        notes.append(f"frames: {unread} could not be read (gone, navigating, or not answering within "
                     f"{FRAME_SECONDS:g} s); their DOMs are not recorded")


async def rendered_dom(page: Page, limit: int) -> RenderedDom:
    """The DOM of the page after scripts ran, serialised, open shadow roots included, cut in the
    page to its first `limit` bytes (see _DOM)."""
    async with _Worlds(page) as worlds:
        found = await worlds.evaluate(worlds.top, _DOM, max(0, limit))
    return RenderedDom(found["dom"], found["bytes"])
