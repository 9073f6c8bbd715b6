"""Page verdict rules case by case, as an audit found them wrong both ways: soft 404s in other
languages, gone accounts and videos, deleted articles sent home, error pages sent as a PDF,
consent and single-sign-on gates, JSON errors called content; and pages called walls or
not-found that are content. Each case is a raw response as it crossed the wire, judged as a
capture judges it; the last tests capture some of them from a loopback origin end to end."""

from __future__ import annotations

import json
import re

import pytest

from archiver.capture.verdict import judge_response
from archiver.capture.verdict_phrases import NOT_FOUND_PHRASES
from tests.conftest import capture, http_response, redirect, send_bytes

URL = "https://news.example/2024/05/story-slug"
CHROME = " ".join(f"<a href='/s{i}'>Section {i}</a>" for i in range(30))  # a site's navigation: 60 words
FOOTER = "<footer>" + "About us Contact Careers Privacy Terms Advertise Newsletter Help " * 4 + "</footer>"
ARTICLE = " ".join(["The council voted on the budget amendment after a long debate about schools and roads."] * 25)
LOGIN_BOX = "Username <input name=u> Password <input type=password name=p> <input type=submit value='Log in'>"


def html(title: str, main: str, chrome: bool = True, head: str = "") -> str:
    chrome_open, chrome_close = (f"<nav>{CHROME}</nav>", FOOTER) if chrome else ("", "")
    return (f"<html><head>{head}<title>{title}</title></head>"
            f"<body>{chrome_open}<main>{main}</main>{chrome_close}</body></html>")


def response(body: str | bytes, content_type: str = "text/html; charset=utf-8", headers=()) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return http_response(data, headers=[("Content-Type", content_type), *headers])


def judged(raw: bytes, requested: str = URL, final: str | None = None) -> tuple[str, str]:
    verdict = judge_response(raw, requested, final or requested)
    return verdict.verdict, verdict.reason


PAYWALL_MARKUP = ('<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle", '
                  '"headline": "Budget", "isAccessibleForFree": {free}}}</script>')
CONSENT_PROMPT = ("<h2>Before you continue</h2><p>We use cookies and data to deliver and maintain our services. If "
                  "you choose to Accept all, we will also use cookies and data to develop and improve new services."
                  "</p><button>Reject all</button><button>Accept all</button>")
SHORT_ARTICLE = ("The bakery on Mill Street reopened on Monday after a fire in March closed it for six weeks. Its "
                 "owner, Ana Ruiz, said the ovens were replaced and the shop was repainted by volunteers from the "
                 "neighbourhood. Bread is baked from five in the morning, and the cafe serves soup at lunch. The "
                 "council gave a grant of four thousand pounds towards the repairs, and the insurer paid the rest.")
HOME = response(html("Home | Daily News", f"<h1>Daily News</h1><p>{ARTICLE}</p>"))

