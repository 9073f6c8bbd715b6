"""What the page verdict rules look for in a page's markup (verdict.py judges by them): its
visible words and title, the first heading, challenge, CAPTCHA and consent markers in attributes,
sign-in fields and the forms that hold them, buttons' labels, media, a <meta> refresh, paywall markup,
and the words of a cookie or consent prompt's box and of the site's chrome (navigation, links)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from archiver.capture.httpbody import VisibleText
from archiver.capture.verdict_phrases import CONSENT_BUTTONS, CONSENT_WORDS

# Markers of a challenge page: an interstitial a bot-defence service serves instead of the page.
_CHALLENGE_MARKUP = ("/cdn-cgi/challenge-platform/", "cf-browser-verification", "challenge-form",
                      "captcha-delivery.com", "px-captcha", "_incapsula_resource")
# Markers of a CAPTCHA widget, which is a challenge page too, unless it guards an ordinary form
# (a newsletter, a comment box) on a page that was served: then it only keeps spam out of the form.
_CAPTCHA_WIDGETS = ("challenges.cloudflare.com/turnstile", "cf-turnstile", "g-recaptcha", "recaptcha/api.js",
                    "h-captcha", "hcaptcha.com")
# Google's cookie-consent interstitial: in place of the page until a person chooses.
_CONSENT_MARKUP = ("consent.google.com", "consent.youtube.com")
_IDENTITY_AUTOCOMPLETE = ("username", "email")
_FILLED_INPUTS = ("text", "email", "search", "tel", "url", "number")
_MEDIA = {"img", "video", "audio", "picture", "svg", "canvas", "iframe", "embed", "object"}
# schema.org's paywall markup, as publishers give it to search engines: the article, or a part
# of it, is not free to read ("False" as a string is what Google's documentation shows).
_NOT_FREE = re.compile(r'"isAccessibleForFree"\s*:\s*"?false\b', re.I)
STRUCTURED_DATA_CHARS = 256 * 1024  # of JSON-LD read for it: a hostile page's megabytes are not kept
MAX_BUTTONS, BUTTON_CHARS = 100, 100  # buttons' labels kept, and of each: a hostile page's are not all kept
_CONSENT_WORDS = re.compile("|".join(rf"(?<!\w){re.escape(word)}(?!\w)" for word in CONSENT_WORDS))
_CONSENT_BUTTONS = frozenset(CONSENT_BUTTONS)
# An element that may hold a cookie or consent prompt apart from the page: a dialog, a fixed or
# sticky box, or one named for it (div#cookie-banner, div.qc-cmp2-container, <cmp-dialog>). Only
# tags closed explicitly are followed, so that an unclosed one never swallows the rest of the page.
_BOX_TAGS = frozenset(("div", "section", "aside", "dialog", "form", "article", "main", "header", "footer", "nav"))
_BOX_NAME = re.compile(r"cookie|consent|gdpr|cmp", re.I)
_PINNED_STYLE = re.compile(r"position\s*:\s*(fixed|sticky)", re.I)
_BOX_ROLES = ("dialog", "alertdialog")
# The site's chrome: its words are the same on every page of it, and never the page's own.
_CHROME_TAGS = frozenset(("nav", "header", "footer", "a"))
# Words a page shows beside a consent prompt's box and its chrome for it to be the page, a short
# one, under the prompt: a prompt in place of the content leaves a heading and a line at most.
OWN_WORDS = 60
BOX_CHARS = 2_000  # of a box's text read for consent words: a hostile page's megabytes are not kept


@dataclass
class _Form:
    """What one form holds: its words, and whether a person signs in, types or proves anything in it."""

    words: int = 0
    password: bool = False
    filled: bool = False
    captcha: bool = False


@dataclass
class _Box:
    """An element that may hold a consent prompt (see _BOX_TAGS), as it is read: its tag, how many
    elements of that tag are open inside it, its words and text, and where its buttons begin."""

    tag: str
    name: str
    first_button: int
    depth: int = 0
    words: int = 0
    text: str = ""


class PageSignals(VisibleText):
    """The visible words and title, and what the verdict rules look for in the markup: challenge,
    CAPTCHA and consent markers in attributes, sign-in fields and the forms that hold them, the
    first heading, media, a <meta> refresh."""

    def __init__(self) -> None:
        super().__init__()
        self.challenge_marker: str | None = None
        self.captcha_widget: str | None = None
        self.consent_marker: str | None = None
        self.captcha_in_form = False
        self.password_field = False
        self.identity_field = False
        self.media = False
        self.refresh: str | None = None
        self.first_heading: list[str] = []
        self.not_free = False  # the page's structured data says it is paywalled
        self._structured_data: list[str] | None = None  # of the JSON-LD script being read
        self._structured_chars = 0
        self._sign_in_forms: list[int] = []
        self._form: _Form | None = None
        self._heading: str | None = None
        self.buttons: list[str] = []  # the labels of its buttons (<button>, role=button, <input type=submit>)
        self._button: tuple[str, list[str]] | None = None  # the tag and words of the button being read
        self._button_depth = 0  # of elements of its tag open inside it
        self.prompt_words = 0  # in the boxes holding a consent prompt (words and a button answering them)
        self.prompt_box: str | None = None  # how the first of them is named: div#cmp, dialog
        self.chrome_words = 0  # in the site's chrome (see _CHROME_TAGS)
        self._box: _Box | None = None  # the outermost box being read
        self._chrome_depth = 0  # of chrome elements open

    def handle_starttag(self, tag, attrs) -> None:
        super().handle_starttag(tag, attrs)
        named = {name: (value or "") for name, value in attrs}
        values = " ".join(named.values()).lower()
        self.challenge_marker = self.challenge_marker or next((m for m in _CHALLENGE_MARKUP if m in values), None)
        widget = next((m for m in _CAPTCHA_WIDGETS if m in values), None)
        self.captcha_widget = self.captcha_widget or widget
        self.consent_marker = self.consent_marker or next((m for m in _CONSENT_MARKUP if m in values), None)
        kind = named.get("type", "text").lower()
        password = tag == "input" and kind == "password"
        self.password_field |= password
        self.identity_field |= tag == "input" and (kind == "email" or
                                                   named.get("autocomplete", "").lower() in _IDENTITY_AUTOCOMPLETE)
        self.media |= tag in _MEDIA
        if tag == "meta" and named.get("http-equiv", "").lower() == "refresh" and self.refresh is None:
            self.refresh = named.get("content", "")
        if tag == "form" and self._form is None:  # HTML has no nested forms: an inner <form> is ignored
            self._form = _Form()
        if self._form:
            self._form.password |= password
            self._form.filled |= tag in ("textarea", "select") or (tag == "input" and kind in _FILLED_INPUTS)
            self._form.captcha |= widget is not None
        if tag == "h1" and not self.first_heading and self._heading is None:
            self._heading = tag
        if tag == "script" and named.get("type", "").strip().lower() == "application/ld+json":
            self._structured_data = []
        self._start_button(tag, named, kind)
        self._chrome_depth += tag in _CHROME_TAGS
        self._start_box(tag, named)

    def _start_box(self, tag: str, named: dict[str, str]) -> None:
        if self._box is not None:
            self._box.depth += tag == self._box.tag
            return
        given = named.get("id") or " ".join(named.get("class", "").split()[:1])
        if ((tag in _BOX_TAGS or "-" in tag) and (
                tag == "dialog" or named.get("role", "").strip().lower() in _BOX_ROLES
                or named.get("aria-modal", "").strip().lower() == "true"
                or _BOX_NAME.search(f"{tag} {named.get('id', '')} {named.get('class', '')}")
                or _PINNED_STYLE.search(named.get("style", "")))):
            name = tag + (f"#{given}" if named.get("id") else f".{given}" if given else "")
            self._box = _Box(tag, name, len(self.buttons))

    def _end_box(self) -> None:
        box, self._box = self._box, None
        answer = any(_fold(label) in _CONSENT_BUTTONS for label in self.buttons[box.first_button:])
        if answer and consent_words(box.text):
            self.prompt_words += box.words
            self.prompt_box = self.prompt_box or box.name

    def _start_button(self, tag: str, named: dict[str, str], kind: str) -> None:
        if tag == "input" and kind in ("submit", "button"):
            self._keep_button(named.get("value", ""))
        elif self._button is None and (tag == "button" or named.get("role", "").strip().lower() == "button"):
            self._button, self._button_depth = (tag, []), 0
        elif self._button is not None and tag == self._button[0]:
            self._button_depth += 1

    def _keep_button(self, label: str) -> None:
        if len(self.buttons) < MAX_BUTTONS:
            self.buttons.append(" ".join(label[:BUTTON_CHARS].split()))

    def handle_endtag(self, tag) -> None:
        super().handle_endtag(tag)
        if tag == "form":
            self._end_form()
        if tag == self._heading:
            self._heading = ""  # the first heading is read; later ones are not
        if tag == "script" and self._structured_data is not None:
            self.not_free |= bool(_NOT_FREE.search("".join(self._structured_data)))
            self._structured_data = None
        if self._button is not None and tag == self._button[0]:
            if self._button_depth:
                self._button_depth -= 1
            else:
                self._keep_button(" ".join(self._button[1]))
                self._button = None
        self._chrome_depth -= tag in _CHROME_TAGS and self._chrome_depth > 0
        if self._box is not None and tag == self._box.tag:
            if self._box.depth:
                self._box.depth -= 1
            else:
                self._end_box()

    def handle_data(self, data: str) -> None:
        before = len(self.words)
        super().handle_data(data)
        added = len(self.words) - before
        if self._form:
            self._form.words += added
        if self._box is not None:
            self._box.words += added
            if added and len(self._box.text) < BOX_CHARS:
                self._box.text += " " + data[:BOX_CHARS]
        if self._chrome_depth:
            self.chrome_words += added
        if self._heading:
            self.first_heading.append(data)
        if self._button is not None and sum(map(len, self._button[1])) < BUTTON_CHARS:
            self._button[1].append(data)
        if self._structured_data is not None and self._structured_chars < STRUCTURED_DATA_CHARS:
            piece = data[:STRUCTURED_DATA_CHARS - self._structured_chars]
            self._structured_data.append(piece)
            self._structured_chars += len(piece)

    def close(self) -> None:
        super().close()
        self._end_form()  # a form left open ends with the page
        if self._box is not None:
            self._end_box()

    def _end_form(self) -> None:
        form, self._form = self._form, None
        if form and form.password:
            self._sign_in_forms.append(form.words)
        self.captcha_in_form |= bool(form and form.captcha and form.filled)

    @property
    def sign_in_form_words(self) -> int:
        """The words of the forms holding a password field, but of none wrapping most of the page:
        ASP.NET WebForms puts a whole page in one form, and its header's staff login box does not
        make the press release around it a sign-in form."""
        return sum(words for words in self._sign_in_forms if words <= len(self.words) / 2)


class ConsentGate(NamedTuple):
    """What a consent prompt makes of a short page: why it is a wall, or else a note on the banner."""

    wall: str | None
    banner: str


NO_CONSENT_PROMPT = ConsentGate(None, "")


def consent_gate(signals: PageSignals, text: str, length: int) -> ConsentGate:
    """What a consent prompt makes of a short page of `length` words whose visible `text` this is:
    a prompt in place of the content (a wall), or a banner shown beside the page's own text (a
    note); NO_CONSENT_PROMPT when it has none. Walls are judged the more readily: a page whose
    prompt is in no box of its own, or that shows fewer than OWN_WORDS beside its prompt's boxes
    and its chrome (counted from the markup, hidden parts too: more, never fewer), is the prompt."""
    consent = signals.consent_marker or consent_prompt(signals, text)
    if not consent:
        return NO_CONSENT_PROMPT
    own = length - signals.prompt_words - signals.chrome_words
    if signals.consent_marker or not signals.prompt_box or own < OWN_WORDS:
        return ConsentGate(f"a consent prompt in place of the content ({consent})", "")
    return ConsentGate(None, f"a consent banner was shown ({signals.prompt_box}: {consent}); the page's own "
                             f"text beside it, {own} words, is judged without it")


def consent_prompt(signals: PageSignals, text: str) -> str | None:
    """What makes a page, whose visible `text` this is, a cookie or consent prompt: a button that
    answers one ("Accept all", "Reject all") and a word it asks about ("cookies", "your privacy")
    in the text; None when it has not both."""
    answer = next((label for label in signals.buttons if _fold(label) in _CONSENT_BUTTONS), None)
    asked = consent_words(text) if answer else None
    return f"{answer!r} beside {asked!r}" if asked else None


def consent_words(text: str) -> str | None:
    """The first of CONSENT_WORDS in `text` ("cookies", "your privacy"), as a whole word; None for none."""
    found = _CONSENT_WORDS.search(text.casefold())
    return found.group(0) if found else None


def _fold(label: str) -> str:
    """A button's label as CONSENT_BUTTONS has it: lower case, its punctuation taken off."""
    return " ".join(re.sub(r"[^\w\s]", " ", label.casefold()).split())
