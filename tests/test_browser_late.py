"""A page that is not done when it has loaded and its network is quiet, captured in real Chromium
end to end: its article filled in by a timer a second or two later, a meta refresh due in 2 s, a
script sending it elsewhere after 1.5 s, its DOM still growing. Each is watched on (within
`wait_after_load`) until it is done, and the capture says what it waited for; a page quiet at
once is not waited for; the replay check waits the same way, so it compares like with like."""

from __future__ import annotations

import json

import pytest

from archiver.check.replay import as_captured
from archiver.store.collection import Collection
from tests.conftest import http_response, warc_records
from tests.test_browser_pages import _capture, _serve, chromium  # noqa: F401

NO_ICON = b'<meta charset=utf-8><link rel="icon" href="data:,">'
LATE = (b"<html><head><title>Late</title>" + NO_ICON + b"</head><body><div id=c>Loading article\xe2\x80\xa6</div>"
        b"<script>setTimeout(() => { document.getElementById('c').innerHTML = '<h1>LATE ARTICLE</h1><p>' + "
        b"'Arrived late. '.repeat(40) + '</p>'; }, %d)</script></body></html>")
REFRESH = (b"<html><head><meta http-equiv=refresh content='2;url=/target'><title>Moved</title>" + NO_ICON +
           b"</head><body><p>This story has moved to a new address.</p></body></html>")
SCRIPTED = (b"<html><head><title>JS redirect</title>" + NO_ICON + b"</head><body>Please wait<script>"
            b"setTimeout(() => location.replace('/target'), 1500)</script></body></html>")
GROWING = (b"<html><head><title>Live</title>" + NO_ICON + b"</head><body><h1>Live updates</h1><script>let n = 0;"
           b"const tick = setInterval(() => { document.body.insertAdjacentHTML('beforeend', '<p>Update ' + (++n) + "
           b"'</p>'); if (n === 8) clearInterval(tick); }, 100)</script></body></html>")
STATIC = b"<html><head><title>Static</title>" + NO_ICON + b"</head><body><h1>Nothing late here</h1></body></html>"
TARGET = (b"<html><head><title>Target</title>" + NO_ICON + b"</head><body><h1>THE TARGET PAGE</h1>"
          b"<p>Where the page sent its reader.</p></body></html>")
# /later's article comes long after any capture with no wait after load has taken the page, on
# however slow a machine (at 4 s, a capture slower than that to its DOM saw the article, and failed).
# /slow's article comes between a wait after load of 0 and one of 5 s, with room on either side.
PAGES = {"/late": LATE % 1500, "/later": LATE % 60000, "/slow": LATE % 3000, "/refresh": REFRESH, "/scripted": SCRIPTED, "/growing": GROWING,
         "/static": STATIC, "/target": TARGET}


def _origin(raw_server):
    return _serve(raw_server, {path: http_response(body) for path, body in PAGES.items()})


def _page(collection, url: str) -> dict:
    """The metadata of the capture of `url` (the last one made)."""
    found = [json.loads(r.block) for r in warc_records(collection.storage.folder) if r.type == "metadata"
             and r.headers.get("Content-Type") == "application/json" and json.loads(r.block)["requested_url"] == url]
    return found[-1]


def _dom(collection, url: str) -> str:
    doms = [r for r in warc_records(collection.storage.folder) if r.headers.get("WARC-Target-URI") == f"urn:dom:{url}"]
    return doms[-1].block.decode()


def _after_load(notes: list[str]) -> list[str]:
    return [note for note in notes if note.startswith("after load:")]


def test_late_content_is_waited_for_and_the_wait_noted(run_cli, raw_server, collection, chromium, network_sandbox):
    server = _origin(raw_server)
    capture = _capture(run_cli, collection, server.url("/late"))
    assert capture["verdict"] == "content", capture
    dom = _dom(collection, server.url("/late"))
    assert "<p>Arrived late. Arrived" in dom and "Loading article" not in dom  # the script only writes it
    [note] = _after_load(_page(collection, server.url("/late"))["page"]["notes"])
    assert "the loading placeholder 'Loading article…' to be replaced" in note, note
    assert "still changing" not in note, note
    assert network_sandbox == []


def test_a_meta_refresh_and_a_script_redirect_due_within_the_wait_are_followed(
        run_cli, raw_server, collection, chromium, network_sandbox):
    server = _origin(raw_server)
    for path, why in (("/refresh", "a meta refresh due"), ("/scripted", "the loading placeholder 'Please wait'")):
        capture = _capture(run_cli, collection, server.url(path))
        assert capture["final_url"] == server.url("/target"), capture
        assert capture["verdict"] == "content", capture
        assert "THE TARGET PAGE" in _dom(collection, server.url(path))
        [note] = _after_load(_page(collection, server.url(path))["page"]["notes"])
        assert why in note and f"a navigation to {server.url('/target')}" in note, note


