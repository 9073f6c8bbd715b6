"""One page's life in the browser, every wait bounded: load, a scroll through the page and its
large inner scroll containers to wake lazy content, network idle and fonts (again, further down,
while the page keeps growing), a watch while it still changes (late.py: late content, a meta
refresh or script redirect due), then the full-page screenshot, a PDF print and the rendered DOM.
Whatever ends the page early (a crash, a download, the deadline) ends it with what was made and
the reason; what could not finish within its bound is noted, never waited for. Nor is the load
event of a document its proxy saw cut short, which Chromium never fires, nor that of a page one
of whose frames' documents was (the proxy holds it open, so that it is never seen to end); a page
whose document ended before its <body> has nothing to show, and gets no screenshot or PDF but a
note of why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from archiver.capture.browser.activity import NetworkActivity
from archiver.capture.browser.late import NAVIGATED, OBSERVE_CHANGES, late_note, watch_late_changes
from archiver.capture.browser.page_events import clip, in_words, keep, watch_page
from archiver.capture.browser.page_bytes import PageBytes
from archiver.capture.browser.page_text import (DOM_BYTES, FRAME_DOM_BYTES, RenderedDom, ShownFrame, page_text,
                                              page_title, rendered_dom, shown_frames)
from archiver.capture.browser.screen_notes import screen_notes
from archiver.capture.browser.screenshot import (NOTHING_TO_SHOW, PAGE_SIZE, PAGE_SIZE_SETTLED, budgeted, print_pdf,
                                                screenshot, screenshot_clip)
from archiver.capture.browser.scrolling import INNER_MINIMUM, INNER_SCROLL, WINDOW_SCROLL, inner_notes
from archiver.capture.shortfalls import STEP_SHORTFALLS, dom_cut
from archiver.store.settings import WAIT_AFTER_LOAD

_FONTS_READY = "document.fonts.ready.then(() => document.fonts.status)"
_DOWNLOAD_STARTING = "Download is starting"  # how Playwright's goto fails on a response the browser saves
_DOWNLOADED = "the address is a file the browser downloads: recorded, not shown"


@dataclass(frozen=True)
class PageLimits:
    """Upper bounds of each step, in seconds unless named otherwise; the capture's deadline caps them all."""

    load: float = 30.0           # until the load event
    network_idle: float = 10.0   # until the network is quiet (below)
    quiet: float = 0.5           # no request in flight and none started for this long: idle, as Playwright's networkidle
    fonts: float = 5.0           # document.fonts.ready
    after_load: float = WAIT_AFTER_LOAD  # then watched while it still changes (late.py)
    dom_quiet: float = 0.5       # no DOM change for this long: quiet
    scroll: float = 15.0         # the whole scroll through the page
    scroll_pause: float = 0.02   # per step, after a frame is drawn: lazy loaders start from its observers
    scroll_height: int = 50_000  # pixels scrolled at most, so an infinite-scroll page ends
    inner_boxes: int = 10        # inner scroll containers scrolled through at most, the largest first
    inner_steps: int = 50        # steps scrolled in each, a box's height at a time
    screenshot_height: int = 20_000  # pixels of page in the screenshot each way; larger pages are cut, and noted
    screenshot_area: int = 1280 * 20_000  # and in all: the default window's width by screenshot_height
    artifacts: float = 10.0      # time kept back for the screenshot, PDF and DOM
    text_chars: int = 1_000_000  # of visible text kept for the report and the replay check
    dom_bytes: int = DOM_BYTES   # of the page's DOM kept (page_text.py)
    frame_dom_bytes: int = FRAME_DOM_BYTES  # of its shown frames' DOMs kept, in all
    tall_window: bool = True     # for frames from other sites below the first screen (screenshot.py)


