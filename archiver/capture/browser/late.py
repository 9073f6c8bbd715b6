"""A page loaded, its network quiet, may not be done: its article may come from a timer a few
seconds later ("Loading article…" until then), a meta refresh may be due, a script may be sending
it elsewhere. It is watched on, up to `PageLimits.after_load` seconds (`wait_after_load` in
archiver.toml), while any of these says it is still changing: a meta refresh due within that
time, its DOM changed in the last `PageLimits.dom_quiet` seconds, its whole text a loading
placeholder, or a navigation to another document. A page quiet at once is not waited for at all.
Scripts are never wrapped (a page can tell): DOM changes are seen by a MutationObserver, from
the start of each document, and a new document by its own time origin."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from playwright.async_api import Error as PlaywrightError

from archiver.capture.verdict import loading_placeholder

if TYPE_CHECKING:
    from archiver.capture.browser.render import _PageRun

# Added to every document before its own scripts run; only the top document's changes are watched,
# from the end of its parsing (what the parser inserts is the page arriving, not changing).
OBSERVE_CHANGES = """(() => {
  if (window !== window.top) return;
  Object.defineProperty(window, '__archiverLastChange', {value: undefined, writable: true});
  new MutationObserver(() => {
    if (document.readyState !== 'loading') window.__archiverLastChange = performance.now();
  }).observe(document, {childList: true, subtree: true, characterData: true});
})()"""
# What says the page is still changing. A meta refresh's timer starts once its document has
# loaded (as Chromium and the HTML standard have it): due at the load event's end plus its delay.
_PROBE = """() => {
  const now = performance.now(), last = window.__archiverLastChange;
  const meta = [...document.querySelectorAll('meta[http-equiv]')]
    .find(m => m.httpEquiv.trim().toLowerCase() === 'refresh');
  const delay = meta && /^\\s*(\\d+(?:\\.\\d*)?)/.exec(meta.content || '');
  const navigation = performance.getEntriesByType('navigation')[0];
  const loaded = navigation && navigation.loadEventEnd ? navigation.loadEventEnd : now;
  return {document: performance.timeOrigin, quiet: last === undefined ? null : (now - last) / 1000,
          refresh: delay ? Math.max(0, loaded + parseFloat(delay[1]) * 1000 - now) / 1000 : null,
          text: (document.body ? document.body.innerText : '').slice(0, 200)};
}"""
_POLL = 0.1  # seconds between looks at the page
CHANGED, NAVIGATED = "changed", "navigated"


async def watch_late_changes(run: _PageRun) -> str | None:
    """Watch the page while it still changes, within what is left of its wait after load (the
    first call starts it): NAVIGATED once it went on to another document (its load awaited),
    CHANGED once it was waited for and is quiet now, None when there was nothing to wait for or
    no time left. What was waited for is added to `run.waited_for`."""
    limits, page = run.limits, run.page
    if run.watch_end is None:
        run.watch_end = time.monotonic() + run.left(limits.after_load)
    document, waited = None, False  # the time origin of the document first seen, and whether it was waited for
    while (seconds := run.watch_end - time.monotonic()) > 0:
        try:
            probe = await asyncio.wait_for(page.evaluate(_PROBE), seconds)
        except TimeoutError:
            break
        except PlaywrightError:  # its document is being replaced: a navigation under way
            if run.crashed or page.is_closed():
                break
            probe, document = None, document or "replaced"
        if probe is not None and document not in (None, probe["document"]):
            run.waited_for.setdefault(f"a navigation to {page.url}")
            await run.bounded("load event", lambda: page.wait_for_load_state("load"),
                              max(0.0, run.watch_end - time.monotonic()))
            return NAVIGATED
        reasons = _still_changing(probe, seconds, limits.dom_quiet)
        if not reasons:
            return CHANGED if waited else None
        for reason in reasons:
            run.waited_for.setdefault(reason)
        waited, document = True, document or probe["document"]
        await asyncio.sleep(min(_POLL, max(0.0, run.watch_end - time.monotonic())))
    run.still_changing = run.still_changing or waited
    return CHANGED if waited else None


def _still_changing(probe: dict | None, seconds: float, dom_quiet: float) -> list[str]:
    """What says the page (`probe` of it; None while its document is replaced) will change within
    `seconds`."""
    if probe is None:
        return ["a navigation"]
    reasons = []
    if probe["refresh"] is not None and probe["refresh"] <= seconds:
        reasons.append("a meta refresh due")
    if probe["quiet"] is not None and probe["quiet"] < dom_quiet:
        reasons.append("DOM changes")
    if (placeholder := loading_placeholder(probe["text"])) is not None:
        reasons.append(f"the loading placeholder {placeholder!r} to be replaced")
    return reasons


def late_note(waited_for: list[str], seconds: float, still_changing: bool, bound: float) -> str:
    """The capture's note of what it waited for after load, and whether it was still changing."""
    note = f"after load: waited {seconds:.1f} s for {', '.join(waited_for)}"
    return note + (f"; still changing when the {bound:g} s allowed ran out, captured as it was"
                   if still_changing else "")
