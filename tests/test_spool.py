"""A worker's spool on a shared collection (real PostgreSQL, real radosgw, real worker
processes): its captures are listed only once their WARC is uploaded, which happens when the
file gets old, captures or no captures, or the worker stops; and a
worker killed halfway through a record leaves a spool file that its restart (or `doctor --fix`)
finishes and uploads, its job then captured exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import http_response, send_bytes
from tests.test_s3_storage import object_gets  # noqa: F401 (a fixture)
from tests.test_workers import (another_machine, cataloged_files, queue_counts, shared_collection, stop, uploaded,
                                wait_for, worker)


def closed_files(postgresql_url: str) -> list[tuple]:
    """(name, retention mode) of each WARC file the catalog lists as closed."""
    return [(name, mode) for name, mode, closed in cataloged_files(postgresql_url) if closed]


def big_page(conn, request: bytes) -> None:
    """A page large enough that its record goes to disk in several writes."""
    path = request.split(b" ")[1]
    conn.sendall(http_response(b"<p>" + path + b"</p>" + os.urandom(300_000).hex().encode(),
                               headers=[("Content-Type", "text/html")]))


def test_a_running_worker_uploads_its_warc_once_it_is_older_than_warc_age(run_cli, raw_server, s3, postgresql_url,
                                                                         tmp_path):
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url, warc_age=2)
    server = raw_server({"/a": send_bytes(http_response(b"<p>a</p>")), "/b": send_bytes(http_response(b"<p>b</p>"))})
    running = worker(collection, 1)
    try:
        assert run_cli("capture", "-C", collection.root, "--queue", server.url("/a")).exit_code == 0
        # No capture follows: the worker's timer, not a next capture, closes the file.
        wait_for(lambda: len(uploaded(s3, bucket)) == 1, "the first capture's WARC uploaded", [running])
        wait_for(lambda: len(closed_files(postgresql_url)) == 1, "its upload cataloged", [running])
        assert run_cli("capture", "-C", collection.root, "--queue", server.url("/b")).exit_code == 0
        wait_for(lambda: len(closed_files(postgresql_url)) == 2, "the second capture's WARC uploaded", [running])
        assert running.poll() is None, "the worker stopped"
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    assert [mode for _, mode in closed_files(postgresql_url)] == ["COMPLIANCE", "COMPLIANCE"]
    assert uploaded(s3, bucket) == [name for name, _ in closed_files(postgresql_url)]
    with psycopg.connect(postgresql_url) as db:
        assert db.execute("SELECT count(DISTINCT warc_file) FROM captures").fetchone()[0] == 2


def test_a_workers_captures_are_listed_once_their_warc_is_uploaded_with_its_closing_in_one_transaction(
        run_cli, raw_server, s3, postgresql_url, tmp_path):
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url, warc_age=3600)
    other = another_machine(collection, tmp_path / "other")
    server = raw_server({"/a": big_page, "/b": big_page})
    assert run_cli("capture", "-C", collection.root, "--queue", server.url("/a"), server.url("/b")).exit_code == 0
    running = worker(collection, 2)
    try:
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 2, "both jobs done", [running])
        # Done: fsynced in the worker's spool. Not listed: not in the store yet.
        assert uploaded(s3, bucket) == [] and len(list((collection.root / "warcs").glob("*.open"))) == 1
        with psycopg.connect(postgresql_url) as db:
            assert db.execute("SELECT count(*) FROM captures").fetchone()[0] == 0
        # Another machine's verify meanwhile: nothing listed is missing; the open file is named, not checked.
        looked = run_cli("verify", "-C", other.root, "--json")
        assert looked.exit_code == 0, looked.output
        assert any("being written or uploaded on another machine" in line for line in json.loads(looked.stdout)["not_checked"])
    finally:
        assert stop(running) == 0, running.stderr.read().decode()  # stopping uploads the file
    [name] = uploaded(s3, bucket)
    with psycopg.connect(postgresql_url) as db:
        listed = db.execute("SELECT c.warc_file, c.xmin::text, f.xmin::text, f.closed_at IS NOT NULL"
                            " FROM captures c JOIN warc_files f ON f.name = c.warc_file").fetchall()
    assert len(listed) == 2 and {(file, closed) for file, _, _, closed in listed} == {(name, True)}
    assert all(capture_xmin == file_xmin for _, capture_xmin, file_xmin, _ in listed)  # one transaction
    verified = run_cli("verify", "-C", other.root)
    assert verified.exit_code == 0, verified.output


def test_capture_queue_wait_waits_for_the_upload_that_lists_the_captures(run_cli, raw_server, s3, postgresql_url,
                                                                         tmp_path):
    collection, _ = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url, warc_age=2)
    server = raw_server({"/a": big_page, "/b": big_page})
    running = worker(collection, 2)
    try:
        waited = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                 "--wait", server.url("/a"), server.url("/b")], capture_output=True, text=True, timeout=120)
        assert running.poll() is None, "the worker stopped"  # listed after the upload its file's age brought
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    assert waited.returncode == 0, waited.stderr
    assert "2 captured: 2 content" in waited.stdout


@pytest.mark.parametrize("repaired_by", ["restarted worker", "doctor --fix"])
def test_a_worker_killed_mid_record_is_finished_uploaded_and_its_job_captured_once(
        run_cli, raw_server, s3, postgresql_url, tmp_path, repaired_by):
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url)
    server = raw_server({"/whole": big_page, "/torn": big_page})
    urls = [server.url("/whole"), server.url("/torn")]
    assert run_cli("capture", "-C", collection.root, "--queue", *urls).exit_code == 0
    # The worker kills itself (SIGKILL) halfway through the second capture's response record.
    killed = worker(collection, 1, crash_at="mid-record:2")
    assert killed.wait(120) == -signal.SIGKILL, killed.stderr.read().decode()
    [left] = list((collection.root / "warcs").glob("*.open"))
    assert uploaded(s3, bucket) == []

    if repaired_by == "doctor --fix":
        fixed = run_cli("doctor", "-C", collection.root, "--fix", "--json")
        assert fixed.exit_code == 0, fixed.output
        # The whole capture's job was done, its capture held for the upload its worker never made.
        assert {f["kind"] for f in json.loads(fixed.stdout)["findings"]} == {"open file", "uncataloged capture"}
        assert uploaded(s3, bucket) == [left.name.removesuffix(".open")]
    restarted = worker(collection, 1)
    try:
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 2, "both jobs done", [restarted])
    finally:
        assert stop(restarted) == 0, restarted.stderr.read().decode()

    name = left.name.removesuffix(".open")
    assert not list((collection.root / "warcs").glob("*.open"))
    assert [p.name for p in (collection.root / "warcs" / "quarantine").iterdir()] == [left.name]  # the torn tail
    files = closed_files(postgresql_url)
    assert (name, "COMPLIANCE") in files and len(files) == 2  # the finished file, and the retaken job's
    assert uploaded(s3, bucket) == [n for n, _ in files]
    with psycopg.connect(postgresql_url) as db:
        captured = db.execute("SELECT url, warc_file, job_id FROM captures ORDER BY url").fetchall()
    assert sorted(url for url, _, _ in captured) == sorted(urls)  # each job captured exactly once
    assert len({job for _, _, job in captured} - {None}) == 2  # each listed as its own job's capture
    assert {url: file for url, file, _ in captured}[server.url("/whole")] == name  # the whole capture kept in the finished file
    counts = queue_counts(run_cli, collection)
    assert counts["retried"] == 1 and counts["failed"] == 0
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_doctor_on_one_machine_leaves_the_warc_another_machine_is_writing_alone(run_cli, raw_server, s3,
                                                                               postgresql_url, tmp_path):
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url)
    other = another_machine(collection, tmp_path / "other-machine").root
    server = raw_server({"/a": send_bytes(http_response(b"<p>a</p>"))})
    running = worker(collection, 1)
    try:
        assert run_cli("capture", "-C", collection.root, "--queue", server.url("/a")).exit_code == 0
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 1, "the job done", [running])
        # The first machine's WARC is open (listed in the catalog, in its spool), and not a leftover.
        looked = run_cli("doctor", "-C", other, "--json")
        assert looked.exit_code == 0, looked.output
        assert run_cli("doctor", "-C", other, "--fix").exit_code == 0
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    assert len(closed_files(postgresql_url)) == 1 and len(uploaded(s3, bucket)) == 1
    verified = run_cli("verify", "-C", other)
    assert verified.exit_code == 0, verified.output


def test_finishing_a_workers_leftover_reads_no_other_object_of_the_bucket(run_cli, raw_server, s3, postgresql_url,
                                                                          tmp_path, object_gets):
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url)
    server = raw_server({"/earlier": big_page, "/whole": big_page, "/torn": big_page})
    assert run_cli("capture", "-C", collection.root, server.url("/earlier")).exit_code == 0
    [earlier] = uploaded(s3, bucket)
    assert run_cli("capture", "-C", collection.root, "--queue", server.url("/whole"), server.url("/torn")).exit_code == 0
    killed = worker(collection, 1, crash_at="mid-record:2")
    assert killed.wait(120) == -signal.SIGKILL, killed.stderr.read().decode()
    [left] = list((collection.root / "warcs").glob("*.open"))

    object_gets.clear()
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    assert sorted(uploaded(s3, bucket)) == sorted([earlier, left.name.removesuffix(".open")])
    # Only a file open when its writer died can hold records the catalog missed: however large
    # the bucket, a restart reads none of the others.
    assert object_gets and all(left.name.removesuffix(".open") in url for url, _ in object_gets), object_gets


def test_a_worker_that_cannot_upload_stops_and_its_next_start_uploads_what_it_kept(run_cli, raw_server, s3,
                                                                                    postgresql_url, tmp_path):
    """The store refuses the upload by age (here a bucket policy denying every PUT): the worker
    kept the file, and went on taking jobs until restarted by hand. It now stops in one line;
    started again, with the store back, it uploads the file and the catalog lists the capture."""
    collection, bucket = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url, warc_age=2)
    server = raw_server({"/a": send_bytes(http_response(b"<p>a</p>"))})
    running = worker(collection, 1)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    try:
        assert run_cli("capture", "-C", collection.root, "--queue", server.url("/a")).exit_code == 0
        ended = running.wait(120)
    finally:
        if running.poll() is None:
            stop(running)
        s3.delete_bucket_policy(Bucket=bucket)
    said = running.stderr.read().decode()
    assert ended == 3, said
    [line] = [line for line in said.splitlines() if line.startswith("error: ")]
    assert "this worker stopped" in line and "start it again, which finishes what it kept" in line, line
    assert closed_files(postgresql_url) == [] and uploaded(s3, bucket) == []

    with psycopg.connect(postgresql_url) as db:
        [(restarted_at,)] = db.execute("SELECT now()").fetchall()
    again = worker(collection, 1)
    try:
        wait_for(lambda: len(closed_files(postgresql_url)) == 1, "the kept file uploaded and cataloged", [again])
        wait_for(lambda: _beats_since(postgresql_url, restarted_at), "the worker taking jobs", [again])
    finally:
        assert stop(again) == 0, again.stderr.read().decode()
    with psycopg.connect(postgresql_url) as db:
        assert db.execute("SELECT url FROM captures").fetchall() == [(server.url("/a"),)]


def _beats_since(postgresql_url: str, moment) -> bool:
    with psycopg.connect(postgresql_url) as db:
        return db.execute("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > %s", (moment,)).fetchone()[0] > 0
