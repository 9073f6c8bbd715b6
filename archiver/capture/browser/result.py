"""A browser capture's result: the page's own redirect chain as a plain capture has it, every
other request the page made, and what the browser made of the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archiver.capture.fetch.engine import FetchResult, Hop

if TYPE_CHECKING:  # the browser driver (and Playwright) loads only when pages are rendered
    from archiver.capture.browser.chromium import PageCapture


@dataclass
class BrowserResult(FetchResult):
    """A page capture: `hops` is the page's own redirect chain, as for a plain capture;
    `resources` every other request the page made, in the order the browser made them."""

    resources: list[Hop] = field(default_factory=list)
    page: PageCapture | None = None
    browser: dict = field(default_factory=dict)  # name, version, flags, viewport, user agent

    def release(self) -> None:
        super().release()
        for hop in self.resources:
            hop.exchange.spool.close()
