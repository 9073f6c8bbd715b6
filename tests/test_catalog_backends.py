"""The catalog on PostgreSQL as on SQLite: a shared collection end to end, the URL's refusals,
and an existing SQLite catalog migrated to the column names both databases accept."""

from __future__ import annotations

import errno
import json
import re
import sqlite3

import psycopg
import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.cli.common import refusal
from archiver.errors import StorageProblem
from archiver.store.catalog import Catalog
from archiver.store.database import STATEMENT_REFUSED_HINT, placeholders, write_transaction
from archiver.store.schema import MIGRATIONS
from archiver.store.sqlite_database import SQLite
from tests.conftest import allow_networks, http_response, make_collection, send_bytes


def test_a_collection_whose_catalog_is_in_postgresql_captures_verifies_and_bundles(run_cli, raw_server, tmp_path,
                                                                                   postgresql_url):
    server = raw_server({"/a": send_bytes(http_response(b"<html><title>A</title>first</html>")),
                         "/b": send_bytes(http_response(b"<html><title>B</title>second</html>"))})
    root = tmp_path / "shared"
    made = run_cli("init", "--catalog", postgresql_url, root)
    assert made.exit_code == 0, made.output
    assert f'url = "{postgresql_url}"' in (root / "archiver.toml").read_text()
    allow_networks(root, "127.0.0.1/32")
    (root / "seeds" / "note.md").write_text(f"# Note\n\nOne says {server.url('/a')}.\n\nAnother says {server.url('/b')}.\n")

    captured = run_cli("capture", "-C", root, root / "seeds", "--json")
    assert captured.exit_code == 0, captured.output
    assert sorted(c["outcome"] for c in json.loads(captured.stdout)["captures"]) == ["ok", "ok"]
    claims = run_cli("claims", "-C", root, "--json")
    assert claims.exit_code == 0, claims.output
    assert sorted(url["url"] for claim in json.loads(claims.stdout) for url in claim["citations"]) == \
        [server.url("/a"), server.url("/b")]
    verified = run_cli("verify", "-C", root)
    assert verified.exit_code == 0, verified.output
    bundled = run_cli("bundle", "-C", root, "--url", server.url("/a"), "-o", tmp_path / "a.wacz")
    assert bundled.exit_code == 0, bundled.output
    assert (tmp_path / "a.wacz").stat().st_size > 0

    assert not (root / "catalog.sqlite").exists()
    [warc] = (root / "warcs").glob("*.warc.gz")
    with warc.open("rb") as stream:
        warcinfo = next(ArchiveIterator(stream)).content_stream().read().decode()
    # Where the evidence is cataloged, as a bundle's reader may see it: the kind and the database,
    # not the server's user, host or port.
    database = psycopg.conninfo.conninfo_to_dict(postgresql_url)
    assert re.findall(r"^archiver-catalog: (.*)\r$", warcinfo, re.M) == [f'postgresql database "{database["dbname"]}"']
    assert f':{database["port"]}' not in warcinfo and f'{database["user"]}@' not in warcinfo
    with psycopg.connect(postgresql_url) as db:
        assert sorted(row[0] for row in db.execute("SELECT url FROM captures")) == [server.url("/a"), server.url("/b")]
        assert db.execute("SELECT COUNT(*) FROM records WHERE warc_offset >= 0").fetchone()[0] > 0


