"""Page verdicts: a capture that worked is not the same as a page that is there. Every fixture
page is served by a real origin on 127.0.0.1 and captured; the near-misses must stay content."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib

import pytest

from archiver.capture.httpbody import MAX_TEXT_BYTES, decode_response, page_title
from tests.conftest import capture, http_response, redirect, send_bytes, warc_records

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)

ARTICLE = " ".join(f"The council met on Tuesday and word{i} was said." for i in range(60))
NAV = "<nav><a href='/'>Home</a> <a href='/news'>News</a> <a href='/about'>About us</a></nav>"


def html(body: str, title: str = "The Daily Loop", status: str = "200 OK", headers=()) -> bytes:
    page = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()
    return http_response(page, status, [("Content-Type", "text/html; charset=utf-8"), *headers])


LOGIN_FORM = ("<form action='/session' method='post'><label>Email <input name='email'></label>"
              "<label>Password <input type='password' name='password'></label><button>Sign in</button></form>")

PAGES = {
    # content, and near-misses that must stay content
    "/article": (html(f"{NAV}<h1>Budget passed</h1><p>{ARTICLE}</p>"), "content"),
    "/about-captchas": (html(f"{NAV}<h1>Why CAPTCHAs fail</h1><p>A CAPTCHA asks: are you a robot? "
                             f"Sites embed it as <code>&lt;div class=\"g-recaptcha\"&gt;</code>. {ARTICLE}</p>",
                             title="How CAPTCHAs work | The Daily Loop"), "content"),
    "/header-login": (html(f"<header>{NAV}{LOGIN_FORM}</header><h1>Budget passed</h1><p>{ARTICLE}</p>"), "content"),
    "/mentions-not-found": (html(f"{NAV}<h1>Server logs</h1><p>The error page not found appeared in logs when "
                                 "the old archive could not be found by the crawler, the council said on Tuesday "
                                 "after a review of the site. The review found nothing missing from the minutes, "
                                 "and the budget documents remain online for anyone who wants to read them in "
                                 "full. The clerk said the warning was harmless and would be fixed in the next "
                                 "release of the council's website, due later this spring.</p>"), "content"),
    "/photo-only": (html("<img src='/photo.jpg' alt=''>"), "content"),
    "/report.pdf": (http_response(b"%PDF-1.7\n" + b"\x00" * 64, headers=[("Content-Type", "application/pdf")]), "content"),
    # http-error
    "/missing": (html("<h1>Not Found</h1>", status="404 Not Found"), "http-error"),
    "/broken": (html("<p>Internal error</p>", status="500 Internal Server Error"), "http-error"),
    # a redirect without a Location to follow: the chain ends on it, short of the page
    "/nowhere": (html(f"{NAV}<h1>Moved</h1><p>{ARTICLE}</p>", status="302 Found"), "http-error"),
    # not-found: status 200, a page saying it does not exist
    "/soft-404": (html(f"{NAV}<h1>Sorry!</h1><p>We looked everywhere.</p>", title="Page not found | The Daily Loop"),
                  "not-found"),
    "/soft-404-heading": (html(f"{NAV}<h1>This page does not exist</h1><p>Try the search.</p>"), "not-found"),
    # with the typographer's apostrophe a CMS writes (it used to stay content)
    "/soft-404-curly": (html(f"{NAV}<h1>Oops! That page can\u2019t be found.</h1>", title="The page can\u2019t be found"),
                        "not-found"),
    "/soft-404-curly-words": (html(f"{NAV}<p>Oops! That page can\u2019t be found.</p>", title="The Daily Loop"), "not-found"),
    # a head whose lines end in a bare LF, as http.client (and browsers) accept
    "/soft-404-bare-lf": (html(f"{NAV}<h1>This page does not exist</h1>").replace(b"\r\n", b"\n"), "not-found"),
    # bot-wall
    "/cloudflare": (html("<div id='challenge-running'>Checking if the site connection is secure</div>"
                         "<script src='/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1'></script>",
                         title="Just a moment...", status="403 Forbidden", headers=[("cf-mitigated", "challenge")]),
                    "bot-wall"),
    "/recaptcha": (html("<p>Please confirm you are not a robot.</p><div class='g-recaptcha' data-sitekey='x'></div>",
                        title="Security check"), "bot-wall"),
    "/rate-limited": (html("<p>Our systems have detected unusual traffic from your network.</p>",
                           title="Sorry...", status="429 Too Many Requests"), "bot-wall"),
    # login-wall
    "/private": (redirect("/login?next=/private"), "login-wall"),
    "/login?next=/private": (html(f"{NAV}{LOGIN_FORM}", title="Sign in"), None),
    "/members": (html(f"{NAV}<h1>Members only</h1>{LOGIN_FORM}"), "login-wall"),
    "/basic-auth": (http_response(b"", "401 Unauthorized", [("WWW-Authenticate", 'Basic realm="x"')]), "login-wall"),
    "/profile": (redirect("/authwall?trk=x"), "login-wall"),  # as LinkedIn sends a reader it has not signed in
    "/authwall?trk=x": (html(f"{NAV}<h1>Join now</h1><p>{ARTICLE}</p>"), None),
    # not found at the end of a redirect, or in plain text (each used to stay content)
    "/old-story": (redirect("/404.html"), "not-found"),
    "/404.html": (html(f"{NAV}<h1>Looking for something?</h1><p>Try the search.</p>"), None),
    "/plain-gone": (http_response(b"Not Found", headers=[("Content-Type", "text/plain")]), "not-found"),
    # empty
    "/blank": (html(""), "empty"),
    "/no-body": (http_response(b"", headers=[("Content-Type", "text/html")]), "empty"),
}


@pytest.fixture
def origin(raw_server):
    return raw_server({path: page if callable(page) else send_bytes(page) for path, (page, _) in PAGES.items()})


def test_each_fixture_page_gets_its_verdict_and_near_misses_stay_content(collection, origin):
    judged = [path for path, (_, expected) in PAGES.items() if expected]
    rows = capture(collection, *(origin.url(path) for path in judged))
    got = {row.url.removeprefix(origin.url("/")[:-1]): row.verdict for row in rows}
    assert got == {path: PAGES[path][1] for path in judged}
    reasons = {row.url.rsplit("/", 1)[1]: row.verdict_reason for row in rows}
    assert reasons["missing"] == "HTTP 404" and reasons["broken"] == "HTTP 500"
    assert reasons["nowhere"] == "HTTP 302: a redirect with no Location to follow"
    assert "/login" in reasons["private"] and reasons["article"] == ""
    assert all(row.outcome == "ok" for row in rows)  # the transport worked every time


def test_verdicts_never_change_the_stored_bytes(collection, origin):
    [row] = capture(collection, origin.url("/cloudflare"))
    response = next(r for r in warc_records(collection.storage.folder) if r.type == "response")
    assert response.block == PAGES["/cloudflare"][0]
    assert row.verdict == "bot-wall"


def test_a_gzip_chunked_page_is_judged_on_its_decoded_text(collection, raw_server):
    body = gzip.compress(b"<html><title>404 - Page not found</title><body><p>Gone.</p></body></html>")
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    server = raw_server({"/": send_bytes(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                                         b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)})
    [row] = capture(collection, server.url("/"))
    assert (row.verdict, row.outcome) == ("not-found", "ok")


def test_a_page_encoded_twice_is_judged_on_its_decoded_text(collection, raw_server):
    """Content-Encoding: gzip, gzip was judged on its still-compressed bytes, and called content."""
    body = gzip.compress(gzip.compress(b"<html><title>404 - Page not found</title><body><p>Gone.</p></body></html>"))
    server = raw_server({"/": send_bytes(http_response(body, headers=[("Content-Type", "text/html"),
                                                                      ("Content-Encoding", "gzip, gzip")]))})
    [row] = capture(collection, server.url("/"))
    assert (row.verdict, row.outcome) == ("not-found", "ok")


def test_a_body_that_cannot_be_decoded_is_said_to_be_so_not_to_be_no_body(collection, raw_server):
    # A gzip header over bytes that are no deflate, cut short by the server's hang-up.
    body = b"\x1f\x8b\x08\x00" + b"x" * 21
    sent = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: 100\r\n\r\n" + body
    server = raw_server({"/": send_bytes(sent)})
    [row] = capture(collection, server.url("/"))
    assert (row.outcome, row.truncated, row.verdict) == ("truncated", "disconnect", "empty")
    assert row.verdict_reason == ("a body of 25 bytes that cannot be decoded as its Content-Encoding (gzip) says: "
                                  "nothing of it can be read")


def test_an_unasked_for_304_is_called_what_it_is(collection, raw_server):
    server = raw_server({"/": send_bytes(b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")})
    [row] = capture(collection, server.url("/"))
    assert (row.outcome, row.http_status, row.verdict) == ("ok", 304, "http-error")
    assert row.verdict_reason == ("HTTP 304: Not Modified, to a request that asked for no revalidation "
                                  "(it named no copy to compare): the server sent no page")


def test_a_page_in_raw_deflate_is_judged_on_its_decoded_text(collection, raw_server):
    # Content-Encoding: deflate means zlib-wrapped, but servers send bare deflate too (as
    # browsers accept): judged as neither, the page looked empty.
    deflater = zlib.compressobj(wbits=-15)
    body = deflater.compress(b"<html><title>Page not found</title><body><p>Gone.</p></body></html>") + deflater.flush()
    server = raw_server({"/": send_bytes(http_response(body, headers=[("Content-Type", "text/html"),
                                                                       ("Content-Encoding", "deflate")]))})
    [row] = capture(collection, server.url("/"))
    assert (row.verdict, row.outcome) == ("not-found", "ok")


def test_a_page_in_brotli_is_judged_on_its_decoded_text_within_bounds(collection, raw_server):
    # Sent br (as servers do to browsers, and a few unasked): judged on the bytes as sent, a
    # soft 404 was taken for content. A brotli bomb is read only up to the bound.
    import brotlicffi
    soft_404 = brotlicffi.compress(b"<html><title>Page not found</title><body><p>Gone.</p></body></html>")
    bomb = brotlicffi.compress(b"<html><body><p>" + b"word " * (2 * MAX_TEXT_BYTES), quality=1)
    served = {path: send_bytes(http_response(body, headers=[("Content-Type", "text/html"), ("Content-Encoding", "br")]))
              for path, body in (("/gone", soft_404), ("/bomb", bomb))}
    server = raw_server(served)
    gone, bombed = capture(collection, server.url("/gone"), server.url("/bomb"))
    assert (gone.verdict, gone.outcome) == ("not-found", "ok")
    assert (bombed.verdict, bombed.outcome) == ("content", "ok")
    assert len(decode_response(http_response(bomb, headers=[("Content-Encoding", "br")])).body) == MAX_TEXT_BYTES


@pytest.mark.parametrize("charset, declared", [
    ("windows-1252", "Content-Type"), ("iso-8859-1", "Content-Type"), ("windows-1252", "meta"), ("utf-16", "BOM")])
def test_a_page_is_read_in_the_encoding_a_browser_reads_it_in(collection, raw_server, charset, declared):
    """A soft 404 in windows-1252 (its dash byte 0x96) read as UTF-8 was judged content, and its
    title garbled in every report: the charset of the header, of a <meta>, or a byte order mark decides."""
    title = "Page not found \u2013 The Daily Loop"
    page = f"<!doctype html><html><head>{{meta}}<title>{title}</title></head><body><p>Try the home page.</p></body></html>"
    meta = f"<meta charset='{charset}'>" if declared == "meta" else ""
    body = page.format(meta=meta).encode("utf-16" if charset == "utf-16" else "cp1252")
    content_type = "text/html" if declared != "Content-Type" else f"text/html; charset={charset}"
    server = raw_server({"/gone": send_bytes(http_response(body, headers=[("Content-Type", content_type)]))})
    [row] = capture(collection, server.url("/gone"))
    assert row.verdict == "not-found", (row.verdict, row.verdict_reason)
    [response] = [r for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert page_title(response.block) == title


def test_a_title_holding_markup_is_read_as_a_browser_reads_it(collection, raw_server):
    """A <title> is text up to its end tag, character references decoded: a browser shows the
    tags in it as written, so the title a bundle's report gives must be that text, not none."""
    body = b"<html><head><title><img src=x onerror=alert(1)> &amp; <b>bold</b></title></head><body><p>Text</p></body></html>"
    server = raw_server({"/t": send_bytes(http_response(body, headers=[("Content-Type", "text/html")]))})
    capture(collection, server.url("/t"))
    [response] = [r for r in warc_records(collection.storage.folder) if r.type == "response"]
    assert page_title(response.block) == "<img src=x onerror=alert(1)> & <b>bold</b>"


