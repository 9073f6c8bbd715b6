"""A capture's page verdict: whether what came back is the page that was cited, or something
standing in its place. The transport outcome (ok, truncated, failed) says whether the bytes
arrived; the verdict says what they are. It is judged from the final response alone (status,
headers, decoded body) and, for a page rendered in a browser, the text the reader saw; it is
recorded beside the capture and never changes a stored byte.

The verdicts, tried in this order, each with the signals that decide it (but where a redirect or
a refresh ended is looked at before the page's own sign-in and not-found signals):

``bot-wall``: a challenge page in place of the content.
    - the response says so itself: ``cf-mitigated: challenge`` (Cloudflare);
    - a challenge script or widget named in the markup's attributes (Cloudflare's challenge
      platform, DataDome, PerimeterX, Incapsula; a Turnstile, reCAPTCHA or hCaptcha widget) on a
      short page or with status 403, 429 or 503;
    - a title that is a challenge ("Just a moment…", "Attention Required!", "Are you a robot?")
      on a short page;
    - status 403, 429 or 503 with challenge words in the text ("verify you are human", "captcha");
    - a block page, whatever its status (often 200): a short page saying automated access is
      refused ("Automated browsers are not allowed", "You have been blocked", Akamai's "Access
      denied … Reference #18.2f3e").
    An article about CAPTCHAs is long and names no widget in its attributes: it stays content. So
    does a short page whose CAPTCHA widget guards a form a person fills in (a newsletter, comments).
``login-wall``: a sign-in, consent or pay gate in place of the content.
    - status 401 (the server asks for credentials);
    - a redirect chain, or a refresh within seconds, that ended on a sign-in URL (/login, /signin, /oauth2/,
      /authorize, …, or a host login.*, accounts.*, sso.*, auth.*) or a consent host (consent.*)
      when the cited URL was not one;
    - a password field on a page with little text outside the forms that hold one (a form
      wrapping most of the page, as ASP.NET WebForms does, is not a sign-in form), or on a page
      with a title segment that is a sign-in ("Sign in to your account", "Log in | Site");
    - the email-first step of a sign-in: an email or username field on a short page with such a title;
    - a consent prompt on a short page: Google's form (consent.google.com, consent.youtube.com), or
      a button answering one ("Accept all", "Reject all") beside its words ("cookies", "your privacy");
    - a paywall: a page whose schema.org data says it is not free to read (isAccessibleForFree:
      false, as publishers mark paywalled articles) showing fewer words than an article has,
      its opening at most; one showing the whole article to this reader (a metered wall) is content.
    A small login box in an article's header, or a consent banner over it or by a short page's text, leaves it content.
``http-error``: any other final status of 400 or more; the reason names the code. A final 3xx
    too: a redirect the chain could not follow (no Location) ended short of the page, and a 304
    Not Modified, sent to a capture that never asks to revalidate a copy, is no page at all.
``not-found``: a "soft 404", status 2xx but a page saying the cited thing is not there.
    - a redirect chain, or a refresh within seconds, that ended on a not-found URL (/404.html,
      /not-found), or that took a page of a site (/2024/05/story-slug) to the site's home page,
      bare or a language's (/en/): where a site sends a page it deleted;
    - a title segment or the first heading that is a not-found phrase ("Page not found", "Error
      404", "Seite nicht gefunden", "ページが見つかりません", "Account suspended", "Video
      unavailable"; the table is in verdict_phrases.py) on a page of moderate length;
    - a very short page whose text has such a phrase, or 404 beside "error", "not found" or
      "page", or opening it;
    - a JSON error object that says so (``{"error": "not_found"}``).
    A long article whose text mentions "not found" stays content, as does a short one about a
    Peugeot 404; a title is split at "|" or a dash, and at a colon only what follows it is read
    ("Example Times: Page not found"), never what comes before ("Error 404: what it means").
``empty``: nothing to see: no body, a body that cannot be decoded as its Content-Encoding says
    (no reader shows any of it), or HTML with no visible text and no media (img, video, audio,
    picture, svg, canvas, iframe, embed, object), or whose whole text is the placeholder of a page
    still loading ("Loading…", "Please wait", "Chargement…": a script's content never came).
``content``: none of the above.
A body declared a PDF, an image or nothing that begins as an HTML page is judged as that page.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping
from urllib.parse import SplitResult, urljoin, urlsplit

from archiver.capture.httpbody import HTML_TYPES, MAX_TEXT_BYTES, decode_response, sniffs_as_html
from archiver.capture.verdict_markup import NO_CONSENT_PROMPT, PageSignals, consent_gate
from archiver.capture.verdict_phrases import ERROR_WORDS, INTERJECTIONS, LOADING_PHRASES, NOT_FOUND_PHRASES

if TYPE_CHECKING:
    from archiver.capture.fetch.engine import FetchResult

VERDICTS = ("content", "http-error", "not-found", "bot-wall", "login-wall", "empty")

SHORT_PAGE_WORDS = 150  # a challenge or sign-in page says little else; an article says more
SOFT_404_WORDS = 400    # a not-found title on a page longer than this is an article's title
TINY_PAGE_WORDS = 60    # short enough that a not-found phrase anywhere in it is the page
LOADING_WORDS = 6       # of a placeholder shown while a page loads: "Loading the article, please wait"
# Characters of a title, heading or tiny page read for a not-found phrase: a few dozen words fit
# many times over, and a hostile page's one "word" of megabytes is never folded whole (memory).
PHRASE_CHARS = 2_000
CHALLENGE_STATUSES = (403, 429, 503)
# A refresh this soon stands in for a redirect ("Redirecting…"); one after minutes is a page
# reloading itself (a front page, a live blog), which says nothing about where the page went.
REFRESH_REDIRECT_SECONDS = 10

_CHALLENGE_TITLE = re.compile(r"^\s*(just a moment|attention required|are you a (robot|human)|robot check|"
                              r"checking (your|if the site connection is secure)|security check|one more step|"
                              r"pardon our interruption|verify(ing)? (you are|that you are) (a )?human|captcha)", re.I)
_CHALLENGE_WORDS = re.compile(r"captcha|verify (you are|that you are) (a )?human|are you a robot|unusual traffic|"
                              r"checking your browser|enable javascript and cookies to continue", re.I)
# A bot defence's block page, served as a page: an article quoting one is long, and stays content.
_BLOCKED_WORDS = re.compile(r"automated (browsers?|access|requests?|queries|traffic|bots?|tools?|clients?) (are|is) "
                            r"(not (allowed|permitted)|blocked|prohibited|forbidden)|you('ve| have) been blocked|"
                            r"access denied\b.{0,200}?\breference #\s?\d+\.[0-9a-f]+", re.I)
_LOGIN_PATH = re.compile(r"(^|/)(log-?in|sign-?in|sign_in|logon|auth|authenticate|authwall|servicelogin|sso|session/new|"
                         r"accounts?/login|users?/sign_in|authorize|oauth2)(/|$|\.)", re.I)
# Hosts that only sign people in: login.microsoftonline.com, accounts.google.com, sso.example.gov.
_SIGN_IN_HOST = re.compile(r"^(login|accounts|sso|auth)\.", re.I)
# Where a site sends a page it no longer has: /404.html, /not-found, /error-404…
_NOT_FOUND_PATH = re.compile(r"(^|/)((page-?)?not-?found|404|410|error-?404|404-?error)(\.(html?|php|aspx?))?/?$", re.I)
# A title segment that is a sign-in ("Sign in to your account", "Log in or sign up"); "How to
# sign in to government services" is an article's title.
_LOGIN_TITLE = re.compile(r"^(please )?(sign|log) ?(in|on)\b|\bplease (sign|log) ?(in|on)\b|\b(sign|log) ?in to continue\b", re.I)
# English not-found grammar, on words compared as _plain() leaves them (see verdict_phrases).
_NOT_FOUND_PHRASE = (r"((page|file|article|story|content|post|resource)\s+)?(not found|(does not|doesn't|no longer) "
                     r"exists?|(cannot|can't|could not|couldn't) be found|no longer available|(has been|was) (removed|deleted))")
_NOT_FOUND = re.compile(rf"^((this|that|the)\s+)?{_NOT_FOUND_PHRASE}$")
_APOSTROPHES = str.maketrans("\u2018\u2019\u02bc", "'''")  # can’t is can't, as typographers and CMSs write it
_PHRASES = frozenset(phrase for phrases in NOT_FOUND_PHRASES.values() for phrase in phrases)
_CODE = r"(?<!\d)(404|410)(?!\d)"
_ERROR_WORD = "|".join(map(re.escape, ERROR_WORDS))
_STATUS_CODE = re.compile(rf"(({_ERROR_WORD})\s*)?{_CODE}(\s*({_ERROR_WORD}))?")


def _cjk(char: str) -> bool:
    """Whether `char` is of a script written without spaces between words (Chinese, Japanese, Korean)."""
    return "\u3040" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" or "\uf900" <= char <= "\ufaff"


def _words_pattern(phrases) -> str:
    """Phrases as alternatives that match whole words; a CJK phrase matches inside a run of text."""
    return "|".join(re.escape(p) if _cjk(p[0]) else rf"(?<!\w){re.escape(p)}(?!\w)" for p in phrases)


_INTERJECTION = re.compile("^((" + "|".join(re.escape(w) + ("" if _cjk(w[-1]) else r"(\s+|$)")
                                            for w in INTERJECTIONS) + r")\s*)+")
# Said anywhere in a very short page: a not-found phrase, or 404 beside an error word, "not found"
# or "page", or opening the page ("404. Nothing to see here"; a bare 404 is as likely a car or a flight).
_NOT_FOUND_WORDS = re.compile(r"page (was )?not found|(page|article) (does not|doesn't|no longer) exist|"
                              rf"(cannot|can't|could not|couldn't) be found|(({_ERROR_WORD}|page)\s*){_CODE}|"
                              rf"{_CODE}\s*({_ERROR_WORD}|not found|page)|^{_CODE}\b|{_words_pattern(_PHRASES)}")
# English placeholders of a page still loading, as _plain() leaves them (others: verdict_phrases).
_LOADING = re.compile(r"^(please wait |one moment please )?(loading|please wait|one moment please)"
                      r"( (the )?(article|page|content|story|post|data|results|comments|feed))?( please wait)?$")
_TITLE_SEPARATORS = re.compile(r"\s+[|·•–—-]\s+|\s*[|·•–—]\s*")
# A site's name before a colon ("Example Times: Page not found") is taken off, and the rest read as
# a segment too; the part before a colon never is one ("Not found: the hunt for MH370" is an article).
_SITE_PREFIX = re.compile(r"^[^:]{1,80}:\s+")
_REFRESH = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(?:[;,]\s*(?:url\s*=\s*)?['\"]?\s*([^'\"]*))?", re.I)
# A path that names no page of its own: a site's home under another name, or a language's home.
_INDEX_PAGE = re.compile(r"^(index|default|home|welcome)(\.\w+)?$", re.I)
_LANGUAGE = re.compile(r"^[a-z]{2}([-_][a-z]{2,4})?$", re.I)
_NAMES_ONE_PAGE = re.compile(r"[-_.\d]")  # a slug, a number, a file name: /story-slug, /p/123, /story.html


@dataclass(frozen=True)
class Verdict:
    """What the page is (one of VERDICTS) and the signal that decided it, in words."""

    verdict: str
    reason: str


def _plain(phrase: str) -> str:
    """`phrase` as phrases are compared: lower case, curly apostrophes straight, punctuation and
    symbols made spaces (but the apostrophe of "can't"), a leading interjection taken off."""
    folded = phrase.translate(_APOSTROPHES).casefold()
    spaced = "".join(" " if unicodedata.category(c)[0] in "PS" and c != "'" else c for c in folded)
    return _INTERJECTION.sub("", " ".join(spaced.split()))


def _says_not_found(phrase: str) -> bool:
    """Whether `phrase` (a title segment, a heading, a short answer) is a not-found phrase: in the
    English grammar or the table, around an "Error 404" or none, or that code alone."""
    if len(phrase) > PHRASE_CHARS:
        return False
    plain = _plain(phrase)
    rest = " ".join(_STATUS_CODE.sub(" ", plain).split())
    rest = re.sub(rf"^({_ERROR_WORD})\s+", "", rest)  # "Error - page not found"
    code_alone = not rest and bool(_STATUS_CODE.search(plain))
    return code_alone or rest in _PHRASES or bool(_NOT_FOUND.match(rest))


def loading_placeholder(text: str) -> str | None:
    """`text`, a page's whole visible text, if it is only a loading placeholder ("Loading…"), else None."""
    # A few words: never a hostile page's one word of megabytes, folded whole (memory).
    words = text.split()[:LOADING_WORDS + 1] if len(text) <= PHRASE_CHARS else []
    if not words or len(words) > LOADING_WORDS or not (plain := _plain(" ".join(words))):
        return None
    return " ".join(words) if _LOADING.match(plain) or plain in LOADING_PHRASES else None


