"""A shared collection's capture queue: `capture --queue` queues one job per URL, `archiver
worker` processes take them, one killed mid-capture loses nothing, and the catalog keeps one
capture per job (real PostgreSQL, real radosgw, real worker processes, a real origin on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from archiver.capture.run import CaptureRun
from archiver.capture.warc import WarcFileWriter
from archiver.evidence.keys import export_custody, open_signing_key
from archiver.store.collection import Collection
from archiver.store.crash_points import CRASH_AT
from archiver.store.s3 import COLLECTION_MARKER
from tests import pg
from tests.conftest import allow_networks, make_collection
from tests.test_doctor import gates, page  # noqa: F401 (gates is a fixture)
from tests.test_s3_storage import make_bucket

PAGES = 300


def worker(collection, concurrency: int, crash_at: str | None = None) -> subprocess.Popen:
    """`archiver worker` in the collection's folder; with `crash_at`, it kills itself there (ARCHIVER_CRASH_AT)."""
    environment = {key: value for key, value in os.environ.items() if key != CRASH_AT}
    if crash_at:
        environment[CRASH_AT] = crash_at
    return subprocess.Popen([sys.executable, "-m", "archiver", "worker", "-C", str(collection.root),
                             "--concurrency", str(concurrency)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=environment)


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


def shared_collection(root: Path, run_cli, s3, postgresql_url, warc_age: float | None = None) -> tuple[Collection, str]:
    """A collection with its catalog on PostgreSQL and its WARCs in a locked bucket; the bucket."""
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    made = run_cli("init", root, "--catalog", postgresql_url, "--storage", f"s3://{bucket}/", "--name", "test")
    assert made.exit_code == 0, made.output
    allow_networks(root, "127.0.0.1/32")
    if warc_age is not None:
        config = root / "archiver.toml"
        config.write_text(re.sub(r"(?m)^warc_age = .*$", f"warc_age = {warc_age}", config.read_text()))
    return Collection.open(root), bucket


def another_machine(collection: Collection, root: Path) -> Collection:
    """A second machine's folder for the shared collection: its own spool, the same archiver.toml."""
    root.mkdir()
    shutil.copy(collection.root / "archiver.toml", root / "archiver.toml")
    return Collection.open(root)


def uploaded(s3, bucket: str) -> list[str]:
    """The keys of the files uploaded to the bucket (not the COLLECTION_MARKER init stores)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"] != COLLECTION_MARKER)


def cataloged_files(postgresql_url: str) -> list[tuple]:
    """(name, retention mode, closed) of every WARC file the catalog lists."""
    with psycopg.connect(postgresql_url) as db:
        return db.execute("SELECT name, retention_mode, closed_at IS NOT NULL FROM warc_files ORDER BY name").fetchall()


def test_three_workers_one_killed_mid_capture_one_right_after_its_upload_capture_every_url_once(
        run_cli, raw_server, gates, tmp_path, postgresql_url, s3):
    first, bucket = shared_collection(tmp_path / "machine-0", run_cli, s3, postgresql_url, warc_age=1)
    config = first.root / "archiver.toml"  # per_host holds across the fleet: room for both workers' two pages
    config.write_text(re.sub(r"(?m)^per_host = \d+", "per_host = 4", config.read_text()))
    machines = [first] + [another_machine(first, tmp_path / f"machine-{n}") for n in (1, 2)]
    # Ten pages answered at once, then every page held open until released.
    gate = gates(answered=10, slots=1)
    server = raw_server({f"/{i}": gate.respond for i in range(PAGES)})
    urls = [server.url(f"/{i}") for i in range(PAGES)]
    queued = run_cli("capture", "-C", first.root, "--queue", "--json", *urls)
    assert queued.exit_code == 0, queued.output
    assert len(json.loads(queued.stdout)["queued"]) == PAGES
    assert queue_counts(run_cli, first) == {"queued": PAGES, "running": 0, "stalled": 0, "stopping": 0, "done": 0,
                                               "failed": 0, "retried": 0}

    # Machine 1's worker captures the ten pages, and its first WARC closes a second later: it dies
    # the instant that WARC is uploaded and checked, before its spool copy goes or the catalog knows.
    uploader = worker(machines[1], concurrency=2, crash_at="after-upload")
    assert uploader.wait(120) == -signal.SIGKILL, uploader.stderr.read().decode()
    [(name, _, closed)] = cataloged_files(postgresql_url)
    assert uploaded(s3, bucket) == [name] and not closed
    held_by_dead = gate.held
    workers = [worker(machines[n], concurrency=2) for n in (0, 2)]
    try:
        wait_for(lambda: gate.held == held_by_dead + 4, "both workers holding two pages", workers)
        workers[0].send_signal(signal.SIGKILL)  # mid-capture: two of its pages are being served
        workers[0].wait()
        # Machine 1's worker again: it finishes the WARC it left while the other machine works on
        # (its start-up repair can take a while: the pages stay held until it has listed that WARC,
        # so that it is not asked to stop before it has started).
        workers[0] = worker(machines[1], concurrency=2)
        wait_for(lambda: (name, "COMPLIANCE", True) in cataloged_files(postgresql_url),
                 "the WARC machine 1 left listed by its worker", workers)
        gate.release()
        wait_for(lambda: queue_counts(run_cli, first)["done"] == PAGES, "every job done", workers)
    finally:
        codes = [stop(process) for process in workers]
    assert codes == [0, 0], [process.stderr.read().decode() for process in workers]

    counts = queue_counts(run_cli, first)
    assert counts["done"] == PAGES and counts["queued"] == counts["running"] == counts["failed"] == 0
    assert counts["retried"] == held_by_dead + 2  # the jobs both dead workers held, taken again
    with psycopg.connect(postgresql_url) as db:
        captured = db.execute("SELECT url, job_id, outcome FROM captures").fetchall()
    assert sorted(url for url, _, _ in captured) == sorted(urls)  # every URL, exactly once
    assert len({job for _, job, _ in captured}) == PAGES and {outcome for _, _, outcome in captured} == {"ok"}

    assert run_cli("doctor", "-C", machines[0].root, "--fix").exit_code == 0  # the worker killed mid-capture
    files = cataloged_files(postgresql_url)
    assert (name, "COMPLIANCE", True) in files and {(mode, closed) for _, mode, closed in files} == {("COMPLIANCE", True)}
    assert uploaded(s3, bucket) == [file for file, _, _ in files]
    verified = run_cli("verify", "-C", machines[2].root)
    assert verified.exit_code == 0, verified.output


def test_queue_shows_a_killed_workers_job_as_stalled_and_how_it_is_taken_again(run_cli, raw_server, gates, tmp_path,
                                                                                postgresql_url):
    """A worker killed mid-capture (SIGKILL, its machine lost) left its job 'doing' in the queue:
    `queue` counted it running for ever. It is stalled once the worker's heartbeat stops, by the
    rule doctor and the live workers use, until a worker takes it again."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    gate = gates(answered=0, slots=1)
    server = raw_server({"/held": gate.respond})
    assert run_cli("capture", "-C", collection.root, "--queue", server.url("/held")).exit_code == 0
    killed = worker(collection, concurrency=1)
    try:
        wait_for(gate.slots_held.is_set, "the worker capturing the page", [killed])
        assert queue_counts(run_cli, collection) == {"queued": 0, "running": 1, "stalled": 0, "stopping": 0, "done": 0,
                                                     "failed": 0, "retried": 0}
    finally:
        killed.kill()
        killed.wait()
    wait_for(lambda: queue_counts(run_cli, collection)["stalled"] == 1, "the killed worker's job stalled", [])
    shown = run_cli("queue", "-C", collection.root)
    assert "running\t0\nstalled\t1\n" in shown.stdout, shown.stdout
    [said] = shown.stderr.splitlines()
    assert said.startswith("1 job(s) stalled: their worker's heartbeat stopped") and \
        "taken again by a running `archiver worker` (none is running now: start one)" in said, said

    gate.release()
    again = worker(collection, concurrency=1)
    try:
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 1, "the stalled job taken again", [again])
    finally:
        assert stop(again) == 0
    assert queue_counts(run_cli, collection) == {"queued": 0, "running": 0, "stalled": 0, "stopping": 0, "done": 1,
                                                 "failed": 0, "retried": 1}


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


