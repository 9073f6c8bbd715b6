"""A shared collection's manifests and document copies: made on one machine, they are stored
in the bucket, where every machine's folder fetches them, so that verify, the next manifest and
bundles work from any folder; exports take turns across machines; what was not stored is
stored by doctor (real PostgreSQL, real radosgw, real archiver processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile

import psycopg

from archiver.store.catalog_locks import EXPORT_LOCK, IMPORT_LOCK
from archiver.store.collection import Collection
from archiver.store.crash_points import AFTER_SEAL, AFTER_UPLOAD, CRASH_AT
from tests.conftest import allow_networks, http_response, make_collection, send_bytes
from tests.test_bundle import paused_at
from tests.test_s3_storage import make_bucket
from tests.test_workers import another_machine, shared_collection, uploaded

SEALING = ("manifest-1.json", "manifest-1.json.sig", "manifest-1.checkpoint.json", "manifest-1.checkpoint.json.sig")


def pages(raw_server):
    return raw_server({path: send_bytes(http_response(f"<title>{path}</title>".encode())) for path in ("/a", "/b")})


def archiver_process(collection, command: str, *arguments: str, crash_at: str | None = None) -> subprocess.Popen:
    environment = {name: value for name, value in os.environ.items() if name != CRASH_AT}
    if crash_at:
        environment[CRASH_AT] = crash_at
    return subprocess.Popen([sys.executable, "-m", "archiver", command, "-C", str(collection.root), *arguments],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)


def failed_checks(run_cli, collection) -> set[str]:
    verified = run_cli("verify", "-C", collection.root, "--json")
    report = json.loads(verified.stdout)
    assert verified.exit_code == (0 if report["ok"] else 1), verified.output
    return {failure["check"] for failure in report["failures"]}


def test_a_manifest_exported_on_one_machine_is_verified_chained_and_bundled_on_another(
        run_cli, raw_server, tmp_path, postgresql_url, s3):
    first, bucket = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    server = pages(raw_server)
    assert run_cli("capture", "-C", first.root, server.url("/a")).exit_code == 0
    assert run_cli("manifest", "-C", first.root).exit_code == 0
    assert {f"manifests/{name}" for name in SEALING} <= set(uploaded(s3, bucket))

    assert failed_checks(run_cli, second) == set()  # it used to miss manifest 1, and fail
    assert (second.root / "manifests" / "manifest-1.json").read_bytes() == \
        (first.root / "manifests" / "manifest-1.json").read_bytes()
    assert run_cli("capture", "-C", second.root, server.url("/b")).exit_code == 0
    made = run_cli("manifest", "-C", second.root, "--json")  # it used to end in an internal error
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["sequence"] == 2
    assert failed_checks(run_cli, first) == set()  # manifest 2, fetched, chains to manifest 1

    fingerprint = json.loads(run_cli("keys", "show", "-C", first.root, "--json").stdout)["keys"][0]["fingerprint"]
    bundled = run_cli("bundle", "-C", first.root, "--all", "-o", tmp_path / "all.wacz")
    assert bundled.exit_code == 0, bundled.output
    assert run_cli("verify-bundle", tmp_path / "all.wacz", "--fingerprint", fingerprint).exit_code == 0
    doctor = run_cli("doctor", "-C", first.root, "--json")  # the stored manifests are no orphaned objects
    assert doctor.exit_code == 0 and json.loads(doctor.stdout)["findings"] == [], doctor.output


def test_a_draft_an_export_here_left_is_replaced_by_the_manifest_another_machine_listed(
        run_cli, raw_server, tmp_path, postgresql_url, s3):
    """An export stopped before the catalog listed its manifest-1.json; another machine's export
    then took sequence 1. This folder's draft is not that manifest: a bundle of it failed
    verify-bundle, exit 0. It is set aside, and the listed one fetched in its place."""
    first, _ = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    assert run_cli("capture", "-C", first.root, pages(raw_server).url("/a")).exit_code == 0
    draft = first.root / "manifests" / "manifest-1.json"
    draft.parent.mkdir(exist_ok=True)
    draft.write_bytes(b'{"manifest": "a draft never listed"}')
    assert run_cli("manifest", "-C", second.root).exit_code == 0

    fingerprint = json.loads(run_cli("keys", "show", "-C", first.root, "--json").stdout)["keys"][0]["fingerprint"]
    bundled = run_cli("bundle", "-C", first.root, "--all", "-o", tmp_path / "all.wacz")
    assert bundled.exit_code == 0, bundled.output
    checked = run_cli("verify-bundle", tmp_path / "all.wacz", "--fingerprint", fingerprint)
    assert checked.exit_code == 0, checked.output
    assert draft.read_bytes() == (second.root / "manifests" / "manifest-1.json").read_bytes()
    assert (first.root / "manifests" / "quarantine" / "manifest-1.json").read_bytes() == \
        b'{"manifest": "a draft never listed"}'


def waits_for(lock: int, process: subprocess.Popen, postgresql_url: str) -> None:
    """Run `process` (started while the test holds `lock`), see it wait for that advisory lock, then let it go on."""
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s AND objid = %s"
    with psycopg.connect(postgresql_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock,))
        started = process()
        deadline = time.monotonic() + 60  # a guard against a hang, not a guess of how long it takes
        while holder.execute(waiting, (lock >> 32, lock & 0xFFFFFFFF)).fetchone()[0] == 0:
            assert started.poll() is None, f"it did not wait: {started.stderr.read().decode()}"
            assert time.monotonic() < deadline, "it never asked for the lock"
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", (lock,))
        assert started.wait(60) == 0, started.stderr.read().decode()


def test_exports_on_two_machines_take_turns(run_cli, raw_server, tmp_path, postgresql_url, s3):
    """Two at once would both take sequence 1: the later export waits for the earlier's lock."""
    first, _ = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    assert run_cli("capture", "-C", first.root, pages(raw_server).url("/a")).exit_code == 0
    waits_for(EXPORT_LOCK, lambda: archiver_process(second, "manifest"), postgresql_url)
    assert run_cli("manifest", "-C", first.root).exit_code == 0  # unchanged since: the same manifest
    assert failed_checks(run_cli, first) == failed_checks(run_cli, second) == set()


