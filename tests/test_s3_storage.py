"""WARC files kept in an S3 store with Object Lock: a real one-node Ceph cluster with radosgw
(tests/radosgw.py, conftest's gateway: one for the session); nothing of the store is simulated."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
import sqlite3
import uuid
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError
from warcio.archiveiterator import ArchiveIterator

from archiver.check.reading import Parallelism
from archiver.check.verify import verify_collection
from archiver.store.collection import Collection
from archiver.store.s3 import COLLECTION_MARKER
from tests.conftest import allow_networks, capture, http_response, send_bytes
from tests.s3_faults import RefusingProxy


def make_bucket(s3, mode: str | None = "COMPLIANCE", days: int = 2) -> str:
    """A new bucket; with Object Lock and that default retention unless `mode` is None."""
    bucket = f"warcs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=mode is not None)
    if mode:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})
    return bucket


def stored_keys(s3, bucket: str) -> list[str]:
    """The keys of the bucket's objects but the COLLECTION_MARKER init stores: the files stored since."""
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            if not item["Key"].endswith(COLLECTION_MARKER)]


def s3_collection(tmp_path, run_cli, url: str, retention: str = "") -> Collection:
    root = tmp_path / "collection"
    result = run_cli("init", root, "--storage", url, "--name", "test")
    assert result.exit_code == 0, result.output
    allow_networks(root, "127.0.0.1/32")
    if retention:
        config = root / "archiver.toml"
        config.write_text(config.read_text().replace("[storage]\n", f"[storage]\n{retention}\n"))
    return Collection.open(root)


def page_server(raw_server):
    return raw_server({"/": send_bytes(http_response(b"<html><p>the cited text</p></html>",
                                                    headers=[("Content-Type", "text/html")]))})


def capture_refused(run_cli, collection, raw_server, gateway, monkeypatch, refuses):
    """A capture whose upload the store refuses where `refuses(method, path)`: it fails (exit 3),
    its file kept in the spool. Then the store is reached directly again, taking uploads."""
    proxy = RefusingProxy(gateway.endpoint, refuses)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        failed = run_cli("capture", "-C", collection.root, page_server(raw_server).url("/"))
    finally:
        proxy.stop()
        monkeypatch.setenv("AWS_ENDPOINT_URL", gateway.endpoint)
    assert failed.exit_code == 3 and proxy.refused, failed.output
    return failed


def sent_requests(monkeypatch, operation: str, seen) -> list:
    """`seen(request)` of every `operation` request archiver's S3 clients send from now on,
    taken on the clients' own event hooks just before each request goes to radosgw."""
    sent: list = []
    make_client = boto3.session.Session.client

    def client(self, *args, **kwargs):
        made = make_client(self, *args, **kwargs)
        made.meta.events.register(f"before-send.s3.{operation}", lambda request, **_: sent.append(seen(request)))
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    return sent


@pytest.fixture
def object_gets(monkeypatch) -> list[tuple[str, str | None]]:
    """(URL, Range header) of every GetObject request sent from now on."""
    return sent_requests(monkeypatch, "GetObject", lambda request: (request.url, request.headers.get("Range")))


@pytest.fixture
def object_heads(monkeypatch) -> list[str]:
    """The URL of every HeadObject request sent from now on."""
    return sent_requests(monkeypatch, "HeadObject", lambda request: request.url)


def test_capture_uploads_a_locked_object_and_verify_reads_it_by_ranges(tmp_path, run_cli, raw_server, s3,
                                                                      object_gets, gateway):
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/",
                               f'endpoint = "{gateway.endpoint}"\nregion = "us-east-1"\n'
                               'require_retention = "COMPLIANCE"\nmin_retention_days = 1')
    [row] = capture(collection, page_server(raw_server).url("/"))
    assert row.outcome == "ok"

    with collection:
        [(name, size, sha256, mode, until)] = collection.catalog.query(
            "SELECT name, size, sha256, retention_mode, retain_until FROM warc_files").fetchall()
    stored = s3.get_object(Bucket=bucket, Key=f"team/{name}")
    body = stored["Body"].read()
    assert (len(body), hashlib.sha256(body).hexdigest()) == (size, sha256)
    assert stored["ObjectLockMode"] == mode == "COMPLIANCE"
    assert datetime.datetime.fromisoformat(until) == stored["ObjectLockRetainUntilDate"]
    assert not list((collection.root / "warcs").glob("*.warc.gz*")), "the spool copy outlived the upload"
    warcinfo = next(ArchiveIterator(io.BytesIO(body))).content_stream().read().decode()
    # Where the evidence is kept and how it is locked, as a bundle's reader may see it: not the
    # store's internal address, nor a region.
    assert json.loads(re.search(r"^archiver-storage: (.*)$", warcinfo, re.M).group(1)) == {
        "url": f"s3://{bucket}/team/", "require_retention": "COMPLIANCE", "min_retention_days": 1}
    assert urlsplit(gateway.endpoint).netloc not in warcinfo and "us-east-1" not in warcinfo
    assert re.search(r"^archiver-catalog: catalog.sqlite\r?$", warcinfo, re.M)

    object_gets.clear()
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output
    assert object_gets, "verify read no object"
    assert all(name in url and ranged for url, ranged in object_gets), f"GETs without a Range: {object_gets}"