@pytest.mark.parametrize("url, says", [
    ("postgresql://user@127.0.0.1:notaport/db", "is not a PostgreSQL URL"),
    ("mysql://user@127.0.0.1/db", "must be a PostgreSQL URL"),
    ("postgresql://user:S3cretPW@127.0.0.1/db", "carries a password"),
    # psycopg's own message for a bad %-escape repeats the password: it is not shown.
    ("postgresql://user:S3cretPW%ZZ@127.0.0.1:1/db", "is not a PostgreSQL URL libpq can read"),
    ("host=127.0.0.1 port=1 user=user password=S3cretPW", "must be a PostgreSQL URL"),  # libpq's keyword form
    ("postgresql://user@127.0.0.1:1/db?password=S3cretPW", "carries a password"),
    # What unlocks the client's key, or logs in as a password would.
    ("postgresql://user@127.0.0.1:1/db?sslpassword=S3cretPW", "carries a secret (sslpassword)"),
    ("postgresql://user@127.0.0.1:1/db?oauth_client_secret=S3cretPW", "carries a secret (oauth_client_secret)"),
    ("postgresql://user@127.0.0.1:1/db?scram_client_key=S3cretPW", "carries a secret (scram_client_key)"),
])
def test_a_bad_catalog_url_is_refused_in_one_line_without_echoing_it(run_cli, tmp_path, url, says):
    result = run_cli("init", "--catalog", url, tmp_path / "c")
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "S3cretPW" not in result.output and "127.0.0.1" not in result.output, result.output
    assert str(tmp_path) not in result.output, result.output  # no archiver.toml was written: --catalog is named
    assert not (tmp_path / "c").exists()


def test_a_secret_added_to_archiver_toml_is_refused_without_echoing_it(run_cli, tmp_path, postgresql_url):
    root = tmp_path / "shared"
    assert run_cli("init", "--catalog", postgresql_url, root).exit_code == 0
    config = root / "archiver.toml"
    config.write_text(config.read_text().replace(postgresql_url, postgresql_url + "?sslpassword=S3cretPW"))
    result = run_cli("doctor", "-C", root)
    assert result.exit_code == 2, result.output
    assert f"[catalog] url in {config} carries a secret (sslpassword)" in result.output, result.output
    assert "S3cretPW" not in result.output, result.output


def test_an_unreachable_server_a_missing_database_and_an_unknown_user_are_told_apart(run_cli, tmp_path,
                                                                                     postgresql_cluster, closed_port):
    cases = [(f"postgresql://postgres@127.0.0.1:{closed_port}/x", "cannot reach PostgreSQL"),
             (postgresql_cluster.url("no_such_database"), 'database "no_such_database" does not exist'),
             (postgresql_cluster.url("postgres", user="nobody"), 'role "nobody" does not exist')]
    for number, (url, says) in enumerate(cases):
        result = run_cli("init", "--catalog", url, tmp_path / str(number))
        assert result.exit_code == 3, result.output
        assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / str(number)).exists()


