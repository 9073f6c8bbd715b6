"""Chromium for browser captures: found on this machine (never downloaded), started once per run
through Playwright, kept off the network except through proxies, and one fresh context per page.

The browser itself has a proxy that refuses everything, so Chromium's own traffic (updates, time
queries) never becomes evidence; each capture's context has the recording proxy of that capture.
Playwright's objects belong to one event loop, so the browser lives on a thread of its own and
`capture` may be called from any number of threads at once: pages render concurrently in one
browser, each in its own context."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from playwright.async_api import Browser as PlaywrightBrowser
from playwright.async_api import BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from archiver.capture.browser.activity import PageProxy
from archiver.capture.browser.render import PageCapture, PageLimits, render_page

__all__ = ["Browser", "PageCapture", "PageLimits", "find_chromium"]

VIEWPORT = {"width": 1280, "height": 800}
LOCALE = "en-US"  # the Accept-Language every browser sends; without one, a page can tell automation
RESTART_AFTER = 100  # pages per browser: renderers of closed contexts linger, so memory creeps up
_CLOSE_TIMEOUT = 10.0
_OPEN_TIMEOUT = 30.0  # for a page opened ahead; a capture's own opening has its deadline
# The headless shell first: Chromium's own build for automation (what Playwright runs headless),
# without the desktop browser's layers, it does the same page work for a third of the browser
# process's CPU (see bench/README.md).
_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


@dataclasses.dataclass
class OpenPage:
    """A fresh context, behind one capture's proxy, and its blank page, in `browser`."""

    browser: PlaywrightBrowser
    context: BrowserContext
    page: Page