@dataclass
class PageCapture:
    """What the browser made of one page. `error` says why it ended early; `notes` what did not
    finish within its bound (the page was still captured); `shortfalls`, of those, what left the
    record holding less than the page had, in words for a user."""

    final_url: str | None = None
    title: str | None = None
    status: int | None = None       # of the response the navigation ended on (after HTTP redirects)
    screenshot: bytes | None = None  # full-page PNG
    pdf: bytes | None = None
    left_out: list[str] = field(default_factory=list)  # "screenshot", "pdf": made, but past the page's byte budget
    dom: bytes | None = None         # the DOM after scripts ran, serialised, UTF-8, open shadow roots included
    dom_whole_bytes: int | None = None  # of the whole DOM, when `dom` holds only its first part
    frames: list[ShownFrame] = field(default_factory=list)  # the frames shown to the reader, their text and DOM
    taken_at: dict[str, datetime] = field(default_factory=dict)  # "screenshot", "pdf", "dom", "frames": when each was begun
    text: str | None = None          # visible text: innerText of <body>, open shadow roots', then shown frames'
    load_seconds: float | None = None     # from navigation start to the load event; None: never fired
    settled_seconds: float | None = None  # to network idle and fonts ready; None: never settled
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[dict] = field(default_factory=list)  # {"type", "message", "dismissed"}
    popups: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shortfalls: list[str] = field(default_factory=list)  # what less than the page had was recorded (shortfalls.py)
    error: str | None = None

    @property
    def dom_cut(self) -> bool:
        """Whether the DOM record, or a frame's, holds only the first part of its DOM."""
        return self.dom_whole_bytes is not None or any(frame.dom.cut for frame in self.frames)


class _Ended(Exception):
    """The page can go no further (crashed, closed, out of time)."""


class _PageRun:
    """The state of one page's lifecycle: its deadlines and what its event handlers saw."""

    def __init__(self, page: Page, traffic: NetworkActivity, result: PageCapture, deadline: float,
                 limits: PageLimits, page_bytes: PageBytes | None) -> None:
        self.page, self.traffic, self.result, self.deadline, self.limits = page, traffic, result, deadline, limits
        self.page_bytes = page_bytes  # the page's budget, its DOMs and pictures counted in it; None: none (a replay)
        self.started = time.monotonic()
        # Time kept back so that a page which never settles still gets its screenshot, PDF and DOM.
        self.waits_end = deadline - min(limits.artifacts, 0.3 * max(0.0, deadline - self.started))
        self.crashed = False
        self.loading: asyncio.Future | None = None  # the wait for the load event, once navigated
        # Done, with the WARC-Truncated reason, once the proxy knows the page's document was cut short.
        self.document_cut: asyncio.Future = asyncio.get_running_loop().create_future()
        # Done, with its URL and reason, once the proxy holds open a frame's document cut short.
        self.frame_held: asyncio.Future = asyncio.get_running_loop().create_future()
        # Done, with its URL, once the page started a download: its navigation to it never ends.
        self.downloading: asyncio.Future = asyncio.get_running_loop().create_future()
        self.watch_end: float | None = None  # when the watch after load ends (late.py), once begun
        self.waited_for: dict[str, None] = {}  # what it waited for, in order
        self.still_changing = False  # when the watch ended

    def left(self, limit: float, waiting: bool = True) -> float:
        end = self.waits_end if waiting else self.deadline
        return max(0.0, min(limit, end - time.monotonic()))

    async def bounded(self, step: str, work: Callable[[], Awaitable[Any]], limit: float,
                      waiting: bool = True) -> Any:
        """`work()` within `limit` seconds and the deadline; None (and a note) when it did not finish.
        `work` is called only when there is time for it, so no step starts that cannot end in time."""
        seconds = self.left(limit, waiting)
        if self.crashed:
            raise _Ended("the renderer crashed")
        if seconds <= 0:
            self.result.notes.append(f"{step}: skipped, no time left before the deadline")
            return None
        try:
            return await asyncio.wait_for(work(), seconds)
        except (TimeoutError, PlaywrightError) as exc:
            if self.crashed or self.page.is_closed():
                raise _Ended("the renderer crashed" if self.crashed else "the page was closed") from exc
            timed_out = isinstance(exc, (TimeoutError, PlaywrightTimeout))
            self.result.notes.append(f"{step}: not done within {seconds:.1f} s" if timed_out
                                     else f"{step}: {in_words(exc)}")
            if timed_out and step in STEP_SHORTFALLS and STEP_SHORTFALLS[step] not in self.result.shortfalls:
                self.result.shortfalls.append(STEP_SHORTFALLS[step])
            return None