def test_imports_on_two_machines_take_turns(run_cli, raw_server, tmp_path, postgresql_url, s3):
    """Two imports of one file at once would both store it, and the later fail to list it."""
    source = make_collection(tmp_path / "source")
    assert run_cli("capture", "-C", source.root, pages(raw_server).url("/a")).exit_code == 0
    [crawl] = source.storage.folder.glob("*.warc.gz")
    first, _ = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    waits_for(IMPORT_LOCK, lambda: archiver_process(second, "import", str(crawl)), postgresql_url)
    again = run_cli("import", "-C", first.root, crawl, "--json")
    assert again.exit_code == 0, again.output
    assert failed_checks(run_cli, first) == set()


def test_a_manifest_an_export_stopped_before_storing_is_stored_by_doctor(
        run_cli, raw_server, tmp_path, postgresql_url, s3):
    first, bucket = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    assert run_cli("capture", "-C", first.root, pages(raw_server).url("/a")).exit_code == 0
    assert archiver_process(first, "manifest", crash_at=AFTER_SEAL).wait(60) == -9
    assert not [name for name in uploaded(s3, bucket) if name.startswith("manifests/")]

    assert "manifest present" in failed_checks(run_cli, second)  # listed, and nowhere this machine can read it
    with psycopg.connect(postgresql_url, autocommit=True) as exporter:  # while an export runs, listed, not stored yet
        exporter.execute("SELECT pg_advisory_lock(%s)", (EXPORT_LOCK,))
        assert run_cli("doctor", "-C", second.root).exit_code == 0  # no false alarm
    found = run_cli("doctor", "-C", second.root, "--json")  # where to look for it: said from any machine
    assert found.exit_code == 1, found.output
    assert [(f["kind"], f["where"]) for f in json.loads(found.stdout)["findings"]] == \
        [("manifest on another machine only", "manifests/manifest-1.json")]
    refused = run_cli("manifest", "-C", second.root)  # nothing changed since: manifest 1 is still the newest
    assert refused.exit_code == 2 and "its bucket holds manifests/manifest-1.json" in refused.output, refused.output
    assert run_cli("capture", "-C", second.root, pages(raw_server).url("/b")).exit_code == 0
    made = run_cli("manifest", "-C", second.root, "--json")  # a lost manifest stops no later export
    assert made.exit_code == 0 and json.loads(made.stdout)["sequence"] == 2, made.output
    found = run_cli("doctor", "-C", first.root, "--json")
    assert found.exit_code == 1
    assert {(f["kind"], f["where"]) for f in json.loads(found.stdout)["findings"]} == \
        {("unstored manifest file", f"manifests/{name}") for name in SEALING}
    assert run_cli("doctor", "-C", first.root, "--fix").exit_code == 0
    assert {f"manifests/{name}" for name in SEALING} <= set(uploaded(s3, bucket))
    assert failed_checks(run_cli, second) == set()


