"""A collection's keys over time: which private key signs, and what the custody log says
about each key (announced, rotated out, revoked from when)."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archiver.store.collection import Collection
from archiver.store.durable import atomic_write, fsync_dir
from archiver.store.storage_settings import StorageSettings
from archiver.errors import ArchiverError, UsageProblem
from archiver.evidence.custody import LOG_NAME, CustodyLog, parse_entry, read_entries
from archiver.evidence.key_status import KeyStatus, key_event_entries, key_statuses_in
from archiver.evidence.key_watch import key_watch
from archiver.evidence.signing import (PublicKey, SigningKey, collection_public_keys, default_key_path, generate_key, grouped,
                              load_key, publish_public_key, retire_key_file, retired_key_files)


def key_path(collection: Collection, option: Path | None = None) -> Path:
    """--key, else $ARCHIVER_KEY, else the collection's key in the user's config folder."""
    return Path(option or os.environ.get("ARCHIVER_KEY") or default_key_path(collection.config.id))


_ANNOUNCING = {"key generated": "fingerprint", "key adopted": "fingerprint", "key rotated": "to"}


def custody_log(collection: Collection, key: SigningKey, watched: bool = True) -> CustodyLog:
    """The log to append to: custody.jsonl, or the chain in a shared collection's catalog. Each
    append looks at `key` again under the log's lock and is refused once the log says it is
    revoked or rotated out (key_watch.py), so that no entry it signs follows the key event that
    took it out of service, which verify fails; not `watched`: a revocation, which a collection
    key signs whether revoked or not."""
    shared = functools.partial(_append_shared, collection) if collection.config.catalog_url else None
    log = CustodyLog(collection.root / LOG_NAME, collection.config.operator, key, shared)
    if watched:
        log.before_signing = key_watch(collection, key).check
    return log


def _append_shared(collection: Collection, extend: Callable[[str | None], list[tuple[int, str]]]) -> None:
    with collection:
        collection.catalog.append_custody(extend)


def custody_lines(collection: Collection) -> Iterator[bytes]:
    """The custody log's lines as stored: the database's chain for a shared collection, else custody.jsonl."""
    if collection.config.catalog_url:
        with collection:
            lines = list(collection.catalog.custody_lines())
        yield from (line.encode("utf-8") for line in lines)
    else:
        yield from (line for _, line in read_entries(collection.root / LOG_NAME))


def export_custody(collection: Collection) -> Path:
    """custody.jsonl as verify, `log` and bundles read it. A shared collection's is written
    afresh from the database's chain, with the public key file of each collection key the
    chain announces (a machine's folder may hold only archiver.toml); a local collection's log
    is the file itself."""
    path = collection.root / LOG_NAME
    if collection.config.catalog_url:
        lines = list(custody_lines(collection))
        atomic_write(path, b"".join(line + b"\n" for line in lines))
        _publish_announced_keys(collection, lines)
    return path


def published_keys(collection: Collection) -> dict[str, PublicKey]:
    """The collection's public keys by fingerprint: on a shared collection, each the custody
    chain announces is written into this folder's keys/ first (a machine's folder may hold none)."""
    if collection.config.catalog_url:
        _publish_announced_keys(collection, custody_lines(collection))
    return collection_public_keys(collection.root / "keys")


def _publish_announced_keys(collection: Collection, lines: Iterable[bytes]) -> None:
    """Write keys/ the public key file of each collection key the custody lines announce."""
    for entry in filter(None, map(parse_entry, lines)):
        subject = entry.get("subject") if isinstance(entry.get("subject"), dict) else {}
        pem = subject.get("public_key")
        if entry.get("event") in _ANNOUNCING and isinstance(pem, str):
            try:
                public = PublicKey.from_pem(pem.encode("utf-8"))
            except (ValueError, UnsupportedAlgorithm):
                continue  # verify reports the entry; there is no key to publish
            publish_public_key(collection.root / "keys", public)


def append_unattended(collection: Collection, option: Path | None, event: str, subject: dict) -> str | None:
    """Append an entry signed by the collection's key when that key is at hand without asking
    (unencrypted, or its passphrase in $ARCHIVER_PASSPHRASE) and the log can be written; else
    say why not. For commands that only read, which need neither."""
    if not key_path(collection, option).exists():
        return "the signing key is not available here"
    try:
        key = open_signing_key(collection, option, os.environ.get("ARCHIVER_PASSPHRASE", "").encode() or None)
    except ArchiverError:
        return "the signing key is not available here"
    try:
        refuse_out_of_service(collection, key)
        custody_log(collection, key).append(event, subject)  # refused too once revoked or rotated out meanwhile
    except UsageProblem as refused:
        return str(refused)
    except OSError as exc:
        return f"the log cannot be written ({exc.strerror or exc})"
    return None


def open_signing_key(collection: Collection, option: Path | None, passphrase: bytes | None) -> SigningKey:
    """The collection's private key, checked against the public keys it has published."""
    path = key_path(collection, option)
    finish_rotation(collection, path)
    if not path.exists() and any(status.machine is None for status in key_statuses(collection).values()):
        # Not `keys generate`: a second key, announced by itself, is one verify cannot tie to this collection's.
        raise UsageProblem(f"the collection's signing key is not on this machine (looked for {path})",
                           "copy its key file there, point --key/$ARCHIVER_KEY at it, or run this where the key is "
                           "(on a shared collection, the machine that ran `archiver init`)")
    key = load_key(path, passphrase)
    if key.fingerprint not in collection_public_keys(collection.root / "keys"):
        # A machine whose folder holds only archiver.toml, or a rotation that stopped once announced.
        _publish_announced_keys(collection, custody_lines(collection))
    if key.fingerprint not in collection_public_keys(collection.root / "keys"):
        raise UsageProblem(f"the key {key.path} is not one of this collection's keys", _foreign_key_hint(collection, path))
    return key


