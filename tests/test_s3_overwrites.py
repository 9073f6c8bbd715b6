"""An upload never replaces another object of its name, in any bucket of a real radosgw
(conftest's gateway): as radosgw honours `If-None-Match: *` only on a PutObject in an
unversioned bucket, the tests make the HEAD before an upload miss the object, as a race with
another machine uploading that name would, and look at what the store holds after."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from archiver.errors import StorageProblem
from archiver.store import s3_upload
from tests.conftest import capture
from tests.s3_faults import CONFLICT, RefusingProxy
from tests.test_s3_storage import (capture_refused, make_bucket, page_server, s3_collection, sent_requests,
                                   stored_keys)

MiB = 2**20


def in_parts(monkeypatch, above: int = 5 * MiB) -> None:
    """Files over `above` bytes go up in parts of 5 MiB (S3's least), not in one PutObject."""
    monkeypatch.setattr(s3_upload, "SINGLE_PUT_MAX", above)
    monkeypatch.setattr(s3_upload, "PART_SIZE", 5 * MiB)


def test_a_large_file_goes_up_in_parts_once_and_is_never_overwritten(tmp_path, run_cli, s3, monkeypatch):
    in_parts(monkeypatch)
    bucket = make_bucket(s3, "COMPLIANCE", days=1)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/big/")
    data = os.urandom(12 * 2**20)
    stored = collection.storage.put("large.warc.gz", io.BytesIO(data))
    assert (stored.size, stored.sha256, stored.retention_mode) == (len(data), hashlib.sha256(data).hexdigest(), "COMPLIANCE")
    head = s3.head_object(Bucket=bucket, Key="big/large.warc.gz")
    assert head["ETag"].endswith('-3"')  # three parts
    assert collection.storage.read("large.warc.gz", 7 * 2**20 - 5, 10) == data[7 * 2**20 - 5: 7 * 2**20 + 5]
    with collection.storage.reader("large.warc.gz") as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == stored.sha256
    with pytest.raises(FileExistsError):  # its last byte changed: "x" put there would be it one time in 256
        collection.storage.put("large.warc.gz", io.BytesIO(data[:-1] + bytes([data[-1] ^ 1])))
    assert collection.storage.names() == ["large.warc.gz"]


def head_missing_once(monkeypatch, storage) -> list[str]:
    """The key of every HEAD `storage` sends until one answers, wrongly, that no such object
    exists; from then on its HEADs are the store's own answers."""
    asked: list[str] = []
    honest = storage._head

    def head(key: str):
        asked.append(key)
        return None if len(asked) == 1 else honest(key)

    monkeypatch.setattr(storage, "_head", head)
    return asked


def test_an_upload_over_other_bytes_that_a_wrong_head_let_through_is_refused_and_the_first_kept(
        tmp_path, run_cli, s3, monkeypatch):
    """radosgw ignores If-None-Match in an Object Lock bucket (versioned, as each one is): a
    HEAD answering 404 for an object that exists lets a multipart upload make a second version
    of its name. The upload's versions are looked at after it: the same bytes again are not an
    overwrite; other bytes are refused, naming the first version, which is kept as it was."""
    in_parts(monkeypatch)
    bucket = make_bucket(s3, "COMPLIANCE", days=1)
    storage = s3_collection(tmp_path, run_cli, f"s3://{bucket}/big/").storage
    data = os.urandom(12 * 2**20)
    storage.put("large.warc.gz", io.BytesIO(data))
    [first] = s3.list_object_versions(Bucket=bucket, Prefix="big/large.warc.gz")["Versions"]

    with monkeypatch.context() as wrong:
        asked = head_missing_once(wrong, storage)
        again = storage.put("large.warc.gz", io.BytesIO(data))
    assert asked[0] == "big/large.warc.gz" and again.sha256 == hashlib.sha256(data).hexdigest()
    assert len(s3.list_object_versions(Bucket=bucket, Prefix="big/large.warc.gz")["Versions"]) == 2

    other = data[:-1] + bytes([data[-1] ^ 1])
    with monkeypatch.context() as wrong:
        asked = head_missing_once(wrong, storage)
        with pytest.raises(FileExistsError) as refused:
            storage.put("large.warc.gz", io.BytesIO(other))
    assert asked[0] == "big/large.warc.gz"
    message = str(refused.value)
    assert "large.warc.gz is already stored in" in message and "with other bytes" in message
    assert f"earlier version {first['VersionId']}" in message and "is kept" in message
    assert "\n" not in message
    versions = s3.list_object_versions(Bucket=bucket, Prefix="big/large.warc.gz")["Versions"]
    assert len(versions) == 3
    kept = s3.get_object(Bucket=bucket, Key="big/large.warc.gz", VersionId=first["VersionId"])
    assert kept["Body"].read() == data and kept["ObjectLockMode"] == "COMPLIANCE"
    # Reads of the name return the newest version: what the message says to do makes it the first bytes again.
    assert storage.read("large.warc.gz", len(data) - 1, 1) == other[-1:]
    s3.copy_object(Bucket=bucket, Key="big/large.warc.gz",
                   CopySource={"Bucket": bucket, "Key": "big/large.warc.gz", "VersionId": first["VersionId"]})
    assert storage.read("large.warc.gz", len(data) - 1, 1) == data[-1:]


def test_a_catalogued_file_uploaded_over_past_a_wrong_head_is_refused_and_verify_fails_on_it(
        tmp_path, run_cli, raw_server, s3, monkeypatch):
    """After such a refusal reads of the name return the new bytes, as any S3 client's would:
    verify, holding them to the SHA-256 the catalog recorded of the first, fails loudly."""
    bucket = make_bucket(s3, "COMPLIANCE", days=1)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/")
    capture(collection, page_server(raw_server).url("/"))
    [name] = collection.storage.names()
    original = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
    swapped = original[:-40] + bytes([original[-40] ^ 1]) + original[-39:]  # one bit of a record's bytes
    with monkeypatch.context() as wrong:
        head_missing_once(wrong, collection.storage)
        with pytest.raises(FileExistsError, match="with other bytes"):
            collection.storage.put(name, io.BytesIO(swapped))
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=name)["Versions"]) == 2
    result = run_cli("verify", "-C", collection.root)
    assert result.exit_code == 1, result.output
    assert "WARC file SHA-256" in result.output


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_unversioned_bucket_refuses_a_second_upload_of_other_bytes_that_a_wrong_head_let_through(
        tmp_path, run_cli, s3, monkeypatch):
    """A file of up to 5 GiB goes up in one PutObject `If-None-Match: *`, which radosgw holds to
    in an unversioned bucket: an upload of other bytes under a name a wrong HEAD said was free
    is refused by the store itself, the first bytes kept; the same bytes again are no overwrite."""
    monkeypatch.setattr(s3_upload, "PART_SIZE", 5 * MiB)  # a file of several parts still goes up in one piece
    bucket = make_bucket(s3, mode=None)
    storage = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/").storage
    data = os.urandom(12 * MiB)
    storage.put("a.warc.gz", io.BytesIO(data))
    assert "-" not in s3.head_object(Bucket=bucket, Key="team/a.warc.gz")["ETag"]  # no parts

    with monkeypatch.context() as wrong:
        asked = head_missing_once(wrong, storage)
        again = storage.put("a.warc.gz", io.BytesIO(data))
    assert asked[0] == "team/a.warc.gz" and again.sha256 == _sha256(data)

    other = data[:-1] + bytes([data[-1] ^ 1])
    with monkeypatch.context() as wrong:
        asked = head_missing_once(wrong, storage)
        with pytest.raises(FileExistsError) as refused:
            storage.put("a.warc.gz", io.BytesIO(other))
    assert asked[0] == "team/a.warc.gz"
    assert "a.warc.gz is already stored in" in str(refused.value) and "with other bytes" in str(refused.value)
    assert s3.get_object(Bucket=bucket, Key="team/a.warc.gz")["Body"].read() == data
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_file_going_up_in_parts_to_an_unversioned_bucket_reserves_its_name_first(tmp_path, run_cli, s3,
                                                                                 monkeypatch):
    """radosgw completes a multipart upload over an existing object whatever its conditions: in an
    unversioned bucket, the name is first taken by a conditional PutObject of an empty object
    naming the file's SHA-256, which the parts then replace. A second upload of other bytes
    that a wrong HEAD let through is refused at that first step, the first bytes kept; and a
    name another upload has reserved, its parts still going up, is refused likewise."""
    in_parts(monkeypatch)
    bucket = make_bucket(s3, mode=None)
    storage = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/").storage
    data = os.urandom(12 * MiB)
    storage.put("big.warc.gz", io.BytesIO(data))
    head = s3.head_object(Bucket=bucket, Key="team/big.warc.gz")
    assert head["ETag"].endswith('-3"') and head["Metadata"] == {}  # three parts, over the reservation

    other = data[:-1] + bytes([data[-1] ^ 1])
    with monkeypatch.context() as wrong:
        asked = head_missing_once(wrong, storage)
        with pytest.raises(FileExistsError, match="with other bytes"):
            storage.put("big.warc.gz", io.BytesIO(other))
    assert asked[0] == "team/big.warc.gz"
    assert s3.get_object(Bucket=bucket, Key="team/big.warc.gz")["Body"].read() == data
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")  # not one part of the other bytes sent

    # Another machine's upload of other bytes has reserved this name and is sending its parts.
    s3.put_object(Bucket=bucket, Key="team/taken.warc.gz", Body=b"",
                  Metadata={s3_upload.RESERVED_FOR: _sha256(other)})
    with monkeypatch.context() as wrong:
        head_missing_once(wrong, storage)
        with pytest.raises(FileExistsError) as refused:
            storage.put("taken.warc.gz", io.BytesIO(data))
    message = str(refused.value)
    assert "taken.warc.gz is reserved in" in message and _sha256(other) in message and "\n" not in message
    assert s3.head_object(Bucket=bucket, Key="team/taken.warc.gz")["ContentLength"] == 0
    assert storage.state("taken.warc.gz") is None  # a reservation is no stored file