NOT_CONTENT = [
    # soft 404s in other languages, as sites title and head them
    ("fr", response(html("Page introuvable - Le Journal", "<h1>Page introuvable</h1><p>Cette page n'existe pas.</p>")),
     "not-found"),
    ("de", response(html("Seite nicht gefunden | Zeitung", "<h1>Seite nicht gefunden</h1>")), "not-found"),
    ("de-error-code", response(html("Fehler 404 – Seite nicht gefunden", "<p>Zur Startseite</p>")), "not-found"),
    ("es", response(html("Página no encontrada", "<h1>Página no encontrada</h1>")), "not-found"),
    ("pt", response(html("Portal", "<h1>Página não encontrada</h1><p>Volte para a página inicial.</p>")), "not-found"),
    ("it", response(html("Pagina non trovata | Giornale", "<h1>Ops! Pagina non trovata</h1>")), "not-found"),
    ("nl", response(html("Pagina niet gevonden - Krant", "<p>Probeer te zoeken.</p>")), "not-found"),
    ("ru", response(html("Страница не найдена — Новости", "<h1>Страница не найдена</h1>")), "not-found"),
    ("uk", response(html("Новини", "<h1>Сторінку не знайдено</h1>")), "not-found"),
    ("pl", response(html("Nie znaleziono strony | Gazeta", "<h1>Błąd 404</h1>")), "not-found"),
    ("tr", response(html("Gazete", "<h1>Aradığınız sayfa bulunamadı</h1>")), "not-found"),
    ("ar", response(html("الصفحة غير موجودة | الجريدة", "<h1>عذراً، الصفحة غير موجودة</h1>")), "not-found"),
    ("zh", response(html("新闻网", "<h1>抱歉，您访问的页面不存在！</h1>")), "not-found"),
    ("ja", response(html("ニュース", "<h1>お探しのページは見つかりませんでした。</h1>")), "not-found"),
    ("zh-tiny-page", response(html("新闻网", "<p>页面不存在，请返回首页。</p>", chrome=False)), "not-found"),
    # the cited thing is gone, though the platform's page is there
    ("account-suspended", response(html("Profile / X", "<h1>Account suspended</h1><p>X suspends accounts "
                                        "which violate the X Rules.</p>")), "not-found"),
    ("account-does-not-exist", response(html("Profile / X", "<h1>This account doesn\u2019t exist</h1>"
                                             "<p>Try searching for another.</p>")), "not-found"),
    ("content-unavailable", response(html("Facebook", "<h1>This content isn't available right now</h1><p>When "
                                          "this happens, it's usually because the owner only shared it with a "
                                          "small group of people.</p>")), "not-found"),
    ("video-unavailable", response(html("YouTube", "<h1>Video unavailable</h1><p>This video is no longer available "
                                        "because the account associated with it has been terminated.</p>")),
     "not-found"),
    # WordPress's not-found page under the site's own name
    ("wordpress-oops", response(html("The Daily", "<h1>Oops! That page can\u2019t be found.</h1><p>It looks like "
                                     "nothing was found at this location. Maybe try a search?</p>")), "not-found"),
    # a refresh stands in for a redirect, and is judged by its target as a redirect is
    ("meta-refresh-404", response("<html><head><meta http-equiv='refresh' content='0;url=/404.html'><title>"
                                  "Redirecting…</title></head><body><p>Redirecting…</p></body></html>"), "not-found"),
    ("refresh-header-404", response("<p>Moved.</p>", headers=[("Refresh", "0; URL=/errors/not-found")]), "not-found"),
    ("meta-refresh-login", response("<html><head><meta http-equiv=refresh content=\"1; url='/login?next=/x'\">"
                                    "</head><body>Redirecting you</body></html>"), "login-wall"),
    # an error page sent under the cited file's type
    ("pdf-that-is-html", response("<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
                                  "</body></html>", "application/pdf"), "not-found"),
    ("image-that-is-html", response("<!DOCTYPE html><title>Error</title><p>Page not found.</p>", "image/png"),
     "not-found"),
    ("untyped-html", response("<html><head><title>404 Not Found</title></head></html>", ""), "not-found"),
    # gates: a consent wall, a sign-in by host, by path, and the email-first step of one
    ("google-consent", response(html("Before you continue to Google", "<h1>Before you continue to Google</h1><p>We "
                                     "use cookies and data to deliver and maintain Google services.</p><form "
                                     "action='https://consent.google.com/save' method=post><button>Reject all"
                                     "</button><button>Accept all</button></form>", chrome=False)), "login-wall"),
    ("json-not-found", response('{"error":"not_found","message":"Post not found"}', "application/json"), "not-found"),
    ("json-google-error", response('{"error":{"code":404,"message":"Requested entity was not found.",'
                                   '"status":"NOT_FOUND"}}', "application/json"), "not-found"),
    ("json-message", response('{"message":"Not Found","documentation_url":"https://docs.example/rest"}',
                              "application/json"), "not-found"),
    # a site's name before a colon, a tiny page opening with the code, a sign-in asked for mid-title
    ("site-colon-not-found", response(html("Example Times: Page not found", "<h1>Example Times</h1><p>Try the search box.</p>")),
     "not-found"),
    ("tiny-page-opening-with-404", response(html("Example", "<p>404. Nothing to see here, go back to the homepage.</p>",
                                                 chrome=False)), "not-found"),
    ("please-sign-in-mid-title", response(html("Welcome! Please sign in to continue", f"<form>{LOGIN_BOX}</form>"
                                               f"<p>{CHROME} {CHROME}</p>")), "login-wall"),
]

