"""`archiver init --catalog/--storage`: a database or bucket prefix another collection already
holds, or an S3 store that cannot be used, is refused in one line (exit 2) before anything is
written: no folder, no key, no catalog row, no object. Real PostgreSQL 15 and radosgw
(tests/pg.py, tests/radosgw.py)."""

from __future__ import annotations

import json
from pathlib import Path

from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from tests.conftest import allow_networks, capture, http_response, send_bytes
from tests.test_s3_storage import make_bucket


def custody_of(url: str) -> list[str]:
    held = Catalog(url)
    try:
        return list(held.custody_lines())
    finally:
        held.close()


def private_keys(tmp_path: Path) -> list[str]:
    folder = tmp_path / "config" / "archiver" / "keys"  # conftest's XDG_CONFIG_HOME
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def refused_in_one_line(result) -> str:
    assert result.exit_code == 2, result.output
    error = json.loads(result.stderr)["error"]
    assert "\n" not in error and "Created collection" not in result.output, result.output
    return error


def test_init_into_a_database_holding_a_collection_is_refused_before_anything_is_written(
        tmp_path, run_cli, postgresql_url):
    made = run_cli("init", "--catalog", postgresql_url, "--name", "Team", tmp_path / "team")
    assert made.exit_code == 0, made.output
    team = Collection.open(tmp_path / "team")
    custody, keys = custody_of(postgresql_url), private_keys(tmp_path)

    refused = run_cli("init", "--json", "--catalog", postgresql_url, tmp_path / "team2")
    error = refused_in_one_line(refused)
    assert f"already holds a collection, 'Team' (id {team.config.id})" in error, error
    assert "a copy of its archiver.toml" in error, error  # how a machine joins the team's collection
    assert not (tmp_path / "team2").exists()
    assert private_keys(tmp_path) == keys
    assert custody_of(postgresql_url) == custody  # no "key generated", no "collection created" of another


def test_init_refuses_a_bucket_prefix_another_collection_stores_in(tmp_path, run_cli, raw_server, s3,
                                                                   postgresql_url):
    bucket = make_bucket(s3)
    made = run_cli("init", "--storage", f"s3://{bucket}/newsroom/", tmp_path / "team")
    assert made.exit_code == 0, made.output
    allow_networks(tmp_path / "team", "127.0.0.1/32")
    server = raw_server({"/": send_bytes(http_response(b"<html><p>the cited text</p></html>"))})
    capture(Collection.open(tmp_path / "team"), server.url("/"))
    stored = s3.list_objects_v2(Bucket=bucket)["Contents"]
    keys = private_keys(tmp_path)

    for url in (f"s3://{bucket}/newsroom/", f"s3://{bucket}/"):  # its prefix, or one holding it
        refused = run_cli("init", "--json", "--catalog", postgresql_url, "--storage", url, tmp_path / "newcomer")
        error = refused_in_one_line(refused)
        assert f"{url} already holds 1 files" in error and "a copy of its archiver.toml" in error, error
        assert not (tmp_path / "newcomer").exists()
        assert private_keys(tmp_path) == keys
        assert custody_of(postgresql_url) == []
    assert s3.list_objects_v2(Bucket=bucket)["Contents"] == stored


def test_init_checks_the_s3_store_as_opening_a_collection_does(tmp_path, run_cli, s3, monkeypatch):
    bucket = make_bucket(s3, mode=None)
    cases = [("no-such-bucket-here", {}, "no bucket 'no-such-bucket-here'"),
             (bucket, {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "refused these credentials"),
             (bucket, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach the S3 store at http://127.0.0.1:9")]
    for number, (name, environment, said) in enumerate(cases):
        with monkeypatch.context() as patched:
            for variable, value in environment.items():
                patched.setenv(variable, value)
            refused = run_cli("init", "--json", "--storage", f"s3://{name}/x/", tmp_path / str(number))
        assert said in refused_in_one_line(refused), refused.output
        assert not (tmp_path / str(number)).exists()
    assert private_keys(tmp_path) == []

    locks_less = run_cli("init", "--json", "--storage", f"s3://{bucket}/x/", "--require-retention", "COMPLIANCE",
                         tmp_path / "unlocked")
    assert "has no Object Lock default retention" in refused_in_one_line(locks_less)
    assert not (tmp_path / "unlocked").exists()


def test_a_malformed_catalog_or_storage_url_is_refused_without_its_credentials_echoed(tmp_path, run_cli):
    for number, option, url in [(1, "--storage", "s3://AKIAEXAMPLE:s3cret-key@evidence/newsroom/"),
                                (2, "--catalog", "postgresql://desk:s3cret-key@db.example:port/evidence"),
                                (3, "--catalog", "postgresql://desk:s3cret-key@[db.example/evidence"),
                                (4, "--catalog", "mysql://desk:s3cret-key@db.example/evidence")]:
        error = refused_in_one_line(run_cli("init", "--json", option, url, tmp_path / str(number)))
        assert "***@" in error and "s3cret" not in error and "AKIAEXAMPLE" not in error and "desk" not in error, error
