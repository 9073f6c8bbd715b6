"""What a screenshot does not show as the page holds it, captured in real Chromium end to end:
a cookie prompt in place of the article is a login-wall; a cookie overlay over the article, or a
banner beside a short one, leaves it content, but the capture notes the overlay the screenshot
shows, a consent prompt's or another's (nothing is clicked or removed); an app whose <body> does not scroll, its article in an inner scroll container,
gets a note that the screenshot holds only that box's first screen, naming its content's height."""

from __future__ import annotations

import json
import re

from tests.conftest import http_response, warc_records
from tests.test_browser_pages import _serve, chromium  # noqa: F401

NO_ICON = '<meta charset=utf-8><link rel="icon" href="data:,">'
ARTICLE = "<h1>Minister says X</h1><p>" + "The minister said X on Monday. " * 60 + "</p>"
SHORT_ARTICLE = ("The bakery on Mill Street reopened on Monday after a fire in March closed it for six weeks. Its "
                 "owner, Ana Ruiz, said the ovens were replaced and the shop was repainted by volunteers from the "
                 "neighbourhood. Bread is baked from five in the morning, and the cafe serves soup at lunch. The "
                 "council gave a grant of four thousand pounds towards the repairs, and the insurer paid the rest.")
PROMPT = ("<h2>We value your privacy</h2><p>We and our partners use cookies. Accept all cookies to continue.</p>"
          "<button onclick=\"this.parentNode.remove()\">Accept all</button>")
PAGES = {
    # the QA's pages: a prompt and nothing else; the same over the article, covering the window
    "/consentwall": "<title>Before you continue</title><body><div class=consent-wall><h2>Before you continue</h2>"
                    "<p>We use cookies and data to deliver and maintain our services. If you choose to Accept all, "
                    "we will also use cookies and data to develop and improve new services.</p><button>Reject all"
                    "</button><button>Accept all</button></div></body>",
    "/overlay": f"<title>News article</title><body>{ARTICLE}<div id=cmp style='position:fixed;inset:0;"
                f"background:rgba(0,0,0,.85);color:#fff;z-index:9;padding:40px'>{PROMPT}</div></body>",
    # a banner along the bottom, a fixed header: the article is what the first screen shows
    "/banner": f"<title>News article</title><body><header style='position:sticky;top:0;background:#fff'>The Courier"
               f"</header>{ARTICLE}<div id=cmp style='position:fixed;left:0;right:0;bottom:0;height:120px;"
               f"background:#333;color:#fff'>{PROMPT}</div></body>",
    # an app's frame, fixed over the whole window, that holds the article and a line on cookies
    "/shell": f"<title>News app</title><body><div id=app style='position:fixed;inset:0;overflow:auto'>{ARTICLE}"
              "<footer>We use cookies. <button>Accept</button></footer></div></body>",
    # a prompt in a custom element's open shadow root, fixed over the article
    "/shadow-overlay": f"<title>News article</title><body>{ARTICLE}<cmp-dialog id=cmp style='position:fixed;inset:0;"
                       "background:#000;color:#fff'></cmp-dialog><script>document.getElementById('cmp')"
                       f".attachShadow({{mode: 'open'}}).innerHTML = `{PROMPT}`</script></body>",
    "/innerscroll": "<title>App</title><style>html,body{margin:0;height:100%;overflow:hidden}#main{height:100%;"
                    "overflow:auto}</style><body><div id=main><h1>INNER SCROLL ARTICLE</h1>" +
                    "".join(f"<p style='height:300px'>PARAGRAPH {i}: the minister said X.</p>" for i in range(30)) +
                    "<p>LAST PARAGRAPH OF THE ARTICLE</p></div></body>",
    "/plain": f"<title>News article</title><body>{ARTICLE}</body>",
    # a short article of the site's, a consent banner in a fixed box along the bottom
    "/short-banner": f"<title>Bakery reopens</title><body><nav><a href=/>Home</a> <a href=/news>News</a></nav>"
                     f"<h1>Bakery reopens</h1><p>{SHORT_ARTICLE}</p><div id=cookie-banner style='position:fixed;"
                     f"left:0;right:0;bottom:0;background:#333;color:#fff'>{PROMPT}</div></body>",
    # the site's chrome around a consent dialog, its article loaded only once the reader answers
    "/consent-dialog": "<title>The Courier</title><body><header><nav>" + "".join(
        f"<a href=/s{i}>Section {i}</a> " for i in range(15)) + "</nav></header><div role=dialog aria-modal=true "
        f"style='position:fixed;inset:0;background:#fff'>{PROMPT}</div><footer>" + "".join(
        f"<a href=/f{i}>Footer link {i}</a> " for i in range(10)) + "</footer></body>",
    # a newsletter sign-up over the article, no consent words in it
    "/newsletter": f"<title>News article</title><body>{ARTICLE}<div id=signup style='position:fixed;inset:0;"
                   "background:rgba(0,0,0,.85);color:#fff;z-index:9;padding:40px'><h2>Get the Courier every "
                   "morning</h2><p>The news of the day in your inbox.</p><input type=email><button>Subscribe</button>"
                   "</div></body>",
    # a paywall: the page says it is not free to read, shows the opening, and a box to subscribe over it
    "/paywall": '<title>Budget</title><script type="application/ld+json">{"@type": "NewsArticle", '
                '"isAccessibleForFree": false}</script><body><h1>Minister says X</h1><p>'
                + "The minister said X on Monday. " * 8 + "</p><div class=paywall style='position:fixed;inset:0;"
                "background:rgba(255,255,255,.95)'><h2>Subscribe to keep reading</h2><button>Subscribe</button></div>"
                "</body>",
}
OVERLAY_NOTE = re.compile(r"screenshot: a cookie or consent overlay \((?:div|cmp-dialog)#cmp, position: fixed, "
                          r"'your privacy' in its text: 'We value your privacy .*'\) covers (\d+)% of the first "
                          r"screen; the screenshot shows it over the page, as a reader first saw it")