def find_chromium() -> str | None:
    """$ARCHIVER_CHROMIUM (set but empty: no browser at all), else the first of
    chromium-headless-shell, chromium, chromium-browser, google-chrome on PATH.

    Debian's /usr/bin/chromium is a shell script that loads extensions, sets API keys and adds flags
    from /etc/chromium.d; the binary it runs is used instead, so that the flags recorded are the flags used."""
    chosen = os.environ.get("ARCHIVER_CHROMIUM")
    if chosen is not None:
        return chosen if chosen and os.access(chosen, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return _binary_behind_wrapper(found)
    return None


def _binary_behind_wrapper(path: str) -> str:
    try:
        with open(path, "rb") as file:
            head = file.read(8192)
    except OSError:
        return path
    if not head.startswith(b"#!"):
        return path
    libdir = re.search(rb"^LIBDIR=(\S+)$", head, re.MULTILINE)
    appname = re.search(rb"^APPNAME=(\S+)$", head, re.MULTILINE)
    if libdir and appname:
        name = appname.group(1).decode()
        binary = Path(libdir.group(1).decode().replace("$APPNAME", name).replace("${APPNAME}", name), name)
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    # Debian's chromium-headless-shell script runs one binary with the arguments given, nothing added.
    only = re.fullmatch(rb"#![^\n]*\n\s*(/\S+) \"\$@\"\s*", head)
    if only and os.access(only.group(1).decode(), os.X_OK):
        return only.group(1).decode()
    return path


def browser_flags(spki_pin: str) -> list[str]:
    """Chromium's switches for a capture browser (see ../shared/BROWSER.md for why each)."""
    return [
        # The recording proxy terminates TLS with a per-run leaf key: trust exactly that key.
        f"--ignore-certificate-errors-spki-list={spki_pin}",
        # Loopback URLs would otherwise go around the proxy.
        "--proxy-bypass-list=<-loopback>",
        # Nothing resolves or connects directly; only the proxies (on 127.0.0.1) are reachable.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-quic",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        # Playwright's driver makes navigator.webdriver true, which a reader's Chrome never is and a
        # page's bot check reads: the page would show its "automated browsers are not allowed".
        "--disable-blink-features=AutomationControlled",
    ]


class Browser:
    """One Chromium for a run; `capture` renders one page in a fresh context through the given proxy."""

    def __init__(self, executable: str, spki_pin: str, refusing_proxy: str, limits: PageLimits,
                 viewport: dict, restart_after: int) -> None:
        self.executable, self.limits, self.viewport = executable, limits, dict(viewport)
        self.flags = browser_flags(spki_pin)
        self._refusing_proxy, self._restart_after = refusing_proxy, restart_after
        self._info: dict = {}
        self._playwright: Playwright | None = None
        self._browser: PlaywrightBrowser | None = None
        self._pages = 0
        self._in_flight: dict[PlaywrightBrowser, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chromium", daemon=True)
        self._thread.start()
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def launch(cls, executable: str, spki_pin: str, refusing_proxy: str, *, limits: PageLimits | None = None,
               viewport: dict | None = None, restart_after: int = RESTART_AFTER) -> Browser:
        """Start Playwright's driver and Chromium (once per run); `refusing_proxy` is "host:port"."""
        browser = cls(executable, spki_pin, refusing_proxy, limits or PageLimits(), viewport or VIEWPORT,
                      restart_after)
        try:
            browser._run(browser._start(), timeout=120)
        except BaseException:
            browser.close()
            raise
        return browser

    @property
    def info(self) -> dict:
        """Name, version, executable, flags (ours; `command_line` all of them), viewport, user agent,
        process id and launch time of the browser now running."""
        return dict(self._info)

    def capture(self, url: str, proxy: PageProxy, deadline: float, opened: Future | None = None,
                limits: PageLimits | None = None, init_script: str | None = None) -> PageCapture:
        """Render `url` in a fresh context whose every request goes to `proxy`, ending
        by `deadline` (a time.monotonic() value) with whatever was made and, if early, why.
        `opened` is the page `open_page(proxy)` made ahead, when there is one; `limits`, if
        given, instead of the browser's; `init_script`, if given, runs in every frame before the page's own
        (a replay's, never a capture's). `url` is taken as given: the caller has checked it is one to capture."""
        result = PageCapture()
        if self._closed:
            result.error = "the browser is closed"
            return result
        future = asyncio.run_coroutine_threadsafe(self._capture(url, proxy, deadline, result, opened, limits or self.limits,
                                                                init_script), self._loop)
        try:
            # The coroutine keeps its own deadline; this wait only guards against a stuck driver.
            future.result(timeout=max(0.0, deadline - time.monotonic()) + _CLOSE_TIMEOUT + 5)
        except Exception as exc:  # a stuck or failed driver: report it, keep what was made
            future.cancel()
            result = dataclasses.replace(result)
            result.error = result.error or f"the browser did not finish the page: {exc or type(exc).__name__}"
        return result

    def open_page(self, proxy: PageProxy) -> Future:
        """Start opening, in the background, the context and blank page of a coming capture
        through `proxy`: Chromium takes a while to start a page's renderer, and a capture that
        finds its page open need not wait for it. Give the future to `capture`, or to `discard`."""
        return asyncio.run_coroutine_threadsafe(self._open(proxy, _OPEN_TIMEOUT), self._loop)

    def discard(self, opened: Future) -> None:
        """Close a page `open_page` made that no capture will use."""
        if not self._closed:
            asyncio.run_coroutine_threadsafe(self._discard(opened), self._loop)

    def close(self) -> None:
        """Close Chromium and Playwright's driver, then the loop's thread."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._loop.is_running():
                self._run(self._stop(), timeout=_CLOSE_TIMEOUT * 3)
        except Exception:
            pass  # closing must not fail a run that has already recorded what it captured
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_CLOSE_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- on the browser's own thread -----------------------------------------------------

    def _run(self, work: Coroutine, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=timeout)

    async def _start(self) -> None:
        self._playwright = await async_playwright().start()
        self._browser = await self._launch()

    async def _launch(self) -> PlaywrightBrowser:
        started = time.monotonic()
        assert self._playwright is not None
        # As root Chromium cannot use its sandbox; as anyone else it must (a hostile page runs in it).
        sandbox = os.geteuid() != 0 if hasattr(os, "geteuid") else True
        browser = await self._playwright.chromium.launch(
            executable_path=self.executable, args=self.flags, chromium_sandbox=sandbox, headless=True,
            proxy={"server": f"http://{self._refusing_proxy}", "bypass": "<-loopback>"})
        self._in_flight[browser] = 0
        self._info = await self._describe(browser, sandbox, time.monotonic() - started)
        return browser

    async def _describe(self, browser: PlaywrightBrowser, sandbox: bool, seconds: float) -> dict:
        session = await browser.new_browser_cdp_session()
        try:
            version = await session.send("Browser.getVersion")
        finally:
            await session.detach()
        # Headless Chromium says so in its user agent, and some sites answer that with a bot wall
        # instead of the page a reader sees; the agent sent is recorded here either way.
        agent = version["userAgent"].replace("HeadlessChrome/", "Chrome/")
        pid, command_line = _process(self.flags[0], before=self._info.get("pid"))
        return {"name": "chromium", "product": version["product"], "version": browser.version,
                "executable": self.executable, "flags": list(self.flags),
                "command_line": command_line, "pid": pid,
                "viewport": dict(self.viewport), "user_agent": agent, "accept_language": LOCALE, "headless": True,
                "sandbox": sandbox,
                "launch_seconds": round(seconds, 3), "playwright": _playwright_version()}

    async def _current(self, dead: PlaywrightBrowser | None = None) -> PlaywrightBrowser:
        """The browser for the next page: relaunched after a crash (or when `dead`, one that could
        not open a context), or after `restart_after` pages (the old one closes after its last page)."""
        async with self._lock:
            browser = self._browser
            if browser is None or browser is dead or not browser.is_connected() or \
                    self._pages >= self._restart_after:
                if browser is not None and self._in_flight.get(browser, 0) == 0:
                    await self._close_browser(browser)
                self._browser = browser = await self._launch()
                self._pages = 0
            self._pages += 1
            self._in_flight[browser] += 1
            return browser

    async def _open(self, proxy: PageProxy, seconds: float) -> OpenPage:
        dead = None
        for attempt in (1, 2):
            browser = await self._current(dead)
            context = None
            try:
                context = await asyncio.wait_for(browser.new_context(
                    proxy={"server": f"http://{proxy.address}", "bypass": "<-loopback>"}, viewport=self.viewport,
                    user_agent=self._info["user_agent"], locale=LOCALE, accept_downloads=False,
                    service_workers="allow"), seconds)
                page = await asyncio.wait_for(context.new_page(), seconds)
                await asyncio.wait_for(self._as_chrome(context, page), seconds)
                return OpenPage(browser, context, page)
            except PlaywrightError:
                # Killed browsers are noticed late: one that cannot open a context is replaced, once.
                await self._close(browser, context)
                dead = browser if context is None or not browser.is_connected() else None
                if attempt == 2:
                    raise
            except BaseException:
                await self._close(browser, context)
                raise
        raise AssertionError("unreachable")

    async def _as_chrome(self, context: BrowserContext, page: Page) -> None:
        """The client hints (Sec-CH-UA) say what the user agent says: Chromium, not HeadlessChrome,
        which some sites answer with a bot wall instead of the page a reader sees."""
        major = self._info["version"].split(".")[0]
        # The session stays attached for the page's life: an override ends with the session that set it.
        session = await context.new_cdp_session(page)
        await session.send("Emulation.setUserAgentOverride", {
            "userAgent": self._info["user_agent"], "acceptLanguage": LOCALE, "userAgentMetadata": {
                "brands": [{"brand": "Chromium", "version": major}, {"brand": "Not_A Brand", "version": "24"}],
                "fullVersion": self._info["version"], "platform": "Linux", "platformVersion": "",
                "architecture": "x86", "model": "", "mobile": False}})

    async def _opened(self, opened: Future, deadline: float) -> OpenPage | None:
        """The page opened ahead, if it is ready in time and its browser still runs."""
        try:
            page = await asyncio.wait_for(asyncio.wrap_future(opened), max(0.001, deadline - time.monotonic()))
        except (TimeoutError, PlaywrightError):
            return None
        if page.browser.is_connected() and not page.page.is_closed():
            return page
        await self._close(page.browser, page.context)
        return None

    async def _discard(self, opened: Future) -> None:
        try:
            page = await asyncio.wrap_future(opened)
        except (TimeoutError, PlaywrightError, asyncio.CancelledError):
            return
        await self._close(page.browser, page.context)

    async def _capture(self, url: str, proxy: PageProxy, deadline: float, result: PageCapture,
                       opened: Future | None, limits: PageLimits, init_script: str | None) -> None:
        page = None
        try:
            page = await self._opened(opened, deadline) if opened is not None else None
            page = page or await self._open(proxy, max(0.001, deadline - time.monotonic()))
            if init_script is not None:
                await asyncio.wait_for(page.context.add_init_script(init_script), max(0.001, deadline - time.monotonic()))
            rendering = render_page(page.context, page.page, url, deadline, limits, result, proxy.activity,
                                    proxy.page_bytes)
            await asyncio.wait_for(rendering, max(0.001, deadline - time.monotonic()))
        except TimeoutError:
            result.error = result.error or "the capture's deadline was reached"
        except PlaywrightError as exc:
            result.error = result.error or f"the browser failed: {str(exc).splitlines()[0]}"
        finally:
            if page is not None:
                await self._close(page.browser, page.context)

    async def _close(self, browser: PlaywrightBrowser, context: BrowserContext | None) -> None:
        """Close a capture's context, and count its page off `browser`."""
        if context is not None:
            try:
                await asyncio.wait_for(context.close(), _CLOSE_TIMEOUT)
            except (TimeoutError, PlaywrightError):
                pass
        await self._release(browser)

    async def _release(self, browser: PlaywrightBrowser) -> None:
        """One page less on `browser`; a browser replaced meanwhile closes after its last page."""
        if browser in self._in_flight:  # not if the whole Browser was closed meanwhile
            self._in_flight[browser] -= 1
            if browser is not self._browser and self._in_flight[browser] == 0:
                await self._close_browser(browser)

    async def _close_browser(self, browser: PlaywrightBrowser) -> None:
        self._in_flight.pop(browser, None)
        try:
            await asyncio.wait_for(browser.close(), _CLOSE_TIMEOUT)
        except (TimeoutError, PlaywrightError):
            pass

    async def _stop(self) -> None:
        for browser in list(self._in_flight):
            await self._close_browser(browser)
        if self._playwright is not None:
            await self._playwright.stop()


def _process(marker: str, before: int | None) -> tuple[int | None, list[str] | None]:
    """The browser process's id and whole command line, Playwright's own switches included. CDP
    gives the command line only under --enable-automation (which sets navigator.webdriver), so it
    is read from /proc (None elsewhere). `marker` is a switch unique to this run (the per-run key
    pin); Chromium's other processes carry --type=; `before` is the browser this one replaces."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = [arg.decode(errors="replace") for arg in cmdline.read_bytes().split(b"\0") if arg]
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if marker in args and not any(arg.startswith("--type=") for arg in args) and pid != before:
            return pid, args
    return None, None


def _playwright_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("playwright")
    except PackageNotFoundError:
        return None
