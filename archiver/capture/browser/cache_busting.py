"""Cache-busting query values, for the replay: a page that asks for `/api/article.json?_=` plus the
time, or `?r=` plus a random number, asks for a URL at replay that it never asked for at capture.
Such a request is answered with the recording of the same method, scheme, host, path and query
keys whose values differ only where both are cache-busting (as pywb's and wabac.js's fuzzy rules
do): the `_`, `cb` or `…cache…`/`…bust…` key with a number; a Math.random() value; an epoch time
(seconds or milliseconds) within a day of the capture. Nothing else is ever matched loosely: not
another path or host, not a number that could be an id."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_BUSTING_KEY = re.compile(r"_|cb|\w*(?:cache|bust)\w*", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_RANDOM = re.compile(r"0\.\d{8,}")  # Math.random() as JavaScript prints it
_EPOCH = re.compile(r"(\d{10})(\d{3})?(?:\.\d+)?")  # seconds, or milliseconds (Date.now())
CLOCK_WINDOW = 24 * 3600.0  # seconds: the replay's clock stands at the capture's (replay_clock.py)
BUSTED = "…"


def loose_form(url: str, captured_at: float) -> str | None:
    """`url` with its cache-busting query values replaced by BUSTED, None when it has none;
    `captured_at`: the capture's time (epoch seconds), near which a time value is cache-busting."""
    parts = urlsplit(url)
    if not parts.query:
        return None
    pairs = [pair.partition("=") for pair in parts.query.split("&")]
    busted = [(key, "=", BUSTED) if sign and _busting(unquote(key), unquote(value), captured_at) else (key, sign, value)
              for key, sign, value in pairs]
    if busted == pairs:
        return None
    return urlunsplit(parts._replace(query="&".join("".join(pair) for pair in busted), fragment=""))


def _busting(key: str, value: str, captured_at: float) -> bool:
    if _RANDOM.fullmatch(value) or (_BUSTING_KEY.fullmatch(key) and _NUMBER.fullmatch(value)):
        return True
    epoch = _EPOCH.fullmatch(value)
    return epoch is not None and abs(int(epoch[1]) - captured_at) <= CLOCK_WINDOW