NOT_CONTENT += [
    # a paywalled article as publishers mark it for search engines, its opening shown
    ("paywall-teaser", response(html("Budget: what the minister hid | The Courier", "<h1>What the minister hid</h1>"
                                     "<p>The council voted on the budget after a long debate.</p>"
                                     "<div class=paywall>Subscribe to continue reading.</div>",
                                     head=PAYWALL_MARKUP.format(free='"False"'))), "login-wall"),
    ("paywalled-part-boolean", response(html("Budget | The Courier", "<h1>Budget</h1><p>The council voted.</p>",
                                             head=PAYWALL_MARKUP.format(free='true, "hasPart": {"@type": '
                                                                        '"WebPageElement", "isAccessibleForFree": '
                                                                        'false, "cssSelector": ".paywall"}'))),
     "login-wall"),
]
NOT_CONTENT += [
    # a bot defence's block page sent with status 200, as a page reads navigator.webdriver and answers
    ("automated-browsers-not-allowed", response(html("Daily Story", "<h1>Access denied</h1><p>Automated browsers are "
                                                     "not allowed on this site. Reference #18.2f3e</p>",
                                                     chrome=False)), "bot-wall"),
    ("akamai-access-denied", response(html("Access Denied", "<h1>Access Denied</h1><p>You don't have permission to "
                                           "access \"http://news.example/\" on this server.</p><p>Reference "
                                           "#18.2f3e1502.1733240000.5a1b2c</p>", chrome=False)), "bot-wall"),
    ("you-have-been-blocked", response(html("Daily Story", "<h1>Sorry, you have been blocked</h1><p>You are unable "
                                            "to access news.example</p>", chrome=False)), "bot-wall"),
]
NOT_CONTENT += [
    # a site's own cookie prompt in place of the article: its words and a button answering them
    ("consent-prompt", response(html("Before you continue", CONSENT_PROMPT, chrome=False)), "login-wall"),
    ("consent-prompt-role-buttons", response(html("Le Journal", "<h2>Vos choix</h2><p>Nous utilisons des cookies "
                                                  "pour mesurer l'audience.</p><div role=button><span>Tout accepter"
                                                  "</span></div><a role=button href=#>Paramétrer</a>")), "login-wall"),
    ("consent-prompt-input-button", response(html("Datenschutz", "<p>Wir brauchen Ihre Einwilligung.</p><form>"
                                                  "<input type=submit value='Alle akzeptieren'></form>",
                                                  chrome=False)), "login-wall"),
    # the prompt in a box of its own: beside it, the site's chrome, or a heading and a line, are no page
    ("consent-box-beside-the-chrome", response(html("The Courier", f"<div class=cmp>{CONSENT_PROMPT}</div>")),
     "login-wall"),
    ("consent-dialog-beside-a-line", response(html("The Courier", "<h1>Budget</h1><p>Subscribe to read the Courier "
                                                   "on any device.</p><div role=dialog aria-modal=true><div>"
                                                   f"{CONSENT_PROMPT}</div></div>", chrome=False)), "login-wall"),
    # a short article beside a prompt in no box of its own: the prompt may be the page, so a wall it is
    ("consent-prompt-in-no-box", response(html("Bakery reopens", f"<p>{SHORT_ARTICLE}</p>{CONSENT_PROMPT}",
                                               chrome=False)), "login-wall"),
]
NOT_CONTENT_PAGES = {name: raw for name, raw, _ in NOT_CONTENT}
MS_LOGIN = response(html("Sign in to your account", "<form method=post><div>Sign in</div><input type=email "
                         "name=loginfmt placeholder='Email, phone, or Skype'><input type=submit value=Next></form>",
                         chrome=False))
