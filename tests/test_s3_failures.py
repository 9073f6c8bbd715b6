"""An S3 store failing on the wire, for real: radosgw behind a proxy that refuses the PUT of a
WARC object (tests/s3_faults.py)."""

from __future__ import annotations

import hashlib
import json

from archiver.evidence.custody import WARC_CLOSED, parse_entry
from archiver.evidence.keys import custody_lines
from tests.s3_faults import RefusingProxy
from tests.test_s3_storage import make_bucket, page_server, s3_collection


def _warc_puts(method: str, path: str) -> bool:
    return method == "PUT" and ".warc.gz" in path.partition("?")[0]


def test_a_close_whose_upload_failed_is_signed_once_with_the_bytes_doctor_then_uploads(
        tmp_path, run_cli, raw_server, s3, gateway, monkeypatch):
    """The store refuses the WARC file's PUT at the end of the run: the file stays in the spool.
    Once `doctor --fix` has uploaded it, its close is signed, exactly once, with the SHA-256 of
    the object now stored, and verify holds the file to it (no close left unsigned)."""
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    proxy = RefusingProxy(gateway.endpoint, _warc_puts)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        failed = run_cli("capture", "-C", collection.root, page_server(raw_server).url("/"))
    finally:
        proxy.stop()
    assert failed.exit_code == 3, failed.output
    assert proxy.refused and len(failed.stderr.splitlines()) == 1, failed.stderr
    assert "`archiver doctor --fix` uploads it" in failed.stderr
    [name] = [path.name[:-len(".open")] for path in (collection.root / "warcs").glob("*.warc.gz.open")]

    monkeypatch.setenv("AWS_ENDPOINT_URL", gateway.endpoint)  # the store is reachable again
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