def _foreign_key_hint(collection: Collection, path: Path) -> str:
    """What to do about a key file not the collection's: another collection sharing the file may
    have rotated it, keeping this one's key beside it as retired, which adopting would not find."""
    in_service = {status.fingerprint[:16] for status in key_statuses(collection).values()
                  if status.machine is None and status.in_service()}
    ours = [file for short, file in sorted(retired_key_files(path).items()) if short in in_service]
    if ours:
        return f"a collection sharing that file rotated its key; this collection's is kept at {ours[0]}: use --key {ours[0]}"
    return "use the collection's key, or adopt this one with `archiver keys generate --key FILE`"


def refuse_out_of_service(collection: Collection, key: SigningKey, revoked_ok: bool = False) -> None:
    """Refuse a key the custody log has revoked (from a moment now past: a revocation dated
    later leaves it in service until then) or rotated out: what it signed from now on would
    fail verification. revoked_ok for the commands that replace or revoke keys."""
    status = key_statuses(collection).get(key.fingerprint)
    if status is None or status.in_service():
        return
    if status.revoked_now() and not revoked_ok:
        raise UsageProblem(f"the collection's key {grouped(key.fingerprint)} is revoked (from {status.revoked_from})",
                           "rotate first: archiver keys rotate")
    if status.rotated_out_at is not None:
        raise UsageProblem(f"the key {key.path} ({grouped(key.fingerprint)}) was rotated out at {status.rotated_out_at}",
                           "sign with the collection's current key (`archiver keys show` names its file)")


def create_signing_key(collection: Collection, option: Path | None, passphrase: bytes | None) -> tuple[SigningKey, bool]:
    """The key at the key path (made if absent), published in keys/ and announced in the
    custody log. Returns the key and whether it was newly generated."""
    path = key_path(collection, option)
    created = not path.exists()
    key = generate_key(path, passphrase) if created else load_key(path, passphrase)
    publish_public_key(collection.root / "keys", key.public)
    if created or key.fingerprint not in key_statuses(collection):  # announced once: again would say nothing new
        custody_log(collection, key).append("key generated" if created else "key adopted",
                                            {"fingerprint": key.fingerprint, "public_key": key.public.pem().decode()})
    return key, created


def create_collection(folder: Path, option: Path | None, passphrase: bytes | None, name: str | None = None,
                      operator: str | None = None, catalog_url: str | None = None,
                      storage: StorageSettings | None = None) -> tuple[Collection, SigningKey, bool]:
    """A new collection in `folder` with its signing key (see create_signing_key), its creation
    announced in the custody log. Returns the collection, its key and whether the key is new.
    A key given that exists is read first: refused (encrypted with no passphrase, not a key),
    nothing is made, no folder, catalog table or claimed bucket prefix."""
    if (given := option or os.environ.get("ARCHIVER_KEY")) and Path(given).exists():
        load_key(Path(given), passphrase)
    collection = Collection.init(folder, name=name, operator=operator, catalog_url=catalog_url,
                                 storage=storage)
    key, created = create_signing_key(collection, option, passphrase)
    custody_log(collection, key).append("collection created", {"id": collection.config.id, "name": collection.config.name,
                                                                "operator": collection.config.operator})
    return collection, key, created


