"""Worker keys: on a collection whose catalog is shared, each machine that writes to it signs
with its own Ed25519 key, made on that machine and announced in the custody log by the
collection's key, so that one stolen machine's key is revoked alone while the others go on."""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from cryptography.exceptions import UnsupportedAlgorithm

from archiver.errors import ArchiverError, UsageProblem
from archiver.evidence.custody import verify_entry
from archiver.evidence.key_status import WORKER_KEY_ANNOUNCED, KeyStatus, key_statuses_in
from archiver.evidence.keys import custody_log, key_statuses, open_signing_key, refuse_out_of_service
from archiver.evidence.signing import PublicKey, SigningKey, generate_key, grouped, load_key
from archiver.store.collection import Collection

WORKER_KEY_NAME = "worker.ed25519.pem"


def worker_key_path(collection: Collection) -> Path:
    """This machine's worker key: in its own folder of the collection, never shared."""
    return collection.root / WORKER_KEY_NAME


def this_machines_worker_key(collection: Collection) -> SigningKey | None:
    """The worker key this machine's folder holds, or None: none made yet, or the file is not
    a key at all (nothing signs with it)."""
    path = worker_key_path(collection)
    try:
        return load_key(path, None) if path.exists() else None
    except ArchiverError:
        return None


def worker_signing_key(collection: Collection, machine: str | None = None, option: Path | None = None) -> SigningKey:
    """This machine's worker key, for everything a worker signs (custody entries, attestations).

    Made and announced on first use: the announcement (the key's fingerprint, public key and
    `machine`, default the host name) is signed by the collection's key, which must then be at
    hand without asking (unencrypted, or its passphrase in $ARCHIVER_PASSPHRASE; --key/`option`
    or $ARCHIVER_KEY where it is not in the config folder). Refused on a local collection,
    whose one key signs everything, and once the key is revoked."""
    if not collection.config.catalog_url:
        raise UsageProblem("worker keys are for a collection whose catalog is on PostgreSQL",
                           "sign with the collection's key (`archiver keys show` names it)")
    path = worker_key_path(collection)
    with _held(collection.tmp / "worker-key.lock"):  # processes starting at once on one machine make one key
        key = load_key(path, None) if path.exists() else generate_key(path, None)
        status = key_statuses(collection).get(key.fingerprint)
        if status is not None and status.revoked_now():  # a revocation dated later leaves it in service until then
            raise UsageProblem(f"this machine's worker key {grouped(key.fingerprint)} is revoked "
                               f"(from {status.revoked_from})",
                               f"move {path} aside and run again: a new key is made and announced")
        if status is None or status.machine is None:
            announcer = open_signing_key(collection, option, os.environ.get("ARCHIVER_PASSPHRASE", "").encode() or None)
            refuse_out_of_service(collection, announcer)
            custody_log(collection, announcer).append(WORKER_KEY_ANNOUNCED, {
                "fingerprint": key.fingerprint, "machine": machine or socket.gethostname(),
                "public_key": key.public.pem().decode("ascii")})
    return key


def announced_public_key(subject: dict) -> PublicKey | None:
    """The public key a worker key announcement carries, or None when it is not the key its
    fingerprint names (an altered or malformed announcement)."""
    try:
        public = PublicKey.from_pem(str(subject.get("public_key")).encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm):
        return None
    return public if public.fingerprint == subject.get("fingerprint") else None


def vouched_worker_keys(entries: Iterable[dict], collection_keys: dict[str, PublicKey]
                        ) -> tuple[dict[str, PublicKey], dict[str, KeyStatus]]:
    """Of custody entries read alone (a bundle carries only some of the chain), the worker keys
    that an announcement signed by one of `collection_keys` vouches for, and what the entries
    those keys signed say of every key (revocations): a worker key's own word counts for nothing."""
    vouched = [entry for entry in entries if verify_entry(entry, collection_keys) is None]
    workers = {}
    for entry in vouched:
        subject = entry.get("subject") if isinstance(entry.get("subject"), dict) else {}
        if entry.get("event") == WORKER_KEY_ANNOUNCED and (public := announced_public_key(subject)) is not None:
            workers[public.fingerprint] = public
    return workers, key_statuses_in(vouched)


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """An exclusive lock on a file, held for a `with` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