REDIRECTED = [
    # a deleted article sent to its site's home page
    ("deep-path-to-root", HOME, URL, "https://news.example/", "not-found"),
    ("slug-to-root-of-www", HOME, "http://news.example/deleted-story.html", "https://www.news.example/", "not-found"),
    ("language-article-to-root", HOME, "https://news.example/de/artikel-123", "https://news.example/", "not-found"),
    ("deep-path-to-language-root", HOME, URL, "https://news.example/en/", "not-found"),
    ("article-to-another-language-home", HOME, "https://news.example/de/artikel-123", "https://news.example/fr-ca/index.html",
     "not-found"),
    ("refresh-to-root", response("<meta http-equiv=refresh content='0; url=/'><p>Gone.</p>"), URL, URL, "not-found"),
    ("microsoft-login", MS_LOGIN, "https://intranet.example/sites/policy/report.docx",
     "https://login.microsoftonline.com/common/oauth2/authorize?client_id=x", "login-wall"),
    ("accounts-host", response(html("Google Accounts", "<p>Continue</p>")), URL,
     "https://accounts.example.com/?continue=x", "login-wall"),
    ("oauth-path", response(html("Example", "<p>Continue</p>")), URL, "https://news.example/oauth2/authorize?x=1",
     "login-wall"),
    ("email-first-step", MS_LOGIN, URL, URL, "login-wall"),
    ("consent-host", response(html("Before you continue", "<p>We use cookies.</p>")), URL,
     "https://consent.example.com/m?continue=x", "login-wall"),
]

CONTENT = [
    # a WebForms page: the whole page is one form, a staff login box in its header
    ("aspnet-whole-page-form", response("<html><head><title>Ministry of Health - Press release</title></head><body>"
                                        f"<form id='aspnetForm' method='post'><div class='login'>Staff login: "
                                        f"{LOGIN_BOX}</div><nav>{CHROME}</nav><h1>Press release: hospital funding"
                                        f"</h1><p>{ARTICLE}</p>{FOOTER}</form></body></html>")),
    # a short statement whose newsletter form keeps spam out with reCAPTCHA
    ("statement-with-recaptcha-form", response(html(
        "Statement on the flood response | Ministry",
        "<h1>Statement on the flood response</h1><p>" + "The ministry deployed rescue teams overnight. " * 18 + "</p>"
        "<form action=/subscribe><input type=email placeholder=Email><div class=g-recaptcha data-sitekey=x></div>"
        "<button>Subscribe</button></form>", chrome=False,
        head="<script src='https://www.google.com/recaptcha/api.js' async defer></script>"))),
    # a how-to whose title names the error it explains
    ("article-about-error-404", response(html("Error 404: what it means and how to fix it | WebHelp",
                                              "<h1>Error 404: what it means</h1><p>" + "A 404 error means the server "
                                              "could not find the requested page, and here is why. " * 12 + "</p>"))),
    ("article-titled-not-found", response(html("Not found: the hunt for MH370 | Long Read",
                                               "<h1>Not found: the hunt for MH370</h1><p>Ten years on.</p>"))),
    ("german-article-titled-not-found", response(html("Nicht gefunden: die Suche nach MH370 | Zeitung",
                                                      "<h1>Nicht gefunden: die Suche nach MH370</h1>"))),
    # a car, not a status code
    ("peugeot-404", response(html("Classic cars", "<h1>Peugeot 404 wins rally</h1><p>A 1968 Peugeot 404 won the "
                                  "heritage rally on Sunday, its owner said.</p>", chrome=False))),
    ("room-404", response(html("Room 404", "<p>The seminar moved to room 404 on the fourth floor.</p>", chrome=False))),
    # an article about signing in, with a login box in its header
    ("how-to-sign-in-article", response(html("How to sign in to government services safely | Guide",
                                             f"<div>{LOGIN_BOX}</div><h1>How to sign in</h1><p>{ARTICLE}</p>"))),
    ("sign-in-with-apple-article", response(html("Sign in with Apple: what changes | Tech", "<h1>What changes</h1>"
                                                 f"<p>{ARTICLE}</p><form><input type=email><button>Subscribe</button>"
                                                 "</form>"))),
    ("newsletter-box-on-short-page", response(html("Our newsletter | Ministry", "<p>Get the weekly briefing.</p><form>"
                                                   "<input type=email><button>Sign up</button></form>"))),
    # a refresh that is a page reloading itself, or one to where the page is
    ("live-blog-reloads-itself", response(html("Live: election night | News", f"<p>{ARTICLE}</p>",
                                               head="<meta http-equiv=refresh content='300; url=/'>"))),
    ("refresh-to-itself", response(html("Story | News", f"<p>{ARTICLE}</p>",
                                        head=f"<meta http-equiv=refresh content='0; url={URL}'>"))),
    ("a-real-pdf", response(b"%PDF-1.7\n" + b"\x00" * 64, "application/pdf")),
    ("a-page-sent-as-pdf-that-is-the-page", response(html("Annual report", f"<h1>Annual report</h1><p>{ARTICLE}</p>"),
                                                     "application/pdf")),
    ("json-data", response('{"error":null,"status":"ok","items":[{"title":"Budget passed"}]}', "application/json")),
    ("japanese-article-quoting-an-error", response(html("ニュース", "<h1>サイト障害</h1><p>" + "利用者には「ページが見つかりません」と"
                                                         "表示されたと市は発表した。復旧作業は続いている。" * 12 + "</p>",
                                                         chrome=False))),
    ("an-article-headed-not-found-colon", response(html("Not found: the hunt for MH370 | News", f"<p>{ARTICLE}</p>"))),
]

