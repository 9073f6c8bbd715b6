"""The replay check: a browser capture's page rendered again in real Chromium from the capture's
own records, with the origin gone and no network at all, compared with what was captured; what
the replay asks for that the capture does not hold is listed; each result is in the custody log."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime, timezone

import pytest
from PIL import Image

from archiver.capture.browser.chromium import find_chromium
from archiver.capture.browser import render, screenshot
from archiver.capture.recorded_frames import FRAMES_NOT_COMPARED
from archiver.check.replay import PIXELS_ALIKE, TEXT_ALIKE, pixel_similarity
from tests.conftest import http_response, send_bytes, warc_records
from tests.test_browser_drift import captured_before_frames

CHROMIUM = find_chromium()  # as archiver finds it: the headless shell where Debian has it
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")



def _blue_png() -> bytes:
    """400x200 of solid blue: the screenshot shows whether the image came back."""
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (0, 0, 255)).save(out, "PNG")
    return out.getvalue()


BLUE = _blue_png()
# Each page names its icon (none): otherwise Chromium asks for /favicon.ico when it pleases, at
# capture or at replay or both, and the test would hinge on its timing.
NO_ICON = b'<link rel="icon" href="data:,">'
ARTICLE = (b'<html><head><title>Troops moved</title>' + NO_ICON + b'<link rel="stylesheet" href="/style.css"></head>'
           b'<body><h1>Troops moved on Monday</h1><img src="/photo.png" width="400" height="200">'
           b'<p id="late">Loading</p><script src="/app.js"></script></body></html>')
SCRIPT = (b"fetch('/data.json').then(r => r.json()).then(d => {"
          b"document.getElementById('late').textContent = d.text; });")
# Asks for a new URL every time it runs: no capture can hold what its replay will ask for.
RANDOM = (b"<html><head>" + NO_ICON + b"</head><body><h1>Weather now</h1><p id=t>...</p><script>"
          b"fetch('/r?' + Math.random()).then(r => r.text()).then(t => { document.getElementById('t').textContent = t; });"
          b"</script></body></html>")
# Shows its story, then, when its random check is not answered as at capture, empties itself:
# on replay most of the screen stays as white as it was, but none of the words are left.
EMPTIES = (b"<html><head>" + NO_ICON + b"</head><body><p>" + b"The minister resigned on Tuesday after the vote. " * 4 +
           b"</p><script>const empty = () => { document.body.textContent = ''; };"
           b"fetch('/r?' + Math.random()).then(r => { if (!r.ok) empty(); }, empty);"
           b"</script></body></html>")


@pytest.fixture
def chromium(monkeypatch) -> None:
    """Chromium found as a user's machine has it: on the PATH."""
    monkeypatch.delenv("ARCHIVER_CHROMIUM")


def _origin(raw_server, tls=None):
    sent = {
        "/article": http_response(ARTICLE),
        "/style.css": http_response(b"body { background: #fe4 } h1 { color: #a00; font-size: 40px }",
                                    headers=[("Content-Type", "text/css")]),
        "/photo.png": http_response(BLUE, headers=[("Content-Type", "image/png")]),
        "/app.js": http_response(SCRIPT, headers=[("Content-Type", "application/javascript")]),
        "/data.json": http_response(b'{"text": "Loaded by a script"}', headers=[("Content-Type", "application/json")]),
        "/weather": http_response(RANDOM),
        "/empties": http_response(EMPTIES),
    }
    return raw_server({path: send_bytes(data) for path, data in sent.items()}, tls=tls)


def _capture(run_cli, collection, *args):
    result = run_cli("capture", "-C", collection.root, "--browser", "--json", *args)
    assert result.stdout.startswith("{"), result.output
    return result, json.loads(result.stdout)


def _replay(run_cli, collection, *args):
    result = run_cli("verify", "-C", collection.root, "--replay", "--json", *args)
    assert result.stdout.startswith("{"), result.output
    return result, json.loads(result.stdout)


