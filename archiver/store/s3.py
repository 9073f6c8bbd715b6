"""WARC files in an S3-compatible object store (AWS S3, Ceph radosgw, MinIO…), through boto3.

A file is written in the collection's local spool (its warcs/ folder: `.open`, fsynced, as
a local collection does) and uploaded when it is published, never over an existing object
of its name (s3_upload.py: how, on a store that honours conditions only on some requests),
its SHA-256 computed here and sent as the object's checksum (which an Object Lock bucket
requires), then its stored size and SHA-256 read back; only then is the spool copy removed.
Reads are ranged GETs (s3_reader.py), so reading one record never fetches a whole file."""

from __future__ import annotations

import base64
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from archiver.errors import StorageProblem, UsageProblem
from archiver.store.crash_points import AFTER_PUBLISH, AFTER_UPLOAD, crash_point
from archiver.store.durable import fsync_dir, replacing
from archiver.store.s3_client import error_code, make_client, no_answer, timed_out
from archiver.store.s3_reader import READ_CHUNK, ranged_reader
from archiver.store.s3_upload import reserved_for, stored_already, upload
from archiver.store.storage import LocalFolder, LocalNewFile, NewFile, ObjectState, StoredFile
from archiver.store.storage_settings import StorageSettings

_COPY_SIZE = 2**20
# The object at a collection's prefix saying whose store it is, stored by `init` before anything
# else: a collection that has stored nothing yet still holds its prefix, for a later `init` of
# the same, an enclosing or a nested prefix to be refused (taken.py).
COLLECTION_MARKER = "archiver-collection.json"