@pytest.mark.parametrize("mode, days, expected", [
    (None, 0, "has no Object Lock"),
    ("GOVERNANCE", 30, "GOVERNANCE"),
    ("COMPLIANCE", 1, "1 days"),
])
def test_a_bucket_not_locked_as_required_is_refused_before_capturing(tmp_path, run_cli, raw_server, s3,
                                                                    mode, days, expected):
    bucket = make_bucket(s3, mode, days)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/",
                               'require_retention = "COMPLIANCE"\nmin_retention_days = 7')
    result = run_cli("capture", "-C", collection.root, page_server(raw_server).url("/"))
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert bucket in result.output and expected in result.output
    assert stored_keys(s3, bucket) == []


def test_verify_looks_up_each_object_once_for_its_size_and_retention(tmp_path, run_cli, raw_server, s3,
                                                                     object_heads):
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/", 'require_retention = "COMPLIANCE"')
    url = page_server(raw_server).url("/")
    for _ in range(3):  # one run, one WARC file, one object
        capture(collection, url)
    names = sorted(stored_keys(s3, bucket))
    assert len(names) == 3

    object_heads.clear()
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 0, verified.output
    # Each object once: for its size (the records' check) and its retention (the lock's check) alike.
    assert sorted(key for head in object_heads for key in names if head.endswith(key)) == names, object_heads


def test_init_writes_the_retention_required_and_it_and_commands_then_refuse_a_bucket_locking_less(
        tmp_path, run_cli, raw_server, s3):
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    refused = run_cli("init", tmp_path / "refused", "--storage", f"s3://{bucket}/team/", "--require-retention",
                      "COMPLIANCE", "--min-retention-days", "30")
    assert refused.exit_code == 2 and "2 days, under min_retention_days = 30" in refused.output, refused.output
    assert not (tmp_path / "refused").exists()

    root = tmp_path / "collection"
    made = run_cli("init", root, "--storage", f"s3://{bucket}/team/", "--require-retention", "COMPLIANCE",
                   "--min-retention-days", "2")
    assert made.exit_code == 0, made.output
    storage = Collection.open(root).config.storage
    assert (storage.require_retention, storage.min_retention_days) == ("COMPLIANCE", 2)
    config = root / "archiver.toml"  # asked for more afterwards: commands refuse the bucket as init did
    config.write_text(config.read_text().replace("min_retention_days = 2\n", "min_retention_days = 30\n"))
    allow_networks(root, "127.0.0.1/32")
    refused = run_cli("capture", "-C", root, page_server(raw_server).url("/"))
    assert refused.exit_code == 2 and "2 days, under min_retention_days = 30" in refused.output, refused.output


