"""A file stored as an object of an S3 store, never over another object of the same name.

What radosgw 16.2 honours, measured on tests/radosgw.py's cluster: `If-None-Match: *` on a
PutObject in an unversioned or version-suspended bucket (412); not on a PutObject in a
versioned bucket (every Object Lock bucket is one), nor on CompleteMultipartUpload or
CopyObject in any bucket, nor If-Match on CompleteMultipartUpload. AWS honours all of them.
Hence:

- a file of up to 5 GiB (S3's largest PutObject), as every WARC file of the default warc_size
  is, goes up in one conditional PutObject streamed from the file;
- a larger one goes up in parts. In an unversioned bucket its name is reserved first, by a
  conditional PutObject of an empty object whose metadata names the file's SHA-256, so that
  the completion, which radosgw holds to no condition, can only replace that reservation (it
  is sent If-Match the reservation's ETag, which AWS checks). An upload of those bytes takes
  over a reservation left by one that stopped; one of other bytes is refused;
- in a versioned bucket, where no condition holds, the name's other versions are read after
  the upload: one holding other bytes means the upload is refused, naming that version (kept)
  and how to make it current again.

A write the store refuses as the name was taken meanwhile (412, or AWS's 409 while another
write of it is under way) is told by what the name then holds: the file's own bytes (done),
nothing yet or a reservation for these bytes (another upload of the file, under way or
stopped, which doctor --fix finishes later), or other bytes (refused for good).

A HEAD first spares sending a file stored already. Neither radosgw nor AWS checks a whole-file
SHA-256 for us (a multipart object's checksum is made from its parts): what is stored is read
back and hashed."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from archiver.errors import StorageProblem
from archiver.store.s3_client import error_code
from archiver.store.storage import StoredFile

if TYPE_CHECKING:
    from archiver.store.s3 import S3Storage

SINGLE_PUT_MAX = 5 * 2**30  # bytes: S3's largest PutObject (radosgw's rgw_max_put_size by default)
PART_SIZE = 64 * 2**20      # the parts of a larger file, one in memory at a time (S3: at least 5 MiB)
RESERVED_FOR = "archiver-reserved-for"  # a reservation's metadata: the SHA-256 of the bytes it awaits
_TAKEN = ("412", "PreconditionFailed", "409", "ConditionalRequestConflict")  # AWS: 409 for a write racing ours


def upload(storage: S3Storage, path: Path, written: StoredFile, key: str) -> dict:
    """The HEAD of `key` once it holds the file at `path` (`written`), uploaded unless an earlier
    upload stored these very bytes there. FileExistsError if the name holds other bytes, or
    held them before the upload; StorageProblem if what is stored is not what was sent."""
    head = storage._head(key)
    sent = head is None or reserved_for(head) == written.sha256
    if sent:
        sent = _send(storage, path, written, key, head)
        head = storage._head(key)
    if head is None or not _holds(storage, key, head["ContentLength"], head.get("VersionId"), written):
        if sent:
            raise StorageProblem(f"{storage.location}{written.name} does not hold what was uploaded ("
                                 f"{head and head['ContentLength']} bytes stored of {written.size})",
                                 "check the store, then run `archiver doctor`")
        _refuse_taken(storage, written, head)
    # else: sent, or an earlier upload stored these very bytes and stopped before removing the spool copy
    _refuse_over_other_bytes(storage, key, head.get("VersionId"), written)
    return head


def _refuse_taken(storage: S3Storage, written: StoredFile, head: dict | None) -> NoReturn:
    """Why `written` was not uploaded, the name not holding its bytes (`head`, its HEAD now):
    taken by a file or reservation before ours was sent, or while it was (412, or AWS's 409)."""
    reserved = reserved_for(head) if head is not None else None
    if head is None:  # AWS answers 409 to a write while another of the name is under way, not done yet
        raise StorageProblem(f"another upload of {written.name} to {storage.location} is under way: the store "
                             "refused ours, and holds no file of that name yet", "run `archiver doctor --fix` later")
    if reserved == written.sha256:  # reserved first by an upload of these very bytes, racing ours
        raise StorageProblem(f"{written.name} is reserved in {storage.location} for these very bytes: another upload "
                             "of this file is under way, or stopped", "`archiver doctor --fix` takes the reservation over")
    if reserved:
        raise FileExistsError(
            f"{written.name} is reserved in {storage.location} by an upload of other bytes (an empty object, "
            f"metadata {RESERVED_FOR}: {reserved}): if none is under way, delete that object "
            f"and run the command again")
    raise _other_bytes(storage, written)


def _other_bytes(storage: S3Storage, written: StoredFile) -> FileExistsError:
    return FileExistsError(f"{written.name} is already stored in {storage.location}, with other bytes")


def stored_already(storage: S3Storage, key: str, written: StoredFile) -> dict | None:
    """The HEAD of `key` if an earlier upload stored the bytes `written` there (held to the
    name's other versions as an upload is); None if it holds no file (nothing, or a reservation).
    FileExistsError if it holds, or in a versioned bucket held, other bytes."""
    head = storage._head(key)
    if head is None or reserved_for(head):
        return None
    if not _holds(storage, key, head["ContentLength"], head.get("VersionId"), written):
        raise _other_bytes(storage, written)
    _refuse_over_other_bytes(storage, key, head.get("VersionId"), written)
    return head


def reserved_for(head: dict) -> str | None:
    """The SHA-256 of the file whose upload reserved the name, if the object HEAD answered
    for is a reservation; None for a stored file."""
    return head.get("Metadata", {}).get(RESERVED_FOR)


def _holds(storage: S3Storage, key: str, size: int, version: str | None, written: StoredFile) -> bool:
    """Whether that version of `key` (None: its latest) holds the bytes written, read back whole."""
    if size != written.size:
        return False
    digest = hashlib.sha256()
    for chunk in storage._chunks(key, 0, size, version):
        digest.update(chunk)
    return digest.hexdigest() == written.sha256


def _send(storage: S3Storage, path: Path, written: StoredFile, key: str, reservation: dict | None) -> bool:
    """Whether the store took the file; False if it answered that the name was taken meanwhile.
    `reservation`: the HEAD of one made for these bytes, which the upload replaces."""
    from botocore.exceptions import ClientError
    client = storage.client
    try:
        with open(path, "rb") as source:
            if reservation is None and written.size <= SINGLE_PUT_MAX:
                # botocore sends a file body in blocks and rewinds it for a retry; a retry finding
                # the first attempt's object answers 412, and the bytes read back decide.
                client.put_object(Bucket=storage.bucket, Key=key, Body=source, IfNoneMatch="*",
                                  ChecksumAlgorithm="SHA256", ChecksumSHA256=_b64(written.sha256))
                return True
            if reservation is None and not _versioned(storage):
                reservation = client.put_object(Bucket=storage.bucket, Key=key, Body=b"", IfNoneMatch="*",
                                                Metadata={RESERVED_FOR: written.sha256})
            _put_in_parts(storage, source, key, {"IfMatch": reservation["ETag"]} if reservation else {"IfNoneMatch": "*"})
            return True
    except ClientError as exc:
        if error_code(exc) in _TAKEN:
            return False
        raise


def _versioned(storage: S3Storage) -> bool:
    """Whether the bucket keeps every version of a name (a put then never replaces one)."""
    from botocore.exceptions import ClientError
    try:
        status = storage.client.get_bucket_versioning(Bucket=storage.bucket).get("Status")
    except ClientError as exc:
        if error_code(exc) in ("403", "AccessDenied"):
            raise StorageProblem(f"may not read whether bucket {storage.bucket!r} keeps versions, which an upload "
                                 f"over {SINGLE_PUT_MAX // 2**30} GiB needs", "allow s3:GetBucketVersioning to these credentials") from None
        raise
    return status == "Enabled"  # else never set, or Suspended: a put replaces the object of its name


def _put_in_parts(storage: S3Storage, source: BinaryIO, key: str, condition: dict) -> None:
    client, bucket = storage.client, storage.bucket
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    try:
        parts = []
        while part := source.read(PART_SIZE):
            checksum = base64.b64encode(hashlib.sha256(part).digest()).decode()
            done = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1,
                                      Body=part, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum)
            parts.append({"PartNumber": len(parts) + 1, "ETag": done["ETag"], "ChecksumSHA256": checksum})
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
                                         **condition)
    except BaseException:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def _refuse_over_other_bytes(storage: S3Storage, key: str, latest: str | None, written: StoredFile) -> None:
    """FileExistsError if a version of `key` other than `latest` (the one read back) holds other
    bytes than `written`. A HEAD answering 404 for an object that exists would otherwise let an
    upload make a new version over it unseen: radosgw ignores If-None-Match in a versioned
    bucket, as every Object Lock bucket is. The earlier bytes are kept, but reads of the name
    now return the new ones, which differ from the SHA-256 a catalog recorded: verify fails."""
    if latest is None:  # an unversioned bucket (HEAD names no version): a key holds one object
        return
    with storage._failures(f"list the versions of {written.name}"):  # AWS: s3:ListBucketVersions
        pages = storage.client.get_paginator("list_object_versions").paginate(Bucket=storage.bucket, Prefix=key)
        others = [item for page in pages for item in page.get("Versions", [])
                  if item["Key"] == key and item["VersionId"] != latest]
    for other in sorted(others, key=lambda item: item["LastModified"]):
        if not _holds(storage, key, other["Size"], other["VersionId"], written):
            earlier, bucket = other["VersionId"], storage.bucket
            raise FileExistsError(
                f"{written.name} is already stored in {storage.location}, with other bytes: its earlier version "
                f"{earlier} ({other['LastModified']:%Y-%m-%d %H:%M:%S %Z}) is kept, under version {latest} with "
                f"these bytes, which reads of {written.name} now return; to make the earlier one current again: "
                f"`aws s3api copy-object --bucket {bucket} --key {key} "
                f"--copy-source '{bucket}/{key}?versionId={earlier}'`")


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