CONTENT += [
    # a metered wall: marked paywalled, but the whole article was served to this reader
    ("metered-article-whole", response(html("Budget | The Courier", f"<h1>Budget</h1><p>{ARTICLE}</p><p>{ARTICLE}</p>",
                                            head=PAYWALL_MARKUP.format(free='"False"')))),
    ("short-article-marked-free", response(html("Budget | The Courier", "<h1>Budget</h1><p>The council voted.</p>",
                                                head=PAYWALL_MARKUP.format(free="true")))),
    ("paywall-words-in-a-script-not-json-ld", response(html("Budget | The Courier", "<p>The council voted.</p>",
                                                            head='<script>var x = {"isAccessibleForFree": false};'
                                                                 '</script>'))),
]
CONTENT += [
    # an article about bot defences, quoting what their block pages say
    ("article-quoting-a-block-page", response(html("Bots and the news | The Courier", "<h1>Bots and the news</h1><p>"
                                                   "Some sites now answer: \u201cAutomated browsers are not allowed on "
                                                   f"this site.\u201d</p><p>{ARTICLE}</p>"))),
]
CONTENT += [
    # an article under a consent banner; a short recipe with cookies in it and no prompt to answer
    ("article-under-a-consent-banner", response(html("Budget | The Courier", f"<h1>Budget</h1><p>{ARTICLE}</p>"
                                                     f"<div class=cmp>{CONSENT_PROMPT}</div>"))),
    ("short-recipe-about-cookies", response(html("Oat cookies", "<h1>Oat cookies</h1><p>Bake the cookies for twelve "
                                                 "minutes.</p><button>Print</button><button>Save</button>",
                                                 chrome=False))),
]
CONTENT_PAGES = dict(CONTENT)
CONTENT_REDIRECTED = [
    ("http-to-https-same-path", "http://news.example/2024/05/story-slug", URL),
    ("root-to-https-root", "http://news.example/", "https://news.example/"),
    ("index-page-to-root", "https://news.example/index.html", "https://news.example/"),
    ("language-home-to-root", "https://news.example/en", "https://news.example/"),
    ("section-to-root", "https://news.example/news", "https://news.example/"),
    ("short-link-to-another-site", "https://sho.rt/abc123", "https://news.example/"),
    ("login-host-cited-itself", "https://accounts.example.com/docs/recovery", "https://accounts.example.com/docs/help"),
]