def test_a_postgresql_server_lost_mid_command_is_one_line_and_exit_3(run_cli, tmp_path, postgresql_url, monkeypatch):
    """psycopg's errors are not OSErrors: one met mid-command was an 'internal error', its
    message on three lines."""
    collection = make_collection(tmp_path / "shared", postgresql_url)

    def server_gone(url):
        raise psycopg.OperationalError("connection failed: server closed the connection\n\tIs the server running?")
    monkeypatch.setattr("archiver.cli.queue.job_counts", server_gone)
    result = run_cli("queue", "-C", collection.root)
    assert result.exit_code == 3, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the PostgreSQL server failed: connection failed") and "internal error" not in line

    def wrapped_by_procrastinate(url):  # as its wrap_exceptions reports any psycopg error
        from procrastinate.exceptions import ConnectorException
        try:
            server_gone(url)
        except psycopg.OperationalError as exc:
            raise ConnectorException() from exc
    monkeypatch.setattr("archiver.cli.queue.job_counts", wrapped_by_procrastinate)
    [line] = run_cli("queue", "-C", collection.root).stderr.splitlines()
    assert line.startswith("error: the PostgreSQL server failed: connection failed: server closed"), line

    def a_bug(url):  # any other psycopg error, through procrastinate, is no server gone
        from procrastinate.exceptions import ConnectorException
        raise ConnectorException() from psycopg.errors.UndefinedFunction("function f() does not exist")
    monkeypatch.setattr("archiver.cli.queue.job_counts", a_bug)
    assert "internal error" in run_cli("queue", "-C", collection.root).stderr


