"""A capture's page verdict: whether what came back is the page that was cited, or something
standing in its place. The transport outcome (ok, truncated, failed) says whether the bytes
arrived; the verdict says what they are. It is judged from the final response alone (status,
headers, decoded body) and, for a page rendered in a browser, the text the reader saw; it is
recorded beside the capture and never changes a stored byte.

The verdicts, tried in this order, each with the signals that decide it:

``bot-wall``: a challenge page in place of the content.
    - the response says so itself: ``cf-mitigated: challenge`` (Cloudflare);
    - a challenge widget or script named in the markup's attributes (Cloudflare's challenge
      platform or Turnstile, reCAPTCHA, hCaptcha, DataDome, PerimeterX, Incapsula) on a short
      page or with status 403, 429 or 503;
    - a title that is a challenge ("Just a moment…", "Attention Required!", "Are you a robot?")
      on a short page;
    - status 403, 429 or 503 with challenge words in the text ("verify you are human", "captcha").
    An article about CAPTCHAs is long and names no widget in its attributes: it stays content.
``login-wall``: a sign-in demanded in place of the content.
    - status 401 (the server asks for credentials);
    - a redirect chain that ended on a sign-in URL (/login, /signin, /auth, …) when the
      cited URL was not one;
    - a password field on a page with little text outside its forms, or titled "Sign in".
    A small login box in an article's header leaves the article's text outside it: content.
``http-error``: any other final status of 400 or more; the reason names the code. A final 3xx
    too: a redirect the chain could not follow (no Location) ended short of the page.
``not-found``: a "soft 404", status 2xx but a page saying it does not exist.
    - a title segment or the first heading that is a not-found phrase ("Page not found",
      "404", "This page does not exist") on a page of moderate length;
    - a very short page whose text has such a phrase.
    A long article whose text mentions "not found" stays content.
``empty``: nothing to see: no body, or HTML with no visible text and no media (img, video,
    audio, picture, svg, canvas, iframe, embed, object).
``content``: none of the above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlsplit

from archiver.capture.httpbody import MAX_TEXT_BYTES, VisibleText, decode_response

if TYPE_CHECKING:
    from archiver.capture.fetch.engine import FetchResult

VERDICTS = ("content", "http-error", "not-found", "bot-wall", "login-wall", "empty")

SHORT_PAGE_WORDS = 150  # a challenge or sign-in page says little else; an article says more
SOFT_404_WORDS = 400    # a not-found title on a page longer than this is an article's title
TINY_PAGE_WORDS = 60    # short enough that a not-found phrase anywhere in it is the page
CHALLENGE_STATUSES = (403, 429, 503)

_CHALLENGE_MARKUP = ("/cdn-cgi/challenge-platform/", "challenges.cloudflare.com", "cf-turnstile",
                     "cf-browser-verification", "challenge-form", "g-recaptcha", "recaptcha/api.js", "h-captcha",
                     "hcaptcha.com", "captcha-delivery.com", "px-captcha", "_incapsula_resource")
_CHALLENGE_TITLE = re.compile(r"^\s*(just a moment|attention required|are you a (robot|human)|robot check|"
                              r"checking (your|if the site connection is secure)|security check|one more step|"
                              r"pardon our interruption|verify(ing)? (you are|that you are) (a )?human|captcha)", re.I)
_CHALLENGE_WORDS = re.compile(r"captcha|verify (you are|that you are) (a )?human|are you a robot|unusual traffic|"
                              r"checking your browser|enable javascript and cookies to continue", re.I)
_LOGIN_PATH = re.compile(r"(^|/)(log-?in|sign-?in|sign_in|logon|auth|authenticate|authwall|servicelogin|sso|session/new|"
                         r"accounts?/login|users?/sign_in)(/|$|\.)", re.I)
# Where a site sends a page it no longer has: /404.html, /not-found, /error-404…
_NOT_FOUND_PATH = re.compile(r"(^|/)((page-?)?not-?found|404|410|error-?404|404-?error)(\.(html?|php|aspx?))?/?$", re.I)
_LOGIN_TITLE = re.compile(r"^\s*(sign|log) ?in\b|\b(sign|log) ?in (to|with)\b", re.I)
_NOT_FOUND_PHRASE = (r"((page|file|article|story|content|post|resource)\s+)?(not found|(does not|doesn't|no longer) "
                     r"exists?|(cannot|can't|could not|couldn't) be found|no longer available|(has been|was) (removed|deleted))")
_NOT_FOUND = re.compile(rf"^(error\s*)?(404|410)(\s*[-:]?\s*{_NOT_FOUND_PHRASE})?[.!]?$|"
                        rf"^(error\s*[-:]?\s*)?(sorry,?\s*)?((this|the)\s+)?{_NOT_FOUND_PHRASE}[.!]?$", re.I)
_APOSTROPHES = str.maketrans("\u2018\u2019\u02bc", "'''")  # can’t is can't, as typographers and CMSs write it
_NOT_FOUND_WORDS = re.compile(r"\b404\b|page (was )?not found|(page|article) (does not|doesn't|no longer) exist|"
                              r"(cannot|can't|could not|couldn't) be found", re.I)
_TITLE_SEPARATORS = re.compile(r"\s+[|·–—-]\s+|\s*[|·–—:]\s*")
_MEDIA = {"img", "video", "audio", "picture", "svg", "canvas", "iframe", "embed", "object"}


@dataclass(frozen=True)
class Verdict:
    """What the page is (one of VERDICTS) and the signal that decided it, in words."""

    verdict: str
    reason: str


class _Signals(VisibleText):
    """The visible words and title, and what the verdict rules look for in the markup: challenge
    markers in attributes, password fields, words inside forms, the first heading, media."""

    def __init__(self) -> None:
        super().__init__()
        self.challenge_marker: str | None = None
        self.password_field = False
        self.media = False
        self.words_in_forms = 0
        self.first_heading: list[str] = []
        self._forms = 0
        self._heading: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        super().handle_starttag(tag, attrs)
        values = " ".join(value or "" for _, value in attrs).lower()
        self.challenge_marker = self.challenge_marker or next((m for m in _CHALLENGE_MARKUP if m in values), None)
        self.password_field |= tag == "input" and any(n == "type" and (v or "").lower() == "password" for n, v in attrs)
        self.media |= tag in _MEDIA
        self._forms += tag == "form"
        if tag == "h1" and not self.first_heading and self._heading is None:
            self._heading = tag

    def handle_endtag(self, tag) -> None:
        super().handle_endtag(tag)
        self._forms -= tag == "form" and self._forms > 0
        if tag == self._heading:
            self._heading = ""  # the first heading is read; later ones are not

    def handle_data(self, data: str) -> None:
        before = len(self.words)
        super().handle_data(data)
        self.words_in_forms += (len(self.words) - before) * bool(self._forms)
        if self._heading:
            self.first_heading.append(data)


def _says_not_found(phrase: str) -> bool:
    return bool(_NOT_FOUND.match(" ".join(phrase.translate(_APOSTROPHES).split())))


def judge(status: int | None, headers: Mapping[str, str], content_type: str, body: str, *,
          requested_url: str, final_url: str, rendered_text: str | None = None) -> Verdict:
    """The verdict on a final response: its `status`, `headers` (names lower-cased), `content_type`
    and `body`, decoded as a browser reads it (HTML for an HTML page: for a browser capture, the
    DOM after scripts ran), reached from `requested_url` at `final_url`; `rendered_text` is what a
    browser showed."""
    signals = _Signals()
    html = content_type in ("text/html", "application/xhtml+xml")
    if html:
        signals.feed(body)
        signals.close()
    words = rendered_text.split() if rendered_text and rendered_text.strip() else signals.words
    if not html and content_type.startswith("text/"):
        words = body.split()
    text = " ".join(words[:2000]).translate(_APOSTROPHES)
    title = " ".join("".join(signals.title).split())
    short = len(words) < SHORT_PAGE_WORDS

    if headers.get("cf-mitigated", "").strip().lower() == "challenge":
        return Verdict("bot-wall", "the response says it is a challenge (cf-mitigated: challenge)")
    if signals.challenge_marker and (short or status in CHALLENGE_STATUSES):
        return Verdict("bot-wall", f"a challenge in the page ({signals.challenge_marker})")
    if title and _CHALLENGE_TITLE.match(title) and short:
        return Verdict("bot-wall", f"a challenge page titled {title!r}")
    if status in CHALLENGE_STATUSES and (found := _CHALLENGE_WORDS.search(text)):
        return Verdict("bot-wall", f"HTTP {status} with {found.group(0)!r} in its text")
    if status == 401:
        return Verdict("login-wall", "HTTP 401: the server asks for credentials")
    if status is not None and status >= 400:
        return Verdict("http-error", f"HTTP {status}")
    if status is not None and 300 <= status < 400:
        return Verdict("http-error", f"HTTP {status}" + ("" if "location" in headers else
                                                          ": a redirect with no Location to follow"))
    if final_url != requested_url and _LOGIN_PATH.search(urlsplit(final_url).path) \
            and not _LOGIN_PATH.search(urlsplit(requested_url).path):
        return Verdict("login-wall", f"redirected to a sign-in page ({final_url})")
    outside_forms = len(words) - signals.words_in_forms
    if signals.password_field and (outside_forms < SHORT_PAGE_WORDS or _LOGIN_TITLE.search(title)):
        return Verdict("login-wall", "a sign-in form in place of the content")
    if status is None or 200 <= status < 300:
        if final_url != requested_url and _NOT_FOUND_PATH.search(urlsplit(final_url).path) \
                and not _NOT_FOUND_PATH.search(urlsplit(requested_url).path):
            return Verdict("not-found", f"redirected to a not-found page ({final_url})")
        heading = " ".join("".join(signals.first_heading).split())
        plain = [text] if not html else []  # a text/plain answer of a few words: "Not Found"
        said = next((p for p in [title, *_TITLE_SEPARATORS.split(title), heading, *plain] if _says_not_found(p)), None)
        if said and len(words) < SOFT_404_WORDS:
            return Verdict("not-found", f"status {status} but the page says {said!r}")
        if len(words) < TINY_PAGE_WORDS and (found := _NOT_FOUND_WORDS.search(text)):
            return Verdict("not-found", f"status {status} but the page says {found.group(0)!r}")
    if not body.strip() and not words:
        return Verdict("empty", "no body")
    if html and not words and not signals.media:
        return Verdict("empty", "no visible text and no media")
    if not html and content_type.startswith("text/") and not words:
        return Verdict("empty", "only white space")
    return Verdict("content", "")


def judge_response(raw: bytes, requested_url: str, final_url: str, rendered_text: str | None = None,
                   dom: bytes | None = None) -> Verdict:
    """The verdict on `raw`, a final response as it crossed the wire (at most MAX_TEXT_BYTES of it
    are read); for a browser capture, with the `dom` after scripts ran and the `rendered_text`."""
    response = decode_response(raw[:MAX_TEXT_BYTES])
    body = dom[:MAX_TEXT_BYTES].decode("utf-8", "replace") if dom and response.is_html else response.text
    return judge(response.status, response.headers, response.content_type, body,
                 requested_url=requested_url, final_url=final_url, rendered_text=rendered_text)


def capture_verdict(result: "FetchResult") -> Verdict | None:
    """The verdict on a fetched capture's final response; None when it failed (no response came,
    or its redirect chain ended short of a page: a loop, a refused hop). The response spool is
    read from its start and left at its start for the records to be written."""
    final = result.final
    if final is None or result.outcome == "failed":
        return None
    spool = final.exchange.spool
    spool.file.seek(0)
    raw = spool.file.read(MAX_TEXT_BYTES)
    spool.file.seek(0)
    page = getattr(result, "page", None)
    return judge_response(raw, result.url, final.url, page.text if page else None, page.dom if page else None)


def verdict_label(verdict: str | None, http_status: int | None) -> str:
    """A verdict as listings show it: "http-error 404", "login-wall"; "-" for none recorded."""
    if verdict is None:
        return "-"
    return f"{verdict} {http_status}" if verdict == "http-error" else verdict
