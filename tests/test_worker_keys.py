"""Worker keys in use: `archiver worker` signs its captures' attestations and custody entries
with its machine's own key; verify trusts that key only as the custody log announces it, and a
bundle of a worker's capture verifies with nothing but the bundle and the collection key's
fingerprint (real PostgreSQL, a real worker process, a real origin on 127.0.0.1)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

from archiver.capture.run import CaptureRun
from archiver.evidence.key_watch import KeyWatch
from archiver.evidence.custody import now
from archiver.evidence.keys import custody_log, export_custody, open_signing_key, revoke_key
from archiver.evidence.signing import generate_key, grouped, load_key, open_envelope
from archiver.evidence.worker_keys import worker_key_path, worker_signing_key
from archiver.store.collection import Collection
from tests.conftest import make_collection
from tests.test_bundle import failed, rewrite, verify_bundle
from tests.test_custody_scale import verify_failures
from tests.test_doctor import page
from tests.test_workers import _beats, stop, wait_for, worker


def _collection_fingerprint(run_cli, root) -> str:
    shown = run_cli("keys", "show", "-C", root, "--json")
    assert shown.exit_code == 0, shown.output
    [key] = [key for key in json.loads(shown.stdout)["keys"] if key["status"] == "active"]
    return key["fingerprint"]


def _worker_captured(collection: Collection, raw_server, *paths: str) -> None:
    """`paths` of a local origin captured through the queue by one `archiver worker` process."""
    server = raw_server({path: page for path in paths})
    running = worker(collection, concurrency=2)
    try:
        waited = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                 "--wait", *(server.url(path) for path in paths)],
                                capture_output=True, text=True, timeout=120)
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    assert waited.returncode == 0, waited.stderr


def test_a_worker_signs_with_its_machine_key_and_a_bundle_of_its_capture_verifies_with_the_collection_fingerprint(
        run_cli, raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    _worker_captured(collection, raw_server, "/a", "/b")
    worker_key = load_key(worker_key_path(collection), None)
    collection_fingerprint = _collection_fingerprint(run_cli, collection.root)
    assert worker_key.fingerprint != collection_fingerprint

    entries = [json.loads(line) for line in export_custody(collection).read_bytes().splitlines()]
    assert [e["key"] for e in entries if e["event"] == "capture"] == [worker_key.fingerprint] * 2
    [announced] = [e for e in entries if e["event"] == "worker key announced"]
    assert (announced["key"], announced["subject"]["fingerprint"]) == (collection_fingerprint, worker_key.fingerprint)
    with collection:
        envelopes = [json.loads(row[0]) for row in collection.catalog.query("SELECT envelope FROM attestations")]
    assert len(envelopes) == 2
    assert {open_envelope(envelope, {worker_key.fingerprint: worker_key.public})[1] for envelope in envelopes} == \
        {worker_key.fingerprint}
    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0, verified.output

    bundle = tmp_path / "bundle.wacz"
    made = run_cli("bundle", "-C", collection.root, "-o", bundle, "--all")
    assert made.exit_code == 0, made.output
    report = verify_bundle(run_cli, bundle, collection_fingerprint)
    assert report["ok"], report["failures"]
    assert report["passed"]["attestation signature"] == 2

    def announcement(change):
        def on_custody(name: str, data: bytes) -> bytes:
            if name != "evidence/custody.jsonl":
                return data
            return b"".join(change(line) + b"\n" for line in data.splitlines() if change(line) is not None)
        return on_custody

    rotated = run_cli("keys", "rotate", "-C", collection.root)  # the worker key, announced by the old key, stays trusted
    assert rotated.exit_code == 0, rotated.output
    _worker_captured(collection, raw_server, "/after-rotation")
    after = tmp_path / "after-rotation.wacz"
    assert run_cli("bundle", "-C", collection.root, "-o", after, "--all").exit_code == 0
    new_fingerprint = _collection_fingerprint(run_cli, collection.root)
    assert new_fingerprint != collection_fingerprint
    report = verify_bundle(run_cli, after, new_fingerprint)
    assert report["ok"] and report["passed"]["attestation signature"] == 3, report["failures"]
    assert run_cli("verify", "-C", collection.root).exit_code == 0

    is_announcement = b'"event":"worker key announced"'
    removed = verify_bundle(run_cli, rewrite(bundle, announcement(lambda l: None if is_announcement in l else l)),
                            collection_fingerprint)
    assert {"attestation signature", "custody entry signature"} <= failed(removed)
    altered = verify_bundle(run_cli, rewrite(bundle, announcement(
        lambda l: l.replace(b'"machine":"', b'"machine":"not-') if is_announcement in l else l)), collection_fingerprint)
    assert {"attestation signature", "custody entry signature"} <= failed(altered)


def test_verify_refuses_a_capture_attested_by_an_unannounced_or_revoked_worker_key(run_cli, raw_server, tmp_path,
                                                                                   postgresql_url, monkeypatch):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/stray": page, "/revoked": page})
    stray = generate_key(tmp_path / "stray.pem", None)
    with CaptureRun(collection, collection.config.capture, stray) as run:
        [by_stray] = run.capture([server.url("/stray")])
    failures = {(f["check"], f["where"]) for f in verify_failures(run_cli, collection.root)}
    assert ("attestation signature", f"capture {by_stray.id}") in failures

    _worker_captured(collection, raw_server, "/first")
    worker_key = load_key(worker_key_path(collection), None)
    revoke_key(collection, open_signing_key(collection, None, None), worker_key.fingerprint, "2000-01-01T00:00:00Z",
               "laptop stolen")
    with monkeypatch.context() as older_tool:  # a tool that does not look whether its key is in service
        older_tool.setattr(KeyWatch, "check", lambda watch: None)
        older_tool.setattr(KeyWatch, "signs", lambda watch: True)
        with CaptureRun(collection, collection.config.capture, worker_key) as run:
            [by_revoked] = run.capture([server.url("/revoked")])
    failures = {(f["check"], f["where"]) for f in verify_failures(run_cli, collection.root)}
    assert ("attestation key status", f"capture {by_revoked.id}") in failures



def test_a_key_event_a_worker_key_signs_fails_verify_bundle(run_cli, raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    worker_key = worker_signing_key(collection, machine="laptop")
    with CaptureRun(collection, collection.config.capture, worker_key) as run:
        [row] = run.capture([raw_server({"/a": page}).url("/a")])
    fingerprint = _collection_fingerprint(run_cli, collection.root)
    custody_log(collection, worker_key).append("key revoked", {"fingerprint": fingerprint, "reason": "spite",
                                                               "revoked_from": "2000-01-01T00:00:00Z"})
    bundle = tmp_path / "bundle.wacz"
    made = run_cli("bundle", "-C", collection.root, "-o", bundle, "--all")
    assert made.exit_code == 0, made.output
    report = verify_bundle(run_cli, bundle, fingerprint)
    assert [(f["check"], f["detail"]) for f in report["failures"]] == \
        [("key event signer", "only a collection key may announce, rotate or revoke keys, not a worker key")]
    assert report["passed"]["attestation signature"] == 1 and report["passed"]["attestation key status"] == 1


def test_a_worker_key_announced_by_a_collection_key_already_revoked_is_not_trusted_by_verify_bundle(
        run_cli, raw_server, tmp_path, postgresql_url, monkeypatch):
    """A thief holding the collection's key announces a worker key of their own and attests a
    capture with it; the owner then revokes the stolen key from before the announcement and
    rotates. `verify` distrusts that worker key, so a bundle leaves its capture out (here, all
    there is: nothing to bundle), and one asked to carry it must not verify against the new key
    either, and must name the capture as distrusted."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    stolen = open_signing_key(collection, None, None)
    stolen_from = now()
    thief = generate_key(tmp_path / "thief.pem", None)
    custody_log(collection, stolen).append("worker key announced", {
        "fingerprint": thief.fingerprint, "machine": "thief", "public_key": thief.public.pem().decode("ascii")})
    with monkeypatch.context() as thief_tool:  # the thief's tool does not look at its key's status
        thief_tool.setattr(KeyWatch, "check", lambda watch: None)
        thief_tool.setattr(KeyWatch, "signs", lambda watch: True)
        with CaptureRun(collection, collection.config.capture, thief) as run:
            [forged] = run.capture([raw_server({"/forged": page}).url("/forged")])
    revoke_key(collection, stolen, stolen.fingerprint, stolen_from, "key stolen")
    assert run_cli("keys", "rotate", "-C", collection.root).exit_code == 0
    failures = {(f["check"], f["where"]) for f in verify_failures(run_cli, collection.root)}
    assert ("attestation signature", f"capture {forged.id}") in failures

    bundle = tmp_path / "bundle.wacz"
    left_out = run_cli("bundle", "-C", collection.root, "-o", bundle, "--all")
    assert left_out.exit_code == 2 and forged.id in left_out.stderr and not bundle.exists(), left_out.output
    made = run_cli("bundle", "-C", collection.root, "-o", bundle, "--all", "--include-revoked")
    assert made.exit_code == 1 and forged.id in made.output, made.output
    report = verify_bundle(run_cli, bundle, _collection_fingerprint(run_cli, collection.root))
    assert not report["ok"]
    assert ("attestation key status", f"evidence/attestations.jsonl capture {forged.id}") in \
        {(f["check"], f["where"]) for f in report["failures"]}


