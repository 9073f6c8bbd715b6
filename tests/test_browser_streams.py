"""Connections that never end, captured in real Chromium: a page its server keeps streaming (a live
page) and an event stream the page listens to (a reader's browser shows what has arrived while the
rest is still coming; so must the capture's, and the record says each response was cut), a page
cut short (its server hung up, or the size bound cut it), and WebSockets, which cannot be recorded
and so must be listed as refused, ws:// as well as wss://."""

from __future__ import annotations

import json
import time

import pytest

from archiver.capture.browser.chromium import find_chromium
from archiver.capture.browser.replay import CaptureArchive, Replayer
from archiver.store.settings import WAIT_AFTER_LOAD
from tests.conftest import http_response, send_bytes, warc_records

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

NO_ICON = b'<link rel="icon" href="data:,">'


@pytest.fixture
def chromium(monkeypatch) -> None:
    """Chromium found as a user's machine has it: on the PATH."""
    monkeypatch.delenv("ARCHIVER_CHROMIUM")


def _held_open(data: bytes):
    """Sends `data`, then keeps the connection open, sending nothing more, until the client hangs up."""
    def respond(conn, request: bytes) -> None:
        conn.sendall(data)
        while conn.recv(65536):
            pass
    return respond


def _records(collection) -> tuple[dict, dict, dict]:
    records = warc_records(collection.storage.folder)
    responses = {r.headers["WARC-Target-URI"]: r for r in records if r.type == "response"}
    artifacts = {r.headers["WARC-Target-URI"].split(":", 2)[1]: r for r in records if r.type == "resource"}
    [metadata] = [r for r in records if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    return responses, artifacts, json.loads(metadata.block)


def test_a_page_its_server_never_finishes_is_rendered_from_what_arrived_and_recorded_as_cut(
        run_cli, raw_server, collection, chromium, network_sandbox):
    # A live page: its first part is sent at once, and the connection stays open for more.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
    part = (b"<html><head><title>Live: the vote</title>" + NO_ICON + b"</head><body>"
            b"<h1>Live: the vote on Monday</h1><p>The minister resigned after the vote.</p>\n")
    server = raw_server({"/live": _held_open(head + part)})
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", "--timeout", "10", server.url("/live"))
    [capture] = json.loads(result.stdout)["captures"]
    # Cut at the deadline, and said to be: not a failure, and never taken for whole.
    assert (capture["outcome"], capture["truncated"], capture["error"]) == ("truncated", "time", None), capture

    responses, artifacts, details = _records(collection)
    live = responses[server.url("/live")]
    assert live.block == head + part and live.headers["WARC-Truncated"] == "time"
    assert b"The minister resigned after the vote." in artifacts["dom"].block
    assert artifacts["screenshot"].block.startswith(b"\x89PNG")
    assert details["page"]["title"] == "Live: the vote"
    assert network_sandbox == []


# Far more than Chromium parses in the moment between a response's last bytes and its end: told of
# the end, it used to stop parsing there, and kept about half of this (of every try) in its DOM.
STORY = (b"<html><head><title>Cut: the vote</title>" + NO_ICON + b"</head><body><h1>The vote on Monday</h1>"
         b"<p>The minister resigned after the vote.</p>\n" + b"<p>More of the story, told at length.</p>\n" * 25_000
         + b"<p>The last words that came.</p>\n")


def _cut_story(raw_server, cut: str):
    """A story whose server hangs up before the end of what it promised ("disconnect"), or sends
    it all for the capture's size bound to cut ("length"), at once: its server, what of it is
    recorded, and the capture's options."""
    rest = b"<p>The rest of the story.</p>\n" * 2000
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % (len(STORY) + len(rest))
    sent = head + STORY + (rest if cut == "length" else b"")
    server = raw_server({"/story": send_bytes(sent)})
    return server, head + STORY, ("--max-size", str(len(head) + len(STORY))) if cut == "length" else ()


def _waited_for_no_load_event(notes: list[str], cut: str) -> None:
    """Chromium fires no load event for a document whose response ended before its Content-Length:
    told by its proxy that the page was cut, the capture goes on, where it used to wait out the
    load limit (and noted that it had)."""
    assert f"document: cut short ({cut}); its load event was not waited for" in notes, notes
    assert not any(note.startswith(("document: not done", "load event: not done")) for note in notes), notes


@pytest.mark.parametrize("cut", ["disconnect", "length"])
def test_a_page_cut_short_is_rendered_to_its_last_byte_without_waiting_for_its_load_event(
        cut, run_cli, raw_server, collection, chromium, network_sandbox):
    server, recorded, options = _cut_story(raw_server, cut)
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", *options, server.url("/story"))
    [capture] = json.loads(result.stdout)["captures"]
    assert (capture["outcome"], capture["truncated"], capture["error"]) == ("truncated", cut, None), capture

    responses, artifacts, details = _records(collection)
    assert responses[server.url("/story")].block == recorded
    assert responses[server.url("/story")].headers["WARC-Truncated"] == cut
    # Every byte that came is in the page the browser showed, to the last: its proxy held the
    # connection open rather than let Chromium stop parsing where the end found it.
    assert b"<p>The last words that came.</p>" in artifacts["dom"].block
    assert artifacts["screenshot"].block.startswith(b"\x89PNG")
    _waited_for_no_load_event(details["page"]["notes"], cut)
    assert network_sandbox == []


def test_a_page_cut_short_is_replayed_to_its_last_byte_without_waiting_for_its_load_event(
        run_cli, raw_server, collection, chromium, network_sandbox):
    server, _, _ = _cut_story(raw_server, "disconnect")
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", server.url("/story"))
    [capture] = json.loads(result.stdout)["captures"]
    assert capture["truncated"] == "disconnect", capture
    server.stop()
    with collection, Replayer(CHROMIUM) as replayer:
        archive = CaptureArchive.of_capture(collection.storage, collection.catalog, capture["id"])
        replay = replayer.replay(capture["url"], archive, time.monotonic() + 60, tall_window=False,
                                 wait_after_load=WAIT_AFTER_LOAD)
    assert replay.page.error is None, replay.page.error
    assert b"<p>The last words that came.</p>" in replay.page.dom  # the replay proxy holds it open too
    _waited_for_no_load_event(replay.page.notes, "disconnect")
    assert network_sandbox == []


@pytest.mark.parametrize("cut, body", [("disconnect", b""), ("disconnect", b"<html><head><title>Cut: the vote</title>"),
                                       ("length", STORY)])
def test_a_page_cut_short_before_its_body_fails_naming_the_cut_with_every_byte_kept(
        cut, body, run_cli, raw_server, collection, chromium, network_sandbox):
    """Chromium draws nothing of an HTML document before its <body> (and a screenshot waited for
    a frame until its time ran out): the capture fails, saying so and why, rather than failing
    as though the browser had broken down, or calling a blank page the content."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % (len(STORY) + 1)
    server = raw_server({"/story": send_bytes(head + body)})
    options = ("--max-size", str(len(head))) if cut == "length" else ()  # the bound takes the head, no byte more
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", *options, server.url("/story"))
    [capture] = json.loads(result.stdout)["captures"]
    assert (capture["outcome"], capture["truncated"], capture["verdict"]) == ("failed", cut, None), capture
    assert capture["error"] == ("the browser did not render the page (screenshot: none, nor a PDF: nothing to show, "
                                f"its document was cut short ({cut}) before its body); its HTTP exchanges are stored")

    responses, artifacts, details = _records(collection)
    recorded = responses[server.url("/story")]
    assert recorded.block == head + (b"" if cut == "length" else body) and recorded.headers["WARC-Truncated"] == cut
    assert "screenshot" not in artifacts and "pdf" not in artifacts
    _waited_for_no_load_event(details["page"]["notes"], cut)
    assert network_sandbox == []


# A frame's story as long as the page's: its script at the end, run only once the frame's parser
# has come that far, copies its last words into the page, whose DOM is the one recorded.
FRAME_STORY = (b"<html><body><h2>The vote, in a frame</h2>\n" + b"<p>More of the story, told at length.</p>\n" * 25_000
               + b"<p id=last>The last words that came.</p><script>parent.document.getElementById('frame-end')"
               b".textContent = 'The frame came to: ' + document.getElementById('last').textContent</script>\n")


def _waited_for_no_load_event_of_frame(notes: list[str], frame: str) -> None:
    """Chromium fires no load event for a page while a frame's document is still coming, as one
    held open is: told by its proxy that it held one, the capture goes on, not waiting out the load limit."""
    assert f"frame: {frame} cut short (disconnect); the page's load event was not waited for" in notes, notes
    assert not any(note.startswith(("document: ", "load event: not done")) for note in notes), notes


def test_a_frame_cut_short_is_rendered_to_its_last_byte_without_waiting_for_its_pages_load_event(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """A frame's document cut short is held open as the page's is, so that Chromium parses every
    byte of it that came (told of its end, it stopped where it was); and the page's load event,
    which waits for every frame's, is not waited for either."""
    page = (b"<html><head>" + NO_ICON + b"</head><body><h1>The vote</h1><p id=frame-end>nothing of the frame</p>"
            b"<iframe src=/frame></iframe></body></html>")
    frame_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % (len(FRAME_STORY) + 1000)
    server = raw_server({"/page": send_bytes(http_response(page)), "/frame": send_bytes(frame_head + FRAME_STORY)})
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", server.url("/page"))
    [capture] = json.loads(result.stdout)["captures"]
    assert (capture["outcome"], capture["error"]) == ("ok", None), capture

    responses, artifacts, details = _records(collection)
    frame = responses[server.url("/frame")]
    assert frame.block == frame_head + FRAME_STORY and frame.headers["WARC-Truncated"] == "disconnect"
    assert b"The frame came to: The last words that came." in artifacts["dom"].block
    _waited_for_no_load_event_of_frame(details["page"]["notes"], server.url("/frame"))

    server.stop()
    with collection, Replayer(CHROMIUM) as replayer:  # the replay proxy holds it open too
        archive = CaptureArchive.of_capture(collection.storage, collection.catalog, capture["id"])
        replay = replayer.replay(capture["url"], archive, time.monotonic() + 60, tall_window=False,
                                 wait_after_load=WAIT_AFTER_LOAD)
    assert replay.page.error is None, replay.page.error
    assert b"The frame came to: The last words that came." in replay.page.dom
    _waited_for_no_load_event_of_frame(replay.page.notes, server.url("/frame"))
    assert network_sandbox == []


def test_a_page_with_more_frames_cut_short_than_are_held_open_has_every_frame_recorded(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """Chromium opens at most 6 connections to a host through its proxy: were every frame's document
    cut short held open, the page's later frames from that host would never be asked for."""
    frames = [f"/frame{number}" for number in range(10)]
    page = (b"<html><head>" + NO_ICON + b"</head><body><h1>The vote</h1>"
            + b"".join(b"<iframe src=%s></iframe>" % frame.encode() for frame in frames) + b"</body></html>")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n"
    server = raw_server({"/page": send_bytes(http_response(page)),
                         **{frame: send_bytes(head + b"<html><body><p>A frame cut short") for frame in frames}})
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", server.url("/page"))
    [capture] = json.loads(result.stdout)["captures"]
    assert (capture["outcome"], capture["error"]) == ("ok", None), capture

    responses, _, _ = _records(collection)
    assert {frame: responses[server.url(frame)].headers["WARC-Truncated"] for frame in frames if server.url(frame)
            in responses} == dict.fromkeys(frames, "disconnect")
    assert network_sandbox == []


def test_an_event_stream_the_page_listens_to_is_shown_as_it_arrived_and_recorded_as_cut(
        run_cli, raw_server, collection, chromium, network_sandbox):
    page = (b"<html><head>" + NO_ICON + b"</head><body><h1>Results</h1><p id=latest>waiting</p><script>"
            b"new EventSource('/events').onmessage = event => {"
            b" document.getElementById('latest').textContent = event.data; };</script></body></html>")
    stream = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              b"Connection: close\r\n\r\ndata: 52 seats counted\n\n")
    server = raw_server({"/results": send_bytes(http_response(page)), "/events": _held_open(stream)})
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", "--timeout", "10", server.url("/results"))
    [capture] = json.loads(result.stdout)["captures"]
    assert capture["outcome"] == "ok", capture

    responses, artifacts, details = _records(collection)
    # What the reader saw, the page's own text, came from the stream's first event.
    assert b'<p id="latest">52 seats counted</p>' in artifacts["dom"].block, artifacts["dom"].block
    assert responses[server.url("/events")].block == stream
    [listed] = [resource for resource in details["resources"] if resource["url"] == server.url("/events")]
    assert listed["truncated"] == "time" and listed["status"] == 200
    assert any(note.startswith("network idle: not done") for note in details["page"]["notes"]), details["page"]
    assert capture["incomplete"] == "incomplete: 1 response cut short; the network never went quiet", capture
    assert network_sandbox == []


def test_a_websocket_is_listed_as_refused_whether_plain_or_over_tls(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """Chromium tunnels both through the proxy with CONNECT, a ws:// one speaking plain HTTP inside."""
    server = raw_server({})
    page = (b"<html><head>" + NO_ICON + b"</head><body><p>Live scores</p><script>"
            b"new WebSocket('ws://127.0.0.1:%d/plain'); new WebSocket('wss://127.0.0.1:%d/secure');"
            b"</script></body></html>") % (server.port, server.port)
    server.routes["/scores"] = send_bytes(http_response(page))
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", server.url("/scores"))
    assert json.loads(result.stdout)["captures"][0]["outcome"] == "ok", result.output

    _, _, details = _records(collection)
    listed = {resource["url"]: resource for resource in details["resources"]}
    for url in (f"http://127.0.0.1:{server.port}/plain", f"https://127.0.0.1:{server.port}/secure"):
        assert listed[url]["error"] == "a protocol upgrade (websocket) cannot be recorded", listed
        assert listed[url]["response_record_id"] is None
    assert [request.split(b" ", 2)[1] for request in server.requests] == [b"/scores"]
    assert network_sandbox == []