async def render_page(context: BrowserContext, page: Page, url: str, deadline: float, limits: PageLimits,
                      result: PageCapture, traffic: NetworkActivity, page_bytes: PageBytes | None = None) -> None:
    """Run `url` through the lifecycle in `page`, the blank page of a fresh `context`, filling
    `result` as it goes (so that whoever gives up waiting still has what was made). `traffic` is
    what the context's proxy has in flight; `page_bytes` its byte budget, which the screenshot, PDF
    and DOMs count in. Playwright's "networkidle" fires once per navigation, so it cannot tell when
    what a scroll started has finished; the proxy can."""
    run = _PageRun(page, traffic, result, deadline, limits, page_bytes)
    watch_page(context, page, run)
    try:
        if await _navigate(run, url):
            await _scroll_through(run)
            await _watch_late_changes(run)
            await _artifacts(run)
    except _Ended as ended:
        result.error = result.error or str(ended)
    finally:
        if run.loading is not None:
            run.loading.cancel()
        run.document_cut.cancel()
        run.frame_held.cancel()
        run.downloading.cancel()
    if run.crashed:
        result.error = "the renderer crashed"


async def _navigate(run: _PageRun, url: str) -> bool:
    """Navigate, then wait for the load event; False when there is no page to capture."""
    result, limits = run.result, run.limits
    # Waiting only for the response first: a page whose load event never comes is still captured.
    await run.bounded("change watch", lambda: run.page.add_init_script(OBSERVE_CHANGES), limits.load)
    seconds = run.left(limits.load)
    try:
        response = await asyncio.wait_for(run.page.goto(url, wait_until="commit"), seconds or 0.001)
    except TimeoutError:
        # What ran out is named: the load limit, or the capture's deadline (less the time kept for the screenshot).
        result.error = (f"no response to the page within the load limit of {limits.load:g} s" if seconds >= limits.load
                        else f"no response to the page in the {seconds:.1f} s the capture's deadline left for it")
        return False
    except PlaywrightError as exc:
        # A download, a redirect loop, a refused page: the proxy has recorded what was fetched.
        download = _DOWNLOAD_STARTING in str(exc)
        result.error = "the renderer crashed" if run.crashed else _DOWNLOADED if download \
            else f"navigation failed: {in_words(exc)}"
        if download and url not in result.downloads:  # its event may come after this, or never
            keep(result.downloads, clip(url))
        return False
    result.status = response.status if response is not None else None
    result.final_url = run.page.url
    if response is not None:
        run.document_cut = asyncio.ensure_future(run.traffic.cut(response.url))
        run.frame_held = asyncio.ensure_future(run.traffic.held(besides=response.url))
    # A reader scrolls once the document is there, while its images still load: so does the
    # scroll, and the load event is awaited after it.
    run.loading = asyncio.ensure_future(_load_event(run))
    # Its end (a crash, say) is taken up by whoever awaits it; unawaited, it must not be reported.
    run.loading.add_done_callback(lambda task: task.cancelled() or task.exception())
    await run.bounded("document", lambda: _loaded(run, "domcontentloaded"), limits.load)
    return True


async def _load_event(run: _PageRun) -> None:
    if await run.bounded("load event", lambda: _loaded(run, "load"), run.limits.load):
        run.result.load_seconds = round(time.monotonic() - run.started, 3)


async def _loaded(run: _PageRun, state: str) -> bool:
    """True once the document reaches `state`; False once the proxy has cut its response short or
    seen it end early: Chromium fires neither DOMContentLoaded nor load for a document whose
    response ends short of the length it was sent with, and the load limit would be waited out.
    Nor load, which waits for every frame's, once the proxy holds open a frame's document cut short.
    Nor either once the page started a download (noted where it starts): Playwright waits for the
    navigation to the file, which never ends."""
    waiting = asyncio.ensure_future(run.page.wait_for_load_state(state))
    ends = {waiting, run.document_cut, run.downloading} | ({run.frame_held} if state == "load" else set())
    try:
        done, _ = await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiting.done():
            waiting.cancel()
    if waiting in done:
        await waiting  # its failure, if it failed, is the step's
        return True
    if run.downloading in done:
        return False
    if run.document_cut in done:
        note = f"document: cut short ({run.document_cut.result()}); its load event was not waited for"
    else:
        frame, reason = run.frame_held.result()
        note = f"frame: {clip(frame)} cut short ({reason}); the page's load event was not waited for"
    if note not in run.result.notes:  # the document's wait and the load event's both end here
        run.result.notes.append(note)
    return False