@pytest.mark.parametrize("raw, expected", [pytest.param(raw, expected, id=name) for name, raw, expected in NOT_CONTENT])
def test_a_page_that_is_not_the_cited_content_is_not_called_content(raw, expected):
    assert judged(raw)[0] == expected, judged(raw)


@pytest.mark.parametrize("raw, requested, final, expected",
                         [pytest.param(*case[1:], id=case[0]) for case in REDIRECTED])
def test_where_a_page_landed_can_say_it_is_not_the_cited_content(raw, requested, final, expected):
    assert judged(raw, requested, final)[0] == expected, judged(raw, requested, final)


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw in CONTENT])
def test_content_is_not_called_a_wall_or_not_found(raw):
    assert judged(raw) == ("content", "")


@pytest.mark.parametrize("requested, final", [pytest.param(*case[1:], id=case[0]) for case in CONTENT_REDIRECTED])
def test_a_redirect_to_where_the_page_is_stays_content(requested, final):
    assert judged(HOME, requested, final) == ("content", "")


@pytest.mark.parametrize("language, phrase", [(language, phrase) for language, phrases in NOT_FOUND_PHRASES.items()
                                              for phrase in phrases])
def test_every_phrase_of_the_table_is_matched_as_a_heading(language, phrase):
    """The table is compared as it is written: a phrase with a capital or a stop never matched."""
    assert judged(response(html("The Daily", f"<h1>{phrase.capitalize()}.</h1>")))[0] == "not-found"


@pytest.mark.parametrize("shown", ["Loading...", "Loading article…", "Please wait", "Loading, please wait…",
                                   "Chargement…", "加载中"])
def test_a_page_that_only_ever_shows_a_loading_placeholder_is_empty(shown):
    """Its script's content never came (an API that answered 404): a spinner is not the cited page."""
    shell = response(html("Daily News", f"<div id=app><div class=spinner><svg></svg>{shown}</div></div>"
                                        "<script>fetch('/api/missing.json')</script>", chrome=False))
    assert judged(shell) == ("empty", f"the page never finished loading: all it shows is {shown!r}")


def test_a_captcha_with_only_hidden_fields_in_its_form_is_still_a_challenge():
    challenge = response(html("www.example", "<form id=captcha-form method=post><div class=g-recaptcha "
                              "data-sitekey=x></div><input type=hidden name=continue value=/x></form>", chrome=False))
    assert judged(challenge) == ("bot-wall", "a challenge in the page (g-recaptcha)")


def test_a_declarative_shadow_roots_text_is_seen_and_an_inert_templates_is_not():
    """A browser capture's DOM holds open shadow roots as declarative ones: their article is the page's."""
    shadow = f'<news-article><template shadowrootmode="open"><h1>Story</h1><p>{ARTICLE}</p></template></news-article>'
    assert judged(response(html("Story", shadow, chrome=False))) == ("content", "")
    inert = f"<template><p>{ARTICLE}</p></template><template shadowrootmode=open><template><p>{ARTICLE}</p>" \
            "</template></template>"
    assert judged(response(html("Story", inert, chrome=False))) == ("empty", "no visible text and no media")


@pytest.mark.parametrize("box", ["<div id=cookie-banner><div class=inner>{}</div></div>", "<dialog open>{}</dialog>",
                                 "<section style='position: fixed; bottom: 0'>{}</section>",
                                 "<div role=dialog>{}</div>", "<cmp-banner>{}</cmp-banner>"])
