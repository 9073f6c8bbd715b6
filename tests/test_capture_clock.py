"""A capture's time is the capturing machine's clock: when its signed times contradict each
other, or the RFC 3161 token over them, verify and verify-bundle name it (found by QA, court
review). The capturing run is given a wrong clock with faketime, as tests/tsa.py gives the TSA one."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver.check.clock_times import CustodyClock
from archiver.check.findings import Report
from tests.conftest import http_response, send_bytes, use_tsa
from tests.tsa import local_tsa  # noqa: F401  (a fixture)

REPOSITORY = Path(__file__).resolve().parent.parent
PAGE = b"<html><title>T</title><p>words</p></html>"


def capture_with_clock(offset: str, collection, url: str) -> None:
    """The capture run on a machine whose clock is off by `offset` (a faketime offset)."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run(["faketime", "-f", offset, sys.executable, "-m", "archiver", "-C", str(collection.root),
                           "capture", "--no-browser", url], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def bundle_and_verify(run_cli, collection, tsa, tmp_path: Path) -> tuple[dict, str]:
    """verify-bundle's findings on a bundle of every capture, and the bundle's report.html."""
    bundle = tmp_path / "all.wacz"
    made = run_cli("bundle", "-C", collection.root, "--all", "-o", bundle, "--json")
    assert made.exit_code == 0, made.output
    fingerprint = json.loads(made.stdout)["fingerprint"]
    checked = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--tsa-roots", tsa.ca_pem_path, "--json")
    return json.loads(checked.stdout), zipfile.ZipFile(bundle).read("evidence/report.html").decode()


def verified(run_cli, collection) -> dict:
    return json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)


def captured(run_cli, collection) -> dict:
    [capture] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    return capture


def failures(report: dict, check: str) -> list[str]:
    return [f"{failure['where']}: {failure['detail']}" for failure in report["failures"] if failure["check"] == check]


def test_a_capture_dated_after_the_timestamp_over_it_fails(run_cli, raw_server, collection, local_tsa, tmp_path):
    """A clock a day ahead: the token (real time) over the manifest listing the capture is a day
    before the capture's own time. Both verifications fail, naming the capture and both times."""
    server = raw_server({"/page": send_bytes(http_response(PAGE))})
    use_tsa(collection.root, local_tsa)
    capture_with_clock("+1d", collection, server.url("/page"))
    capture = captured(run_cli, collection)
    bundle_report, _ = bundle_and_verify(run_cli, collection, local_tsa, tmp_path)
    for report in (bundle_report, verified(run_cli, collection)):
        assert not report["ok"]
        [named] = [line for line in failures(report, "capture time before timestamp") if capture["id"] in line]
        assert capture["started_at"][:19] in named and "the capturing machine's clock was ahead" in named, named


def test_a_capture_dated_before_its_key_existed_fails(run_cli, raw_server, collection, local_tsa, tmp_path):
    """A clock 30 days behind: the capture's custody entries follow the key's and the collection's
    yet are dated a month before them. Both verifications fail, naming where the times go back."""
    server = raw_server({"/page": send_bytes(http_response(PAGE))})
    use_tsa(collection.root, local_tsa)
    capture_with_clock("-30d", collection, server.url("/page"))
    capture = captured(run_cli, collection)
    bundle_report, _ = bundle_and_verify(run_cli, collection, local_tsa, tmp_path)
    for report in (bundle_report, verified(run_cli, collection)):
        assert not report["ok"]
        named = failures(report, "custody times in order")
        assert any(capture["id"] in line and "go back from" in line and "the capturing machine's clock was wrong" in line
                   for line in named), named


def test_the_report_says_whose_clock_dates_the_captures(run_cli, raw_server, collection, local_tsa, tmp_path):
    """With a token too (not only without one), the report says capture times are the capturing
    machine's clock and that the token proves only that the captures existed no later than its time."""
    server = raw_server({"/page": send_bytes(http_response(PAGE))})
    use_tsa(collection.root, local_tsa)
    assert run_cli("capture", "-C", collection.root, "--no-browser", server.url("/page")).exit_code == 0
    bundle_report, page = bundle_and_verify(run_cli, collection, local_tsa, tmp_path)
    assert bundle_report["ok"], bundle_report["failures"]
    assert "read from the clock of the machine that captured" in page
    assert "existed no later than" in page


def test_an_imported_capture_dated_after_the_timestamp_is_named_as_the_files_word(run_cli, collection, local_tsa,
                                                                                  tmp_path):
    """Another tool's WARC dated by a clock a year ahead: its date is that file's word, which no
    clock of the collection's gave; verify and verify-bundle name it, and the collection still verifies."""
    warc = tmp_path / "ahead.warc.gz"
    with open(warc, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("http://example.org/", "response", payload=io.BytesIO(PAGE),
                                                      http_headers=http, warc_headers_dict={"WARC-Date": "2099-01-01T00:00:00Z"}))
    use_tsa(collection.root, local_tsa)
    assert run_cli("import", "-C", collection.root, warc).exit_code == 0
    capture = captured(run_cli, collection)
    bundle_report, _ = bundle_and_verify(run_cli, collection, local_tsa, tmp_path)
    for report in (bundle_report, verified(run_cli, collection)):
        assert report["ok"], report["failures"]
        assert any(capture["id"] in line and "the file's date is not when it was captured" in line
                   for line in report["not_checked"]), report["not_checked"]


def custody_times(*times: str) -> Report:
    """The findings on entries of a custody log dated `times`, in that order (the second a capture)."""
    report = Report()
    clock = CustodyClock(report)
    for seq, moment in enumerate(times, 1):
        entry = {"seq": seq, "time": moment, "event": "capture" if seq == 2 else "note recorded",
                 "subject": {"capture": "20261203-c0ffee"} if seq == 2 else {}}
        clock.follow(entry, f"custody.jsonl line {seq}")
    return report


def test_a_clock_stepped_back_a_second_is_named_not_failed():
    """NTP steps an honest machine's clock back by a second or two: named, not failed."""
    report = custody_times("2026-12-03T10:00:02.000Z", "2026-12-03T10:00:00.500Z", "2026-12-03T10:00:03Z")
    assert report.ok and report.passed["custody times in order"] == 2
    [named] = report.not_checked
    assert named.startswith("custody.jsonl line 2: times in the custody log go back from 2026-12-03T10:00:02.000Z "
                            "(seq 1) to 2026-12-03T10:00:00.500Z at seq 2 (capture 20261203-c0ffee), 1.500 s"), named


def test_small_steps_back_fail_once_they_take_the_time_back_past_the_allowance():
    """Steps 36 and 48 s back from the latest time are named; one 48 s back from the entry before it
    but 72 s from the latest fails: small steps must not add up to a clock set back unseen."""
    steps = [f"2026-12-03T10:{second // 60:02d}:{second % 60:02d}Z" for second in (360, 324, 348, 312, 336, 288)]
    report = custody_times(*steps)
    assert [(f.where, f.detail.split(":")[-1]) for f in report.failures] == \
        [("custody.jsonl line 6", " the capturing machine's clock was wrong; capture times rest on it")]
    assert len(report.not_checked) == 2  # 36 s and 48 s before 10:06:00: within the allowance
