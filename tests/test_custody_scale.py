"""The custody log of a collection whose catalog is on PostgreSQL: one chain in the database
that many machines append to, each machine signing with its own worker key, announced by the
collection's key and revocable alone; custody.jsonl an export that verify reads as today."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from archiver.evidence.keys import custody_log, export_custody
from archiver.evidence.signing import generate_key
from archiver.evidence.worker_keys import worker_signing_key
from archiver.capture.run import CaptureRun
from archiver.store.collection import Collection
from tests.conftest import allow_networks, http_response, send_bytes

ENTRIES_PER_PROCESS = 25

# One process of a "machine": waits for the start signal so that all append at once, then
# appends its entries one by one, each under the database's lock.
APPENDER = """
import sys, time
from pathlib import Path
from archiver.evidence.keys import custody_log
from archiver.evidence.worker_keys import worker_signing_key
from archiver.store.collection import Collection
folder, machine, process, count, go = sys.argv[1:6]
collection = Collection.open(Path(folder))
key = worker_signing_key(collection, machine=machine)
while not Path(go).exists():
    time.sleep(0.01)
log = custody_log(collection, key)
for n in range(int(count)):
    log.append("worker check", {"machine": machine, "process": int(process), "n": n})
"""


@pytest.fixture
def machines(run_cli, tmp_path, postgresql_url) -> dict[str, Collection]:
    """Two machines' local folders pointing at one PostgreSQL catalog: the first made by
    `archiver init --catalog`, the second holding only a copy of its archiver.toml."""
    made = run_cli("init", "--catalog", postgresql_url, tmp_path / "machine-a")
    assert made.exit_code == 0, made.output
    (tmp_path / "machine-b").mkdir()
    shutil.copy(tmp_path / "machine-a" / "archiver.toml", tmp_path / "machine-b" / "archiver.toml")
    return {name: Collection.open(tmp_path / name) for name in ("machine-a", "machine-b")}


def _worker_entries(folder: Path) -> list[dict]:
    lines = (folder / "custody.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]



def worker_key_statuses(run_cli, root) -> dict[str, str]:
    """Each worker key's fingerprint and status, as `keys show --json` lists them."""
    shown = run_cli("keys", "show", "-C", root, "--json")
    assert shown.exit_code == 0, shown.output
    return {key["fingerprint"]: key["status"] for key in json.loads(shown.stdout)["worker_keys"]}


def verify_failures(run_cli, root) -> list[dict]:
    """The failures of a `verify` that must fail."""
    verified = run_cli("verify", "-C", root, "--json")
    assert verified.exit_code == 1, verified.output
    return json.loads(verified.stdout)["failures"]

def test_two_machines_appending_at_once_from_several_processes_make_one_chain_verify_accepts(
        run_cli, machines, tmp_path, postgresql_url):
    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", APPENDER, str(collection.root), name, str(process),
                                   str(ENTRIES_PER_PROCESS), str(go)], env=os.environ.copy())
                 for name, collection in machines.items() for process in range(3)]
    # Each process announces its machine's key (once per machine) before waiting for the signal.
    worker_fingerprints = {name: worker_signing_key(collection, machine=name).fingerprint
                           for name, collection in machines.items()}
    go.touch()
    assert [process.wait(timeout=300) for process in processes] == [0] * len(processes)

    for collection in machines.values():  # verify on either machine exports the one chain and accepts it
        verified = run_cli("verify", "-C", collection.root, "--json")
        assert verified.exit_code == 0, verified.output
    exported = export_custody(machines["machine-b"])  # what `log` and bundles read: the chain as it is now
    entries = _worker_entries(machines["machine-b"].root)
    assert _worker_entries(machines["machine-a"].root) == entries[:-2]  # but the two verification runs recorded
    assert [entry["seq"] for entry in entries] == list(range(1, len(entries) + 1))
    checks = [entry for entry in entries if entry["event"] == "worker check"]
    assert len(checks) == 2 * 3 * ENTRIES_PER_PROCESS
    assert {entry["key"] for entry in checks} == set(worker_fingerprints.values())
    announced = [entry for entry in entries if entry["event"] == "worker key announced"]
    assert sorted((e["subject"]["machine"], e["subject"]["fingerprint"]) for e in announced) == \
        sorted(worker_fingerprints.items())
    # The order is the database's: the export is its table, line for line.
    with psycopg.connect(postgresql_url) as db:
        stored = [row[0] for row in db.execute("SELECT line FROM custody_entries ORDER BY seq")]
    assert stored == exported.read_text().splitlines()