def test_a_worker_whose_key_was_revoked_stops_in_one_line_with_exit_2(run_cli, raw_server, tmp_path, postgresql_url):
    """A revoked key is a key that cannot be used (exit 2, as every command refusing one), not a
    refusal of the machine's (3): README and `worker --help` say so."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page})
    running = worker(collection, concurrency=1)
    try:
        wait_for(lambda: _beats(postgresql_url), "the worker beating, its key announced", [running])
        fingerprint = load_key(worker_key_path(collection), None).fingerprint
        revoked = run_cli("keys", "revoke", "-C", collection.root, fingerprint, "--reason", "stolen laptop")
        assert revoked.exit_code == 0, revoked.output
        subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                        server.url("/a")], capture_output=True, text=True, timeout=120, check=True)
        ended = running.wait(120)
    finally:
        if running.poll() is None:
            stop(running)
    said = running.stderr.read().decode()
    [line] = [line for line in said.splitlines() if line.startswith("error: ")]
    assert ended == 2 and "was revoked" in line, said
    said_by_help = " ".join(run_cli("worker", "--help").output.split())
    assert re.search(r"\b2 when [^;,]* key was revoked, 3 when", said_by_help), said_by_help


def test_keys_show_tells_apart_worker_keys_of_machines_sharing_a_host_name(run_cli, tmp_path, postgresql_url):
    """Machines made from one image share a host name ('vm'): each worker key was listed as of
    that name alone. The key a folder holds is marked there, and `worker --machine` names a key's machine."""
    from tests.test_workers import another_machine

    first = make_collection(tmp_path / "machine-a", postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    keys = {folder.root: worker_signing_key(folder) for folder in (first, second)}  # both named by this host's name
    for root, own in keys.items():
        shown = run_cli("keys", "show", "-C", root, "--json")
        listed = json.loads(shown.stdout)["worker_keys"]
        assert [key["machine"] for key in listed] == [socket.gethostname()] * 2
        assert [key["fingerprint"] for key in listed if key["this_machine"]] == [own.fingerprint]
    rows = run_cli("keys", "show", "-C", second.root).stdout.splitlines()
    assert [row.split("\t")[1] for row in rows if grouped(keys[second.root].fingerprint) in row] == \
        [f"{socket.gethostname()} (this machine)"]
    assert [row.split("\t")[1] for row in rows if grouped(keys[first.root].fingerprint) in row] == [socket.gethostname()]

    third = another_machine(first, tmp_path / "machine-c")
    running = subprocess.Popen([sys.executable, "-m", "archiver", "worker", "-C", str(third.root), "--machine",
                                "newsroom-3"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _beats(postgresql_url), "the worker beating, its key announced", [running])
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    listed = json.loads(run_cli("keys", "show", "-C", third.root, "--json").stdout)["worker_keys"]
    assert [(key["machine"], key["this_machine"]) for key in listed if key["machine"] != socket.gethostname()] == \
        [("newsroom-3", True)]