def test_a_reservation_left_by_an_upload_in_parts_that_failed_is_taken_by_doctor_uploading_its_bytes(
        tmp_path, run_cli, raw_server, s3, gateway, monkeypatch):
    """The store refuses every part of a WARC file going up in parts to an unversioned bucket: the
    capture fails (exit 3), the file kept in the spool, its name left reserved for its bytes. A
    reservation is no stored file: verify says doctor --fix is needed, and doctor uploads the
    file over it."""
    in_parts(monkeypatch, above=0)
    bucket = make_bucket(s3, mode=None)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    capture_refused(run_cli, collection, raw_server, gateway, monkeypatch,
                    lambda method, path: method == "PUT" and "partNumber=" in path)
    [spooled] = (collection.root / "warcs").glob("*.warc.gz.open")
    name = spooled.name[:-len(".open")]
    reservation = s3.head_object(Bucket=bucket, Key=f"team/{name}")
    assert reservation["ContentLength"] == 0
    assert reservation["Metadata"] == {s3_upload.RESERVED_FOR: _sha256(spooled.read_bytes())}

    unfinished = run_cli("verify", "-C", collection.root)
    assert unfinished.exit_code == 1 and "doctor --fix" in unfinished.output, unfinished.output
    kept = spooled.read_bytes()
    fixed = run_cli("doctor", "-C", collection.root, "--fix")
    assert fixed.exit_code == 0, fixed.output
    stored = s3.get_object(Bucket=bucket, Key=f"team/{name}")
    assert stored["Body"].read() == kept and stored["Metadata"] == {}
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_an_upload_whose_answer_was_lost_is_sent_again_and_found_stored_as_it_was_sent(
        tmp_path, run_cli, s3, gateway, monkeypatch):
    """The connection closes before radosgw's answer to a PutObject it carried out: botocore
    sends it again, the file rewound, and radosgw refuses it (412: the name is taken, by the
    first). What the name holds is read back: the file's bytes, so the upload is done."""
    bucket = make_bucket(s3, mode=None)
    first = iter([True])
    proxy = RefusingProxy(gateway.endpoint, lambda method, path: method == "PUT" and
                          path.partition("?")[0].endswith("/a.warc.gz") and next(first, False), lose=True)
    data = os.urandom(3 * MiB)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        puts = sent_requests(monkeypatch, "PutObject", lambda request: request.url.endswith("/a.warc.gz"))
        storage = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/").storage
        stored = storage.put("a.warc.gz", io.BytesIO(data))
    finally:
        proxy.stop()
    assert len(proxy.refused) == 1 and puts.count(True) == 2, (proxy.refused, puts)
    assert stored.sha256 == _sha256(data)
    assert s3.get_object(Bucket=bucket, Key="team/a.warc.gz")["Body"].read() == data