def test_a_page_whose_dom_still_changes_is_waited_for_until_it_is_quiet(
        run_cli, raw_server, collection, chromium, network_sandbox):
    server = _origin(raw_server)
    _capture(run_cli, collection, server.url("/growing"))
    assert "<p>Update 8</p>" in _dom(collection, server.url("/growing"))
    [note] = _after_load(_page(collection, server.url("/growing"))["page"]["notes"])
    assert "DOM changes" in note, note


def test_a_page_quiet_at_once_is_not_waited_for(run_cli, raw_server, collection, chromium, network_sandbox):
    server = _origin(raw_server)
    _capture(run_cli, collection, server.url("/static"))
    assert _after_load(_page(collection, server.url("/static"))["page"]["notes"]) == []


def _no_wait_after_load(collection) -> None:
    config = collection.root / "archiver.toml"
    assert "\nwait_after_load = 5 " in config.read_text()  # written, documented, by init
    config.write_text(config.read_text().replace("\nwait_after_load = 5 ", "\nwait_after_load = 0 "))
    assert Collection.open(collection.root).config.capture.wait_after_load == 0


def test_with_no_wait_after_load_the_page_is_taken_as_it_loaded_and_judged_unfinished(
        run_cli, raw_server, collection, chromium, network_sandbox):
    _no_wait_after_load(collection)
    server = _origin(raw_server)
    capture = _capture(run_cli, collection, server.url("/later"))
    assert (capture["verdict"], capture["verdict_reason"]) == (
        "empty", "the page never finished loading: all it shows is 'Loading article…'"), capture


def _replayed(run_cli, collection, server, paths) -> dict:
    for path in paths:
        _capture(run_cli, collection, server.url(path))
    server.stop()  # the replay has no network: only the captures' own records
    return {check["url"]: check["verdict"] for check in _replays(run_cli, collection)}


def _replays(run_cli, collection) -> list[dict]:
    return json.loads(run_cli("verify", "-C", collection.root, "--replay", "--json").stdout)["replay"]


def test_the_replay_check_waits_as_the_capture_did(run_cli, raw_server, collection, chromium, network_sandbox):
    server = _origin(raw_server)
    verdicts = _replayed(run_cli, collection, server, ["/late", "/refresh"])
    assert verdicts == {server.url("/late"): "alike", server.url("/refresh"): "alike"}, verdicts


def test_the_replay_check_waits_no_more_than_the_capture_did(run_cli, raw_server, collection, chromium, network_sandbox):
    """Captured before its article came, the page is replayed so too, not compared with its article."""
    _no_wait_after_load(collection)
    server = _origin(raw_server)
    verdicts = _replayed(run_cli, collection, server, ["/later"])
    assert verdicts == {server.url("/later"): "alike"}, verdicts


def test_the_replay_check_waits_as_the_capture_was_made_not_as_archiver_toml_says_now(
        run_cli, raw_server, collection, chromium, network_sandbox):
    """Captured with its article after 5 s of wait, the page is replayed with that wait though
    archiver.toml says 0 now: with none, its replay would be 'Loading article…', and differ."""
    server = _origin(raw_server)
    _capture(run_cli, collection, server.url("/slow"))
    assert "LATE ARTICLE" in _dom(collection, server.url("/slow"))
    assert _page(collection, server.url("/slow"))["settings"]["wait_after_load"] == 5
    server.stop()
    _no_wait_after_load(collection)
    [check] = _replays(run_cli, collection)
    assert check["verdict"] == "alike", check
    assert not any("wait_after_load" in note for note in check["notes"]), check["notes"]


@pytest.mark.parametrize("settings, wait", [({"wait_after_load": 0}, 0.0), ({"wait_after_load": 2.5}, 2.5),
                                            ({"timeout": 60.0}, None), (None, None),
                                            ({"wait_after_load": "5"}, None), ({"wait_after_load": True}, None)])
def test_the_replay_reads_the_wait_after_load_a_capture_was_made_with_from_its_metadata(settings, wait):
    """None, for the replay to take archiver.toml's and say so, where a capture made before the
    wait was recorded (its settings without it), or something else, holds none to use."""
    assert as_captured({"settings": settings, "page": {"notes": []}}).wait_after_load == wait


@pytest.mark.parametrize("value, accepted", [(0, True), (2.5, True), (-1, False), ("5", False)])
def test_wait_after_load_is_read_from_archiver_toml(collection, value, accepted):
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace("\nwait_after_load = 5 ", f"\nwait_after_load = {json.dumps(value)} "))
    if accepted:
        assert Collection.open(collection.root).config.capture.wait_after_load == value
    else:
        with pytest.raises(Exception, match="wait_after_load must be a number of seconds from 0"):
            Collection.open(collection.root)
