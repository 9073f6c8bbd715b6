"""What fetches a capture run's pages: Chromium behind a recording proxy, when capture_mode
asks for it or finds it, or the HTTP transport alone."""

from __future__ import annotations

from archiver.capture.fetch.engine import Fetcher
from archiver.capture.warc import software
from archiver.errors import UsageProblem


def chromium_for(mode: str) -> str | None:
    """The Chromium to render the run's pages in, or None to fetch them over HTTP alone
    (`capture_mode`: browser, http, or auto for Chromium when found)."""
    if mode == "http":
        return None
    from archiver.capture.browser.chromium import find_chromium

    executable = find_chromium()
    if executable is None and mode == "browser":
        raise UsageProblem("capture_mode is \"browser\" but no Chromium was found",
                           "install it (Debian/Ubuntu: apt-get install chromium) or set $ARCHIVER_CHROMIUM, "
                           "or capture with --no-browser")
    return executable


def page_fetcher(fetcher: Fetcher, executable: str | None, mode: str) -> tuple[object, str, dict[str, str]]:
    """What fetches the run's pages, one line saying how (Chromium behind a recording proxy, or
    the HTTP transport alone), and what the run's warcinfo says fetched them: the software, and the
    user agent each sent (in a browser run, a file is still fetched directly, with the transport's)."""
    if executable is None:
        why = 'as asked: --no-browser, or capture_mode = "http"' if mode == "http" else "no Chromium found"
        made_by = {"software": software(), "http-header-user-agent": fetcher.user_agent}
        return fetcher, f"over HTTP ({why}: each URL's own exchanges, no subresources)", made_by
    from archiver.capture.browser.pages import BrowserFetcher

    from playwright.async_api import Error as PlaywrightError

    try:
        pages = BrowserFetcher(fetcher, executable)
    except PlaywrightError as exc:  # it exits at once, or dies while starting: a broken binary or wrapper
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageProblem(f"Chromium at {executable} did not start: {reason}",
                           "check that it runs (`chromium --headless --version`), set $ARCHIVER_CHROMIUM to one that "
                           "does, or capture with --no-browser") from None
    made_by = {"software": software(pages.info), "http-header-user-agent": pages.info["user_agent"],
               "archiver-files-user-agent": fetcher.user_agent}
    return pages, f"in {pages.info['name']} {pages.info['version']} (every request each page makes)", made_by