def test_doctor_takes_an_object_as_the_open_files_bytes_only_if_no_version_of_its_name_holds_others(
        tmp_path, run_cli, raw_server, s3, gateway, monkeypatch):
    """doctor --fix closes a file a failed upload left open in the spool by uploading it, or by
    taking the object of its name as an earlier upload of it when that holds its bytes. In a
    versioned bucket (an Object Lock one) the newest version holding them can hide an older one
    of other bytes, as an upload past a wrong HEAD leaves it: doctor reads the name's versions
    as an upload does and refuses, naming that version; the other way round is refused too.
    Nothing is set aside, removed or stored."""
    bucket = make_bucket(s3, "COMPLIANCE", days=1)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    capture_refused(run_cli, collection, raw_server, gateway, monkeypatch,
                    lambda method, path: method == "PUT" and ".warc.gz" in path)
    [spooled] = (collection.root / "warcs").glob("*.warc.gz.open")
    name, kept = spooled.name[:-len(".open")], spooled.read_bytes()
    key, other = f"team/{name}", kept[:-40] + bytes([kept[-40] ^ 1]) + kept[-39:]
    earlier = s3.put_object(Bucket=bucket, Key=key, Body=other)["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body=kept)

    refused = run_cli("doctor", "-C", collection.root, "--fix")
    assert refused.exit_code == 3, refused.output
    assert "hold different records" in refused.stderr and f"earlier version {earlier}" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr

    s3.put_object(Bucket=bucket, Key=key, Body=other)  # the newest version now holds other bytes
    refused = run_cli("doctor", "-C", collection.root, "--fix")
    assert refused.exit_code == 3 and "hold different records" in refused.stderr, refused.output
    assert spooled.read_bytes() == kept and len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 3
    assert run_cli("verify", "-C", collection.root).exit_code == 1  # never told "ok"


def test_an_upload_refused_as_another_of_its_name_is_under_way_says_so_not_other_bytes(
        tmp_path, run_cli, s3, gateway, monkeypatch):
    """AWS answers 409 to a conditional write while another write of the name is under way
    (radosgw never does: a proxy answers it in radosgw's place), and a HEAD then finds nothing
    stored yet. The upload is refused, nothing stored, and told that another upload is under
    way, for doctor --fix to finish later; not that other bytes are stored there."""
    bucket = make_bucket(s3, mode=None)
    proxy = RefusingProxy(gateway.endpoint, lambda method, path: method == "PUT" and "/a.warc.gz" in path,
                          answer=CONFLICT)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        storage = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/").storage
        with pytest.raises(StorageProblem) as refused:
            storage.put("a.warc.gz", io.BytesIO(os.urandom(MiB)))
    finally:
        proxy.stop()
    assert len(proxy.refused) == 1, proxy.refused
    message = str(refused.value)
    assert "another upload of a.warc.gz" in message and "is under way" in message and "doctor --fix" in message
    assert "other bytes" not in message and "\n" not in message
    assert not stored_keys(s3, bucket)


def test_a_reservation_taken_first_by_an_upload_of_the_same_bytes_is_told_as_such(tmp_path, run_cli, s3,
                                                                                  monkeypatch):
    """Two uploads of one file going up in parts race for its name: the other reserves it first
    (a real reservation object on radosgw, naming the file's SHA-256). Ours is refused, nothing
    of it sent, told that an upload of this very file is under way or stopped and that doctor
    --fix takes it over (not that other bytes reserved the name); an upload with no race then does."""
    in_parts(monkeypatch)
    bucket = make_bucket(s3, mode=None)
    storage = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/").storage
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="team/big.warc.gz", Body=b"", Metadata={s3_upload.RESERVED_FOR: _sha256(data)})
    with monkeypatch.context() as wrong:
        asked = head_missing_once(wrong, storage)  # ours looked before the other reserved the name
        with pytest.raises(StorageProblem) as refused:
            storage.put("big.warc.gz", io.BytesIO(data))
    assert asked[0] == "team/big.warc.gz"
    message = str(refused.value)
    assert "reserved" in message and "for these very bytes" in message and "doctor --fix" in message, message
    assert "other bytes" not in message and "\n" not in message
    assert s3.head_object(Bucket=bucket, Key="team/big.warc.gz")["ContentLength"] == 0
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

    assert storage.put("big.warc.gz", io.BytesIO(data)).sha256 == _sha256(data)  # as doctor --fix uploads it
    assert s3.get_object(Bucket=bucket, Key="team/big.warc.gz")["Body"].read() == data
