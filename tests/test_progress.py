"""Long work shows a bar on a terminal, and none piped or under --json: the checks of
`verify --live` (a fetch or a render per URL) and `--replay` (a render per capture)."""

from __future__ import annotations

import json

import pytest

from archiver.capture.browser.chromium import find_chromium
from tests.conftest import http_response, send_bytes

TERMINAL = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}


def test_verify_live_shows_its_progress_on_a_terminal_and_none_under_json(run_cli, raw_server, collection):
    server = raw_server({"/a": send_bytes(http_response(b"<p>a page of words</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/a"), "--json").exit_code == 0
    on_terminal = run_cli("verify", "-C", collection.root, "--live", env=TERMINAL)
    assert on_terminal.exit_code == 0 and "checking live pages" in on_terminal.stderr, on_terminal.output
    as_json = run_cli("verify", "-C", collection.root, "--live", "--json", env=TERMINAL)
    assert as_json.exit_code == 0 and "checking" not in as_json.stderr
    assert [d["state"] for d in json.loads(as_json.stdout)["live"]] == ["unchanged"]


def test_verify_replay_shows_its_progress_on_a_terminal_and_none_under_json(run_cli, raw_server, collection,
                                                                             monkeypatch):
    monkeypatch.delenv("ARCHIVER_CHROMIUM")  # the browser, as archiver finds it
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    server = raw_server({"/a": send_bytes(http_response(b"<title>t</title><p>a page of words</p>",
                                                        headers=[("Content-Type", "text/html")]))})
    assert run_cli("capture", "-C", collection.root, "--browser", server.url("/a"), "--json").exit_code == 0
    on_terminal = run_cli("verify", "-C", collection.root, "--replay", env=TERMINAL)
    assert on_terminal.exit_code == 0 and "replaying browser captures" in on_terminal.stderr, on_terminal.output
    as_json = run_cli("verify", "-C", collection.root, "--replay", "--json", env=TERMINAL)
    assert as_json.exit_code == 0 and "replaying" not in as_json.stderr


def test_a_capture_without_qa_shows_its_capture_bar_and_no_replay_bar(run_cli, raw_server, collection):
    server = raw_server({"/a": send_bytes(http_response(b"<p>a page of words</p>"))})
    on_terminal = run_cli("capture", "-C", collection.root, "--no-browser", server.url("/a"), env=TERMINAL)
    assert on_terminal.exit_code == 0 and "capturing" in on_terminal.stderr, on_terminal.output
    assert "replaying" not in on_terminal.stderr  # there is nothing to replay