async def _scroll_through(run: _PageRun) -> None:
    """Scroll down one viewport at a time so that lazy images and infinite lists load, as they
    would for a reader, then let the network and fonts settle; while that made the page longer,
    scroll on; all bounded by height and time. Then through its large inner scroll containers
    in the time left, and back to the top.

    Scrolling starts when the document is parsed, not after the load event or network idle: what
    the page still loads comes in while it is scrolled, and the waits afterwards cover both."""
    page, limits, notes = run.page, run.limits, run.result.notes
    step = (page.viewport_size or {"height": 800})["height"]
    budget = run.left(limits.scroll)
    end = time.monotonic() + budget
    y = 0
    while True:
        # The page's own clock ends the scroll a little before ours, so that where it stopped is known.
        seconds = max(0.0, end - time.monotonic())
        scrolled = await run.bounded("scroll", lambda: page.evaluate(
            WINDOW_SCROLL, [y, step, limits.scroll_height, limits.scroll_pause, max(0.0, seconds - 0.5)]), seconds)
        if run.loading is not None:
            await run.loading
        await _settle(run)
        if scrolled is None:
            break
        y = scrolled["y"]
        if scrolled["stopped"] == "height":
            notes.append(f"scroll: stopped at {limits.scroll_height} px of a page {scrolled['height']} px high")
            break
        # Out of time is noted only where the page goes on below what was scrolled: a page that
        # was scrolled to its end (or fits one screen) while the waits took the time was not cut.
        height = scrolled["height"]
        if scrolled["stopped"] != "time":
            # Measured even when the waits used up their time: it is quick, and says whether the scroll was cut.
            size = await run.bounded("page size", lambda: page.evaluate(PAGE_SIZE_SETTLED), limits.scroll, waiting=False)
            height = size[1] if size is not None else height
            if y + step >= height:
                break
        if scrolled["stopped"] == "time" or time.monotonic() >= end:
            notes.append(f"scroll: stopped after {budget:.0f} s at {y} px of {height} px")
            break
    if end - time.monotonic() > 0.5:  # of the scroll's time, more than the page's clock keeps back (above)
        await _scroll_inner_boxes(run, end)
    if y:
        await run.bounded("scroll back", lambda: page.evaluate("window.scrollTo(0, 0)"), limits.scroll)


async def _watch_late_changes(run: _PageRun) -> None:
    """Wait on while the page still changes (late.py): scrolled through again once it went on
    to another document, settled again once it changed; noted when it was waited for."""
    started = time.monotonic()
    while (changed := await watch_late_changes(run)) is not None:
        await (_scroll_through(run) if changed == NAVIGATED else _settle(run))
    if run.waited_for:
        run.result.notes.append(late_note(list(run.waited_for), time.monotonic() - started, run.still_changing,
                                          run.limits.after_load))


async def _scroll_inner_boxes(run: _PageRun, end: float) -> None:
    """Scroll through the page's largest inner scroll containers, each brought into view, within
    the scroll's time (`end`), then let what that started settle."""
    limits, seconds = run.limits, end - time.monotonic()
    outcome = await run.bounded("inner scroll", lambda: run.page.evaluate(INNER_SCROLL, [
        limits.inner_boxes, limits.inner_steps, INNER_MINIMUM, limits.scroll_pause, seconds - 0.5]), seconds)
    if outcome is None:
        return
    run.result.notes.extend(inner_notes(outcome, limits.inner_boxes, limits.inner_steps))
    if outcome["scrolled"]:
        await _settle(run)


async def _settle(run: _PageRun) -> None:
    """Network idle, then fonts: a screenshot taken before fonts are ready shows a fallback font."""
    idle = await run.bounded("network idle", lambda: run.traffic.idle(run.limits.quiet), run.limits.network_idle)
    status = await run.bounded("fonts", lambda: run.page.evaluate(_FONTS_READY), run.limits.fonts)
    if idle and status == "loaded" and run.result.settled_seconds is None:
        run.result.settled_seconds = round(time.monotonic() - run.started, 3)


