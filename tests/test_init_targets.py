"""`archiver init --catalog/--storage`: a database or bucket prefix another collection already
holds, or an S3 store that cannot be used, is refused in one line (exit 2) before anything is
written: no folder, no key, no catalog row, no object. Real PostgreSQL 15 and radosgw
(tests/pg.py, tests/radosgw.py)."""

from __future__ import annotations

import json
from pathlib import Path

from archiver.evidence.signing import generate_key
from archiver.store.catalog import Catalog
from archiver.store.collection import Collection
from tests.conftest import allow_networks, capture, http_response, send_bytes
from tests.test_s3_permissions import deny
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

    team = Collection.open(tmp_path / "team")
    named = f"'team' (id {team.config.id})"
    for url, said in [(f"s3://{bucket}/newsroom/", f"s3://{bucket}/newsroom/ already holds a collection, {named}"),
                      (f"s3://{bucket}/", f"s3://{bucket}/ holds another collection's prefix, "
                                          f"s3://{bucket}/newsroom/, {named}")]:  # its prefix, or one holding it
        refused = run_cli("init", "--json", "--catalog", postgresql_url, "--storage", url, tmp_path / "newcomer")
        error = refused_in_one_line(refused)
        assert said in error, error
        assert not (tmp_path / "newcomer").exists()
        assert private_keys(tmp_path) == keys
        assert custody_of(postgresql_url) == []
    assert s3.list_objects_v2(Bucket=bucket)["Contents"] == stored


def tables_in(url: str) -> list[str]:
    import psycopg
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1")]