@pytest.mark.parametrize("catalog_backend", ["postgresql"], indirect=True)
def test_only_a_job_taken_again_asks_the_catalog_whether_it_was_captured(raw_server, collection, monkeypatch):
    # Only a job taken again (its worker seemed dead) can have a capture already: asking the
    # catalog for every job cost each one PostgreSQL round trips, one under the store's lock.
    server = raw_server({"/a": page})
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        statements = []
        execute = run.catalog._db.execute
        monkeypatch.setattr(run.catalog._db, "execute",
                            lambda sql, args=(): statements.append(sql) or execute(sql, args))
        first = run.capture_job(server.url("/a"), "7", taken_before=False)
        asked_first = [sql for sql in statements if "FROM captures WHERE job_id" in sql]
        statements.clear()
        again = run.capture_job(server.url("/a"), "7", taken_before=True)
        asked_again = [sql for sql in statements if "FROM captures WHERE job_id" in sql]
    assert first.job_id == "7" and asked_first == []
    assert again == first and len(asked_again) == 1  # found before its fetch: not fetched again
    with collection:
        assert [c.id for c in collection.catalog.captures()] == [first.id]


@pytest.mark.parametrize("catalog_backend", ["sqlite", "postgresql"], indirect=True)
def test_a_job_captured_twice_keeps_the_first_as_its_capture_and_the_second_as_a_capture_of_no_job(
        run_cli, raw_server, collection):
    # A job taken again while its first worker still stores it (a heartbeat missed under load):
    # both captures reach the catalog's transaction. The first is the job's; the second, whose
    # records are written, is kept too, as a capture of no job, so no record stands unlisted.
    server = raw_server({"/a": page})
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        first = run.capture_job(server.url("/a"), "7")
        result = run.pages.fetch(server.url("/a"))
        try:
            [second] = run._store([result], ["7"])
        finally:
            result.release()
        assert run.capture_job(server.url("/a"), "7", taken_before=True) == first
    with collection:
        assert sorted((c.id, c.job_id or "") for c in collection.catalog.captures()) == \
            sorted([(first.id, "7"), (second.id, "")])
    captures_logged = [line for line in export_custody(collection).read_text().splitlines() if '"capture"' in line]
    assert len(captures_logged) == 2
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_a_queue_connection_the_server_ended_is_replaced_before_a_job_uses_it(postgresql_url):
    """The worker's pool checks a connection without a round trip unless the server said
    something on it: one whose session the server ended is set aside and a new one handed out."""
    import asyncio
    import select

    from archiver.capture import queue

    async def run() -> tuple[int, int, int]:
        async with queue._pool(conninfo=postgresql_url, min_size=1, max_size=1, open=False,
                               configure=queue._autocommit) as pool:
            await pool.open(wait=True)
            async with pool.connection() as connection:
                first = (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
                socket = connection.fileno()
            with psycopg.connect(postgresql_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            select.select([socket], [], [], 30)  # the server's farewell has arrived
            async with pool.connection() as connection:
                second = (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
            async with pool.connection() as connection:
                third = (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
        return first, second, third

    first, second, third = asyncio.run(run())
    assert second != first and third == second  # a new session, then kept while alive


def test_a_worker_started_before_anything_was_queued_makes_the_queue_and_takes_jobs(raw_server, tmp_path,
                                                                                   postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page})
    running = worker(collection, concurrency=2)

    def queue_made() -> bool:
        with psycopg.connect(postgresql_url) as db:
            return db.execute("SELECT to_regclass('procrastinate_workers')").fetchone()[0] is not None

    try:
        wait_for(queue_made, "the worker made the queue's tables", [running])
        waited = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                 "--wait", server.url("/a")], capture_output=True, text=True, timeout=120)
    finally:
        stopped, said = stop(running), running.stderr.read().decode()
    assert stopped == 0 and "Warning" not in said, said  # the tables made as `capture --queue` makes them
    assert waited.returncode == 0, waited.stderr
    assert "1 captured: 1 content" in waited.stdout


def test_a_worker_killed_after_publishing_a_warc_before_the_catalog_knew_is_finished_by_doctor_with_its_lock(
        run_cli, raw_server, tmp_path, postgresql_url, s3):
    """The WARC is uploaded and its spool copy gone, the catalog not told: doctor --fix records
    it closed with the Object Lock the store holds it under (it recorded none, so a locked file
    looked unlocked), lists its captures, and verify passes."""
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url, warc_age=1)
    server = raw_server({f"/{i}": page for i in range(3)})
    assert run_cli("capture", "-C", collection.root, "--queue", *(server.url(f"/{i}") for i in range(3))).exit_code == 0
    killed = worker(collection, concurrency=2, crash_at="after-publish")
    assert killed.wait(120) == -signal.SIGKILL, killed.stderr.read().decode()
    [(name, _, closed)] = cataloged_files(postgresql_url)
    assert uploaded(s3, bucket) == [name] and not closed

    fixed = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert fixed.exit_code == 0, fixed.output
    assert cataloged_files(postgresql_url) == [(name, "COMPLIANCE", True)]
    with psycopg.connect(postgresql_url) as db:
        (listed,) = db.execute("SELECT count(DISTINCT capture_id) FROM records WHERE warc_file = %s", (name,)).fetchone()
        (until,) = db.execute("SELECT retain_until FROM warc_files WHERE name = %s", (name,)).fetchone()
    assert listed >= 1  # the captures the file holds, found by their attestation records
    held = s3.head_object(Bucket=bucket, Key=name)["ObjectLockRetainUntilDate"]
    assert until == held.isoformat()
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_a_warc_still_goes_up_by_age_after_an_unexpected_failure_closing_it(
        run_cli, raw_server, tmp_path, postgresql_url, s3, monkeypatch, caplog):
    """The thread that closes and uploads a worker's WARC once warc_age old outlives any failure
    (it ended on one that was not a storage or disk error, and the worker went on capturing
    with nothing uploaded, listed or durable in the store until it stopped). What it logs holds
    for a direct capture too, whose run closes by age as a worker's does: doctor --fix uploads it."""
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url, warc_age=1)
    close_if_old, failed = WarcFileWriter.close_if_old, []

    def fails_once(writer: WarcFileWriter):  # on the thread that closes by age
        if not failed and threading.current_thread().name == "warc-age":
            failed.append(True)
            raise RuntimeError("a fault of ours")
        return close_if_old(writer)

    monkeypatch.setattr(WarcFileWriter, "close_if_old", fails_once)
    server = raw_server({"/a": page})
    with CaptureRun(collection, collection.config.capture, open_signing_key(collection, None, None)) as run:
        assert run.capture_job(server.url("/a"), "1", taken_before=False).outcome == "ok"
        deadline = time.monotonic() + 60  # a guard against a hang, not a guess of how long it takes
        while not uploaded(s3, bucket):
            assert time.monotonic() < deadline, "the WARC never went up while the run went on"
            time.sleep(0.1)
    assert failed == [True]
    assert "RuntimeError: a fault of ours; `archiver doctor --fix` uploads it (a worker's next start does too)" \
        in caplog.text, caplog.text