def test_document_copies_read_on_one_machine_are_verified_and_bundled_on_another(
        run_cli, raw_server, tmp_path, postgresql_url, s3):
    bucket = make_bucket(s3, mode=None)  # no lock: an object can be deleted, as a person with rights could
    made = run_cli("init", tmp_path / "machine-a", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/")
    assert made.exit_code == 0, made.output
    allow_networks(tmp_path / "machine-a", "127.0.0.1/32")
    first = Collection.open(tmp_path / "machine-a")
    second = another_machine(first, tmp_path / "machine-b")
    server = pages(raw_server)
    (tmp_path / "article.md").write_text(f"# Troops moved on Monday\n\nThe ministry says so: {server.url('/a')}\n")
    assert run_cli("capture", "-C", first.root, tmp_path / "article.md").exit_code == 0
    [copy] = [p for p in (first.root / "documents").rglob("*") if p.is_file()]
    assert f"documents/{copy.name}" in uploaded(s3, bucket)

    assert failed_checks(run_cli, second) == set()  # it used to miss the copy, and fail
    bundled = run_cli("bundle", "-C", second.root, "--all", "-o", tmp_path / "all.wacz")  # it used to be refused
    assert bundled.exit_code == 0, bundled.output
    fingerprint = json.loads(run_cli("keys", "show", "-C", first.root, "--json").stdout)["keys"][0]["fingerprint"]
    assert run_cli("verify-bundle", tmp_path / "all.wacz", "--fingerprint", fingerprint).exit_code == 0
    assert zipfile.ZipFile(tmp_path / "all.wacz").read(f"evidence/document-{copy.name}") == copy.read_bytes()
    doctor = run_cli("doctor", "-C", first.root, "--json")
    assert doctor.exit_code == 0 and json.loads(doctor.stdout)["findings"] == [], doctor.output

    s3.delete_object(Bucket=bucket, Key=f"documents/{copy.name}")
    assert "document copy" in failed_checks(run_cli, second)  # the bucket's copy is what verify checks
    found = run_cli("doctor", "-C", first.root, "--json")
    assert found.exit_code == 1
    assert [(f["kind"], f["where"]) for f in json.loads(found.stdout)["findings"]] == \
        [("unstored document copy", str(copy.relative_to(first.root)))]
    assert run_cli("doctor", "-C", first.root, "--fix").exit_code == 0
    assert s3.get_object(Bucket=bucket, Key=f"documents/{copy.name}")["Body"].read() == copy.read_bytes()
    assert failed_checks(run_cli, second) == set()


def test_a_machine_without_the_collection_key_lists_its_keys_and_is_told_where_the_key_is(
        run_cli, raw_server, tmp_path, postgresql_url, s3, monkeypatch):
    first, _ = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    fingerprint = json.loads(run_cli("keys", "show", "-C", first.root, "--json").stdout)["keys"][0]["fingerprint"]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "machine-b-config"))  # where B looks for keys: none there
    shown = run_cli("keys", "show", "-C", second.root, "--json")
    assert shown.exit_code == 0
    assert [(key["fingerprint"], key["status"]) for key in json.loads(shown.stdout)["keys"]] == [(fingerprint, "active")]
    exported = run_cli("keys", "export", "-C", second.root, "--fingerprint", fingerprint, "--json")
    assert exported.exit_code == 0 and "PUBLIC KEY" in json.loads(exported.stdout)["pem"], exported.output
    refused = run_cli("manifest", "-C", second.root)
    assert refused.exit_code == 2 and "the collection's signing key is not on this machine" in refused.stderr
    assert "keys generate" not in refused.stderr  # which would make a second key, tied to nothing


def test_a_file_another_machine_is_uploading_is_no_leftover(run_cli, raw_server, tmp_path, postgresql_url, s3):
    """A's run is stopped with its WARC uploaded and its close not yet recorded: to B, a file a
    dead run left looks the same, but A's run holds the file's writer lock, so B's doctor, verify
    and repairs leave it to A (they used to close it and list A's captures as salvaged)."""
    first, bucket = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    server = pages(raw_server)
    with paused_at(AFTER_UPLOAD, ["capture", "-C", str(first.root), server.url("/a")], "uploaded its file") as capturing:
        [name] = [object_name for object_name in uploaded(s3, bucket) if object_name.endswith(".warc.gz")]
        doctor = run_cli("doctor", "-C", second.root, "--fix", "--json")
        assert doctor.exit_code == 0 and json.loads(doctor.stdout)["findings"] == [], doctor.output
        verified = run_cli("verify", "-C", second.root, "--json")
        assert verified.exit_code == 0, verified.output
        assert any(line.startswith(f"warcs/{name}: being written or uploaded on another machine")
                   for line in json.loads(verified.stdout)["not_checked"])
        other = run_cli("capture", "-C", second.root, server.url("/b"))
        assert other.exit_code == 0 and "repaired" not in other.stderr, other.output
    assert capturing.wait(120) == 0, capturing.stderr.read().decode()
    with psycopg.connect(postgresql_url) as db:
        runs = db.execute("SELECT c.url, r.id FROM captures c JOIN runs r ON r.id = c.run_id").fetchall()
    assert sorted(url for url, _ in runs) == [server.url("/a"), server.url("/b")]
    assert not [run for _, run in runs if "salvaged" in run]
    assert failed_checks(run_cli, first) == failed_checks(run_cli, second) == set()