def test_wrong_credentials_are_named_with_where_the_password_comes_from(run_cli, tmp_path, postgresql_cluster,
                                                                        monkeypatch):
    with psycopg.connect(postgresql_cluster.url(), autocommit=True) as admin:
        admin.execute("CREATE ROLE reporter LOGIN PASSWORD 'right'")
    hba = postgresql_cluster.data / "pg_hba.conf"
    hba.write_text("host all reporter 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    postgresql_cluster.reload()
    monkeypatch.setenv("PGPASSWORD", "wrong")
    result = run_cli("init", "--catalog", postgresql_cluster.url("postgres", user="reporter"), tmp_path / "c")
    assert result.exit_code == 3, result.output
    assert "refused the credentials" in result.output and "PGPASSWORD" in result.output


def test_an_existing_sqlite_catalog_migrates_to_names_postgresql_accepts(tmp_path):
    path = tmp_path / "catalog.sqlite"
    old = sqlite3.connect(path)
    for migration in MIGRATIONS[:5]:
        for statement in migration.statements("sqlite"):
            old.execute(statement)
    old.executescript("""
        PRAGMA user_version = 5;
        INSERT INTO runs (id, started_at, software, operator, settings) VALUES ('r', 't', 'archiver', 'me', '{}');
        INSERT INTO warc_files (name, warcinfo_id, opened_at) VALUES ('f.warc.gz', 'w', 't');
        INSERT INTO captures (id, run_id, url, url_key, outcome, started_at, finished_at)
            VALUES ('c', 'r', 'http://a/', 'a/', 'ok', 't', 't');
        INSERT INTO records (record_id, capture_id, seq, warc_type, role, warc_date, warc_file, "offset", length,
                             content_length, block_digest) VALUES ('x', 'c', 0, 'response', 'response', 't', 'f.warc.gz', 1234, 5, 6, 'd');
        INSERT INTO claims (id, text, start, "end", kind, first_seen_at) VALUES ('k', 'said', 3, 7, 'note', 't');
        INSERT INTO citations VALUES ('k', 'z/', 'http://z/', 1);
        INSERT INTO citations VALUES ('k', 'a/', 'http://a/', 1);
    """)
    old.commit()
    old.close()

    catalog = Catalog(path)
    [record] = catalog.records("c")
    [claim] = catalog.find_claim("k")
    catalog.close()
    assert (record.offset, claim.start, claim.end) == (1234, 3, 7)
    assert claim.citations == (("http://z/", "z/"), ("http://a/", "a/"))  # as written, not sorted
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_capture_into_a_collection_whose_server_is_gone_fails_before_fetching(run_cli, raw_server, tmp_path,
                                                                                postgresql_url, closed_port):
    server = raw_server({"/a": send_bytes(http_response(b"<html>a</html>"))})
    collection = make_collection(tmp_path / "c", postgresql_url)
    config = collection.config_path
    config.write_text(config.read_text().replace(postgresql_url, f"postgresql://postgres@127.0.0.1:{closed_port}/x"))
    result = run_cli("capture", "-C", collection.root, server.url("/a"))
    assert result.exit_code == 3, result.output
    assert "cannot reach PostgreSQL" in result.output and len(result.output.strip().splitlines()) == 1
    assert server.requests == []


def test_on_postgresql_a_capture_and_its_custody_entry_commit_in_one_transaction(run_cli, raw_server, tmp_path,
                                                                                 postgresql_url):
    """No moment, for a crash to stop at, holds a capture the custody log does not: the capture's
    rows and the entry logging it have one transaction id (PostgreSQL's xmin)."""
    server = raw_server({f"/{i}": send_bytes(http_response(f"page {i}".encode())) for i in range(3)})
    root = tmp_path / "shared"
    assert run_cli("init", "--catalog", postgresql_url, root).exit_code == 0
    allow_networks(root, "127.0.0.1/32")
    assert run_cli("capture", "-C", root, *(server.url(f"/{i}") for i in range(3))).exit_code == 0
    with psycopg.connect(postgresql_url) as db:
        captures = dict(db.execute("SELECT id, xmin::text FROM captures").fetchall())
        logged = {json.loads(line)["subject"]["capture"]: xmin for line, xmin in db.execute(
            "SELECT line, xmin::text FROM custody_entries").fetchall() if json.loads(line)["event"] == "capture"}
    assert len(captures) == 3 and logged == captures


def test_a_transaction_sqlite_rolled_back_itself_gives_the_error_that_ended_it(tmp_path):
    """On a full disk SQLite may roll the transaction back itself: the error the user sees is
    the disk's, never "cannot rollback - no transaction is active"."""
    database = SQLite(tmp_path / "catalog.sqlite")
    with pytest.raises(OSError) as raised:
        with write_transaction(database):
            database._db.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
            raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.errno == errno.ENOSPC


def test_a_statement_the_database_refuses_is_told_as_such_not_blamed_on_the_disk_or_server(postgresql_url):
    """A statement past the database's limit on variables ("too many SQL variables" from a
    249,999-row sheet) was told as "check the disk and the catalog's permissions" on SQLite and
    "check that PostgreSQL is running and reachable" on PostgreSQL: neither can mend it."""
    sqlite = sqlite3.connect(":memory:")
    sqlite.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 1)
    with pytest.raises(sqlite3.OperationalError) as raised:
        sqlite.execute("SELECT ?, ?", (1, 2))
    assert refusal(raised.value) == f"the catalog refused a change: too many SQL variables; {STATEMENT_REFUSED_HINT}"
    catalog = Catalog(postgresql_url)
    try:
        with pytest.raises(StorageProblem) as refused:
            catalog.query(f"SELECT 1 WHERE 0 NOT IN ({placeholders(list(range(65_536)))})", tuple(range(1, 65_537)))
        assert str(refused.value).startswith("the catalog server refused a statement: ")
        assert refused.value.fix == STATEMENT_REFUSED_HINT
        assert catalog.query("SELECT 1").fetchone() == (1,)  # the connection held
    finally:
        catalog.close()