def test_a_worker_whose_catalog_connection_the_server_ended_stops_and_its_job_is_taken_again(
        raw_server, tmp_path, postgresql_url):
    """A PostgreSQL restart ends every session: a worker whose catalog connection it ended
    failed each job it took from then on, for good, while its heartbeat went on. It now stops
    with one line, and the job it met that with waits for the next worker."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page, "/b": page})
    running = worker(collection, concurrency=1)
    try:
        queued = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                 "--wait", server.url("/a")], capture_output=True, text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr
        with psycopg.connect(postgresql_url, autocommit=True) as admin:  # as a restart does, to every session
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                        server.url("/b")], capture_output=True, text=True, timeout=120, check=True)
        ended = running.wait(120)
    finally:
        if running.poll() is None:
            stop(running)
    said = running.stderr.read().decode()
    assert ended == 3, said
    [line] = [line for line in said.splitlines() if line.startswith("error: ")]
    assert "this worker stopped (a job it was capturing is taken again by any worker)" in line, said

    again = worker(collection, concurrency=1)
    try:
        wait_for(lambda: len(_captured_urls(postgresql_url)) == 2, "/b captured by the next worker", [again])
    finally:
        assert stop(again) == 0
    assert sorted(_captured_urls(postgresql_url)) == [server.url("/a"), server.url("/b")]  # each once


def test_an_idle_worker_whose_catalog_connection_the_server_ended_stops_too(raw_server, tmp_path, postgresql_url):
    """With no job to take, it would have learnt only at its next job (or upload by age), while
    its locks on the files it writes, gone with its session, told other machines it had died."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    running = worker(collection, concurrency=1)
    try:
        wait_for(lambda: _beats(postgresql_url), "the worker beating", [running])
        with psycopg.connect(postgresql_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ended = running.wait(120)
    finally:
        if running.poll() is None:
            stop(running)
    said = running.stderr.read().decode()
    assert ended == 3 and "this worker stopped" in said, said


@pytest.fixture
def own_postgresql():
    """A PostgreSQL cluster of the test's own, which it may stop: an outage, not one session ended."""
    if why_not := pg.missing():
        pytest.skip(why_not)
    cluster = pg.Cluster()
    yield cluster
    if cluster.data.exists():
        cluster.stop()


@pytest.mark.parametrize("verbose", [False, True])
def test_a_worker_in_a_postgresql_outage_says_one_line_of_its_own_and_the_rest_with_verbose(
        raw_server, gates, tmp_path, own_postgresql, verbose):
    """The catalog's server gone, with a job under way: the worker's stderr held procrastinate's
    and psycopg's pool's own lines (listener error, a connection retry a second, the job failed)
    before its one line. Now that line alone (exit 3); -v shows theirs."""
    collection = make_collection(tmp_path / "shared", own_postgresql.new_database())
    gate = gates(answered=0, slots=1)
    server = raw_server({"/held": gate.respond})
    subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                    server.url("/held")], capture_output=True, timeout=120, check=True)
    running = subprocess.Popen([sys.executable, "-m", "archiver", "worker", "-C", str(collection.root),
                                *(["-v"] if verbose else [])], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(gate.slots_held.is_set, "the worker capturing the page", [running])
        own_postgresql.stop()
        gate.release()
        ended = running.wait(120)
    finally:
        if running.poll() is None:
            stop(running)
    said = running.stderr.read().decode().splitlines()
    assert ended == 3 and said[-1].startswith("error: the catalog server failed: "), said
    if verbose:
        assert any(line.startswith("worker: psycopg.pool: ") for line in said), said
    else:
        assert len(said) == 2 and said[0].startswith("worker: capturing "), said


def test_a_job_failed_on_a_fault_of_ours_is_one_line_of_the_workers_own(run_cli, raw_server, tmp_path, postgresql_url):
    """procrastinate's own line for a failed job is shown with -v only: the worker says it in its words."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page})
    assert run_cli("capture", "-C", collection.root, "--queue", server.url("/a")).exit_code == 0
    rigged = ("import sys; from archiver.capture.run import CaptureRun; from archiver.cli import cli\n"
              "def fault(*args, **kwargs): raise RuntimeError('a fault of ours')\n"
              "CaptureRun.capture_job = fault; cli.main(args=sys.argv[1:], prog_name='archiver')")
    running = subprocess.Popen([sys.executable, "-c", rigged, "worker", "-C", str(collection.root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: queue_counts(run_cli, collection)["failed"] == 1, "the job failed", [running])
    finally:
        assert stop(running) == 0
    said = running.stderr.read().decode().splitlines()
    assert len(said) == 3 and said[0].startswith("worker: capturing ") and said[2].startswith("worker: stopped "), said
    assert said[1] == (f"worker: job 1, capturing {server.url('/a')}, failed on a fault of ours "
                       "(RuntimeError: a fault of ours)"), said


def _beats(postgresql_url: str) -> bool:
    with psycopg.connect(postgresql_url) as db:
        if db.execute("SELECT to_regclass('procrastinate_workers')").fetchone()[0] is None:
            return False
        return db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0] > 0


def _captured_urls(postgresql_url: str) -> list[str]:
    with psycopg.connect(postgresql_url) as db:
        return [row[0] for row in db.execute("SELECT url FROM captures WHERE outcome = 'ok'").fetchall()]


def test_what_a_worker_logs_is_one_line_a_record_with_its_exception_last_line_only(capsys):
    """procrastinate logs a failed job or a replaced connection with its traceback: forty lines
    a job during an outage. The worker prints each record as one line."""
    import logging

    from archiver.cli.worker import _OneLine

    try:
        raise psycopg.OperationalError("the connection is closed\n\tIs the server running?")
    except psycopg.OperationalError:
        record = logging.LogRecord("procrastinate.worker", logging.ERROR, __file__, 1, "Job %s ended with status: %s",
                                   ("capture[69]", "Error"), sys.exc_info())
    shown = _OneLine().format(record)
    assert shown == ("worker: Job capture[69] ended with status: Error (OperationalError: the connection is closed"
                     "\\n\\tIs the server running?)")
