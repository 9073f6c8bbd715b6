"""A worker's WARC upload refused by the store, for real: radosgw behind a proxy that refuses
the PUT of a WARC object (tests/s3_faults.py), a catalog on real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

from archiver.capture.run import CaptureRun
from archiver.errors import StorageProblem
from archiver.evidence.keys import open_signing_key
from archiver.store.collection import Collection
from tests.s3_faults import RefusingProxy
from tests.test_doctor import page
from tests.test_workers import another_machine, shared_collection


def _store_three_jobs(run: CaptureRun, server) -> dict[str, object]:
    """Jobs 0, 1 and 2 as a worker's threads take them, 1 and 2 finishing together: job 0's
    store is held until both wait behind it, so that one store takes them together. Each job's
    capture, or the error its job fails with (and is taken again for)."""
    outcomes: dict[str, object] = {}
    first_stored, release = threading.Event(), threading.Event()
    store = run._job_stores._store

    def held_store(jobs):
        store(jobs)
        first_stored.set()
        release.wait(30)
    run._job_stores._store = held_store

    def take(job: str) -> None:
        try:
            outcomes[job] = run.capture_job(server.url(f"/{job}"), job)
        except StorageProblem as problem:
            outcomes[job] = problem
    first = threading.Thread(target=take, args=("0",))
    first.start()
    assert first_stored.wait(30)
    together = [threading.Thread(target=take, args=(job,)) for job in ("1", "2")]
    for thread in together:
        thread.start()
    deadline = time.monotonic() + 30
    while len(run._job_stores._waiting) < 2:
        assert time.monotonic() < deadline, "jobs 1 and 2 never waited together"
        time.sleep(0.01)
    release.set()
    for thread in [first, *together]:
        thread.join(30)
    run._job_stores._store = store
    return outcomes


def _captures(collection: Collection) -> list[tuple[str, str]]:
    """(path, job) of each capture the catalog lists."""
    with Collection.open(collection.root) as done:
        return sorted((c.url.rpartition("/")[2], c.job_id or "") for c in done.catalog.captures())


def test_jobs_stored_together_across_a_rotation_are_each_listed_once(
        run_cli, raw_server, tmp_path, postgresql_url, s3):
    """The file fills after job 1, and is closed and uploaded before job 2 is written (a rotation
    inside one group's store): job 1's capture, written into it by that same store, is listed too."""
    collection, _ = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url)
    server = raw_server({"/0": page, "/1": page, "/2": page})
    settings = dataclasses.replace(collection.config.capture, warc_size=1)  # a new file for each capture
    with CaptureRun(collection, settings, open_signing_key(collection, None, None)) as run:
        outcomes = _store_three_jobs(run, server)
    assert not [o for o in outcomes.values() if isinstance(o, StorageProblem)], outcomes
    assert _captures(collection) == [("0", "0"), ("1", "1"), ("2", "2")]
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_jobs_stored_together_across_a_refused_rotation_are_each_captured_once(
        run_cli, raw_server, tmp_path, postgresql_url, s3, gateway, monkeypatch):
    """Jobs finishing together are stored together; the file fills after the first, and its
    upload (the rotation before the second) is refused. The first job's capture is in that file,
    fsynced and signed in the spool: its job is done, as any job whose capture waits for its
    file's upload. Only the second is taken again (by another machine). Once doctor uploads the
    file, every URL has one capture, each its job's: none made twice, none lost."""
    collection, _ = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url)
    server = raw_server({"/0": page, "/1": page, "/2": page})
    warc_puts: list[str] = []  # each file's name once, in the order its first PUT came

    def second_warc_put(method: str, path: str) -> bool:  # the first file goes up; the next is refused
        if method != "PUT" or ".warc.gz" not in path.partition("?")[0]:
            return False
        if path not in warc_puts:
            warc_puts.append(path)
        return path != warc_puts[0]
    proxy = RefusingProxy(gateway.endpoint, second_warc_put)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    settings = dataclasses.replace(collection.config.capture, warc_size=1)  # a new file for each capture
    try:
        with CaptureRun(collection, settings, open_signing_key(collection, None, None)) as run:
            outcomes = _store_three_jobs(run, server)
    finally:
        proxy.stop()
    assert sorted(outcomes) == ["0", "1", "2"] and len(warc_puts) == 2, (outcomes, warc_puts)
    # The one of 1 and 2 stored first went into the file refused; the other was not written, and is taken again.
    assert [job for job, outcome in sorted(outcomes.items()) if isinstance(outcome, StorageProblem)] in (["1"], ["2"])

    monkeypatch.setenv("AWS_ENDPOINT_URL", gateway.endpoint)  # the store is reachable again
    elsewhere = another_machine(collection, tmp_path / "elsewhere")
    with CaptureRun(elsewhere, elsewhere.config.capture, open_signing_key(elsewhere, None, None)) as retry:
        for job, outcome in sorted(outcomes.items()):
            if isinstance(outcome, StorageProblem):
                retry.capture_job(server.url(f"/{job}"), job, taken_before=True)
    fixed = run_cli("doctor", "-C", collection.root, "--fix")
    assert "WARC file left" not in fixed.output, fixed.output

    assert _captures(collection) == [("0", "0"), ("1", "1"), ("2", "2")]
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output


def test_verify_elsewhere_while_a_file_whose_close_is_signed_goes_up_says_not_checked_never_failed(
        run_cli, raw_server, tmp_path, postgresql_url, s3, monkeypatch):
    """A file's close is signed before its upload: while another machine's run uploads it, the
    catalog still lists it as being written. verify on this machine says so (not checked), and
    neither fails the file nor says it passed; once it is up, the file is held to its close."""
    from archiver.evidence.custody import WARC_CLOSED, parse_entry
    from archiver.evidence.keys import custody_lines
    from archiver.store.s3 import S3Storage
    from tests.conftest import capture

    collection, _ = shared_collection(tmp_path / "machine", run_cli, s3, postgresql_url)
    elsewhere = another_machine(collection, tmp_path / "elsewhere")
    upload, going_up, go_on = S3Storage._upload, threading.Event(), threading.Event()

    def slow_upload(self, path, written, key=None):
        if written.name.endswith(".warc.gz"):
            going_up.set()
            go_on.wait(60)
        return upload(self, path, written, key)
    monkeypatch.setattr(S3Storage, "_upload", slow_upload)
    captured = threading.Thread(target=capture, args=(elsewhere, raw_server({"/a": page}).url("/a")))
    captured.start()
    try:
        assert going_up.wait(60)
        assert [e for e in map(parse_entry, custody_lines(collection)) if e and e["event"] == WARC_CLOSED]
        during = run_cli("verify", "-C", collection.root, "--json")
    finally:
        go_on.set()
        captured.join(60)
    assert during.exit_code == 0, during.output
    assert [line for line in json.loads(during.stdout)["not_checked"] if "being uploaded" in line], during.stdout
    after = run_cli("verify", "-C", collection.root, "--json")
    assert after.exit_code == 0 and json.loads(after.stdout)["passed"]["WARC file close in custody log"] == 1, after.stdout