def _logged(collection) -> list[dict]:
    """The custody log's replay check entries."""
    lines = (collection.root / "custody.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == "replay check"]


def test_a_captured_page_replays_alike_with_its_origin_gone(run_cli, raw_server, collection, chromium,
                                                           network_sandbox):
    server = _origin(raw_server)
    result, summary = _capture(run_cli, collection, server.url("/article"))
    assert result.exit_code == 0, result.output
    [capture] = summary["captures"]
    server.stop()  # from here on nothing answers at the origin's address: the replay has only the capture

    result, report = _replay(run_cli, collection)
    assert result.exit_code == 0, result.output
    [replay] = report["replay"]
    assert (replay["capture_id"], replay["url"], replay["replayed"]) == (capture["id"], capture["url"], True)
    assert (replay["verdict"], replay["differences"], replay["missing"]) == ("alike", [], [])
    assert replay["pixel_similarity"] >= 0.99 and replay["text_similarity"] >= 0.99, replay
    assert replay["requests"] >= 5  # the page, its stylesheet, image, script and the script's JSON
    assert network_sandbox == []

    [entry] = _logged(collection)
    assert entry["subject"]["capture"] == capture["id"]
    assert entry["subject"]["pixel_similarity"] == replay["pixel_similarity"]
    assert entry["subject"]["missing"] == [] and replay["recorded_in_custody_log"] is True
    assert run_cli("verify", "-C", collection.root).exit_code == 0  # the log's new entry verifies


def test_an_https_page_replays_inside_the_replay_proxys_own_tls(run_cli, raw_server, collection, chromium, test_ca):
    server = _origin(raw_server, tls=test_ca.server_context)
    result, summary = _capture(run_cli, collection, "--ca-bundle", test_ca.ca_pem, server.url("/article"))
    assert result.exit_code == 0, result.output
    assert summary["captures"][0]["final_url"].startswith("https://")
    # Every subresource's connection is named by its certificate too, each chain recorded once.
    [metadata] = [json.loads(r.block) for r in warc_records(collection.storage.folder)
                  if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    leaf = summary["captures"][0]["cert_sha256"]
    fetched = [resource for resource in metadata["resources"] if resource["status"] is not None]
    assert fetched and {resource["certificate_sha256"] for resource in fetched} == {leaf}
    assert {resource["ip"] for resource in fetched} == {"127.0.0.1"}
    assert list(metadata["resource_certificates"]) == [leaf]
    assert metadata["resource_certificates"][leaf][0].startswith("-----BEGIN CERTIFICATE-----")
    server.stop()
    result, report = _replay(run_cli, collection)
    assert result.exit_code == 0, result.output
    [replay] = report["replay"]
    assert replay["missing"] == [] and replay["requests"] >= 5
    assert replay["pixel_similarity"] >= 0.99 and replay["text_similarity"] >= 0.99, replay


def test_what_the_capture_does_not_hold_is_listed_as_missing(run_cli, raw_server, collection, chromium):
    server = _origin(raw_server)
    # The page's own image and script are refused at capture: the capture holds neither.
    page = (b'<html><head>' + NO_ICON + b'</head><body><h1>Leak</h1><img src="http://10.0.0.1/inside.png">'
            b'<script src="http://169.254.169.254/x.js"></script></body></html>')
    server.routes["/leak"] = send_bytes(http_response(page))
    result, summary = _capture(run_cli, collection, server.url("/leak"), server.url("/weather"))
    assert result.exit_code == 0, result.output
    leak, weather = summary["captures"]
    server.stop()

    result, report = _replay(run_cli, collection)
    assert result.exit_code == 1, result.output  # the weather page's replay is not the page captured
    replays = {replay["capture_id"]: replay for replay in report["replay"]}
    # Refused at capture and so missing at replay too: the replay is the page as captured.
    assert set(replays[leak["id"]]["missing"]) == {"GET http://10.0.0.1/inside.png", "GET http://169.254.169.254/x.js"}
    assert replays[leak["id"]]["verdict"] == "alike"
    [asked] = replays[weather["id"]]["missing"]
    assert asked.startswith("GET " + server.url("/r?0."))  # a new random number: never captured
    assert replays[weather["id"]]["text_similarity"] < 0.95  # the captured answer is not what the replay got
    assert replays[weather["id"]]["verdict"] == "differs"
    assert replays[weather["id"]]["differences"][0].startswith("its visible text")

    logged = {entry["subject"]["capture"]: entry["subject"] for entry in _logged(collection)}
    assert logged[weather["id"]]["missing"] == [asked]

    # One capture alone, chosen by id: alike, so exit 0.
    result, report = _replay(run_cli, collection, "--capture", leak["id"])
    assert [replay["capture_id"] for replay in report["replay"]] == [leak["id"]] and result.exit_code == 0


@pytest.mark.parametrize("tall", [True, False], ids=["tall window", "as before tall windows"])
def test_a_page_with_an_embed_below_the_first_screen_replays_as_its_screenshot_was_taken(
        run_cli, raw_server, collection, chromium, monkeypatch, tall):
    """A frame from another site below the first screen is painted only in a window as tall as
    the page: the replay takes its screenshot the way the capture's was taken, so a capture
    made before that (the frame blank) is not told it differs from its replay (painted)."""
    server = raw_server({"/post": send_bytes(http_response(b'<body style="margin:0;background:#00f">post'))})
    server.routes["/embeds"] = send_bytes(http_response(
        b'<html><head>' + NO_ICON + b'</head><body style="margin:0"><div style="height:1500px">story</div>'
        + f'<iframe src="http://localhost:{server.port}/post" width="600" height="400" style="border:0;display:block">'
          f'</iframe><div style="height:300px"></div></body></html>'.encode()))
    if not tall:
        monkeypatch.setattr(screenshot, "_FOREIGN_FRAMES_BELOW", "() => false")
    result, summary = _capture(run_cli, collection, server.url("/embeds"))
    assert result.exit_code == 0, result.output
    [metadata] = [json.loads(r.block) for r in warc_records(collection.storage.folder)
                  if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"]
    assert (screenshot.TALL_WINDOW_NOTE in metadata["page"]["notes"]) == tall
    monkeypatch.undo()  # the replay runs as archiver does now
    server.stop()

    result, report = _replay(run_cli, collection)
    [replay] = report["replay"]
    assert result.exit_code == 0 and replay["verdict"] == "alike", replay
    assert replay["pixel_similarity"] >= 0.99


def test_a_wide_page_captured_before_screenshots_were_bounded_by_area_replays_alike(
        run_cli, raw_server, collection, chromium, monkeypatch):
    """A capture made when the screenshot was bounded each way only holds all of a page 3000 px
    wide and 10,000 high; its replay's screenshot is cut to the area bound now (2560 px wide). The
    part beyond the replay's is not compared: it is no change of the page."""
    server = raw_server({"/wide": send_bytes(http_response(
        b'<html><head>' + NO_ICON + b'</head><body style="margin:0;background:#2a6">'
        b'<div style="width:3000px;height:10000px">a very wide page</div></body></html>'))})
    whole = render.screenshot_clip
    monkeypatch.setattr(render, "screenshot_clip", lambda size, viewport, height, area, notes, shortfalls:
                        whole(size, viewport, height, 10**9, notes, shortfalls))
    result, summary = _capture(run_cli, collection, server.url("/wide"))
    assert result.exit_code == 0 and not summary["captures"][0]["incomplete"], result.output
    [shot] = [r for r in warc_records(collection.storage.folder) if r.headers.get("Content-Type") == "image/png"]
    assert Image.open(io.BytesIO(shot.block)).size == (3000, 10000)
    monkeypatch.undo()  # the replay runs as archiver does now
    server.stop()

    result, report = _replay(run_cli, collection)
    [replay] = report["replay"]
    assert result.exit_code == 0 and replay["verdict"] == "alike", replay
    assert replay["pixel_similarity"] >= 0.99, replay
    assert "screenshots compared within the replay's, which the page's size cut to its bounds" in replay["notes"]


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "#2a6").save(out, "PNG")
    return out.getvalue()


def test_a_replay_cut_only_wide_still_counts_the_lower_part_of_the_capture_it_lacks():
    """Cut to its bounds along one side, a replay's screenshot is compared within it along that
    side only: along the other, what the capture holds beyond it is the page shrunk on replay."""
    captured, replayed = _png(100, 200), _png(60, 100)
    assert pixel_similarity(captured, replayed, {"wide"}) == 0.5  # the capture's lower half unlike
    assert pixel_similarity(captured, replayed, {"high"}) == 0.6  # its right part beyond 60 px unlike
    assert pixel_similarity(captured, replayed, {"wide", "high"}) == 1.0


class _AnyQuery(dict):
    """Routes by path alone, whatever the query: the origin answers each random check."""

    def get(self, path, default=None):
        return super().get(path.partition("?")[0], default)


def test_a_page_that_empties_itself_on_replay_differs(run_cli, raw_server, collection, chromium):
    server = _origin(raw_server)
    server.routes = _AnyQuery({**server.routes, "/r": send_bytes(http_response(b"checked"))})
    result, summary = _capture(run_cli, collection, server.url("/empties"))
    assert result.exit_code == 0, result.output
    [capture] = summary["captures"]
    server.stop()

    result, report = _replay(run_cli, collection)
    assert result.exit_code == 1, result.output
    [replay] = report["replay"]
    assert replay["replayed"] is True and replay["verdict"] == "differs"
    assert replay["text_similarity"] == 0 and replay["pixel_similarity"] >= PIXELS_ALIKE  # white stays white
    [entry] = _logged(collection)
    assert entry["subject"]["verdict"] == "differs"
    text = run_cli("verify", "-C", collection.root, "--replay")
    assert text.exit_code == 1
    assert "differs" in text.stdout and f"{capture['id']}: differs: its visible text 0% alike" in text.stdout


def _framing(frame: str) -> bytes:
    """A page whose own text is a heading and a line, and whose story is in a frame at `frame`."""
    return (b"<html><head>" + NO_ICON + b"</head><body><h1>Weekly digest</h1><p>Read the story below.</p>"
            + f'<iframe src="{frame}" style="border:0;width:100%;height:300px"></iframe></body></html>'.encode())


def test_a_frame_that_empties_itself_on_replay_differs(run_cli, raw_server, collection, chromium):
    """The page's own DOM replays as it was captured; the story in its frame does not: the text a
    reader saw, the frame's included, is what is compared."""
    server = _origin(raw_server)
    server.routes = _AnyQuery({**server.routes, "/r": send_bytes(http_response(b"checked")),
                               "/framing": send_bytes(http_response(_framing("/empties")))})
    result, summary = _capture(run_cli, collection, server.url("/framing"))
    assert result.exit_code == 0, result.output
    server.stop()

    result, report = _replay(run_cli, collection)
    [replay] = report["replay"]
    assert result.exit_code == 1 and replay["verdict"] == "differs", replay
    assert replay["text_similarity"] < TEXT_ALIKE and replay["differences"][0].startswith("its visible text"), replay


def test_a_capture_made_before_frames_were_recorded_is_replayed_by_its_own_dom(
        run_cli, raw_server, collection, chromium, monkeypatch):
    """It holds no frame DOMs to compare the replay's frames with: its own DOM is compared, and
    the replay's notes say the frames' text was not."""
    server = _origin(raw_server)
    server.routes["/post"] = send_bytes(http_response(b"<html><body><p>The story, in a frame of its own.</p></body></html>"))
    server.routes["/framing"] = send_bytes(http_response(_framing("/post")))
    captured_before_frames(run_cli, collection, server.url("/framing"), monkeypatch)
    server.stop()

    result, report = _replay(run_cli, collection)
    [replay] = report["replay"]
    assert result.exit_code == 0 and replay["verdict"] == "alike", replay
    assert replay["text_similarity"] >= 0.99 and FRAMES_NOT_COMPARED in replay["notes"], replay


def test_a_capture_without_a_rendered_page_cannot_be_replayed(run_cli, raw_server, collection, chromium):
    server = _origin(raw_server)
    result = run_cli("capture", "-C", collection.root, "--no-browser", "--json", server.url("/article"))
    assert result.exit_code == 0, result.output
    [capture] = json.loads(result.stdout)["captures"]
    result, report = _replay(run_cli, collection, "--capture", capture["id"])
    assert result.exit_code == 1
    [replay] = report["replay"]
    assert replay["replayed"] is False and "not a browser capture" in replay["error"]
    assert replay["verdict"] == "not replayed"
    text = run_cli("verify", "-C", collection.root, "--replay", "--capture", capture["id"])
    assert text.exit_code == 1 and "not replayed" in text.stdout


def test_capture_qa_checks_each_page_as_it_is_captured(run_cli, raw_server, collection, chromium):
    server = _origin(raw_server)
    first, _ = _capture(run_cli, collection, server.url("/article"))
    assert first.exit_code == 0, first.output
    # Captured again unchanged, the page's response is a revisit record: its body is the first capture's.
    result, summary = _capture(run_cli, collection, "--qa", server.url("/article"), server.url("/weather"))
    assert result.exit_code == 1, result.output  # both captured, but the weather page does not replay as seen
    article, weather = summary["captures"]
    assert article["outcome"] == weather["outcome"] == "ok"
    assert article["revisit_of"]
    replays = {replay["capture_id"]: replay for replay in summary["replay"]}
    assert set(replays) == {article["id"], weather["id"]}
    assert replays[article["id"]]["missing"] == [] and replays[article["id"]]["pixel_similarity"] >= 0.99
    assert replays[article["id"]]["text_similarity"] >= 0.99
    assert len(replays[weather["id"]]["missing"]) == 1
    assert (replays[article["id"]]["verdict"], replays[weather["id"]]["verdict"]) == ("alike", "differs")
    assert {entry["subject"]["capture"] for entry in _logged(collection)} == {article["id"], weather["id"]}


def _busting_page(query: bytes) -> bytes:
    """A page that fetches its story with a cache-busting `query` (JavaScript), as jQuery's cache: false does."""
    return (b"<html><head>" + NO_ICON + b"</head><body><h1 id=t>Loading</h1><script>fetch('/news.json?' + " + query +
            b").then(r => r.json()).then(d => { document.getElementById('t').textContent = d.text; });"
            b"</script></body></html>")


def test_a_page_asking_with_cache_busting_values_replays_alike(run_cli, raw_server, collection, chromium):
    """`?_=` and the time, or `?r=` and a random number, is never the URL the capture asked for: the
    replay answers it with the recording that differs only there, and says so."""
    server = raw_server(_AnyQuery({
        "/jq": send_bytes(http_response(_busting_page(b"'_=' + Date.now()"))),
        "/rnd": send_bytes(http_response(_busting_page(b"'r=' + Math.random()"))),
        "/news.json": send_bytes(http_response(b'{"text": "The minister resigned on Tuesday after the vote"}',
                                               headers=[("Content-Type", "application/json")]))}))
    result, summary = _capture(run_cli, collection, server.url("/jq"), server.url("/rnd"))
    assert result.exit_code == 0, result.output
    jq, rnd = summary["captures"]
    server.stop()

    result, report = _replay(run_cli, collection)
    assert result.exit_code == 0, result.output
    replays = {replay["capture_id"]: replay for replay in report["replay"]}
    for capture, key in ((jq, "_"), (rnd, "r")):
        replay = replays[capture["id"]]
        assert (replay["verdict"], replay["missing"]) == ("alike", []), replay
        [(asked, recorded)] = replay["loosely_matched"].items()
        assert asked.startswith(f"GET {server.url('/news.json')}?{key}=")
        assert recorded.startswith(f"{server.url('/news.json')}?{key}=") and recorded != asked[4:]
        assert any(note.startswith("matched loosely") and asked in note for note in replay["notes"])
    logged = {entry["subject"]["capture"]: entry["subject"] for entry in _logged(collection)}
    assert logged[jq["id"]]["verdict"] == logged[rnd["id"]]["verdict"] == "alike"
    assert logged[rnd["id"]]["loosely_matched"] == replays[rnd["id"]]["loosely_matched"]
    text = run_cli("verify", "-C", collection.root, "--replay")
    assert text.exit_code == 0 and f"{jq['id']}: matched loosely" in text.stdout


def test_a_request_never_answered_at_capture_is_not_answered_at_replay(run_cli, raw_server, collection, chromium):
    """A long poll still waiting when the page was taken: the replay leaves it waiting too, rather
    than answering with its own 404, which the page would show as the poll's answer."""
    released = threading.Event()
    page = (b"<html><head>" + NO_ICON + b"</head><body><h1>Live results</h1><p id=w>Waiting for the count</p><script>"
            b"fetch('/wait').then(r => r.text()).then(t => { document.getElementById('w').textContent = 'ANSWER ' + t; });"
            b"</script></body></html>")
    server = raw_server({"/live": send_bytes(http_response(page)),
                         "/wait": lambda conn, request: released.wait(120) and conn.sendall(http_response(b"late"))})
    result, summary = _capture(run_cli, collection, server.url("/live"))
    released.set()
    assert result.exit_code == 0, result.output
    [capture] = summary["captures"]
    server.stop()

    result, report = _replay(run_cli, collection)
    [replay] = report["replay"]
    assert result.exit_code == 0 and (replay["verdict"], replay["missing"]) == ("alike", []), replay
    assert f"left unanswered, as at capture (sent, and no response recorded): GET {server.url('/wait')}" in replay["notes"]


CLOCK = (b"<html><head>" + NO_ICON + b"</head><body><p id=t></p><script>document.getElementById('t').textContent ="
         b" 'YEAR ' + new Date().getUTCFullYear() + ' ' + new Date(Date.now()).getUTCFullYear() + ' ' + Date().slice(11, 15)"
         b" + ' DICE ' + Math.random() + ' ' + Math.random();</script></body></html>")


def test_the_replays_clock_stands_at_the_captures_time_and_its_dice_are_steady(raw_server, collection, chromium):
    """In the replay only: a capture's page sees the real time and real random numbers."""
    from archiver.capture.browser.replay import CaptureArchive, Replayer
    from archiver.store.collection import Collection
    from archiver.store.settings import WAIT_AFTER_LOAD
    from tests.conftest import capture

    server = raw_server({"/clock": send_bytes(http_response(CLOCK)), "/clock2": send_bytes(http_response(CLOCK))})
    rows = capture(collection, server.url("/clock"), server.url("/clock2"), capture_mode="browser")
    doms = [r.block.decode() for r in warc_records(collection.storage.folder) if r.headers.get("WARC-Target-URI", "")
            .startswith("urn:dom:")]
    assert len(doms) == 2 and doms[0].split("DICE")[1] != doms[1].split("DICE")[1]  # the capture's dice are real
    assert f"YEAR {rows[0].started_at[:4]}" in doms[0]
    server.stop()

    in_2001 = datetime(2001, 5, 1, tzinfo=timezone.utc).timestamp()
    with Collection.open(collection.root) as opened, Replayer(find_chromium()) as replayer:
        texts = [replayer.replay(rows[0].url, CaptureArchive.of_capture(opened.storage, opened.catalog, rows[0].id, in_2001),
                                 time.monotonic() + 30, tall_window=False,
                                 wait_after_load=WAIT_AFTER_LOAD).page.text for _ in range(2)]
    assert "YEAR 2001 2001 2001 DICE 0." in texts[0]
    assert texts[0] == texts[1]  # the same numbers each replay