def test_a_revoked_worker_key_fails_from_its_revocation_while_the_other_goes_on(run_cli, machines):
    a, b = machines["machine-a"], machines["machine-b"]
    key_a, key_b = worker_signing_key(a, machine="laptop-a"), worker_signing_key(b, machine="laptop-b")
    custody_log(a, key_a).append("worker check", {"n": 1})
    custody_log(b, key_b).append("worker check", {"n": 1})

    shown = run_cli("keys", "show", "-C", b.root, "--json")
    assert shown.exit_code == 0, shown.output
    workers = {key["fingerprint"]: key for key in json.loads(shown.stdout)["worker_keys"]}
    assert {fp: (key["machine"], key["status"]) for fp, key in workers.items()} == \
        {key_a.fingerprint: ("laptop-a", "active"), key_b.fingerprint: ("laptop-b", "active")}

    revoked = run_cli("keys", "revoke", key_b.fingerprint, "--reason", "laptop stolen", "-C", a.root)
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(Exception, match="revoked"):
        worker_signing_key(b, machine="laptop-b")  # the machine itself stops signing with it
    # The stolen key, used anyway by a tool that does not look at its status as it signs.
    custody_log(b, key_b, watched=False).append("worker check", {"n": 2, "by": "the thief"})
    custody_log(a, key_a).append("worker check", {"n": 2})

    assert worker_key_statuses(run_cli, a.root) == {key_a.fingerprint: "active", key_b.fingerprint: "revoked"}
    failures = verify_failures(run_cli, a.root)
    entries = _worker_entries(a.root)
    thief_line = next(n for n, e in enumerate(entries, 1) if e["subject"].get("by") == "the thief")
    assert [(f["check"], f["where"]) for f in failures] == [("custody key status", f"custody.jsonl line {thief_line}")]


def test_a_capture_a_worker_key_attests_passes_verify(run_cli, machines, raw_server):
    server = raw_server({"/a": send_bytes(http_response(b"<html><title>A</title>worker</html>"))})
    b = machines["machine-b"]
    allow_networks(b.root, "127.0.0.1/32")
    b = Collection.open(b.root)
    key = worker_signing_key(b, machine="laptop-b")
    with CaptureRun(b, b.config.capture, key) as run:
        [row] = run.capture([server.url("/a")])
    assert row.outcome == "ok"

    verified = run_cli("verify", "-C", b.root, "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["passed"]["attestation signature"] == 1
    logged = [e for e in _worker_entries(b.root) if e["event"] == "capture"]
    assert [(e["subject"]["capture"], e["key"]) for e in logged] == [(row.id, key.fingerprint)]


def test_keys_no_collection_key_announced_and_key_events_by_worker_keys_fail_verify(run_cli, machines, tmp_path):
    a, b = machines["machine-a"], machines["machine-b"]
    worker, other = worker_signing_key(a, machine="laptop-a"), worker_signing_key(b, machine="laptop-b")
    stray = generate_key(tmp_path / "stray.pem", None)
    custody_log(a, stray).append("worker check", {"n": 1})
    # A worker key cannot announce another: only the collection's key vouches for a machine.
    custody_log(a, worker).append("worker key announced", {"fingerprint": stray.fingerprint, "machine": "rogue",
                                                            "public_key": stray.public.pem().decode()})
    custody_log(a, stray).append("worker check", {"n": 2})
    # Nor revoke another machine's key: the other goes on, and keys show still has it active.
    custody_log(a, worker).append("key revoked", {"fingerprint": other.fingerprint, "revoked_from": "2000-01-01T00:00:00Z",
                                                  "reason": "spite"})
    custody_log(b, other).append("worker check", {"n": 3})
    assert worker_key_statuses(run_cli, a.root) == {worker.fingerprint: "active", other.fingerprint: "active"}

    found = {(f["check"], f["where"].rsplit(" ", 1)[1]) for f in verify_failures(run_cli, a.root)}
    entries = _worker_entries(a.root)
    lines = {n for n, e in enumerate(entries, 1) if e["key"] == stray.fingerprint}
    by_worker = {n for n, e in enumerate(entries, 1) if e["subject"].get("machine") == "rogue" or e["event"] == "key revoked"}
    assert len(by_worker) == 2
    assert found == {("custody signature", str(n)) for n in lines} | {("key event signer", str(n)) for n in by_worker}


def test_a_local_collection_keeps_its_custody_in_the_file_and_signs_without_worker_keys(run_cli, tmp_path):
    made = run_cli("init", tmp_path / "local")
    assert made.exit_code == 0, made.output
    collection = Collection.open(tmp_path / "local")
    assert json.loads((collection.root / "custody.jsonl").read_bytes().splitlines()[-1])["event"] == "collection created"
    with pytest.raises(Exception, match="PostgreSQL"):
        worker_signing_key(collection)