def rotate_key(collection: Collection, old: SigningKey, passphrase: bytes | None) -> SigningKey:
    """A new key replaces `old` at its path; the custody log announces it, signed by the old key
    (by the new key itself when the old one is revoked), and then the new key's own P-384 key
    for bundles' datapackage signatures (wacz_signing_key): the old one's retires with it.
    The new key is made beside the old one and takes its place only once announced, so a
    refusal on the way (a read-only collection, a full disk) leaves the old key in use, and a
    rotation stopped after it is finished when the key is next opened (finish_rotation)."""
    with collection.in_use(), key_folder_held(old.path):  # one process changes the key at a time
        status = key_statuses(collection).get(old.fingerprint)
        if status is not None and status.rotated_out_at is not None:  # by a rotation it waited for
            raise UsageProblem(f"the key {grouped(old.fingerprint)} was rotated out meanwhile, by another process",
                               "see `archiver keys show`")
        new = _rotate_key(collection, old, passphrase)
        wacz_signing_key(collection, new)
        return new


def _rotate_key(collection: Collection, old: SigningKey, passphrase: bytes | None) -> SigningKey:
    # A key revoked from a later moment is still trusted now: its word announces its successor.
    revoked = (status := key_statuses(collection).get(old.fingerprint)) is not None and status.revoked_now()
    private = Ed25519PrivateKey.generate()
    staged = _staged_key_path(old.path, SigningKey(private, old.path).fingerprint)
    new = generate_key(staged, passphrase, private)
    try:
        if revoked:
            # A revoked key's word no longer counts: the new key announces itself, as a first key does.
            custody_log(collection, new).append("key generated", {"fingerprint": new.fingerprint, "replaces": old.fingerprint,
                                                                  "public_key": new.public.pem().decode()})
        else:
            custody_log(collection, old).append("key rotated", {"from": old.fingerprint, "to": new.fingerprint,
                                                                  "public_key": new.public.pem().decode()})
    except BaseException:
        staged.unlink()  # never announced, never used to sign: not evidence of anything
        raise
    _take_place(staged, old.path, old.fingerprint)
    # Only now: a key file in keys/ that no entry announces fails verification (and one the
    # log announces but keys/ lacks is written there when the key is next opened).
    publish_public_key(collection.root / "keys", new.public)
    return SigningKey(new.private, old.path)


def _staged_key_path(path: Path, fingerprint: str) -> Path:
    """Where a rotation keeps the new key (of `fingerprint`) until the custody log announces it
    and it takes the place of the key at `path`."""
    return path.with_name(f".{path.name}.{fingerprint}.rotating")


def finish_rotation(collection: Collection, path: Path) -> None:
    """Put in place a new key that the custody log announces as replacing the key at `path`,
    left staged beside it by a rotation that stopped once it was announced (killed, or refused
    a rename): else every command would refuse the rotated-out key, the new one out of sight.
    A staged key no entry announces is left alone: a rotation under way may announce it next."""
    prefix, suffix = f".{path.name}.", ".rotating"
    staged = {file.name[len(prefix):-len(suffix)]: file
              for file in path.parent.glob(f"{glob.escape(prefix)}*{suffix}")} if path.parent.is_dir() else {}
    if not staged:
        return
    replaced = {}  # new key's fingerprint → the one it replaces
    for entry in key_event_entries(custody_lines(collection)):
        subject = entry.get("subject") if isinstance(entry.get("subject"), dict) else {}
        if entry.get("event") == "key rotated" and isinstance(subject.get("to"), str):
            replaced[subject["to"]] = subject.get("from")
        elif entry.get("event") == "key generated" and isinstance(subject.get("replaces"), str):
            replaced[subject.get("fingerprint")] = subject["replaces"]
    with key_folder_held(path):  # one process finishes a rotation; any other then finds it done
        for fingerprint, file in staged.items():
            if isinstance(replaced.get(fingerprint), str):
                _take_place(file, path, replaced[fingerprint])