def test_the_store_refuses_to_delete_or_shorten_an_uploaded_warc(tmp_path, run_cli, raw_server, s3):
    bucket = make_bucket(s3, "COMPLIANCE", days=3)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/", 'require_retention = "COMPLIANCE"')
    capture(collection, page_server(raw_server).url("/"))
    [listed] = [item for item in s3.list_object_versions(Bucket=bucket)["Versions"] if item["Key"] != COLLECTION_MARKER]
    version = {"Bucket": bucket, "Key": listed["Key"], "VersionId": listed["VersionId"]}
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(**version, BypassGovernanceRetention=True)
    sooner = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with pytest.raises(ClientError):
        s3.put_object_retention(**version, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": sooner})
    with pytest.raises(ClientError):
        s3.put_object_retention(**version, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": sooner})
    assert s3.head_object(**version)["ContentLength"] > 0


def test_verify_reports_an_object_swapped_behind_its_back(tmp_path, run_cli, raw_server, s3):
    bucket = make_bucket(s3, mode=None)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/")
    capture(collection, page_server(raw_server).url("/"))
    [key] = stored_keys(s3, bucket)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    swapped = original[:-40] + bytes([original[-40] ^ 1]) + original[-39:]  # one bit of a record's bytes
    s3.put_object(Bucket=bucket, Key=key, Body=swapped)
    result = run_cli("verify", "-C", collection.root)
    assert result.exit_code == 1
    assert "WARC file SHA-256" in result.output


@pytest.mark.parametrize("tail", ["?aws_secret_access_key=S3cretKEY", "#S3cretKEY"])
def test_an_s3_url_with_a_query_or_fragment_is_refused_without_echoing_it(tmp_path, run_cli, s3, tail):
    refused = run_cli("init", tmp_path / "given", "--storage", f"s3://{make_bucket(s3)}/team/{tail}")
    assert refused.exit_code == 2, refused.output
    assert "query or a fragment" in refused.output and len(refused.output.strip().splitlines()) == 1
    assert "S3cretKEY" not in refused.output and not (tmp_path / "given").exists()

    # One written into archiver.toml afterwards: every command refuses the file, doctor too.
    collection = s3_collection(tmp_path, run_cli, f"s3://{make_bucket(s3)}/team/")
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace("/team/", f"/team/{tail}"))
    doctor = run_cli("doctor", "-C", collection.root)
    assert doctor.exit_code == 2, doctor.output
    assert "query or a fragment" in doctor.output and "S3cretKEY" not in doctor.output, doctor.output


def test_an_endpoint_with_credentials_is_refused_without_echoing_them(tmp_path, run_cli):
    root = tmp_path / "collection"
    assert run_cli("init", root).exit_code == 0
    config = root / "archiver.toml"
    config.write_text(config.read_text().replace("[storage]\n", '[storage]\nurl = "s3://evidence/newsroom/"\n'
                                                 'endpoint = "https://AKIAEXAMPLE:S3cretKEY@s3.example.org"\n'))
    doctor = run_cli("doctor", "-C", root)
    assert doctor.exit_code == 2, doctor.output
    assert "endpoint in [storage] must be an http(s) URL without user, password" in doctor.output, doctor.output
    assert "S3cretKEY" not in doctor.output and "AKIAEXAMPLE" not in doctor.output, doctor.output


def test_setting_up_a_store_that_cannot_work_is_one_line_before_capturing(tmp_path, run_cli, raw_server, s3,
                                                                          monkeypatch):
    url = page_server(raw_server).url("/")
    bad = run_cli("init", tmp_path / "bad-url", "--storage", "s3:/no-bucket")
    assert bad.exit_code == 2 and "s3://BUCKET/PREFIX/" in bad.output
    assert len(bad.output.strip().splitlines()) == 1

    # init itself refuses such a store (tests/test_init_targets.py): this one's bucket is deleted after.
    bucket, gone = make_bucket(s3, mode=None), make_bucket(s3, mode=None)
    missing = s3_collection(tmp_path, run_cli, f"s3://{gone}/")
    s3.delete_object(Bucket=gone, Key=COLLECTION_MARKER)
    s3.delete_bucket(Bucket=gone)
    result = run_cli("capture", "-C", missing.root, url)
    assert result.exit_code == 2 and f"no bucket {gone!r}" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output

    (missing.root / "archiver.toml").write_text((missing.root / "archiver.toml").read_text().replace(gone, bucket))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    result = run_cli("capture", "-C", missing.root, url)
    assert result.exit_code == 2 and "credentials" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    result = run_cli("capture", "-C", missing.root, url)
    assert result.exit_code == 2 and "cannot reach" in result.output and "127.0.0.1:9" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not list((missing.root / "warcs").iterdir())


def test_doctor_reports_every_object_no_catalog_row_names_at_any_depth_and_never_deletes_one(
        tmp_path, run_cli, raw_server, s3, postgresql_url):
    bucket = make_bucket(s3, mode=None)
    root = tmp_path / "shared"
    made = run_cli("init", root, "--catalog", postgresql_url, "--storage", f"s3://{bucket}/team/")
    assert made.exit_code == 0, made.output
    allow_networks(root, "127.0.0.1/32")
    capture(Collection.open(root), page_server(raw_server).url("/"))
    orphans = ["team/a/b/c", "team/by-hand.warc.gz", "team/sub/x.warc.gz"]
    for key in orphans + ["elsewhere/not-ours.warc.gz"]:  # the last is outside the collection's prefix
        s3.put_object(Bucket=bucket, Key=key, Body=b"put here by hand")

    for fix in ([], ["--fix"]):
        found = run_cli("doctor", "-C", root, "--json", *fix)
        assert found.exit_code == 1, found.output  # a person must look: --fix never deletes an object
        assert sorted((f["kind"], f["where"], f["fixed"]) for f in json.loads(found.stdout)["findings"]) == \
            [("orphaned object", f"s3://{bucket}/{key}", None) for key in orphans]
        for key in orphans:
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"put here by hand"
    text = run_cli("doctor", "-C", root)
    assert f"orphaned object: s3://{bucket}/team/sub/x.warc.gz" in text.output


def test_verify_names_an_object_whose_retention_was_shortened_or_differs_from_the_catalog(tmp_path, run_cli,
                                                                                          raw_server, s3):
    bucket = make_bucket(s3, "GOVERNANCE", days=3)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/")
    capture(collection, page_server(raw_server).url("/"))
    assert run_cli("verify", "-C", collection.root).exit_code == 0
    with collection:
        [(name, mode)] = collection.catalog.query("SELECT name, retention_mode FROM warc_files").fetchall()
    assert mode == "GOVERNANCE"
    sooner = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    s3.put_object_retention(Bucket=bucket, Key=name, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": sooner})
    shortened = run_cli("verify", "-C", collection.root, "--json")
    assert shortened.exit_code == 1, shortened.output
    [failure] = json.loads(shortened.stdout)["failures"]
    assert (failure["check"], failure["where"]) == ("object retention", f"s3://{bucket}/{name}")
    assert "shortened" in failure["detail"]

    with sqlite3.connect(collection.root / "catalog.sqlite") as db:  # the catalog says COMPLIANCE was stored
        db.execute("UPDATE warc_files SET retention_mode = 'COMPLIANCE'")
    differs = run_cli("verify", "-C", collection.root, "--json")
    assert {(f["check"], f["where"]) for f in json.loads(differs.stdout)["failures"]} == \
        {("object retention", f"s3://{bucket}/{name}")}
    assert any("COMPLIANCE" in f["detail"] and "GOVERNANCE" in f["detail"] for f in json.loads(differs.stdout)["failures"])


def test_one_object_is_verified_in_pieces_by_ranged_reads_finding_what_a_whole_read_finds(tmp_path, run_cli, raw_server,
                                                                                          s3, object_gets):
    bucket = make_bucket(s3, mode=None)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/")
    server = raw_server({f"/{i}": send_bytes(http_response(bytes([65 + i]) * 4000 * (i + 1))) for i in range(6)})
    assert [row.outcome for row in capture(collection, *(server.url(f"/{i}") for i in range(6)))] == ["ok"] * 6
    [key] = stored_keys(s3, bucket)
    in_pieces = Parallelism(workers=2, pool_from=1 << 62, piece_size=1)  # every member a piece, read in this process
    object_gets.clear()
    report = verify_collection(collection, parallelism=in_pieces)
    assert report.ok, report.failures
    assert len(object_gets) > 2 * 6 and all(ranged for _, ranged in object_gets), object_gets  # a piece, a range
    assert report.as_dict() == verify_collection(collection, workers=1).as_dict()
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original[:-40] + bytes([original[-40] ^ 1]) + original[-39:])
    report = verify_collection(collection, parallelism=in_pieces)
    assert not report.ok and report.as_dict() == verify_collection(collection, workers=1).as_dict()


def test_a_capture_whose_upload_fails_lists_what_it_kept_and_doctor_uploads_it(tmp_path, run_cli, raw_server, s3,
                                                                               monkeypatch):
    """The run's last upload fails (the store went away): the captures are kept in the spool.
    The run says so, and that doctor --fix uploads them: capturing again would capture twice."""
    from archiver.errors import StorageProblem
    from archiver.store.s3 import S3Storage

    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    server = page_server(raw_server)

    def unreachable(self, path, written):
        raise StorageProblem(f"cannot upload {path.name} in {self.location}: 503 Slow Down", "run the command again")
    with monkeypatch.context() as patched:
        patched.setattr(S3Storage, "_upload", unreachable)
        failed = run_cli("capture", "-C", collection.root, server.url("/"))
    assert failed.exit_code == 3, failed.output
    [line] = failed.stderr.splitlines()
    assert "503 Slow Down" in line and "`archiver doctor --fix` uploads it and lists them" in line, line
    assert "run the command again" not in line
    # Not "stored": `captures` lists none until doctor --fix uploads their file.
    assert "Captured before the error below: 1 capture(s); any whose WARC file is not uploaded waits in this " \
        "machine's spool, and `captures` lists it once `archiver doctor --fix` uploads it" in failed.stdout, failed.stdout
    assert json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) == []

    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    listed = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert [c["url"] for c in listed] == [server.url("/")]
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_a_listing_reads_the_catalog_while_the_store_cannot_be_reached(tmp_path, run_cli, raw_server, s3):
    """`captures` and `claims` need no store: while it is unreachable (here, a bucket that went
    away) they list what the catalog holds, with a note; verify, which reads the store, refuses."""
    bucket = make_bucket(s3, "COMPLIANCE", days=2)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    assert run_cli("capture", "-C", collection.root, page_server(raw_server).url("/")).exit_code == 0
    settings = collection.root / "archiver.toml"
    settings.write_text(settings.read_text().replace(f"s3://{bucket}/team/", "s3://no-such-bucket-here/team/"))
    for listing in (["captures"], ["claims"]):
        listed = run_cli(*listing, "-C", collection.root, "--json")
        assert listed.exit_code == 0, listed.output
        assert listed.stderr.startswith("note: not looked for what an interrupted run left: ")
    assert len(json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)) == 1
    assert run_cli("verify", "-C", collection.root).exit_code == 2
