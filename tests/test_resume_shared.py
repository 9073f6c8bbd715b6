"""`capture --resume` on a collection shared by machines (catalog on PostgreSQL, WARCs in S3):
it takes up only runs that stopped, never one still capturing on another machine, and one
machine resumes at a time. Each machine has its own folder, as in tests/test_workers.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

import pytest

from archiver.capture.run import CaptureRun
from archiver.errors import StorageProblem
from archiver.evidence.keys import open_signing_key
from archiver.store.catalog_locks import run_lock
from archiver.store.postgresql_database import PostgreSQL
from tests.conftest import http_response, make_collection, send_bytes

from tests.test_bundle import _state
from tests.test_doctor import gates, logged_captures, wait_until  # noqa: F401 (gates is a fixture)
from tests.test_interrupt import _STOP_BEFORE_THE_RUN
from tests.test_workers import another_machine, shared_collection

PAGES = 12


def _capture(root, urls: list[str], *extra: str, code: str | None = None) -> subprocess.Popen:
    """`archiver capture` of `urls` in the machine folder `root`, as its own process."""
    command = [sys.executable, "-m", "archiver"] if code is None else \
        [sys.executable, "-c", code + "\nfrom archiver.cli import main\nmain()"]
    return subprocess.Popen([*command, "capture", "-C", str(root), "--concurrency", "2", *extra, *urls],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _captured(run_cli, collection) -> Counter:
    listed = run_cli("captures", "-C", collection.root, "--json")
    assert listed.exit_code == 0, listed.output
    return Counter(c["url"] for c in json.loads(listed.stdout) if c["outcome"] == "ok")


def _two_machines(run_cli, raw_server, gates, tmp_path, postgresql_url, s3):
    """Two machines' folders of one shared collection, and PAGES pages of which 4 are answered
    at once and 2 then held open: (first, second, gate, server, urls)."""
    first, _ = shared_collection(tmp_path / "machine-0", run_cli, s3, postgresql_url, warc_age=1)
    second = another_machine(first, tmp_path / "machine-1")
    gate = gates(answered=4, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(PAGES)})
    return first, second, gate, server, [server.url(f"/{i}") for i in range(PAGES)]


def test_a_run_still_capturing_on_another_machine_is_not_resumed_until_it_stops(
        run_cli, raw_server, gates, tmp_path, postgresql_url, s3):
    first, second, gate, server, urls = _two_machines(run_cli, raw_server, gates, tmp_path, postgresql_url, s3)
    running = _capture(first.root, urls)
    try:
        wait_until(lambda: logged_captures(first) == 4, "4 captures stored", running)
        assert gate.slots_held.wait(60), "the capture never asked for the held pages"
        refused = run_cli("capture", "-C", second.root, "--resume", *urls)
        assert refused.exit_code == 2, refused.output
        assert "still capturing these URLs on another machine" in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert _captured(run_cli, second) == Counter({server.url(path): 1 for path in gate.answered_paths})
    finally:
        running.send_signal(signal.SIGINT)
        assert running.wait(timeout=60) == 130, running.stderr.read().decode()
        gate.release()
    # Stopped, the run is taken up: the other machine captures its rest, each URL once in all.
    resumed = run_cli("capture", "-C", second.root, "--resume", *urls, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert _captured(run_cli, second) == Counter({url: 1 for url in urls})


def test_two_machines_resuming_at_once_one_is_refused(run_cli, raw_server, gates, tmp_path, postgresql_url, s3):
    first, second, gate, server, urls = _two_machines(run_cli, raw_server, gates, tmp_path, postgresql_url, s3)
    interrupted = _capture(first.root, urls)
    wait_until(lambda: logged_captures(first) == 4, "4 captures stored", interrupted)
    assert gate.slots_held.wait(60), "the capture never asked for the held pages"
    interrupted.send_signal(signal.SIGINT)
    assert interrupted.wait(timeout=60) == 130, interrupted.stderr.read().decode()
    gate.release()

    resuming = _capture(first.root, urls, "--resume", "--json", code=_STOP_BEFORE_THE_RUN)
    wait_until(lambda: _state(resuming) == "T", "the first resume stopped before its run", resuming)
    try:
        refused = run_cli("capture", "-C", second.root, "--resume", *urls)
    finally:
        resuming.send_signal(signal.SIGCONT)
    stdout, stderr = resuming.communicate(timeout=60)
    assert refused.exit_code == 2, refused.output
    assert "another machine is resuming" in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    assert resuming.returncode == 0, stderr.decode()
    assert _captured(run_cli, second) == Counter({url: 1 for url in urls})


def test_a_run_stopped_by_an_error_as_it_ends_no_longer_holds_its_lock(raw_server, tmp_path, postgresql_url):
    """A process that goes on after its run failed (a worker, a long-lived caller) lets go of the
    run: another machine's resume would otherwise take it as still capturing for as long."""
    collection = make_collection(tmp_path / "c", postgresql_url)
    server = raw_server({"/": send_bytes(http_response(b"<html><body>a page</body></html>"))})
    other_machine = PostgreSQL(postgresql_url)
    with collection:
        run = CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None))
        with pytest.raises((OSError, StorageProblem)):
            with run:
                assert [row.outcome for row in run.capture([server.url("/")])] == ["ok"]
                assert other_machine.held_elsewhere(run_lock(run.run_id))
                # Its file cannot be published: a folder holds the name it would take.
                [unfinished] = (collection.root / "warcs").glob("*.open")
                unfinished.with_suffix("").mkdir()
        assert not other_machine.held_elsewhere(run_lock(run.run_id))