def test_a_failed_capture_has_no_verdict(collection, closed_port, raw_server):
    # A chain that failed after a redirect ends on that redirect, never on a page to judge.
    moved = html(f"<p>{ARTICLE}</p>", status="302 Found", headers=[("Location", "/away")])
    server = raw_server({"/hop": send_bytes(moved), "/away": redirect("/hop")})
    rows = capture(collection, f"http://127.0.0.1:{closed_port}/", server.url("/hop"))
    assert [(row.outcome, row.verdict, row.verdict_reason) for row in rows] == [("failed", None, None)] * 2
    assert "redirect loop" in rows[1].error


def _statement(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))


def test_the_verdict_goes_everywhere_through_archiver_capture(run_cli, collection, origin, tmp_path):
    document = tmp_path / "story.md"
    document.write_text(f"The budget passed [source]({origin.url('/article')}).\n\n"
                        f"The minister resigned [memo]({origin.url('/missing')}).\n\n"
                        f"The members agreed [minutes]({origin.url('/private')}).\n")
    result = run_cli("capture", "-C", collection.root, document, "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    by_url = {c["url"]: c for c in done["captures"]}
    assert by_url[origin.url("/missing")]["verdict"] == "http-error"
    assert done["verdicts"] == {"content": 1, "http-error": 1, "login-wall": 1}

    records = warc_records(collection.storage.folder)
    metadata = [json.loads(r.block) for r in records if r.type == "metadata"
                and r.headers["Content-Type"] == "application/json"]
    assert {m["requested_url"]: m["verdict"]["verdict"] for m in metadata} == {
        origin.url("/article"): "content", origin.url("/missing"): "http-error", origin.url("/private"): "login-wall"}
    envelopes = [json.loads(r.block) for r in records if r.headers["Content-Type"].startswith("application/vnd.dsse")]
    signed = {_statement(e)["predicate"]["url"]: _statement(e)["predicate"] for e in envelopes}
    assert signed[origin.url("/private")]["verdict"] == "login-wall"
    assert "/login" in signed[origin.url("/private")]["verdict_reason"]

    listed = {c["url"]: c for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert {url: c["verdict"] for url, c in listed.items()} == {url: c["verdict"] for url, c in by_url.items()}
    table = run_cli("captures", "-C", collection.root).stdout
    assert "http-error 404" in table and "login-wall" in table

    broken = json.loads(run_cli("claims", "-C", collection.root, "--broken", "--json").stdout)
    assert sorted(c["citations"][0]["url"] for c in broken) == sorted([origin.url("/missing"), origin.url("/private")])
    claims_table = run_cli("claims", "-C", collection.root).stdout
    assert "http-error 404" in claims_table and "login-wall" in claims_table
    # Stored whole is "complete", never "ok": beside a 404 that word would read as a page that is fine.
    assert "complete 404" in claims_table and "\tcomplete\t404\t" in table, (claims_table, table)
    assert not re.search(r"(^|\s)ok(\s|$)", claims_table + table), (claims_table, table)

    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_claims_broken_reads_the_newest_capture_of_each_url(run_cli, collection, raw_server, tmp_path):
    pages = {"/page": html("<h1>Back soon</h1>", status="503 Service Unavailable")}
    server = raw_server({"/page": lambda conn, request: conn.sendall(pages["/page"])})
    document = tmp_path / "story.md"
    document.write_text(f"The budget passed [source]({server.url('/page')}).\n")
    assert run_cli("capture", "-C", collection.root, document).exit_code == 0
    assert len(json.loads(run_cli("claims", "-C", collection.root, "--broken", "--json").stdout)) == 1
    assert json.loads(run_cli("claims", "-C", collection.root, "--uncaptured", "--json").stdout) == []
    pages["/page"] = html(f"<p>{ARTICLE}</p>")
    assert run_cli("capture", "-C", collection.root, server.url("/page")).exit_code == 0
    assert json.loads(run_cli("claims", "-C", collection.root, "--broken", "--json").stdout) == []
    assert "No claims" in run_cli("claims", "-C", collection.root, "--broken").stderr  # piped: the header alone on stdout


def test_a_catalog_from_before_verdicts_shows_none_made_up(run_cli, collection, origin):
    capture(collection, origin.url("/missing"))
    with collection:
        collection.catalog.query("UPDATE captures SET verdict = NULL, verdict_reason = NULL")
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert row["verdict"] is None and row["http_status"] == 404
    assert "http-error" not in run_cli("captures", "-C", collection.root).stdout


def test_the_end_of_run_summary_lists_only_what_needs_a_look_and_counts_the_rest(run_cli, collection, raw_server,
                                                                                   closed_port):
    refused = f"http://127.0.0.1:{closed_port}/refused"
    server = raw_server({**{f"/fine{i}": send_bytes(PAGES["/article"][0]) for i in range(3)},
                         "/missing": send_bytes(PAGES["/missing"][0]),
                         "/wall": send_bytes(html("<p>One moment.</p>", title="Just a moment [red]please[/red]"))})
    urls = [server.url(f"/fine{i}") for i in range(3)] + [server.url("/missing"), server.url("/wall"), refused]
    result = run_cli("capture", "-C", collection.root, *urls)
    assert result.exit_code == 1  # one failed
    lines = result.stdout.splitlines()
    assert not [line for line in lines if "/fine" in line]  # content is counted, not listed
    [missing] = [line for line in lines if server.url("/missing") in line]
    assert missing.startswith("http-error 404")
    [wall] = [line for line in lines if server.url("/wall") in line]
    assert wall.startswith("bot-wall") and "'Just a moment [red]please[/red]'" in wall  # literally, not as markup
    [failed] = [line for line in lines if refused in line]
    assert failed.startswith("failed") and "refused" in failed
    assert lines[-1] == "5 captured: 3 content, 1 http-error, 1 bot-wall; 1 failed"

    done = json.loads(run_cli("capture", "-C", collection.root, *urls, "--json").stdout)
    assert len(done["captures"]) == 6 and done["verdicts"] == {"content": 3, "http-error": 1, "bot-wall": 1}


def test_verify_live_compares_verdicts(run_cli, collection, raw_server):
    pages = {"/missing": PAGES["/missing"][0], "/article": PAGES["/article"][0], "/walled": PAGES["/article"][0],
             "/removed": PAGES["/article"][0], "/back": PAGES["/missing"][0], "/looping": PAGES["/article"][0]}
    server = raw_server({path: (lambda path: lambda conn, request: conn.sendall(pages[path]))(path) for path in pages})
    assert run_cli("capture", "-C", collection.root, *(server.url(p) for p in pages)).exit_code == 0
    pages["/walled"] = PAGES["/members"][0]
    pages["/removed"] = PAGES["/broken"][0]
    pages["/back"] = PAGES["/article"][0]
    pages["/looping"] = http_response(b"moved", "302 Found", [("Location", "/looping")])
    result = run_cli("verify", "-C", collection.root, "--live", "--json")
    assert result.exit_code == 0, result.output
    live = {d["url"].rsplit("/", 1)[1]: d for d in json.loads(result.stdout)["live"]}
    assert (live["missing"]["state"], live["missing"]["detail"]) == ("unchanged", "still 404")  # not "gone"
    assert live["article"]["state"] == "unchanged"
    assert live["walled"]["state"] == "walled" and live["walled"]["detail"].startswith("now login-wall")
    assert live["removed"]["state"] == "gone" and live["removed"]["detail"] == "HTTP 500 now (was content)"
    assert live["back"]["state"] == "changed" and live["back"]["detail"] == "now content (was http-error 404)"
    assert live["looping"]["state"] == "unreachable" and live["looping"]["detail"].startswith("redirect loop back to")
    human = run_cli("verify", "-C", collection.root, "--live").stdout
    assert "still 404" in human and "walled" in human


def test_verify_live_tells_a_page_already_missing_when_captured_still_gone_and_does_not_recapture_it(
        run_cli, collection, raw_server):
    """README: a page already 404 is still 404. One missing another way now (a 404 now a soft 404,
    a soft 404 now a 410, a 404 now a 410) has not gone now either, and "was" names its verdict."""
    pages = {"/hard-then-soft": PAGES["/missing"][0], "/soft-then-hard": PAGES["/soft-404"][0],
             "/404-then-410": PAGES["/missing"][0], "/went": PAGES["/article"][0]}
    server = raw_server({path: (lambda path: lambda conn, request: conn.sendall(pages[path]))(path) for path in pages})
    assert run_cli("capture", "-C", collection.root, *(server.url(p) for p in pages)).exit_code == 0
    pages["/hard-then-soft"] = pages["/went"] = PAGES["/soft-404"][0]
    pages["/soft-then-hard"] = pages["/404-then-410"] = http_response(b"gone", "410 Gone")
    result = run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    live = {d["url"].rsplit("/", 1)[1]: (d["state"], d["detail"]) for d in report["live"]}
    assert live["hard-then-soft"][0] == "still gone" and live["hard-then-soft"][1].startswith("now not-found: ")
    assert live["hard-then-soft"][1].endswith("(was http-error 404)")
    assert live["soft-then-hard"] == ("still gone", "HTTP 410 now (was not-found)")  # not "(was 200)": it was no page
    assert live["404-then-410"] == ("still gone", "HTTP 410 now (was http-error 404)")
    assert live["went"][0] == "gone" and live["went"][1].endswith("(was content)")
    assert [r["url"] for r in report["recaptured"]] == [server.url("/went")]  # only the page that went now
