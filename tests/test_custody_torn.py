"""A custody log whose last append a crash cut short: the torn line holds no entry, and the
next append chains past it. `doctor --fix` (or the next command that changes the collection)
records it as torn, leaving its bytes, and verify then names it instead of failing for good.
A line the chain does not pass by was a whole entry once: that is never excused."""

from __future__ import annotations

import json

import pytest

from archiver.evidence.custody import LOG_NAME
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_verify import verify


@pytest.fixture
def logged(run_cli, raw_server, tmp_path):
    """A collection with one capture; `.page(n)` is the URL of another page to capture."""
    collection = make_collection(tmp_path / "torn")
    server = raw_server({f"/{n}": send_bytes(http_response(f"<p>page {n}</p>".encode())) for n in range(4)})
    collection.page = lambda n: server.url(f"/{n}")
    assert run_cli("capture", "-C", collection.root, collection.page(0)).exit_code == 0
    return collection


def tear_an_append(collection) -> int:
    """Append the first bytes of an entry and no newline, as a crash mid-append leaves them:
    the torn line's number."""
    log = collection.root / LOG_NAME
    lines = log.read_bytes().splitlines()
    with open(log, "ab") as out:
        out.write(lines[-1][:70])
    return len(lines) + 1


def doctor(run_cli, collection, *options: str) -> tuple[int, list[dict]]:
    result = run_cli("doctor", "-C", collection.root, "--json", *options)
    return result.exit_code, json.loads(result.stdout)["findings"]


def test_a_torn_line_recorded_by_doctor_is_named_by_verify_which_then_passes(run_cli, logged):
    torn = tear_an_append(logged)
    where = f"{LOG_NAME} line {torn}"
    report = verify(run_cli, logged)
    assert [(f["check"], f["where"]) for f in report["failures"]] == [("custody entry readable", where)]
    assert doctor(run_cli, logged) == (1, [{"kind": "torn custody line", "where": where, "fixed": None,
                                            "detail": "an append an interrupted run cut short: it holds no entry"}])
    torn_bytes = (logged.root / LOG_NAME).read_bytes().splitlines()[torn - 1]

    exit_code, [finding] = doctor(run_cli, logged, "--fix")
    assert exit_code == 0 and finding["kind"] == "torn custody line" and finding["fixed"].startswith("recorded as torn")
    assert (logged.root / LOG_NAME).read_bytes().splitlines()[torn - 1] == torn_bytes  # nothing removed
    assert doctor(run_cli, logged) == (0, [])
    report = verify(run_cli, logged)
    assert report["ok"], report["failures"]
    assert [line for line in report["not_checked"] if line.startswith(f"{where}: an append a crash cut short")]
    assert run_cli("capture", "-C", logged.root, logged.page(1)).exit_code == 0
    assert verify(run_cli, logged)["ok"]  # the entries after it chain on


def test_the_next_command_that_changes_the_collection_records_a_torn_last_line(run_cli, logged):
    torn = tear_an_append(logged)
    result = run_cli("capture", "-C", logged.root, logged.page(1))
    assert result.exit_code == 0
    assert "repaired what an interrupted run left (torn custody line)" in result.stderr
    report = verify(run_cli, logged)
    assert report["ok"], report["failures"]
    assert any(line.startswith(f"{LOG_NAME} line {torn}: ") for line in report["not_checked"])


def test_a_torn_line_changed_after_it_was_recorded_fails_again(run_cli, logged):
    """The record names the torn line's SHA-256: other bytes put there later are not excused."""
    torn = tear_an_append(logged)
    assert doctor(run_cli, logged, "--fix")[0] == 0
    log = logged.root / LOG_NAME
    lines = log.read_bytes().split(b"\n")
    lines[torn - 1] = lines[torn - 1].replace(b"{", b"[", 1)
    log.write_bytes(b"\n".join(lines))
    report = verify(run_cli, logged)
    assert [(f["check"], f["where"]) for f in report["failures"]] == [("custody entry readable", f"{LOG_NAME} line {torn}")]


def test_a_whole_entry_made_unreadable_is_reported_and_never_recorded_as_torn(run_cli, logged):
    """The entry after it chains to it, so it was a whole entry: doctor names it and exits 1,
    with --fix too, and records nothing as torn."""
    log = logged.root / LOG_NAME
    lines = log.read_bytes().split(b"\n")
    lines[0] = lines[0][:-1]  # the first entry (the key's announcement), its closing brace cut off
    log.write_bytes(b"\n".join(lines))
    before = log.read_bytes()
    exit_code, findings = doctor(run_cli, logged, "--fix")
    assert exit_code == 1 and [(f["kind"], f["where"], f["fixed"]) for f in findings] == [
        ("altered custody line", f"{LOG_NAME} line 1", None)]
    after = log.read_bytes()
    assert after.startswith(before) and b'"custody line torn"' not in after  # only doctor's own entry added
    assert "custody entry readable" in {f["check"] for f in verify(run_cli, logged)["failures"]}
