"""What a page does on its own while it is captured, each kept and none let hold the capture
open: dialogs dismissed, popups closed, downloads cancelled (their responses came through the
recording proxy, so they are recorded), console errors and crashes seen; and Playwright's
messages put in a user's words for the capture's notes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playwright.async_api import BrowserContext, Dialog, Page
from playwright.async_api import Error as PlaywrightError

if TYPE_CHECKING:
    from archiver.capture.browser.render import _PageRun

# A page can alert() or log in a loop until its deadline: what is kept of its events is bounded.
MAX_EVENTS = 1000
MAX_EVENT_CHARS = 2000
# Playwright's words when the document a step ran in was replaced by the page's navigation, and
# Chromium's when the world a step made in it went with it (page_text's isolated world).
_NAVIGATED_AWAY = ("Execution context was destroyed", "because of a navigation", "Cannot find context with specified id")


def watch_page(context: BrowserContext, page: Page, run: _PageRun) -> None:
    """Dialogs dismissed, popups closed, downloads cancelled: each recorded, so that no page can
    hold the capture open by asking a question nobody will answer or by opening windows. A download
    the page started (its script or a meta refresh sent it to a file) ends the waits for its load."""
    result = run.result

    async def on_dialog(dialog: Dialog) -> None:
        entry = {"type": dialog.type, "message": clip(dialog.message), "dismissed": False}
        keep(result.dialogs, entry)
        try:
            await dialog.dismiss()
            entry["dismissed"] = True
        except PlaywrightError:
            pass

    async def on_page(other: Page) -> None:
        if other is page:
            return
        keep(result.popups, clip(other.url))
        try:
            await other.close()
        except PlaywrightError:
            pass

    def on_console(message: Any) -> None:
        if message.type == "error":
            keep(result.console_errors, clip(message.text))

    def on_crash(_: Page) -> None:
        run.crashed = True

    async def on_download(download: Any) -> None:
        # The response came through the recording proxy, so it is recorded; nothing is saved here.
        url = clip(download.url)
        if url not in result.downloads:  # a failed navigation may have named it already
            keep(result.downloads, url)
            if result.status is not None:  # a page shown, not an address that is itself the file
                result.notes.append(f"the page started a download of {url}: recorded, not shown")
        if not run.downloading.done():
            run.downloading.set_result(url)
        try:
            await download.cancel()
        except PlaywrightError:
            pass

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: keep(result.console_errors, clip(f"uncaught: {first_line(error)}")))
    page.on("crash", on_crash)
    page.on("download", on_download)
    context.on("page", on_page)


def in_words(exc: BaseException) -> str:
    """Why a step failed, for a user: the page's navigation in plain words, else Playwright's reason
    without the name of the call it came from ('Page.evaluate: ')."""
    text = first_line(exc)
    if any(words in text for words in _NAVIGATED_AWAY):
        return "cut short: the page went on to another document meanwhile"
    call, colon, reason = text.partition(": ")
    return reason if colon and "." in call and " " not in call else text


def keep(events: list, entry: Any) -> None:
    if len(events) < MAX_EVENTS:
        events.append(entry)


def clip(text: str) -> str:
    return text if len(text) <= MAX_EVENT_CHARS else text[:MAX_EVENT_CHARS] + "…"


def first_line(exc: BaseException) -> str:
    """Playwright's messages carry a call log after the first line; the first line is the reason."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