def test_a_short_page_beside_a_consent_banner_in_a_box_of_its_own_is_content_and_the_banner_noted(box):
    """Its words outside the banner's box, its heading and paragraph, are the page (QA: such a page
    of 70 words was a login-wall); the reason says a banner was shown and how much is the page's own."""
    page = response(html("Bakery reopens", f"<nav><a href=/>Home</a> <a href=/news>News</a></nav>"
                                           f"<h1>Bakery reopens</h1><p>{SHORT_ARTICLE}</p>{box.format(CONSENT_PROMPT)}"
                                           "<footer>Contact us</footer>", chrome=False))
    name = re.match(r"<([\w-]+)(?: (id|class)=([\w-]+))?", box)
    shown = name.group(1) + (f"#{name.group(3)}" if name.group(2) == "id" else "")
    assert judged(page) == ("content", f"a consent banner was shown ({shown}: 'Reject all' beside 'before you "
                                       "continue'); the page's own text beside it, 72 words, is judged without it")


def test_the_reasons_name_what_decided():
    assert judged(NOT_CONTENT_PAGES["consent-prompt"])[1] == ("a consent prompt in place of the content "
                                                              "('Reject all' beside 'before you continue')")
    assert judged(HOME, URL, "https://news.example/")[1] == ("redirected from /2024/05/story-slug to the site's home "
                                                             "page (https://news.example/): the capture shows that home, not the cited page")
    assert judged(NOT_CONTENT_PAGES["refresh-header-404"])[1] == (
        "sent by a refresh to a not-found page (https://news.example/errors/not-found)")
    assert judged(NOT_CONTENT_PAGES["pdf-that-is-html"])[1] == ("status 200 but the page says '404 Not Found' "
                                             "(an HTML page sent as application/pdf)")


def test_a_deleted_article_and_an_error_sent_as_a_pdf_are_broken_end_to_end(run_cli, collection, raw_server, tmp_path):
    """Captured from a loopback origin: the deleted story sent home and the PDF that is an error
    page are listed by claims --broken; the WebForms press release and the statement are not."""
    pages = {"/2024/05/story-slug": redirect("/"), "/": send_bytes(HOME),
             "/report.pdf": send_bytes(NOT_CONTENT_PAGES["pdf-that-is-html"]),
             "/meta-refresh": send_bytes(NOT_CONTENT_PAGES["meta-refresh-404"]),
             "/press-release": send_bytes(CONTENT_PAGES["aspnet-whole-page-form"]),
             "/statement": send_bytes(CONTENT_PAGES["statement-with-recaptcha-form"])}
    server = raw_server(pages)
    cited = [path for path in pages if path != "/"]
    document = tmp_path / "story.md"
    document.write_text("".join(f"Claim {i} [source]({server.url(path)}).\n\n" for i, path in enumerate(cited)))
    result = run_cli("capture", "-C", collection.root, document, "--json")
    assert result.exit_code == 0, result.output
    verdicts = {c["url"].removeprefix(server.url("/")[:-1]): (c["verdict"], c["verdict_reason"])
                for c in json.loads(result.stdout)["captures"]}
    assert verdicts == {
        "/2024/05/story-slug": ("not-found", f"redirected from /2024/05/story-slug to the site's home page "
                                             f"({server.url('/')}): the capture shows that home, not the cited page"),
        "/report.pdf": ("not-found", "status 200 but the page says '404 Not Found' (an HTML page sent as application/pdf)"),
        "/meta-refresh": ("not-found", f"sent by a refresh to a not-found page ({server.url('/404.html')})"),
        "/press-release": ("content", ""), "/statement": ("content", "")}
    broken = json.loads(run_cli("claims", "-C", collection.root, "--broken", "--json").stdout)
    assert sorted(c["citations"][0]["url"] for c in broken) == sorted(
        server.url(path) for path in ("/2024/05/story-slug", "/report.pdf", "/meta-refresh"))


def test_a_redirect_near_the_root_captured_end_to_end_stays_content(collection, raw_server):
    server = raw_server({"/index.html": redirect("/"), "/": send_bytes(HOME)})
    [row] = capture(collection, server.url("/index.html"))
    assert (row.verdict, row.final_url) == ("content", server.url("/"))
