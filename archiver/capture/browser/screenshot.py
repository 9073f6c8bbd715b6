"""A page's screenshot: the whole page in one PNG, as a reader scrolling through it saw it, and its
PDF print; each bounded (the screenshot's area, the PDF's pages), so that a page cannot make either
of gigabytes, and each then counted in the page's byte budget (render.py).

Chromium renders beyond the window for a screenshot (captureBeyondViewport), but a frame from
another site is painted only within the window: an embedded post, video or map below the first
screen comes out blank, though every byte of it was recorded. When the page has such a frame
below the first screen, the window is made as tall as the page for the screenshot and set back
after, unless the page's layout follows the window's height (a section of 100vh grows with it,
and the page with it): then the screenshot is taken as usual and the blank frames are noted."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import TYPE_CHECKING

from playwright.async_api import Error, Page

from archiver.capture.shortfalls import left_out, screenshot_cut

if TYPE_CHECKING:
    from archiver.capture.browser.render import _PageRun

# Reading the height from both elements: quirks-mode pages report it on <body>, standard ones on <html>
# (neither is there yet in a document whose first bytes have not come).
PAGE_SIZE = """() => [Math.max(document.documentElement?.scrollWidth ?? 0, document.body?.scrollWidth ?? 0),
                      Math.max(document.documentElement?.scrollHeight ?? 0, document.body?.scrollHeight ?? 0)]"""
# The same, measured from a timer: a DevTools call can run ahead of the page's own queued work (the
# feed items a response just brought, still to be inserted), which runs before a timer's task.
# (A timer, not animation frames: a document with no <body> yet draws none.)
PAGE_SIZE_SETTLED = "() => new Promise(done => setTimeout(() => done((" + PAGE_SIZE + ")()), 50))"
# Chromium lays out an HTML document only once its <body> is there (Document::ShouldScheduleLayout):
# until then it draws no frame, so a screenshot would wait for one until its time ran out.
NOTHING_TO_SHOW = """() => document.documentElement === null
                         || (document.documentElement instanceof HTMLHtmlElement && document.body === null)"""
# A frame whose document this page cannot read is another site's (or sandboxed): painted only in the window.
_FOREIGN_FRAMES_BELOW = """() => [...document.querySelectorAll('iframe, frame')].some(frame => {
  let foreign;
  try { foreign = frame.contentDocument === null; } catch (e) { foreign = true; }
  const box = frame.getBoundingClientRect();
  return foreign && box.width > 0 && box.height > 0 && box.bottom > innerHeight;
})"""
# Two frames on: the first lays the page out in the new window, the second paints it.
_PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
# The same in a frame from another site, which paints in a process of its own, at its own pace:
# the page's two frames do not wait for it on a loaded machine.
_FRAME_PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
# A frame never shown (hidden, of no size) gets no animation frames, and one whose script never
# yields answers nothing: this is all the time any frame is given.
FRAME_PAINT_SECONDS = 2.0
# Chromium draws a window up to this tall in one piece; a taller page keeps the usual screenshot.
TALLEST_WINDOW = 16_384
TALL_WINDOW_NOTE = ("screenshot: taken in a window as tall as the page, so that frames from other sites "
                    "below the first screen are painted")
FRAMES_BLANK_NOTE = "screenshot: frames from other sites below the first screen may be blank"
SCREENSHOT_CUT_NOTE = "screenshot: the first"  # "… N px of a page M px high|wide": cut to its bounds
# Pages of the PDF print at most: Chromium lays out the whole page to print it, but writes only these.
PDF_PAGES = 100
# How Chromium's PDF (Skia's) names each page object; its page tree's nodes are /Type /Pages.
_PDF_PAGE = re.compile(rb"/Type\s*/Page\b(?!s)")


def screenshot_clip(size: list[int], viewport: dict, height_limit: int, area_limit: int, notes: list[str],
                    shortfalls: list[str]) -> dict:
    """The whole page, at least the viewport, at most `height_limit` pixels each way and `area_limit`
    pixels in all: of a larger page its first `height_limit` px down, as wide as the area then
    allows (the window's width at least), each side cut noted, and a shortfall. A page wide and
    high of noise would otherwise make a PNG of gigabytes, copied whole into Python."""
    width, height = max(size[0], viewport["width"]), max(size[1], viewport["height"])
    shown_height = min(height, height_limit)
    shown_width = min(width, height_limit, max(viewport["width"], area_limit // shown_height))
    shown_height = min(shown_height, max(1, area_limit // shown_width))  # a window wider than the area allows
    for extent, shown, side in ((height, shown_height, "high"), (width, shown_width, "wide")):
        if shown < extent:
            notes.append(f"{SCREENSHOT_CUT_NOTE} {shown} px of a page {extent} px {side}")
            shortfalls.append(screenshot_cut(shown, extent, side))
    return {"x": 0, "y": 0, "width": shown_width, "height": shown_height, "scale": 1}


async def print_pdf(page: Page, notes: list[str]) -> bytes:
    """The page printed (Letter paper, its backgrounds too), its first PDF_PAGES pages: one of
    that many pages may have had more, and is noted."""
    pdf = await page.pdf(print_background=True, page_ranges=f"1-{PDF_PAGES}")
    if len(_PDF_PAGE.findall(pdf)) >= PDF_PAGES:
        notes.append(f"pdf: holds the first {PDF_PAGES} pages; the page may print to more")
    return pdf


def budgeted(run: _PageRun, what: str, made: bytes | None) -> bytes | None:
    """`made` (the "screenshot" or "pdf"), counted in the page's budget; None when it would have
    taken the page past it: left out, noted, and a shortfall, so that it is never missed silently."""
    if made is None or run.page_bytes is None or run.page_bytes.take(len(made)):
        return made
    left = run.page_bytes.left()
    run.result.notes.append(f"{what}: left out: its {len(made)} bytes are more than the {left} bytes left of "
                            "the page's byte budget (max_page_bytes)")
    run.result.shortfalls.append(left_out("the screenshot" if what == "screenshot" else "the PDF print",
                                          len(made), left))
    run.result.left_out.append(what)
    return None


async def screenshot(page: Page, size: list[int], clip: dict, notes: list[str], tall_window: bool = True) -> bytes:
    """The PNG of `clip` (screenshot_clip of the page's `size`), in a window as tall as the page
    when only that paints its frames from other sites (see above), unless not `tall_window`
    (a replay of a capture whose screenshot was not taken so)."""
    viewport = page.viewport_size
    if not tall_window or viewport is None or clip["height"] <= viewport["height"] or \
            not await page.evaluate(_FOREIGN_FRAMES_BELOW):
        return await _beyond_window(page, clip)
    if clip["height"] > TALLEST_WINDOW:
        notes.append(f"{FRAMES_BLANK_NOTE} (the page is taller than {TALLEST_WINDOW} px)")
        return await _beyond_window(page, clip)
    try:
        await page.set_viewport_size({"width": viewport["width"], "height": clip["height"]})
        await _frames_painted(page)
        if await page.evaluate(PAGE_SIZE) == size:
            notes.append(TALL_WINDOW_NOTE)
            return await _beyond_window(page, clip)
    finally:  # also when the step runs out of time: what follows is made in the reader's window
        await page.set_viewport_size(viewport)
    notes.append(f"{FRAMES_BLANK_NOTE} (the page's layout follows the window's height)")
    await page.evaluate(_PAINTED)
    return await _beyond_window(page, clip)


async def _frames_painted(page: Page) -> None:
    """Once every frame of the page has painted in the new window, then the page itself."""
    async def painted(frame) -> None:
        try:
            await asyncio.wait_for(frame.evaluate(_FRAME_PAINTED), FRAME_PAINT_SECONDS)
        except (Error, asyncio.TimeoutError):  # gone, navigating, or never painting: not waited for longer
            pass
    await asyncio.gather(*(painted(frame) for frame in page.frames if frame is not page.main_frame))
    await page.evaluate(_PAINTED)


async def _beyond_window(page: Page, clip: dict) -> bytes:
    """A PNG of `clip` rendered beyond the viewport, as Playwright's full-page screenshot makes it,
    but with Chromium's fast PNG encoder: the same pixels, a larger file, less than half the time."""
    session = await page.context.new_cdp_session(page)
    try:
        shot = await session.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "optimizeForSpeed": True, "clip": clip})
    finally:
        await session.detach()
    return base64.b64decode(shot["data"])
