"""What a screenshot does not show as the page holds it, captured in real Chromium end to end:
a cookie prompt in place of the article is a login-wall; a cookie overlay over the article
leaves it content, but the capture notes the overlay the screenshot shows (nothing is clicked
or removed); an app whose <body> does not scroll, its article in an inner scroll container,
gets a note that the screenshot holds only that box's first screen, naming its content's height."""

from __future__ import annotations

import json
import re

from tests.conftest import http_response, warc_records
from tests.test_browser_pages import _serve, chromium  # noqa: F401

NO_ICON = '<meta charset=utf-8><link rel="icon" href="data:,">'
ARTICLE = "<h1>Minister says X</h1><p>" + "The minister said X on Monday. " * 60 + "</p>"
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
}
OVERLAY_NOTE = re.compile(r"screenshot: a cookie or consent overlay \((?:div|cmp-dialog)#cmp, position: fixed, "
                          r"'your privacy' in its text: 'We value your privacy .*'\) covers (\d+)% of the first "
                          r"screen; the screenshot shows it over the page, as a reader first saw it")
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


def test_an_article_in_an_inner_scroll_container_is_noted_as_shown_only_in_part(
        run_cli, raw_server, collection, chromium, network_sandbox):
    pages = _captured(run_cli, collection, _origin(raw_server), ["/innerscroll", "/plain"])
    app = pages["/innerscroll"]
    assert app["verdict"] == "content", app
    [note] = _screenshot_notes(app)
    assert (found := INNER_NOTE.fullmatch(note)) and int(found.group(1)) > 9000, note
    assert not _screenshot_notes(pages["/plain"]), pages["/plain"]
    assert network_sandbox == []
