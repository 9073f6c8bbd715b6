"""One page's life in the browser, every wait bounded: load, network idle, fonts, a scroll through
the page to wake lazy content, then the full-page screenshot, a PDF print and the rendered DOM.
Whatever ends the page early (a crash, a download, the deadline) ends it with what was made and
the reason; what could not finish within its bound is noted, never waited for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, Dialog, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

# A page can alert() or log in a loop until its deadline: what is kept of its events is bounded.
MAX_EVENTS = 1000
MAX_EVENT_CHARS = 2000
# Reading the height from both elements: quirks-mode pages report it on <body>, standard ones on <html>.
_PAGE_HEIGHT = "() => Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)"
_FONTS_READY = "document.fonts.ready.then(() => document.fonts.status)"
_VISIBLE_TEXT = "n => (document.body ? document.body.innerText : '').slice(0, n)"


@dataclass(frozen=True)
class PageLimits:
    """Upper bounds of each step, in seconds unless named otherwise; the capture's deadline caps them all."""

    load: float = 30.0           # until the load event
    network_idle: float = 10.0   # until no request for 500 ms (Playwright's "networkidle")
    fonts: float = 5.0           # document.fonts.ready
    scroll: float = 15.0         # the whole scroll through the page
    scroll_pause: float = 0.15   # per step: lazy loading starts from an IntersectionObserver callback
    scroll_height: int = 50_000  # pixels scrolled at most, so an infinite-scroll page ends
    screenshot_height: int = 20_000  # pixels of page in the screenshot; taller pages are cut, and noted
    artifacts: float = 10.0      # time kept back for the screenshot, PDF and DOM
    text_chars: int = 1_000_000  # of visible text kept for the report and the replay check


@dataclass
class PageCapture:
    """What the browser made of one page. `error` says why it ended early; `notes` what did not
    finish within its bound (the page was still captured)."""

    final_url: str | None = None
    title: str | None = None
    status: int | None = None       # of the response the navigation ended on (after HTTP redirects)
    screenshot: bytes | None = None  # full-page PNG
    pdf: bytes | None = None
    dom: bytes | None = None         # the DOM after scripts ran, serialised, UTF-8
    text: str | None = None          # visible text (innerText of <body>)
    load_seconds: float | None = None     # from navigation start to the load event; None: never fired
    settled_seconds: float | None = None  # to network idle and fonts ready; None: never settled
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[dict] = field(default_factory=list)  # {"type", "message", "dismissed"}
    popups: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


class _Ended(Exception):
    """The page can go no further (crashed, closed, out of time)."""


class _PageRun:
    """The state of one page's lifecycle: its deadlines and what its event handlers saw."""

    def __init__(self, page: Page, result: PageCapture, deadline: float, limits: PageLimits) -> None:
        self.page, self.result, self.deadline, self.limits = page, result, deadline, limits
        self.started = time.monotonic()
        # Time kept back so that a page which never settles still gets its screenshot, PDF and DOM.
        self.waits_end = deadline - min(limits.artifacts, 0.3 * max(0.0, deadline - self.started))
        self.crashed = False

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
                                     else f"{step}: {_first_line(exc)}")
            return None


async def render_page(context: BrowserContext, url: str, deadline: float, limits: PageLimits,
                      result: PageCapture) -> None:
    """Run `url` through the lifecycle in a fresh page of `context`, filling `result` as it goes
    (so that whoever gives up waiting still has what was made)."""
    page = await context.new_page()
    run = _PageRun(page, result, deadline, limits)
    _watch(context, page, run)
    try:
        if await _navigate(run, url):
            await _settle(run)
            await _scroll_through(run)
            await _artifacts(run)
    except _Ended as ended:
        result.error = result.error or str(ended)
    if run.crashed:
        result.error = "the renderer crashed"


def _watch(context: BrowserContext, page: Page, run: _PageRun) -> None:
    """Dialogs dismissed, popups closed, downloads cancelled: each recorded, so that no page can
    hold the capture open by asking a question nobody will answer or by opening windows."""
    result = run.result

    async def on_dialog(dialog: Dialog) -> None:
        entry = {"type": dialog.type, "message": _clip(dialog.message), "dismissed": False}
        _keep(result.dialogs, entry)
        try:
            await dialog.dismiss()
            entry["dismissed"] = True
        except PlaywrightError:
            pass

    async def on_page(other: Page) -> None:
        if other is page:
            return
        _keep(result.popups, _clip(other.url))
        try:
            await other.close()
        except PlaywrightError:
            pass

    def on_console(message: Any) -> None:
        if message.type == "error":
            _keep(result.console_errors, _clip(message.text))

    def on_crash(_: Page) -> None:
        run.crashed = True

    async def on_download(download: Any) -> None:
        # The response came through the recording proxy, so it is recorded; nothing is saved here.
        _keep(result.downloads, _clip(download.url))
        try:
            await download.cancel()
        except PlaywrightError:
            pass

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: _keep(result.console_errors, _clip(f"uncaught: {_first_line(error)}")))
    page.on("crash", on_crash)
    page.on("download", on_download)
    context.on("page", on_page)


