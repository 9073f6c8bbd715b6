"""`archiver migrate`: a local collection (catalog.sqlite, warcs/) copied into a shared one (a
PostgreSQL catalog, WARC files in a radosgw bucket with Object Lock), then verified; the
original never written. Real servers throughout: tests/pg.py, tests/radosgw.py, tests/tsa.py."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.evidence.custody import parse_entry
from archiver.store.catalog import Catalog
from archiver.store.schema import MIGRATIONS, SCHEMA_VERSION
from archiver.store.collection import Collection
from archiver.store.s3 import COLLECTION_MARKER
from archiver.store.storage_settings import StorageSettings
from tests.conftest import http_response, make_collection, send_bytes, use_tsa
from tests.faults import KILLED
from tests.test_init_targets import database_and_user_without_create, tables_in
from tests.test_s3_storage import make_bucket, stored_keys
from tests.test_workers import another_machine
from tests.tsa import local_tsa  # noqa: F401 (fixture)


@pytest.fixture
def original(tmp_path, run_cli, raw_server, local_tsa):
    """A local collection as the other tests build one: two runs' captures of loopback pages
    (two WARC files), claims from a document, a timestamped manifest, a bundle."""
    server = raw_server({
        "/report": send_bytes(http_response(b"<html><title>Ministry report</title><p>troops moved</p></html>")),
        "/blog": send_bytes(http_response(b"<html><title>A blog</title><p>it said so</p></html>")),
    })
    collection = make_collection(tmp_path / "original")
    use_tsa(collection.root, local_tsa)
    # Settings archiver.toml may hold beyond what `archiver init` writes, to be carried over as they are.
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace("[capture]\n", '[capture]\nuser_agent = "desk-bot/1"\n')
                      .replace('max_size = "200MB"', 'max_size = "512KiB"'))
    (collection.root / "seeds" / "article.md").write_text(
        f"# Troops moved on Monday\n\nThe ministry says so: {server.url('/report')}\n")
    assert run_cli("capture", "-C", collection.root, collection.root / "seeds").exit_code == 0
    assert run_cli("cite", "-C", collection.root, "A blog repeated it", server.url("/blog")).exit_code == 0
    made = run_cli("manifest", "-C", collection.root)
    assert made.exit_code == 0, made.output
    assert list((collection.root / "manifests").glob("*.tsr")), "the manifest was not timestamped"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", tmp_path / "before.wacz").exit_code == 0
    assert len(list((collection.root / "warcs").glob("*.warc.gz"))) == 2
    return collection


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root`: its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def migrate(run_cli, original, url: str, storage: str, to: Path):
    return run_cli("-C", original.root, "migrate", "--catalog", url, "--storage", storage, "--to", to, "--json")


def table_rows(catalog: Catalog, table: str) -> list[tuple]:
    return sorted(catalog.query(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_a_migrated_collection_verifies_and_bundles_and_the_original_is_untouched(
        tmp_path, run_cli, original, postgresql_url, s3):
    bucket = make_bucket(s3)
    before = files_of(original.root)
    shared = tmp_path / "shared"

    result = migrate(run_cli, original, postgresql_url, f"s3://{bucket}/team/", shared)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verify"]["ok"] and report["warc_files"] == 2

    assert files_of(original.root) == before, "the original collection was written"
    copied = Collection.open(shared).config
    assert copied == dataclasses.replace(Collection.open(original.root).config, catalog_url=postgresql_url,
                                         storage=StorageSettings(url=f"s3://{bucket}/team/"))
    assert (copied.capture.user_agent, copied.capture.max_size) == ("desk-bot/1", 512 * 1024)
    # Every catalog table, row for row, ids kept; the copy's files are in the bucket, locked.
    with sqlite3.connect(original.root / "catalog.sqlite") as local:
        tables = [name for (name,) in local.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    copy = Catalog(postgresql_url)
    try:
        for table in tables:
            source = Catalog(original.root / "catalog.sqlite")
            expected = table_rows(source, table)
            source.close()
            if table == "warc_files":  # the store's retention, recorded on upload, is what changes
                found = [row[:-2] for row in table_rows(copy, table)]
                expected = [row[:-2] for row in expected]
                assert all(mode == "COMPLIANCE" and until for mode, until in
                           copy.query("SELECT retention_mode, retain_until FROM warc_files").fetchall())
            else:
                found = table_rows(copy, table)
            assert found == expected, table
        custody = list(copy.custody_lines())
    finally:
        copy.close()
    assert {"runs", "captures", "records", "warc_files", "claims", "citations", "documents", "document_versions",
            "manifests", "attestations"} <= set(tables)
    # The custody log byte for byte and in order, then the migration, signed by the collection key.
    original_lines = (original.root / "custody.jsonl").read_bytes().splitlines()
    assert [line.encode() for line in custody[:len(original_lines)]] == original_lines
    moved = parse_entry(custody[len(original_lines)].encode())
    assert moved["event"] == "collection migrated" and moved["subject"]["from"] == str(original.root)
    assert moved["key"] == parse_entry(original_lines[0])["subject"]["fingerprint"]
    for path in (original.root / "warcs").glob("*.warc.gz"):
        assert s3.get_object(Bucket=bucket, Key=f"team/{path.name}")["Body"].read() == path.read_bytes()
    assert not list((shared / "warcs").iterdir()), "a spool copy outlived its upload"

    verified = run_cli("verify", "-C", shared, "--json")
    assert verified.exit_code == 0, verified.output
    bundle = tmp_path / "after.wacz"
    assert run_cli("bundle", "-C", shared, "--all", "-o", bundle).exit_code == 0, "bundle of the copy failed"
    fingerprint = moved["key"]
    checked = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json")
    assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"], checked.output
    wacz = shutil.which("wacz") or str(Path(sys.executable).with_name("wacz"))
    validated = subprocess.run([wacz, "validate", "-f", str(bundle)], capture_output=True, text=True)
    assert (validated.returncode, validated.stdout.strip().splitlines()[-1]) == (
        0, "Validation succeeded, the passed WACZ is valid"), validated.stdout + validated.stderr
    # Another machine's folder, holding only archiver.toml and the TSA roots it names: the
    # manifests and document copies are in the bucket.
    elsewhere = another_machine(Collection.open(shared), tmp_path / "elsewhere")
    shutil.copy(shared / "tsa-roots.pem", elsewhere.root)
    verified = run_cli("verify", "-C", elsewhere.root, "--json")
    assert verified.exit_code == 0, verified.output
    assert run_cli("bundle", "-C", elsewhere.root, "--all", "-o", tmp_path / "elsewhere.wacz").exit_code == 0
    checked = run_cli("verify-bundle", tmp_path / "elsewhere.wacz", "--fingerprint", fingerprint)
    assert checked.exit_code == 0, checked.output


def test_a_target_already_holding_a_collection_is_refused_and_left_as_it_was(
        tmp_path, run_cli, original, postgresql_cluster, postgresql_url, s3):
    bucket = make_bucket(s3)
    taken = run_cli("init", tmp_path / "other", "--catalog", postgresql_url)
    assert taken.exit_code == 0, taken.output
    held = Catalog(postgresql_url)
    custody = list(held.custody_lines())
    held.close()
    before = files_of(original.root)

    refused = migrate(run_cli, original, postgresql_url, f"s3://{bucket}/team/", tmp_path / "shared")
    assert refused.exit_code == 2
    error = json.loads(refused.stderr)["error"]
    assert "already holds a collection" in error and "\n" not in error
    held = Catalog(postgresql_url)
    assert list(held.custody_lines()) == custody
    held.close()
    assert not (tmp_path / "shared").exists()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    s3.put_object(Bucket=bucket, Key="team/someone-else.warc.gz", Body=b"x", ChecksumAlgorithm="SHA256")
    refused = migrate(run_cli, original, postgresql_cluster.new_database(), f"s3://{bucket}/team/", tmp_path / "shared")
    assert refused.exit_code == 2
    assert "already holds" in json.loads(refused.stderr)["error"]
    assert not (tmp_path / "shared").exists()
    assert files_of(original.root) == before, "the original was written"


def test_a_warc_changed_in_the_original_is_refused_before_anything_is_copied(
        tmp_path, run_cli, original, postgresql_url, s3):
    bucket = make_bucket(s3)
    warc = next(path for path in (original.root / "warcs").glob("*.warc.gz")
                if b"troops moved" in gzip.decompress(path.read_bytes()))
    body = bytearray(gzip.decompress(warc.read_bytes()))
    body[body.index(b"troops moved")] ^= 0x20  # "Troops moved": the page as the server did not send it
    warc.write_bytes(gzip.compress(bytes(body)))
    before = files_of(original.root)

    refused = migrate(run_cli, original, postgresql_url, f"s3://{bucket}/team/", tmp_path / "shared")
    assert refused.exit_code == 1, refused.output
    assert "does not pass verify" in json.loads(refused.stderr)["error"]
    assert files_of(original.root) == before, "the original was written"
    assert not (tmp_path / "shared").exists()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert tables_in(postgresql_url) == [], "the target catalog's schema was made for a refused migration"


def test_a_user_who_may_not_create_the_catalogs_tables_is_refused_before_anything_is_made(
        tmp_path, run_cli, original, postgresql_cluster, s3):
    bucket = make_bucket(s3)
    database, user = database_and_user_without_create(postgresql_cluster)
    refused = migrate(run_cli, original, postgresql_cluster.url(database, user), f"s3://{bucket}/team/",
                      tmp_path / "shared")
    assert refused.exit_code == 2, refused.output
    error = json.loads(refused.stderr)["error"]
    assert f"PostgreSQL user {user} may not create the catalog's tables" in error and "\n" not in error, error
    assert f"GRANT CREATE ON SCHEMA public TO {user}" in error, error
    assert not (tmp_path / "shared").exists()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert tables_in(postgresql_cluster.url(database)) == []


def test_a_migration_killed_midway_is_finished_by_running_it_again(tmp_path, run_cli, original, postgresql_url, s3):
    bucket = make_bucket(s3)
    before = files_of(original.root)
    shared = tmp_path / "shared"
    arguments = ["-C", str(original.root), "migrate", "--catalog", postgresql_url, "--storage",
                 f"s3://{bucket}/team/", "--to", str(shared)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    # Killed at its 4th file operation in the new spool (each upload writes, syncs the file, syncs
    # the folder): as the second WARC file starts on its way, the first one up.
    killed = subprocess.run([sys.executable, "-m", "tests.faults", "4", str(shared / "warcs"), *arguments],
                            capture_output=True, text=True, env=env)
    assert killed.returncode == KILLED, killed.stderr
    assert len(stored_keys(s3, bucket)) == 1, "not killed mid-upload"

    resumed = run_cli(*arguments)
    assert resumed.exit_code == 0, resumed.output
    assert "(finishing an interrupted run): 2 WARC files" in resumed.stdout
    assert resumed.stdout.rstrip().endswith("Every check above passed.")
    assert run_cli("verify", "-C", shared).exit_code == 0
    assert files_of(original.root) == before, "the original was written"
    claimed = json.loads(s3.get_object(Bucket=bucket, Key=f"team/{COLLECTION_MARKER}")["Body"].read())
    assert claimed == {"collection": original.config.id, "name": original.config.name}  # as init claims a prefix


def test_an_original_whose_catalog_an_older_archiver_wrote_is_refused_and_nothing_is_written(
        tmp_path, run_cli, postgresql_url, s3):
    """Opening an older catalog upgrades its schema, a write to the original: refused first."""
    bucket = make_bucket(s3)
    old = make_collection(tmp_path / "old")
    older = SCHEMA_VERSION - 2
    with sqlite3.connect(old.root / "catalog.sqlite") as catalog:  # the catalog as archiver wrote it then
        for migration in MIGRATIONS[:older]:
            for statement in migration.statements("sqlite"):
                catalog.execute(statement)
        catalog.execute(f"PRAGMA user_version = {older}")
    catalog.close()
    before = files_of(old.root)

    refused = migrate(run_cli, old, postgresql_url, f"s3://{bucket}/team/", tmp_path / "shared")
    assert refused.exit_code == 2, refused.output
    error = json.loads(refused.stderr)["error"]
    assert f"schema {older}" in error and "verify" in error and "\n" not in error, error
    assert files_of(old.root) == before, "the original was written"
    assert not (tmp_path / "shared").exists()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert tables_in(postgresql_url) == [], "the target catalog was written"


@pytest.mark.parametrize("mode, days, expected", [
    (None, 0, "has no Object Lock"),
    ("GOVERNANCE", 30, "GOVERNANCE"),
    ("COMPLIANCE", 2, "2 days"),
])
def test_a_bucket_locked_less_than_required_is_refused_before_anything_is_copied(
        tmp_path, run_cli, original, postgresql_url, s3, mode, days, expected):
    bucket = make_bucket(s3, mode, days)
    refused = run_cli("-C", original.root, "migrate", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/team/",
                      "--to", tmp_path / "shared", "--require-retention", "COMPLIANCE", "--min-retention-days", "7",
                      "--json")
    assert refused.exit_code == 2, refused.output
    error = json.loads(refused.stderr)["error"]
    assert bucket in error and expected in error and "\n" not in error, error
    assert not (tmp_path / "shared").exists()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert tables_in(postgresql_url) == [], "the target catalog was written"


def test_the_retention_required_of_the_bucket_is_written_into_the_copy_settings(
        tmp_path, run_cli, original, postgresql_url, s3):
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    shared = tmp_path / "shared"
    result = run_cli("-C", original.root, "migrate", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/team/",
                     "--to", shared, "--require-retention", "COMPLIANCE", "--min-retention-days", "1", "--json")
    assert result.exit_code == 0, result.output
    assert Collection.open(shared).config.storage == StorageSettings(
        url=f"s3://{bucket}/team/", require_retention="COMPLIANCE", min_retention_days=1)
    # As `archiver init` writes them: a later command on the copy refuses a bucket locked less.
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}})
    refused = run_cli("verify", "-C", shared)
    assert refused.exit_code == 2 and "GOVERNANCE" in refused.output, refused.output


def test_a_minimum_retention_without_a_required_mode_is_refused(tmp_path, run_cli, original):
    refused = run_cli("-C", original.root, "migrate", "--catalog", "postgresql://desk@127.0.0.1:1/evidence",
                      "--storage", "s3://evidence/team/", "--to", tmp_path / "shared", "--min-retention-days", "7")
    assert refused.exit_code == 2
    assert "--require-retention" in refused.output
    assert not (tmp_path / "shared").exists()
