"""`archiver doctor` on a shared collection: capture jobs whose worker stopped beating, and
worker keys (files or signatures) that no custody entry announces (real PostgreSQL)."""

from __future__ import annotations

import json

import psycopg

from archiver.capture.queue import STALLED_AFTER
from archiver.evidence.keys import custody_log
from archiver.evidence.signing import generate_key, grouped
from archiver.evidence.worker_keys import worker_key_path, worker_signing_key
from tests.conftest import make_collection


def _findings(run_cli, root) -> list[tuple[str, str]]:
    found = run_cli("doctor", "-C", root, "--json")
    assert found.exit_code == 1, found.output
    return [(f["kind"], f["where"]) for f in json.loads(found.stdout)["findings"]]


def test_doctor_lists_a_job_whose_worker_stopped_beating(run_cli, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    queued = run_cli("capture", "-C", collection.root, "--queue", "--json",
                     "http://127.0.0.1:1/stalled", "http://127.0.0.1:1/beating")
    assert queued.exit_code == 0, queued.output
    jobs = json.loads(queued.stdout)["queued"]
    with psycopg.connect(postgresql_url) as db:  # two workers took a job each; one then fell silent
        for url, silent_for in (("http://127.0.0.1:1/stalled", STALLED_AFTER + 60), ("http://127.0.0.1:1/beating", 0)):
            [(worker,)] = db.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES"
                                     " (now() - make_interval(secs => %s)) RETURNING id", (silent_for,)).fetchall()
            db.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s",
                       (worker, jobs[url]))
    assert _findings(run_cli, collection.root) == [("stalled job", f"job {jobs['http://127.0.0.1:1/stalled']}")]
    text = run_cli("doctor", "-C", collection.root)
    assert "http://127.0.0.1:1/stalled" in text.output and "beating" not in text.output


def test_doctor_lists_worker_keys_no_custody_entry_announces(run_cli, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    worker_signing_key(collection, machine="announced")
    assert run_cli("doctor", "-C", collection.root).exit_code == 0

    stray = generate_key(tmp_path / "stray.pem", None)
    custody_log(collection, stray).append("worker check", {"n": 1})
    assert _findings(run_cli, collection.root) == [("unannounced worker key", f"custody.jsonl line {_lines(collection)}")]

    other = tmp_path / "machine-b"
    other.mkdir()
    (other / "archiver.toml").write_bytes((collection.root / "archiver.toml").read_bytes())
    unannounced = generate_key(other / worker_key_path(collection).name, None)  # made, never announced
    found = _findings(run_cli, other)
    assert ("unannounced worker key", str(other / worker_key_path(collection).name)) in found
    assert grouped(unannounced.fingerprint) in run_cli("doctor", "-C", other).output


def _lines(collection) -> int:
    with collection:
        return len(list(collection.catalog.custody_lines()))


def test_doctor_lists_a_warc_file_a_stopped_worker_left_on_its_machine(run_cli, raw_server, tmp_path, postgresql_url,
                                                                        s3):
    """A worker killed with its captures spooled, not uploaded: its jobs are done, and verify
    says the file is being written elsewhere. Nothing writes it: doctor on any machine says so,
    until that machine's folder finishes it."""
    from tests.test_doctor import page
    from tests.test_workers import another_machine, queue_counts, shared_collection, wait_for, worker

    collection, _ = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url, warc_age=3600)
    workers_folder = another_machine(collection, tmp_path / "machine-b")
    server = raw_server({"/a": page})
    running = worker(workers_folder, concurrency=1)
    try:
        assert run_cli("capture", "-C", collection.root, "--queue", server.url("/a")).exit_code == 0
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 1, "the job done", [running])
    finally:
        running.kill()  # as its machine going down would: nothing uploaded
        running.wait(60)
    [spooled] = [path.name.removesuffix(".open") for path in (workers_folder.root / "warcs").glob("*.open")]
    assert _findings(run_cli, collection.root) == [("WARC file left on another machine", f"warcs/{spooled}")]

    again = worker(workers_folder, concurrency=1)  # started again, it finishes and uploads the file
    try:
        wait_for(lambda: run_cli("doctor", "-C", collection.root).exit_code == 0, "the file uploaded", [again])
    finally:
        again.terminate()
        again.wait(60)