async def _navigate(run: _PageRun, url: str) -> bool:
    """Navigate, then wait for the load event; False when there is no page to capture."""
    result, limits = run.result, run.limits
    # Waiting only for the response first: a page whose load event never comes is still captured.
    try:
        response = await asyncio.wait_for(run.page.goto(url, wait_until="commit"), run.left(limits.load) or 0.001)
    except TimeoutError:
        result.error = f"no response to the page within {limits.load:.0f} s or before the deadline"
        return False
    except PlaywrightError as exc:
        # A download, a redirect loop, a refused page: the proxy has recorded what was fetched.
        result.error = "the renderer crashed" if run.crashed else f"navigation failed: {_first_line(exc)}"
        return False
    result.status = response.status if response is not None else None
    result.final_url = run.page.url
    if await run.bounded("load event", lambda: _done(run.page.wait_for_load_state("load")), limits.load):
        result.load_seconds = round(time.monotonic() - run.started, 3)
    return True


async def _settle(run: _PageRun) -> None:
    """Network idle, then fonts: a screenshot taken before fonts are ready shows a fallback font."""
    idle = await run.bounded("network idle", lambda: _done(run.page.wait_for_load_state("networkidle")),
                             run.limits.network_idle)
    status = await run.bounded("fonts", lambda: run.page.evaluate(_FONTS_READY), run.limits.fonts)
    if idle and status == "loaded":
        run.result.settled_seconds = round(time.monotonic() - run.started, 3)


async def _scroll_through(run: _PageRun) -> None:
    """Scroll down one viewport at a time so that lazy images and infinite lists load, as they
    would for a reader, bounded by height and time; then wait for what that started, and go back up."""
    page, limits = run.page, run.limits
    end = time.monotonic() + run.left(limits.scroll)
    step = (page.viewport_size or {"height": 800})["height"]
    y = 0
    while True:
        height = await run.bounded("scroll", lambda: page.evaluate(_PAGE_HEIGHT), limits.scroll)
        if height is None or y + step >= height:
            break
        if y + step >= limits.scroll_height:
            run.result.notes.append(f"scroll: stopped at {limits.scroll_height} px of a page {height} px high")
            break
        if time.monotonic() >= end:
            run.result.notes.append(f"scroll: stopped after {limits.scroll:.0f} s at {y} px of {height} px")
            break
        y += step
        await run.bounded("scroll", lambda: page.evaluate("y => window.scrollTo(0, y)", y), limits.scroll)
        await asyncio.sleep(min(limits.scroll_pause, max(0.0, end - time.monotonic())))
    if y:
        await run.bounded("network idle after scrolling", lambda: page.wait_for_load_state("networkidle"),
                          limits.network_idle)
        await run.bounded("fonts after scrolling", lambda: page.evaluate(_FONTS_READY), limits.fonts)
        await run.bounded("scroll back", lambda: page.evaluate("window.scrollTo(0, 0)"), limits.scroll)


async def _artifacts(run: _PageRun) -> None:
    """Screenshot first (the page as a reader saw it), then the PDF print, then the DOM and text."""
    page, result, limits = run.page, run.result, run.limits
    height = await run.bounded("page height", lambda: page.evaluate(_PAGE_HEIGHT), limits.artifacts,
                               waiting=False)
    clip = None
    if height and height > limits.screenshot_height:
        width = (page.viewport_size or {"width": 1280})["width"]
        clip = {"x": 0, "y": 0, "width": width, "height": limits.screenshot_height}
        result.notes.append(f"screenshot: the first {limits.screenshot_height} px of a page {height} px high")
    shot = {"full_page": True, "type": "png", "clip": clip}
    result.screenshot = await run.bounded("screenshot", lambda: page.screenshot(**shot), limits.artifacts,
                                          waiting=False)
    result.pdf = await run.bounded("pdf", lambda: page.pdf(print_background=True), limits.artifacts,
                                   waiting=False)
    dom = await run.bounded("dom", page.content, limits.artifacts, waiting=False)
    result.dom = dom.encode("utf-8") if dom is not None else None
    result.title = await run.bounded("title", page.title, limits.artifacts, waiting=False)
    result.text = await run.bounded("text", lambda: page.evaluate(_VISIBLE_TEXT, limits.text_chars),
                                    limits.artifacts, waiting=False)
    result.final_url = page.url


def _keep(events: list, entry: Any) -> None:
    if len(events) < MAX_EVENTS:
        events.append(entry)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_EVENT_CHARS else text[:MAX_EVENT_CHARS] + "…"


async def _done(work: Awaitable[Any]) -> bool:
    """True once `work` is done: Playwright's waits return None, which `bounded` uses for "not done"."""
    await work
    return True


def _first_line(exc: BaseException) -> str:
    """Playwright's messages carry a call log after the first line; the first line is the reason."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
