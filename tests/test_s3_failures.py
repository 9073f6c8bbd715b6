"""An S3 store failing on the wire, for real: radosgw behind a proxy that refuses the PUT of a
WARC object (tests/s3_faults.py), and an endpoint that accepts connections and never answers."""

from __future__ import annotations

import hashlib
import json
import time

from archiver.evidence.custody import WARC_CLOSED, parse_entry
from archiver.evidence.keys import custody_lines
from tests.s3_faults import RefusingProxy, SilentServer
from tests.test_s3_storage import capture_refused, make_bucket, page_server, s3_collection


def _warc_puts(method: str, path: str) -> bool:
    return method == "PUT" and ".warc.gz" in path.partition("?")[0]


def test_a_close_whose_upload_failed_is_signed_once_with_the_bytes_doctor_then_uploads(
        tmp_path, run_cli, raw_server, s3, gateway, monkeypatch):
    """The store refuses the WARC file's PUT at the end of the run: the file stays in the spool.
    Once `doctor --fix` has uploaded it, its close is signed, exactly once, with the SHA-256 of
    the object now stored, and verify holds the file to it (no close left unsigned)."""
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    failed = capture_refused(run_cli, collection, raw_server, gateway, monkeypatch, _warc_puts)
    assert len(failed.stderr.splitlines()) == 1, failed.stderr
    assert "`archiver doctor --fix` uploads it" in failed.stderr
    [name] = [path.name[:-len(".open")] for path in (collection.root / "warcs").glob("*.warc.gz.open")]

    unfinished = run_cli("verify", "-C", collection.root)  # never "ok" while the file is not stored
    assert unfinished.exit_code == 1 and "doctor --fix" in unfinished.output, unfinished.output
    fixed = run_cli("doctor", "-C", collection.root, "--fix")
    assert fixed.exit_code == 0, fixed.output
    stored = s3.get_object(Bucket=bucket, Key=f"team/{name}")["Body"].read()

    closes = [entry["subject"] for entry in map(parse_entry, custody_lines(collection))
              if entry and entry["event"] == WARC_CLOSED]
    assert closes == [{"file": name, "size": len(stored), "sha256": hashlib.sha256(stored).hexdigest()}], closes
    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert not [line for line in report["not_checked"] if "no signed record of their SHA-256" in line], report
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0  # nothing more to do, nothing signed again
    assert len([e for e in map(parse_entry, custody_lines(collection)) if e and e["event"] == WARC_CLOSED]) == 1


def _store_settings(collection, **settings) -> None:
    config = collection.root / "archiver.toml"
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    config.write_text(config.read_text().replace("[storage]\n", f"[storage]\n{lines}"))


def test_a_store_that_never_answers_stops_a_command_within_its_timeout(tmp_path, run_cli, raw_server, s3):
    """An endpoint that accepts connections and never answers: each command that needs the store
    gives up after the collection's `timeout` (not botocore's 3 attempts of 60 s), in one line
    naming the endpoint and what to do, exit 2 (an S3 store that cannot be used), nothing captured."""
    collection = s3_collection(tmp_path, run_cli, f"s3://{make_bucket(s3)}/team/")
    hung = SilentServer()
    try:
        _store_settings(collection, endpoint=hung.endpoint, timeout=2)
        for command in (["capture", page_server(raw_server).url("/")], ["verify"]):
            started = time.monotonic()
            stopped = run_cli(command[0], "-C", collection.root, *command[1:])
            took = time.monotonic() - started
            assert stopped.exit_code == 2, stopped.output
            [line] = stopped.stderr.splitlines()
            assert f"the S3 store at {hung.endpoint} did not answer within 2 s" in line, line
            assert "raise timeout in [storage]" in line and "Traceback" not in stopped.output, line
            assert took < 8, f"{command[0]} held for {took:.1f} s"
    finally:
        hung.stop()
    assert not list((collection.root / "warcs").glob("*.open"))


def test_an_upload_left_unanswered_fails_within_the_timeout_and_doctor_then_uploads_it(
        tmp_path, run_cli, raw_server, s3, gateway):
    """The store answers everything but the WARC file's PUT, which it never answers: the capture
    ends within the timeout, exit 3, its file kept in the spool; doctor --fix uploads it later."""
    bucket = make_bucket(s3)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    proxy = RefusingProxy(gateway.endpoint, _warc_puts, hang=True)
    try:
        _store_settings(collection, endpoint=proxy.endpoint, timeout=2)
        started = time.monotonic()
        failed = run_cli("capture", "-C", collection.root, page_server(raw_server).url("/"))
        took = time.monotonic() - started
    finally:
        proxy.stop()
    assert failed.exit_code == 3, failed.output
    assert len(proxy.refused) == 1, proxy.refused  # asked once: a request left unanswered is not sent again
    [line] = failed.stderr.splitlines()
    assert f"the S3 store at {proxy.endpoint} did not answer within 2 s" in line, line
    assert "`archiver doctor --fix` uploads it" in line, line
    assert took < 15, f"the capture held for {took:.1f} s"
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace(f'endpoint = "{proxy.endpoint}"\n', ""))
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    assert len(json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)) == 1
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_spool_disk_that_fills_is_named_by_its_local_folder_not_the_store(tmp_path, run_cli, raw_server, s3,
                                                                             monkeypatch):
    """The store is fine; the disk of this machine's spool is full: the line names that folder."""
    import errno

    from tests.faults import Faults

    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    server = page_server(raw_server)
    Faults(monkeypatch.setattr, collection.root / "warcs", fail_at=1, error=errno.ENOSPC)
    failed = run_cli("capture", "-C", collection.root, server.url("/"))
    assert failed.exit_code == 3, failed.output
    [line] = failed.stderr.splitlines()
    assert f"cannot write to {collection.root / 'warcs'}: No space left on device" in line, line
