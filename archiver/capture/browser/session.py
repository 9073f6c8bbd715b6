"""One Chromium for a run: pinned to the run's throwaway TLS authority, so each page's proxy can
end the browser's TLS, with Chromium's own background traffic sent to a proxy that refuses it."""

from __future__ import annotations

from archiver.capture.browser.authority import InterceptAuthority
from archiver.capture.browser.chromium import Browser, PageLimits
from archiver.capture.browser.proxy import RefusingProxy


class BrowserSession:
    def __init__(self, executable: str, limits: PageLimits | None = None) -> None:
        self.authority = InterceptAuthority.create()
        # Chromium's own traffic (updates, time queries) goes here and is refused, never recorded.
        self.refusing = RefusingProxy()
        self.refusing.start()
        try:
            self.browser = Browser.launch(executable, self.authority.spki_pin, self.refusing.address, limits=limits)
        except BaseException:
            self.refusing.close()
            raise

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self.refusing.close()