OTHER_OVERLAY_NOTE = re.compile(r"screenshot: an overlay \((div#signup|div\.paywall), position: fixed, its text: "
                                r"'(Get the Courier every morning The news of the day in your|Subscribe to "
                                r"keep reading Subscribe)'\) covers (\d+)% of the first screen; the screenshot shows it "
                                r"over the page, as a reader first saw it")
INNER_NOTE = re.compile(r"screenshot: shows only the first 800 px of an inner scroll container \(div#main\) whose "
                        r"content is (\d+) px high; the rest is in the DOM, not in the screenshot")


def _captured(run_cli, collection, server, paths: list[str]) -> dict[str, dict]:
    """The pages at `paths` captured in one run: each one's entry in the run's JSON and its metadata."""
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", *map(server.url, paths))
    assert result.exit_code == 0, result.output
    entries = {c["url"]: c for c in json.loads(result.stdout)["captures"]}
    metadata = {json.loads(r.block)["requested_url"]: json.loads(r.block) for r in warc_records(collection.storage.folder)
                if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"}
    return {path: entries[server.url(path)] | {"notes": metadata[server.url(path)]["page"]["notes"]} for path in paths}


def _screenshot_notes(page: dict) -> list[str]:
    return [note for note in page["notes"] if note.startswith("screenshot:")]


def _origin(raw_server):
    return _serve(raw_server, {path: http_response(f"<!doctype html>{NO_ICON}{page}".encode())
                               for path, page in PAGES.items()})


def test_a_consent_prompt_is_a_wall_and_a_consent_overlay_over_the_article_is_noted(
        run_cli, raw_server, collection, chromium, network_sandbox):
    pages = _captured(run_cli, collection, _origin(raw_server), ["/consentwall", "/overlay", "/shadow-overlay",
                                                                   "/banner", "/shell", "/plain"])
    wall = pages["/consentwall"]
    assert (wall["verdict"], wall["verdict_reason"]) == (
        "login-wall", "a consent prompt in place of the content ('Reject all' beside 'before you continue')"), wall
    for path in ("/overlay", "/shadow-overlay"):
        assert pages[path]["verdict"] == "content", pages[path]
        [note] = _screenshot_notes(pages[path])
        assert (found := OVERLAY_NOTE.fullmatch(note)) and int(found.group(1)) > 90, note
    for path in ("/banner", "/shell", "/plain"):  # covering little of the window, or holding the page: not noted
        assert pages[path]["verdict"] == "content", pages[path]
        assert not _screenshot_notes(pages[path]), pages[path]
    assert network_sandbox == []


def test_a_short_page_beside_a_consent_banner_is_content_and_any_overlay_over_the_first_screen_is_noted(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """QA: a short article under a cookie banner was a login-wall, and a newsletter or paywall box
    over the first screen went unnoted. A consent dialog amid the site's chrome alone is still the
    prompt in place of the article, and a paywall is still a wall, its box noted as well."""
    pages = _captured(run_cli, collection, _origin(raw_server), ["/short-banner", "/consent-dialog", "/newsletter",
                                                                   "/paywall"])
    short = pages["/short-banner"]
    assert (short["verdict"], short["verdict_reason"]) == (
        "content", "a consent banner was shown (div#cookie-banner: 'Accept all' beside 'your privacy'); the page's "
                   "own text beside it, 72 words, is judged without it"), short
    assert not _screenshot_notes(short), short  # a banner along the bottom covers little of the window
    dialog = pages["/consent-dialog"]
    assert (dialog["verdict"], dialog["verdict_reason"]) == (
        "login-wall", "a consent prompt in place of the content ('Accept all' beside 'your privacy')"), dialog
    assert pages["/newsletter"]["verdict"] == "content", pages["/newsletter"]
    assert pages["/paywall"]["verdict"] == "login-wall", pages["/paywall"]
    assert pages["/paywall"]["verdict_reason"].startswith("a paywall: "), pages["/paywall"]
    for path, name in (("/newsletter", "div#signup"), ("/paywall", "div.paywall")):
        [note] = _screenshot_notes(pages[path])
        found = OTHER_OVERLAY_NOTE.fullmatch(note)
        assert found and found.group(1) == name and int(found.group(3)) > 90, note
    assert network_sandbox == []


def test_an_article_in_an_inner_scroll_container_is_noted_as_shown_only_in_part(
        run_cli, raw_server, collection, chromium, network_sandbox):
    pages = _captured(run_cli, collection, _origin(raw_server), ["/innerscroll", "/plain"])
    app = pages["/innerscroll"]
    assert app["verdict"] == "content", app
    [note] = _screenshot_notes(app)
    assert (found := INNER_NOTE.fullmatch(note)) and int(found.group(1)) > 9000, note
    assert not _screenshot_notes(pages["/plain"]), pages["/plain"]
    assert network_sandbox == []
