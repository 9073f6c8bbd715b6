"""Browser captures that must not pass for the page as a reader saw it: a page the browser could
not render (its renderer hung), one that navigated itself elsewhere (to a refused address, or
to an error page), a redirect chain longer than allowed, and a Chromium that does not start.
Each is recorded as what it is, with its reason, and its exchanges are kept."""

from __future__ import annotations

import json

from tests.conftest import assert_exchanges_sound, http_response, redirect
from tests.test_browser_pages import _capture, _recorded, _serve, chromium  # noqa: F401


def _failed(run_cli, collection, url: str, *options: str) -> dict:
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", *options, url)
    assert result.exit_code == 1, result.output  # some URLs could not be captured
    [capture] = json.loads(result.stdout)["captures"]
    assert capture["outcome"] == "failed", capture
    return capture


def test_a_page_that_hangs_its_renderer_is_not_called_captured(run_cli, raw_server, collection, chromium, network_sandbox):
    sent = {"/hang": http_response(b"<html><title>Busy</title><p>Text</p><script>while (true) {}</script></html>")}
    server = _serve(raw_server, sent)
    capture = _failed(run_cli, collection, server.url("/hang"), "--timeout", "15")
    assert capture["error"].startswith("the browser did not render the page (")
    assert capture["error"].endswith("); its HTTP exchanges are stored")
    _, responses, details = _recorded(collection)
    assert responses[server.url("/hang")].block == sent["/hang"]  # what the server sent is kept all the same
    assert details["page"]["notes"], details["page"]  # what did not finish, in the capture's metadata
    assert network_sandbox == []


def test_a_page_that_navigates_itself_to_a_refused_address_is_not_the_page(
        run_cli, raw_server, collection, chromium, network_sandbox):
    # 127.0.0.2 is not among the collection's allowed networks: the browser's request is refused.
    sent = {"/away": http_response(b"<html><p>Leaving</p><script>location.href = 'http://127.0.0.2:8000/internal';"
                                   b"</script></html>")}
    server = _serve(raw_server, sent)
    capture = _failed(run_cli, collection, server.url("/away"))
    assert "127.0.0.2" in capture["error"] and "refused" in capture["error"], capture["error"]
    records, responses, details = _recorded(collection)
    assert responses[server.url("/away")].block == sent["/away"]
    assert network_sandbox == []
    # Never sent, so no request record claims it was: the metadata says it was refused, and why.
    assert [r for r in records if "127.0.0.2" in r.headers.get("WARC-Target-URI", "") and r.type == "request"] == []
    [refused] = [hop for hop in details["redirect_chain"] if hop["url"] == "http://127.0.0.2:8000/internal"]
    assert refused["response_record_id"] is None and "refused" in refused["error"], refused
    assert_exchanges_sound(collection.storage.folder)


def test_a_page_that_navigates_where_the_browser_cannot_go_shows_no_page(
        run_cli, raw_server, collection, chromium, network_sandbox):
    # Port 9 is one Chromium never connects to: it shows its own error page, which is no evidence.
    sent = {"/away": http_response(b"<html><p>Leaving</p><script>location.href = 'http://127.0.0.1:9/x';</script></html>")}
    server = _serve(raw_server, sent)
    capture = _failed(run_cli, collection, server.url("/away"))
    assert capture["error"] == "the page went on to an address the browser could not load, and showed its own error page"


def test_a_page_that_sends_itself_to_an_error_page_is_judged_by_that_page(
        run_cli, raw_server, collection, chromium, network_sandbox):
    sent = {"/moving": http_response(b"<html><p>Redirecting</p><script>location.replace('/gone');</script></html>"),
            "/gone": http_response(b"<html><title>Gone</title><h1>Gone</h1></html>", "404 Not Found")}
    server = _serve(raw_server, sent)
    capture = _capture(run_cli, collection, server.url("/moving"))
    assert (capture["final_url"], capture["http_status"], capture["verdict"]) == (server.url("/gone"), 404, "http-error")
    _, responses, _ = _recorded(collection)
    assert {server.url("/moving"), server.url("/gone")} <= set(responses)


def test_a_page_whose_content_lengths_disagree_fails_with_that_reason_and_keeps_its_head(
        run_cli, raw_server, collection, chromium, network_sandbox):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nContent-Length: 20\r\n\r\n"
    server = _serve(raw_server, {"/two": head + b"<html><p>Hi</p>"})
    capture = _failed(run_cli, collection, server.url("/two"))
    assert capture["error"] == ("the server sent Content-Lengths that disagree (5, 20): where its body ends is "
                                "ambiguous, so only its head was kept"), capture["error"]
    _, responses, _ = _recorded(collection)
    assert responses[server.url("/two")].block == head
    assert responses[server.url("/two")].headers["WARC-Truncated"] == "unspecified"
    assert network_sandbox == []


def test_a_longer_redirect_chain_than_allowed_fails_as_over_http(run_cli, raw_server, collection, chromium,
                                                                  network_sandbox):
    server = _serve(raw_server, {"/landing": http_response(b"<html><p>Landed</p></html>")})
    for hop in range(12):
        server.routes[f"/r{hop}"] = redirect(server.url(f"/r{hop + 1}" if hop < 11 else "/landing"), "302 Found")
    capture = _failed(run_cli, collection, server.url("/r0"))
    assert capture["error"] == "more than 10 redirects"


def test_a_chromium_that_does_not_start_is_bad_usage_in_one_line(run_cli, collection, monkeypatch, tmp_path):
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("ARCHIVER_CHROMIUM", str(broken))
    result = run_cli("capture", "-C", collection.root, "--browser", "http://127.0.0.1:9/page")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: Chromium at {broken} did not start: ") and "Traceback" not in result.output


def test_a_page_that_fetches_a_url_and_pushes_it_to_the_address_bar_is_still_itself(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """pjax and Turbo fetch a part of the page, then show its URL: no document was navigated to,
    so the capture's final response stays the page's own."""
    sent = {"/app": http_response(b"<html><title>App</title><p>Home</p><script>fetch('/app/part').then(r => r.text())"
                                  b".then(() => history.pushState({}, '', '/app/part'));</script></html>"),
            "/app/part": http_response(b'{"part": 1}', headers=[("Content-Type", "application/json")])}
    server = _serve(raw_server, sent)
    capture = _capture(run_cli, collection, server.url("/app"))
    assert (capture["final_url"], capture["redirects"], capture["outcome"]) == (server.url("/app"), 0, "ok"), capture
    _, responses, _ = _recorded(collection)
    assert server.url("/app/part") in responses  # the fetched part is recorded, as a resource