@contextlib.contextmanager
def key_folder_held(path: Path) -> Iterator[None]:
    """The folder of the key at `path`, held alone: a rotation, from the check that its key is
    still in service to the new key in its place, is one process's at a time (two at once each
    announced a successor, and the later retired the other's new key over the old private key)."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


def _take_place(staged: Path, path: Path, old_fingerprint: str) -> None:
    """The announced key at `staged` replaces the key at `path`, which is kept as retired (the
    caller holds the key's folder: key_folder_held)."""
    if not staged.exists():
        return
    if path.exists():
        retire_key_file(path, old_fingerprint)
    os.replace(staged, path)
    fsync_dir(path.parent)


def revoke_key(collection: Collection, signer: SigningKey, fingerprint: str, revoked_from: str, reason: str) -> None:
    """From `revoked_from` on, nothing signed by `fingerprint` is to be trusted."""
    with collection.in_use():  # not while `doctor --fix` or `migrate` holds the collection alone
        custody_log(collection, signer, watched=False).append("key revoked", {
            "fingerprint": fingerprint, "revoked_from": revoked_from, "reason": reason})


def key_statuses(collection: Collection) -> dict[str, KeyStatus]:
    """What the custody log says about each key. The log's own signatures are checked by verify."""
    return key_statuses_in(key_event_entries(custody_lines(collection)))


def wacz_signing_key(collection: Collection, key: SigningKey) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """The ECDSA P-384 key that signs a WACZ's datapackage digest, the one signature form
    ReplayWeb.page accepts. It lives and dies with the Ed25519 key `key`: made beside it on
    first use (mode 0600, its file named by `key`'s fingerprint), published in keys/, and
    announced in the custody log under `key`, which vouches for it. A rotation's new key gets
    a P-384 key of its own, so one a revoked key announced (stolen with it) signs no later bundle."""
    path = _wacz_key_path(collection, key)
    if path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        private = ec.generate_private_key(ec.SECP384R1())
        atomic_write(path, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), mode=0o600)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = _p384_fingerprint(private)
    published = collection.root / "keys" / f"{fingerprint}.p384.pub.pem"
    if not published.exists():
        # Announced first, then published: a run stopped between the two leaves a key the log
        # vouches for, published by the next run, never a file no entry announces.
        if fingerprint not in _wacz_keys_announced(collection, key):
            refuse_out_of_service(collection, key)  # a bundle's first steps may take minutes
            custody_log(collection, key).append("wacz key generated", {
                "fingerprint": fingerprint, "algorithm": "ECDSA P-384", "public_key": public_pem.decode()})
        atomic_write(published, public_pem)
    return private, fingerprint


def _wacz_key_path(collection: Collection, key: SigningKey) -> Path:
    """Where the P-384 key of the Ed25519 `key` is kept: beside it, named by its fingerprint, so
    that a retired key file and the key now in service never share one. A key made before they
    were named so (<stem>.p384.pem) takes that name when this collection's log says `key`
    announced it; else it was another key's, and `key` gets its own."""
    stem = key.path.name.split(".")[0]
    path = key.path.with_name(f"{stem}.p384-{key.fingerprint[:16]}.pem")
    former = key.path.with_name(f"{stem}.p384.pem")
    if not path.exists() and former.exists():
        private = serialization.load_pem_private_key(former.read_bytes(), password=None)
        if _p384_fingerprint(private) in _wacz_keys_announced(collection, key):
            with contextlib.suppress(FileExistsError):  # another bundle took it so meanwhile
                os.link(former, path)  # kept under its old name too: a collection sharing the file may be another key's
            fsync_dir(path.parent)
    return path


def _p384_fingerprint(private: ec.EllipticCurvePrivateKey) -> str:
    return hashlib.sha256(private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _wacz_keys_announced(collection: Collection, key: SigningKey) -> set[str]:
    """The fingerprints of the P-384 keys the custody log says `key` announced."""
    return {entry["subject"].get("fingerprint")
            for entry in key_event_entries(line for _, line in read_entries(export_custody(collection)))
            if entry.get("event") == "wacz key generated" and entry.get("key") == key.fingerprint
            and isinstance(entry.get("subject"), dict)}