def _length(words: list[str]) -> int:
    """How many words a reader sees: a run of CJK characters, written without spaces, counts a
    word for every two of them, so that an article in Chinese is not taken for a tiny page."""
    return sum(1 + sum(map(_cjk, word)) // 2 for word in words)


def _json_not_found(body: str) -> str | None:
    """What a JSON error object says when the thing asked for is not there ({"error": "not_found"},
    {"error": {"code": 404}}, {"message": "Post not found"}); None for any other body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    said = [error, *(data.get(k) for k in ("status", "code", "statusCode", "message", "detail"))]
    if isinstance(error, dict):
        said += [error.get(k) for k in ("code", "status", "message")]
    return next((str(v) for v in said if isinstance(v, (str, int)) and not isinstance(v, bool)
                 and _says_not_found(str(v).replace("_", " "))), None)


def _gate(url: SplitResult) -> str | None:
    """What `url` is when it is a gate before pages rather than a page: a sign-in or consent page."""
    host = url.hostname or ""
    if host.startswith("consent."):  # consent.google.com, consent.youtube.com: asked before any page
        return "a consent page"
    return "a sign-in page" if _SIGN_IN_HOST.match(host) or _LOGIN_PATH.search(url.path) else None


def _site(url: SplitResult) -> str:
    return (url.hostname or "").removeprefix("www.")


def _names_a_page(path: str) -> bool:
    """Whether a cited `path` names one page of a site rather than its home: /2024/05/story-slug,
    /p/123, /story.html do; /, /index.html, /en/, /news (a section a site may fold into its
    home) do not."""
    segments = [s for s in path.split("/") if s]
    if segments and _INDEX_PAGE.match(segments[-1]):
        segments.pop()
    if segments and _LANGUAGE.match(segments[0]):
        segments.pop(0)
    return len(segments) > 1 or (len(segments) == 1 and bool(_NAMES_ONE_PAGE.search(segments[0])))


def _home_reached(asked: SplitResult, landed: SplitResult) -> str | None:
    """Which home of its own site a cited page was sent to, if it was: "the site's home page"
    (the bare root) or "the site's home page for a language" (/en/, /fr-ca/). A site sends a
    page it deleted there, and some send a first visit there to choose a language whatever page
    it asked for: either way the capture shows that home, not the page cited. A home reached
    from a cited home (http → https, www or not, /index.html, /en → /) is the page itself."""
    if _site(asked) != _site(landed) or not _names_a_page(asked.path):
        return None
    segments = [s for s in landed.path.split("/") if s]
    if segments and _INDEX_PAGE.match(segments[-1]):
        segments.pop()
    if not segments:
        return "the site's home page"
    return "the site's home page for a language" if len(segments) == 1 and _LANGUAGE.match(segments[0]) else None


def _landing_verdict(requested_url: str, landed_url: str, how: str) -> Verdict | None:
    """The verdict the place a page landed on gives by itself (a redirect's end, a refresh's
    target: `how` says which), unless the cited URL was such a place already."""
    if landed_url == requested_url:
        return None
    asked, landed = urlsplit(requested_url), urlsplit(landed_url)
    if (gate := _gate(landed)) and not _gate(asked):
        return Verdict("login-wall", f"{how} to {gate} ({landed_url})")
    if _NOT_FOUND_PATH.search(landed.path) and not _NOT_FOUND_PATH.search(asked.path):
        return Verdict("not-found", f"{how} to a not-found page ({landed_url})")
    if home := _home_reached(asked, landed):
        return Verdict("not-found", f"{how} from {asked.path} to {home} ({landed_url}): "
                                    "the capture shows that home, not the cited page")
    return None


def _refresh_target(refresh: str | None, base: str) -> str | None:
    """The URL a Refresh (header or <meta>) sends the reader to straight away, if it does."""
    found = _REFRESH.match(refresh or "")
    if not found or not found.group(2) or float(found.group(1)) > REFRESH_REDIRECT_SECONDS:
        return None
    return urljoin(base, found.group(2).strip())


def judge(status: int | None, headers: Mapping[str, str], content_type: str, body: str, *,
          requested_url: str, final_url: str, rendered_text: str | None = None,
          undecodable: str | None = None) -> Verdict:
    """The verdict on a final response: its `status`, `headers` (names lower-cased), `content_type`
    and `body`, decoded as a browser reads it (HTML for an HTML page: for a browser capture, the
    DOM after scripts ran), reached from `requested_url` at `final_url`; `rendered_text` is what a
    browser showed; `undecodable` says why the body is empty when it could not be decoded
    (DecodedResponse.undecodable). A body declared a PDF, an image or nothing that is an HTML page
    (a server's error page sent under the cited file's type) is judged as the HTML it is."""
    misdeclared = content_type not in HTML_TYPES and (not content_type or content_type == "application/pdf"
                                                      or content_type.startswith("image/")) and sniffs_as_html(body)
    verdict = _judge_page(status, headers, content_type, body, misdeclared or content_type in HTML_TYPES,
                          requested_url=requested_url, final_url=final_url, rendered_text=rendered_text,
                          undecodable=undecodable)
    if misdeclared and verdict.verdict != "content":
        return Verdict(verdict.verdict, f"{verdict.reason} (an HTML page sent as {content_type or 'no type'})")
    return verdict


def _judge_page(status: int | None, headers: Mapping[str, str], content_type: str, body: str, html: bool, *,
                requested_url: str, final_url: str, rendered_text: str | None,
                undecodable: str | None) -> Verdict:
    """judge()'s rules, on a body read as HTML when `html`."""
    signals = PageSignals()
    if html:
        signals.feed(body)
        signals.close()
    words = rendered_text.split() if rendered_text and rendered_text.strip() else signals.words
    if not html and content_type.startswith("text/"):
        words = body.split()
    text = " ".join(words[:2000]).translate(_APOSTROPHES)
    title = " ".join("".join(signals.title).split())
    length = _length(words)
    short = length < SHORT_PAGE_WORDS
    # A CAPTCHA in a form a person fills in on a page that was served keeps spam out of the form.
    widget = None if signals.captcha_in_form and status not in CHALLENGE_STATUSES else signals.captcha_widget

    if headers.get("cf-mitigated", "").strip().lower() == "challenge":
        return Verdict("bot-wall", "the response says it is a challenge (cf-mitigated: challenge)")
    if (marker := signals.challenge_marker or widget) and (short or status in CHALLENGE_STATUSES):
        return Verdict("bot-wall", f"a challenge in the page ({marker})")
    if title and _CHALLENGE_TITLE.match(title) and short:
        return Verdict("bot-wall", f"a challenge page titled {title!r}")
    if status in CHALLENGE_STATUSES and (found := _CHALLENGE_WORDS.search(text)):
        return Verdict("bot-wall", f"HTTP {status} with {found.group(0)!r} in its text")
    if short and (found := _BLOCKED_WORDS.search(text)):
        return Verdict("bot-wall", f"a block page: {found.group(0)!r} in its text")
    if status == 401:
        return Verdict("login-wall", "HTTP 401: the server asks for credentials")
    if status is not None and status >= 400:
        return Verdict("http-error", f"HTTP {status}")
    if status == 304:
        return Verdict("http-error", "HTTP 304: Not Modified, to a request that asked for no revalidation "
                                     "(it named no copy to compare): the server sent no page")
    if status is not None and 300 <= status < 400:
        return Verdict("http-error", f"HTTP {status}" + ("" if "location" in headers else
                                                          ": a redirect with no Location to follow"))
    refresh = _refresh_target(headers.get("refresh") or signals.refresh, final_url)
    landings = [("redirected", final_url)] + ([("sent by a refresh", refresh)] if refresh else [])
    if landed := next(filter(None, (_landing_verdict(requested_url, url, how) for how, url in landings)), None):
        return landed
    title_segments = [title, *_TITLE_SEPARATORS.split(title)]
    title_segments += [_SITE_PREFIX.sub("", segment) for segment in title_segments if _SITE_PREFIX.match(segment)]
    sign_in_title = any(_LOGIN_TITLE.search(segment) for segment in title_segments)
    outside_forms = length - signals.sign_in_form_words
    if signals.password_field and (outside_forms < SHORT_PAGE_WORDS or sign_in_title):
        return Verdict("login-wall", "a sign-in form in place of the content")
    if signals.identity_field and sign_in_title and short:  # the email-first step: no password field yet
        return Verdict("login-wall", f"a sign-in page titled {title!r}")
    if (consent := consent_gate(signals, text, length) if short else NO_CONSENT_PROMPT).wall:
        return Verdict("login-wall", consent.wall)
    if signals.not_free and length < SOFT_404_WORDS:
        return Verdict("login-wall", f"a paywall: the page marks itself not free to read (isAccessibleForFree: false)"
                                     f" and shows {length} words, an article's opening at most")
    if content_type == "application/json" or content_type.endswith("+json"):
        if said := _json_not_found(body):
            return Verdict("not-found", f"status {status} but the JSON says {said!r}")
    heading = " ".join("".join(signals.first_heading).split())
    plain = [text] if not html else []  # a text/plain answer of a few words: "Not Found"
    said = next((p for p in [*title_segments, heading, *plain] if _says_not_found(p)), None)
    if said and length < SOFT_404_WORDS:
        return Verdict("not-found", f"status {status} but the page says {said!r}")
    if length < TINY_PAGE_WORDS and (found := _NOT_FOUND_WORDS.search(_plain(text[:PHRASE_CHARS]))):
        return Verdict("not-found", f"status {status} but the page says {found.group(0)!r}")
    if length <= LOADING_WORDS and (placeholder := loading_placeholder(" ".join(words))) is not None:
        return Verdict("empty", f"the page never finished loading: all it shows is {placeholder!r}")
    if not body.strip() and not words:
        return Verdict("empty", f"{undecodable}: nothing of it can be read" if undecodable else "no body")
    if html and not words and not signals.media:
        return Verdict("empty", "no visible text and no media")
    if not html and content_type.startswith("text/") and not words:
        return Verdict("empty", "only white space")
    return Verdict("content", consent.banner)


def judge_response(raw: bytes, requested_url: str, final_url: str, rendered_text: str | None = None,
                   dom: bytes | None = None) -> Verdict:
    """The verdict on `raw`, a final response as it crossed the wire (at most MAX_TEXT_BYTES of it
    are read); for a browser capture, with the `dom` after scripts ran and the `rendered_text`."""
    response = decode_response(raw[:MAX_TEXT_BYTES])
    body = dom[:MAX_TEXT_BYTES].decode("utf-8", "replace") if dom and response.is_html else response.text
    return judge(response.status, response.headers, response.content_type, body, requested_url=requested_url,
                 final_url=final_url, rendered_text=rendered_text, undecodable=response.undecodable)


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