class S3Storage:
    """Published files are objects `<prefix><name>` of one bucket; unfinished ones stay in the
    local spool, where an interrupted run leaves them for `doctor` as in a local collection."""

    def __init__(self, settings: StorageSettings, spool: Path) -> None:
        self.settings = settings
        self.bucket, self.prefix = settings.bucket, settings.prefix
        self.spool = LocalFolder(spool)
        self.folder = spool  # where its files are written on this machine, until uploaded
        self.location = settings.url
        self._s3 = None

    def __getstate__(self) -> dict:  # verify's reader processes each make their own client
        return {**self.__dict__, "_s3": None}

    @property
    def client(self):
        if self._s3 is None:
            self._s3 = make_client(self.settings)
        return self._s3

    # -- set-up ---------------------------------------------------------------------------

    def check(self) -> None:
        """The bucket is reachable with these credentials, which may read what an upload reads
        of it, and locked as required; else one UsageProblem naming what is wrong and how to fix it."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
        client = self.client
        endpoint = client.meta.endpoint_url
        try:
            client.head_bucket(Bucket=self.bucket)
            self._check_version_reads()
        except NoCredentialsError:
            raise UsageProblem(f"no AWS credentials for the S3 store of {self.location}",
                               "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE") from None
        except ClientError as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket"):
                raise UsageProblem(f"the S3 store at {endpoint} has no bucket {self.bucket!r}",
                                   "create it (with Object Lock) or fix url in [storage] of archiver.toml") from None
            if code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                raise UsageProblem(f"the S3 store at {endpoint} refused these credentials for bucket {self.bucket!r} ({code})",
                                   "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and the bucket's policy") from None
            raise UsageProblem(f"the S3 store at {endpoint} answered {code} for bucket {self.bucket!r}",
                               "check [storage] in archiver.toml") from None
        except BotoCoreError as exc:
            if timed_out(exc):
                raise UsageProblem(*no_answer(self.settings, endpoint)) from None
            raise UsageProblem(f"cannot reach the S3 store at {endpoint} ({exc})",
                               "check endpoint in [storage] of archiver.toml, or AWS_ENDPOINT_URL") from None
        if self.settings.require_retention:
            self._check_retention()

    def _check_version_reads(self) -> None:
        """An upload asks whether the bucket keeps versions and lists its name's versions
        (s3_upload.py): credentials refused either are refused here, not at an upload whose file
        then waits in the spool."""
        from botocore.exceptions import ClientError
        bucket = repr(self.bucket)
        asks = ((f"read whether bucket {bucket} keeps versions", "s3:GetBucketVersioning",
                 lambda: self.client.get_bucket_versioning(Bucket=self.bucket)),
                (f"list the versions of objects in bucket {bucket}", "s3:ListBucketVersions",
                 lambda: self.client.list_object_versions(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)))
        for what, permission, ask in asks:
            try:
                ask()
            except ClientError as exc:
                if error_code(exc) in ("403", "AccessDenied"):
                    raise UsageProblem(f"these credentials may not {what}, which uploads need",
                                       f"allow {permission} to them on that bucket") from None
                raise

    def _check_retention(self) -> None:
        from botocore.exceptions import ClientError
        wanted, days_wanted = self.settings.require_retention, self.settings.min_retention_days
        fix = (f"use a bucket made with Object Lock and a default retention of {wanted} mode for at least "
               f"{days_wanted} days, or change require_retention in archiver.toml")
        try:
            lock = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            if error_code(exc) in ("403", "AccessDenied"):
                raise UsageProblem(f"may not read the Object Lock settings of bucket {self.bucket!r}",
                                   "allow s3:GetBucketObjectLockConfiguration to these credentials") from None
            lock = {}
        default = lock.get("Rule", {}).get("DefaultRetention", {}) if lock.get("ObjectLockEnabled") == "Enabled" else {}
        if not default:
            raise UsageProblem(f"bucket {self.bucket!r} has no Object Lock default retention", fix)
        if default.get("Mode") != wanted:
            raise UsageProblem(f"bucket {self.bucket!r} locks objects in {default.get('Mode')} mode, "
                               f"which its owner can lift, not {wanted}", fix)
        days = default.get("Days") or 365 * default.get("Years", 0)
        if days < days_wanted:
            raise UsageProblem(f"bucket {self.bucket!r} locks objects for {days} days, "
                               f"under min_retention_days = {days_wanted}", fix)

    def put_collection_marker(self, about: bytes) -> None:
        """Store COLLECTION_MARKER at the prefix, holding `about`, never over another object: the
        first object a collection stores, so credentials that may store none are refused here."""
        from botocore.exceptions import ClientError
        with self._failures(f"store {COLLECTION_MARKER}"):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + COLLECTION_MARKER, Body=about,
                                       IfNoneMatch="*", ChecksumAlgorithm="SHA256",
                                       ChecksumSHA256=base64.b64encode(hashlib.sha256(about).digest()).decode())
            except ClientError as exc:
                if error_code(exc) in ("403", "AccessDenied"):
                    raise UsageProblem(f"these credentials may not store objects in bucket {self.bucket!r}, which "
                                       "uploads need", "allow s3:PutObject to them on that bucket") from None
                raise

    def collection_marker(self, prefix: str) -> bytes | None:
        """What the COLLECTION_MARKER at `prefix` of the bucket (this one's or another) holds; None if there
        is none, or if these credentials may not read it (the store keeps that prefix from them)."""
        from botocore.exceptions import ClientError
        with self._failures(f"look for {COLLECTION_MARKER}"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=prefix + COLLECTION_MARKER)["Body"].read()
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
                    return None
                raise

    # -- writes ---------------------------------------------------------------------------

    def create(self, name: str) -> NewFile:
        return self.spool.create(name)

    def publish(self, file) -> StoredFile:
        written = file.close()
        try:
            uploaded = self._upload(file.path, written)
        except StorageProblem as problem:  # the file stays in the spool: a capture made again would be a second
            raise StorageProblem(problem.message, f"{file.name} stays in warcs/ (.open) with the captures in it: once "
                                 "the store is reachable, `archiver doctor --fix` uploads it and lists them") from problem
        crash_point(AFTER_UPLOAD)
        file.path.unlink()
        fsync_dir(file.path.parent)
        crash_point(AFTER_PUBLISH)
        return uploaded

    def put(self, name: str, source: BinaryIO) -> StoredFile:
        # A hidden spool name: an unfinished file of the same name may be what is being saved.
        new = LocalNewFile(name, self.spool.folder / f".{name}.{os.getpid()}.put")
        try:
            while chunk := source.read(_COPY_SIZE):
                new.write(chunk)
            return self._upload(new.path, new.close())
        finally:
            new.path.unlink(missing_ok=True)

    def _upload(self, path: Path, written: StoredFile, key: str | None = None) -> StoredFile:
        with self._failures(f"upload {written.name}"):
            head = upload(self, path, written, key or self._key(written.name))
        mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        wanted = self.settings.require_retention
        if wanted and mode != wanted:
            raise StorageProblem(f"{self.location}{written.name} was stored without {wanted} retention ({mode})",
                                 "check the bucket's Object Lock default retention")
        return StoredFile(written.name, written.size, written.sha256, mode, until.isoformat() if until else None)

    def already_stored(self, written: StoredFile) -> StoredFile | None:
        with self._failures(f"look up {written.name}"):
            head = stored_already(self, self._key(written.name), written)
        if head is None:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        return StoredFile(written.name, written.size, written.sha256, head.get("ObjectLockMode"),
                          until.isoformat() if until else None)

    # -- reads ----------------------------------------------------------------------------

    def reader(self, name: str) -> BinaryIO:
        return ranged_reader(self, name)

    def read(self, name: str, offset: int, length: int) -> bytes:
        with self._failures(f"read {name}"):
            return b"".join(self._chunks(self._key(name), offset, length))

    def names(self) -> list[str]:
        return [name for name in self.object_names() if "/" not in name and name != COLLECTION_MARKER]

    def object_names(self) -> list[str]:
        """Every object under the prefix, named relative to it, sorted: the files names() lists
        and, at any depth below, objects archiver never writes (put there by someone else)."""
        with self._failures("list the bucket"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            keys = [item["Key"][len(self.prefix):] for page in pages for item in page.get("Contents", [])]
        return sorted(name for name in keys if name)

    def size(self, name: str) -> int | None:
        state = self.state(name)
        return state.size if state else None

    def state(self, name: str) -> ObjectState | None:
        """One HEAD: the object's size, and the Object Lock mode and retain-until date it holds now;
        None for no object, or for the reservation of an upload not done (s3_upload.py)."""
        with self._failures(f"look up {name}"):
            head = self._head(self._key(name))
        if head is None or reserved_for(head):
            return None
        until = head.get("ObjectLockRetainUntilDate")
        return ObjectState(head["ContentLength"], head.get("ObjectLockMode"), until.isoformat() if until else None)

    def first_read(self, name: str, offset: int, length: int) -> tuple[bytes, int]:
        """Up to `length` bytes from `offset` (READ_CHUNK at most) and the object's size, from one
        ranged GET (its Content-Range); FileNotFoundError when there is no such object."""
        from botocore.exceptions import ClientError
        with self._failures(f"read {name}"):
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=self._key(name),
                                             Range=f"bytes={offset}-{offset + min(length, READ_CHUNK) - 1}")
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    raise FileNotFoundError(f"{self.location}{name}") from None
                if error_code(exc) != "InvalidRange":
                    raise
                size = self.size(name)  # asked from its end or past it (an empty object too): nothing to read
                if size is None:
                    raise FileNotFoundError(f"{self.location}{name}") from None
                return b"", size
            data = got["Body"].read()
        total = (got.get("ContentRange") or "").rpartition("/")[2]
        return data, int(total) if total.isdigit() else got["ContentLength"]

    def object_url(self, name: str) -> str:
        """The s3:// URL of an object under the prefix (one of object_names()), to name it in findings."""
        return f"s3://{self.bucket}/{self.prefix}{name}"

    # -- the folders every machine's copy is fetched from (shared_files.py) --------------

    def put_shared(self, path: str, local: Path) -> StoredFile:
        """Store the file `local` as the object FOLDER/NAME (`path`) under the prefix, as a WARC
        file is stored; a file stored there already with the same bytes is left as it is."""
        with open(local, "rb") as source:
            sha256 = hashlib.file_digest(source, "sha256").hexdigest()
        return self._upload(local, StoredFile(path, local.stat().st_size, sha256), self._shared_key(path))

    def get_shared(self, path: str, local: Path) -> None:
        """The object FOLDER/NAME copied to the file `local`, which takes its name once whole and synced."""
        key = self._shared_key(path)
        with self._failures(f"read {path}"):
            head = self._head(key)
            if head is None:
                raise FileNotFoundError(f"{self.location}{path}")
            with replacing(local) as out:
                for chunk in self._chunks(key, 0, head["ContentLength"]):
                    out.write(chunk)

    def shared_names(self, folder: str) -> list[str]:
        """The names of the objects stored in `folder`, sorted."""
        prefix = self._shared_key(f"{folder}/-")[:-1]
        with self._failures(f"list {folder}/"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return sorted(item["Key"][len(prefix):] for page in pages for item in page.get("Contents", []))

    # -- unfinished files stay in the spool -------------------------------------------------

    def unfinished(self) -> list[str]:
        return self.spool.unfinished()

    def unfinished_size(self, name: str) -> int:
        return self.spool.unfinished_size(name)

    def unfinished_reader(self, name: str) -> BinaryIO:
        return self.spool.unfinished_reader(name)

    def discard_unfinished(self, name: str) -> None:
        self.spool.discard_unfinished(name)

    def set_aside_unfinished(self, name: str) -> str:
        return self.spool.set_aside_unfinished(name)

    # -- helpers --------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        self.spool._path(name)  # the same names as a local folder takes: never a path
        return self.prefix + name

    def _shared_key(self, path: str) -> str:
        folder, _, name = path.partition("/")
        self.spool._path(folder)  # FOLDER/NAME, each a plain name: never a path
        self.spool._path(name)
        return f"{self.prefix}{folder}/{name}"

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _chunks(self, key: str, offset: int, length: int, version: str | None = None) -> Iterator[bytes]:
        """Bytes offset..offset+length of an object (of that version of it, if given; fewer past its
        end), READ_CHUNK per GET."""
        from botocore.exceptions import ClientError
        end = offset + length
        pinned = {"VersionId": version} if version else {}
        while offset < end:
            last = min(end, offset + READ_CHUNK) - 1
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{last}",
                                              **pinned)["Body"]
            except ClientError as exc:
                if error_code(exc) == "InvalidRange":  # asked from past the end
                    return
                raise
            chunk = body.read()
            if not chunk:
                return
            yield chunk
            offset += len(chunk)

    @contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        """An S3 error as a StorageProblem in one line (a FileExistsError passes as it is)."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            yield
        except ClientError as exc:
            raise StorageProblem(f"cannot {what} in {self.location}: {error_code(exc)} {exc.response['Error'].get('Message') or ''}".rstrip(),
                                 "check the S3 store and its credentials, then run the command again") from None
        except BotoCoreError as exc:
            if timed_out(exc):
                message, fix = no_answer(self.settings, self.client.meta.endpoint_url)
                raise StorageProblem(f"cannot {what} in {self.location}: {message}", fix) from None
            raise StorageProblem(f"cannot {what} in {self.location}: {exc}",
                                 "check that the S3 store is reachable, then run the command again") from None
