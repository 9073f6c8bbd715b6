"""After a run is killed: `archiver doctor` finds what it left and repairs it, losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from archiver.catalog import Catalog
from tests.conftest import capture, http_response


def slow_page(delay: float):
    def respond(conn, request):
        time.sleep(delay)
        conn.sendall(http_response(b"<p>" + request.split(b" ")[1] * 50 + b"</p>"))
    return respond


def capturing(collection, server, pages: int, concurrency: int) -> subprocess.Popen:
    """`archiver capture` of `pages` slow pages in its own process, once it has begun writing."""
    process = subprocess.Popen([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root),
                                "--concurrency", str(concurrency), *(server.url(f"/{i}") for i in range(pages))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not list(collection.warcs.glob("*.open")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return process


def test_a_killed_capture_is_repaired_and_verifies(run_cli, raw_server, collection):
    server = raw_server({f"/{i}": slow_page(0.05) for i in range(60)})
    process = capturing(collection, server, 60, concurrency=2)
    time.sleep(0.4)  # some captures stored, others in flight
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(collection.warcs.glob("*.open")), "the run was killed before it could close its WARC"

    found = run_cli("doctor", "-C", collection.root, "--json")
    assert found.exit_code == 1
    assert "open file" in {f["kind"] for f in json.loads(found.stdout)["findings"]}
    fixed = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert fixed.exit_code == 0 and all(f["fixed"] for f in json.loads(fixed.stdout)["findings"])
    assert not list(collection.warcs.glob("*.open"))
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert json.loads(run_cli("doctor", "-C", collection.root, "--json").stdout)["healthy"] is True
    repairs = json.loads(run_cli("log", "-C", collection.root, "--json", "--event", "doctor").stdout)
    assert repairs and repairs[0]["subject"]["repairs"]

    before = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert 0 < len(before) < 60
    resumed = run_cli("capture", "-C", collection.root, "--resume", *(server.url(f"/{i}") for i in range(60)), "--json")
    assert resumed.exit_code == 0, resumed.output
    again = [c["url"] for c in json.loads(resumed.stdout)["captures"]]
    assert not set(again) & before and set(again) | before == {server.url(f"/{i}") for i in range(60)}
    assert json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["ok"]


def test_records_that_never_reached_the_catalog_are_cataloged_from_their_attestation(run_cli, raw_server, collection,
                                                                                    monkeypatch):
    server = raw_server({"/lost": slow_page(0)})

    def crash(self, captures):
        raise RuntimeError("the machine stopped between the fsync and the commit")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(Catalog, "add_captures", crash)
        capture(collection, server.url("/lost"))
    assert json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) == []
    assert not json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["ok"]  # unlisted records

    result = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert result.exit_code == 0, result.output
    fixed = json.loads(result.stdout)
    assert [f["kind"] for f in fixed["findings"]] == ["uncataloged capture"]
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert row["url"] == server.url("/lost") and row["outcome"] == "ok" and row["run_id"] == "salvaged"
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_four_capturing_processes_and_a_manifest_export_at_once(run_cli, raw_server, collection):
    server = raw_server({f"/{i}": slow_page(0.01) for i in range(40)})
    capturing = [subprocess.Popen([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--json",
                                   *(server.url(f"/{i}") for i in range(start, 40, 4))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for start in range(4)]
    exporting = subprocess.Popen([sys.executable, "-m", "archiver", "manifest", "-C", str(collection.root), "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outputs = [p.communicate(timeout=120) for p in [*capturing, exporting]]
    assert [p.returncode for p in [*capturing, exporting]] == [0] * 5, outputs
    listed = [c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)]
    assert sorted(listed) == sorted(server.url(f"/{i}") for i in range(40))  # every capture present, once
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert report["passed"]["custody chain"] == report["passed"]["custody entry readable"]


def test_doctor_leaves_a_running_capture_alone(run_cli, raw_server, collection):
    """A capture in progress has an .open file that is not a leftover: doctor must not touch it."""
    server = raw_server({f"/{i}": slow_page(0.05) for i in range(40)})
    process = capturing(collection, server, 40, concurrency=1)
    open_files = list(collection.warcs.glob("*.open"))
    assert open_files, "the capture never started writing"
    for command in (["doctor"], ["doctor", "--fix"]):
        result = run_cli(*command, "-C", collection.root)
        assert result.exit_code == 2 and "another archiver process is working on" in result.stderr, result.stderr
    assert all(path.exists() for path in open_files)
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert run_cli("doctor", "-C", collection.root).exit_code == 0
    assert len(json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)) == 40