async def _artifacts(run: _PageRun) -> None:
    """Screenshot first (the page as a reader saw it), then the PDF print, then the DOM and text;
    neither picture of a page with nothing to show yet, but a note saying why."""
    page, result, limits = run.page, run.result, run.limits
    if await run.bounded("page", lambda: page.evaluate(NOTHING_TO_SHOW), limits.artifacts, waiting=False):
        result.notes.append(f"screenshot: none, nor a PDF: nothing to show, {_before_its_body(run)}")
    else:
        await _pictures(run)
    result.taken_at["dom"] = datetime.now(timezone.utc)
    dom = await run.bounded("dom", lambda: rendered_dom(page, _dom_bytes(run, limits.dom_bytes)), limits.artifacts,
                            waiting=False)
    if dom is not None:
        result.dom = dom.markup.encode("utf-8")
        result.dom_whole_bytes = dom.whole_bytes if dom.cut else None
        _kept(run, [dom], "the DOM record holds")
    result.title = await run.bounded("title", lambda: page_title(page), limits.artifacts, waiting=False)
    text = await run.bounded("text", lambda: page_text(page, limits.text_chars), limits.artifacts, waiting=False)
    # A frameset's, or a page's shown only in a frame: a reader sees the frames' text as the page's.
    result.taken_at["frames"] = datetime.now(timezone.utc)

    def frames_left() -> int:  # the frames' DOMs read so far are counted in the page's budget once all are
        kept = sum(frame.dom.kept_bytes for frame in result.frames)
        return _dom_bytes(run, limits.frame_dom_bytes - kept, kept)

    await run.bounded("frames", lambda: shown_frames(page, limits.text_chars - len(text or ""), frames_left,
                                                     result.frames, result.notes), limits.artifacts, waiting=False)
    _kept(run, [frame.dom for frame in result.frames], "the DOM records of the page's frames hold")
    framed = [frame.text for frame in result.frames if frame.text.strip()]
    result.text = "\n\n".join(filter(None, [text, *framed])) if text is not None or framed else None
    result.final_url = page.url


async def _pictures(run: _PageRun) -> None:
    """The full-page screenshot, then the PDF print, each counted in the page's budget once made."""
    page, result, limits = run.page, run.result, run.limits
    size = await run.bounded("page size", lambda: page.evaluate(PAGE_SIZE), limits.artifacts, waiting=False)
    if size is not None:
        result.notes += await run.bounded("screen notes", lambda: screen_notes(page, limits.artifacts / 4),
                                          limits.artifacts, waiting=False) or []
        area = screenshot_clip(size, page.viewport_size or {"width": 1280, "height": 800}, limits.screenshot_height,
                               limits.screenshot_area, result.notes, result.shortfalls)
        result.taken_at["screenshot"] = datetime.now(timezone.utc)
        result.screenshot = budgeted(run, "screenshot", await run.bounded(
            "screenshot", lambda: screenshot(page, size, area, result.notes, limits.tall_window), limits.artifacts,
            waiting=False))
    result.taken_at["pdf"] = datetime.now(timezone.utc)
    result.pdf = budgeted(run, "pdf", await run.bounded("pdf", lambda: print_pdf(page, result.notes), limits.artifacts,
                                                         waiting=False))


def _dom_bytes(run: _PageRun, bound: int, uncounted: int = 0) -> int:
    """Bytes of a DOM to keep: `bound`, or what is left of the page's budget (less `uncounted`
    bytes kept and not yet counted in it) when that is less."""
    left = run.page_bytes.left() - uncounted if run.page_bytes is not None else bound
    return max(0, min(bound, left))


def _kept(run: _PageRun, doms: list[RenderedDom], records_hold: str) -> None:
    """Count the DOMs kept in the page's budget, and say, as a shortfall, how much of them is missing."""
    if run.page_bytes is not None:
        run.page_bytes.add(sum(dom.kept_bytes for dom in doms))
    if cut := [dom for dom in doms if dom.cut]:
        run.result.shortfalls.append(dom_cut(records_hold, sum(dom.kept_bytes for dom in cut),
                                             sum(dom.whole_bytes for dom in cut)))


def _before_its_body(run: _PageRun) -> str:
    """Why a page has no body to show: its document cut short before it, or still coming."""
    cut = run.document_cut
    if cut.done() and not cut.cancelled():
        return f"its document was cut short ({cut.result()}) before its body"
    return "its document had not come as far as its body"
