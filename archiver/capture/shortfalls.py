"""What a capture's record holds less of than the page had, in one line for where a user looks
(the run's summary, `show`, `captures --json`, a bundle's report): read from its metadata record,
so that a view of it stays derived from what was signed. Of the browser's notes, only those made
as shortfalls count (a page's `shortfalls`, beside its `notes`); the rest are informational."""

from __future__ import annotations

# The browser's steps whose end within their bound the record needs, and what one not done means.
STEP_SHORTFALLS = {
    "document": "the page's document never finished loading",
    "load event": "the page's load event never came",
    "network idle": "the network never went quiet",
}


def dom_not_recorded(why: str | None) -> str:
    """A page rendered and pictured, but whose DOM and text were never read (the capture's
    deadline came, or their step failed): what a reader saw is in the screenshot alone."""
    return f"the page's DOM and text were not recorded ({why or 'their step did not finish'})"


def screenshot_cut(limit: int, size: int, side: str) -> str:
    """A screenshot cut to the first `limit` px of a page `size` px high (`side`), or wide."""
    return f"the screenshot holds the first {limit} px of a page {size} px {side}"


def dom_cut(records_hold: str, kept: int, whole: int) -> str:
    """DOM records ("the DOM record holds") holding only their first `kept` bytes of `whole`."""
    return f"{records_hold} the first {_megabytes(kept)} of {_megabytes(whole)}"


# How a screenshot left out of the page's byte budget begins its shortfall (left_out), which a report looks for.
SCREENSHOT_LEFT_OUT = "the screenshot was left out"


def left_out(what: str, size: int, left: int) -> str:
    """A thing the browser made of the page (`what`: "the screenshot") of `size` bytes not kept:
    the page's byte budget had only `left` bytes left."""
    return (f"{what} was left out: its {_size(size)} would have taken the page past its byte budget "
            f"(max_page_bytes; {_size(left)} left)")


def _megabytes(size: int) -> str:
    return f"{size / 10**6:,.1f} MB"


def _size(size: int) -> str:
    """In bytes below 0.1 MB, which would read as 0.0 MB."""
    return f"{size:,} bytes" if size < 10**5 else _megabytes(size)


def incomplete(details: dict) -> str | None:
    """"incomplete: …" from a capture's metadata `details`: the page's requests not recorded (refused,
    unanswered, a WebSocket), responses cut short, and the page's own shortfalls; None when none."""
    resources = [r for r in details.get("resources") or [] if isinstance(r, dict)]
    unrecorded = sum(1 for r in resources if r.get("error") and r.get("status") is None)
    cut = sum(1 for r in resources if r.get("truncated"))
    page = details.get("page") if isinstance(details.get("page"), dict) else {}
    said = [*([f"{_count(unrecorded, 'request')} of the page not recorded (refused, unanswered or unrecordable)"]
              if unrecorded else []),
            *([f"{_count(cut, 'response')} cut short"] if cut else []),
            *dict.fromkeys(str(s) for s in page.get("shortfalls") or [])]
    return "incomplete: " + "; ".join(said) if said else None


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")