def objects_in(s3, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_init_refusing_the_s3_store_leaves_a_fresh_database_as_it_was(tmp_path, run_cli, s3, monkeypatch,
                                                                       postgresql_url):
    bucket = make_bucket(s3, mode=None)
    cases = [("s3://no-such-bucket-here/x/", {}, "no bucket 'no-such-bucket-here'"),
             (f"s3://{bucket}/x/", {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "refused these credentials"),
             (f"s3://{bucket}/x/", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach the S3 store")]
    for number, (url, environment, said) in enumerate(cases):
        with monkeypatch.context() as patched:
            for variable, value in environment.items():
                patched.setenv(variable, value)
            refused = run_cli("init", "--json", "--catalog", postgresql_url, "--storage", url, tmp_path / str(number))
        assert said in refused_in_one_line(refused), refused.output
        assert not (tmp_path / str(number)).exists()
        assert tables_in(postgresql_url) == []  # no schema made before the store was refused
    assert objects_in(s3, bucket) == [] and private_keys(tmp_path) == []

    made = run_cli("init", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/x/", tmp_path / "team")
    assert made.exit_code == 0, made.output
    assert "warc_files" in tables_in(postgresql_url)


def database_and_user_without_create(postgresql_cluster) -> tuple[str, str]:
    """A new database's name and a user who may log in to it but not create tables there."""
    import psycopg
    database = postgresql_cluster.new_database().rsplit("/", 1)[1]
    user = f"desk_{database}"
    with psycopg.connect(postgresql_cluster.url(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {user} LOGIN")  # not the owner: PostgreSQL 15 lets it create nothing in public
    return database, user


def test_init_as_a_user_who_may_not_create_the_catalogs_tables_is_refused_before_anything_is_made(
        tmp_path, run_cli, s3, postgresql_cluster):
    import psycopg
    bucket = make_bucket(s3)
    database, user = database_and_user_without_create(postgresql_cluster)
    arguments = ["init", "--json", "--catalog", postgresql_cluster.url(database, user), "--storage",
                 f"s3://{bucket}/desk/", tmp_path / "team"]
    error = refused_in_one_line(run_cli(*arguments))
    assert f"PostgreSQL user {user} may not create the catalog's tables in schema public" in error, error
    assert f"GRANT CREATE ON SCHEMA public TO {user}" in error, error
    assert not (tmp_path / "team").exists() and private_keys(tmp_path) == [] and objects_in(s3, bucket) == []
    assert tables_in(postgresql_cluster.url(database)) == []

    with psycopg.connect(postgresql_cluster.url(database), autocommit=True) as owner:
        owner.execute(f"GRANT CREATE ON SCHEMA public TO {user}")
    made = run_cli(*arguments)
    assert made.exit_code == 0, made.output


def test_init_with_credentials_that_may_not_store_an_object_is_refused_before_anything_is_made(
        tmp_path, run_cli, s3, postgresql_url):
    bucket = make_bucket(s3)
    deny(s3, bucket, "s3:PutObject")
    refused = run_cli("init", "--json", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/desk/",
                      tmp_path / "team")
    error = refused_in_one_line(refused)
    assert f"may not store objects in bucket {bucket!r}" in error and "allow s3:PutObject" in error, error
    assert not (tmp_path / "team").exists() and private_keys(tmp_path) == [] and objects_in(s3, bucket) == []
    assert tables_in(postgresql_url) == []


def test_init_into_a_folder_it_cannot_make_leaves_the_prefix_unclaimed(tmp_path, run_cli, s3, postgresql_url):
    """The collection's marker is locked for good once stored: an init that cannot make its folder
    (a typo naming a path under a file) must not claim the prefix for a collection never made."""
    bucket = make_bucket(s3)
    (tmp_path / "a-file").write_text("not a folder")
    refused = run_cli("init", "--json", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/desk/",
                      tmp_path / "a-file" / "team")
    assert "cannot create a collection in" in refused_in_one_line(refused), refused.output
    assert objects_in(s3, bucket) == [] and tables_in(postgresql_url) == []
    made = run_cli("init", "--catalog", postgresql_url, "--storage", f"s3://{bucket}/desk/", tmp_path / "team")
    assert made.exit_code == 0, made.output
    assert objects_in(s3, bucket) == ["desk/archiver-collection.json"]


def test_init_with_a_key_it_cannot_open_is_refused_before_anything_is_made(tmp_path, run_cli, s3, postgresql_url):
    bucket = make_bucket(s3)
    key = tmp_path / "desk.pem"
    generate_key(key, b"the desk's passphrase")
    arguments = ["init", "--json", "--key", key, "--catalog", postgresql_url, "--storage", f"s3://{bucket}/desk/",
                 tmp_path / "team"]
    refused = run_cli(*arguments)  # no $ARCHIVER_PASSPHRASE, and init asks for none
    assert f"the signing key {key} is encrypted" in refused_in_one_line(refused)
    assert not (tmp_path / "team").exists() and tables_in(postgresql_url) == [] and objects_in(s3, bucket) == []

    made = run_cli(*arguments, env={"ARCHIVER_PASSPHRASE": "the desk's passphrase"})
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["key"] == str(key)


def test_init_refuses_a_prefix_inside_or_holding_another_collections(tmp_path, run_cli, s3, postgresql_cluster):
    whole, nested = make_bucket(s3), make_bucket(s3)
    for url, folder in [(f"s3://{whole}/", "whole"), (f"s3://{nested}/desk/sub/", "nested")]:
        made = run_cli("init", "--name", folder, "--storage", url, tmp_path / folder)  # nothing captured: no WARC yet
        assert made.exit_code == 0, made.output
    ids = {folder: Collection.open(tmp_path / folder).config.id for folder in ("whole", "nested")}
    stored = {bucket: objects_in(s3, bucket) for bucket in (whole, nested)}
    keys = private_keys(tmp_path)

    for number, (url, said) in enumerate([
            (f"s3://{whole}/sub/", f"s3://{whole}/sub/ is inside another collection's prefix, s3://{whole}/, "
                                   f"'whole' (id {ids['whole']})"),
            (f"s3://{nested}/desk/sub/deeper/", f"is inside another collection's prefix, s3://{nested}/desk/sub/"),
            (f"s3://{nested}/", f"s3://{nested}/ holds another collection's prefix, s3://{nested}/desk/sub/, "
                                f"'nested' (id {ids['nested']})"),
            (f"s3://{nested}/desk/", f"holds another collection's prefix, s3://{nested}/desk/sub/")]):
        database = postgresql_cluster.new_database()
        refused = run_cli("init", "--json", "--catalog", database, "--storage", url, tmp_path / str(number))
        error = refused_in_one_line(refused)
        assert said in error and "a prefix neither inside another collection's nor holding one" in error, error
        assert not (tmp_path / str(number)).exists() and private_keys(tmp_path) == keys
        assert tables_in(database) == []
    assert {bucket: objects_in(s3, bucket) for bucket in (whole, nested)} == stored

    beside = run_cli("init", "--storage", f"s3://{nested}/desk/other/", tmp_path / "beside")  # a sibling prefix is free
    assert beside.exit_code == 0, beside.output


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
        assert "s3cret" not in error and "AKIAEXAMPLE" not in error and "desk" not in error, error
