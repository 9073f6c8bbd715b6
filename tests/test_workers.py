"""A shared collection's capture queue: `capture --queue` queues one job per URL, `archiver
worker` processes take them, one killed mid-capture loses nothing, and the catalog keeps one
capture per job (real PostgreSQL, real worker processes, a real origin on 127.0.0.1)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from archiver.capture.run import CaptureRun
from archiver.evidence.keys import export_custody, open_signing_key
from tests.conftest import make_collection
from tests.test_doctor import gates, page  # noqa: F401 (gates is a fixture)

PAGES = 40


def worker(collection, concurrency: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "archiver", "worker", "-C", str(collection.root),
                             "--concurrency", str(concurrency)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def wait_for(condition, what: str, processes: list[subprocess.Popen]) -> None:
    """Wait for a state the workers reach; fail at once, with its stderr, if one ends first."""
    deadline = time.monotonic() + 120  # a guard against a hang, not a guess of how long it takes
    while not condition():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"a worker ended before {what}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"still not {what}"
        time.sleep(0.1)


def queue_counts(run_cli, collection) -> dict:
    shown = run_cli("queue", "-C", collection.root, "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)


def test_three_workers_one_killed_mid_capture_capture_every_url_exactly_once(run_cli, raw_server, gates, tmp_path,
                                                                             postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    # Ten pages answered at once, then every slot of the three workers (2 each) held open.
    gate = gates(answered=10, slots=6)
    server = raw_server({f"/{i}": gate.respond for i in range(PAGES)})
    urls = [server.url(f"/{i}") for i in range(PAGES)]
    queued = run_cli("capture", "-C", collection.root, "--queue", "--json", *urls)
    assert queued.exit_code == 0, queued.output
    assert len(json.loads(queued.stdout)["queued"]) == PAGES
    assert queue_counts(run_cli, collection) == {"queued": PAGES, "running": 0, "done": 0, "failed": 0, "retried": 0}

    workers = [worker(collection, concurrency=2) for _ in range(3)]
    try:
        wait_for(gate.slots_held.is_set, "every worker holding two pages", workers)
        workers[0].send_signal(signal.SIGKILL)  # mid-capture: two of its pages are being served
        workers[0].wait()
        gate.release()
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == PAGES, "every job done", workers[1:])
    finally:
        codes = [stop(process) for process in workers[1:]]
    assert codes == [0, 0], [process.stderr.read().decode() for process in workers[1:]]

    counts = queue_counts(run_cli, collection)
    assert counts["done"] == PAGES and counts["queued"] == counts["running"] == counts["failed"] == 0
    assert counts["retried"] == 2  # the killed worker's two jobs, taken again after its heartbeat stopped
    with psycopg.connect(postgresql_url) as db:
        captured = db.execute("SELECT url, job_id, outcome FROM captures").fetchall()
    assert sorted(url for url, _, _ in captured) == sorted(urls)  # every URL, exactly once
    assert len({job for _, job, _ in captured}) == PAGES and {outcome for _, _, outcome in captured} == {"ok"}

    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0  # the killed worker's open WARC
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_capture_queue_wait_follows_a_worker_and_prints_the_summary(raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({f"/{i}": page for i in range(3)})
    running = worker(collection, concurrency=2)
    try:
        waited = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                 "--wait", *(server.url(f"/{i}") for i in range(3))],
                                capture_output=True, text=True, timeout=120)
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    assert waited.returncode == 0, waited.stderr
    assert "Queued 3 capture job(s)" in waited.stdout and "3 captured: 3 content" in waited.stdout


def test_a_url_cited_twice_or_still_queued_is_queued_once(run_cli, raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page})
    (collection.root / "seeds" / "note.md").write_text(
        f"# Note\n\nOne says {server.url('/a')}.\n\nAnother says {server.url('/a')} too.\n")
    first = run_cli("capture", "-C", collection.root, "--queue", "--json", collection.root / "seeds", server.url("/a"))
    assert first.exit_code == 0, first.output
    assert list(json.loads(first.stdout)["queued"]) == [server.url("/a")]
    again = run_cli("capture", "-C", collection.root, "--queue", "--json", server.url("/a"))
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["queued"] == {} and json.loads(again.stdout)["already_queued"] == [server.url("/a")]
    assert queue_counts(run_cli, collection)["queued"] == 1
    claims = json.loads(run_cli("claims", "-C", collection.root, "--json").stdout)
    citing = [claim for claim in claims if any(url["url"] == server.url("/a") for url in claim["citations"])]
    assert len(citing) == 2  # the document was read into claims, as a capture reads it


def test_queueing_into_a_collection_with_a_local_catalog_is_refused_in_one_line(run_cli, tmp_path):
    collection = make_collection(tmp_path / "local")
    for command in (["capture", "--queue", "http://127.0.0.1:1/"], ["worker"], ["queue"]):
        refused = run_cli(command[0], "-C", collection.root, *command[1:])
        assert refused.exit_code == 2, refused.output
        assert len(refused.output.strip().splitlines()) == 1 and "PostgreSQL catalog" in refused.output


@pytest.mark.parametrize("catalog_backend", ["sqlite", "postgresql"], indirect=True)
def test_a_job_captured_again_keeps_its_first_capture_in_the_catalog(raw_server, collection):
    # A job taken again while its first worker still stores it (a heartbeat missed under load):
    # both captures reach the catalog's transaction, and the catalog keeps the first.
    server = raw_server({"/a": page})
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        first = run.capture_job(server.url("/a"), "7")
        result = run.pages.fetch(server.url("/a"))
        try:
            run._store([result], "7")
        finally:
            result.release()
        assert run.capture_job(server.url("/a"), "7") == first
    with collection:
        assert [(c.id, c.job_id) for c in collection.catalog.captures()] == [(first.id, "7")]
    captures_logged = [line for line in export_custody(collection).read_text().splitlines() if '"capture"' in line]
    assert len(captures_logged) == 1
