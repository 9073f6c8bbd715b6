"""Sealing a manifest: a detached Ed25519 signature over its exact bytes (`.sig`, the raw 64
bytes, which `openssl pkeyutl -verify -rawin` checks), a signed checkpoint naming its
SHA-256, sequence and Merkle root (`.checkpoint.json` and its `.sig`: what a bundle carries
instead of the whole manifest), and RFC 3161 timestamps over the manifest's bytes (`.tsr`),
each announced in the custody log. A token is kept only if it verifies as `verify` will
check it (against trusted_roots when set) and its TSA's clock is right; one that does not is
that TSA failing. A missing timestamp is reported, never skipped in silence; a later
`archiver manifest` (or bundle) tries again, the checkpoint's alone too."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError
from archiver.store.collection import Collection
from archiver.store.crash_points import AFTER_SEAL, crash_point
from archiver.store.durable import atomic_write
from archiver.evidence.keys import custody_log, key_statuses
from archiver.evidence.manifest import ManifestResult, checkpoint_of, export_manifest
from archiver.evidence.seal_files import checkpoint_path, signature_path, token_path, trusted_roots
from archiver.evidence.shared_manifests import fetch_manifests, store_manifests
from archiver.evidence.signing import SigningKey, canonical_json, collection_public_keys
from archiver.evidence.timestamps.token import describe_token

if TYPE_CHECKING:  # requests is imported only to ask a TSA
    from archiver.evidence.timestamps.request import TimestampOutcome


@dataclass
class Seal:
    signature: Path | None = None
    signed_by: str | None = None  # the fingerprint of the key whose signature it is (None: of no key in keys/)
    token: Path | None = None
    tsa: str | None = None
    timestamp_failures: list[str] = field(default_factory=list)
    checkpoint_token: Path | None = None  # what a bundle carries as its timestamp

    @property
    def timestamped(self) -> bool:
        return self.token is not None and self.checkpoint_token is not None


def seal_manifest(collection: Collection, key: SigningKey, manifest: Path, sequence: int,
                  checkpoint: dict | None) -> Seal:
    """Sign `manifest` if not signed yet, and timestamp it and its checkpoint if they have no token yet."""
    seal = _sign_and_stamp(collection, key, manifest, sequence, checkpoint)
    checkpoint_token = token_path(checkpoint_path(manifest))
    seal.checkpoint_token = checkpoint_token if checkpoint_token.exists() else None
    return seal


def _sign_and_stamp(collection: Collection, key: SigningKey, manifest: Path, sequence: int,
                    checkpoint: dict | None) -> Seal:
    settings = collection.config.timestamps
    stamp = bool(settings.authorities) and not token_path(manifest).exists()
    # Read once, and only when signing or timestamping needs the bytes (a manifest may be 100s of MB).
    data = manifest.read_bytes() if stamp or not signature_path(manifest).exists() else None
    signed_before = signature_path(manifest).exists()
    seal = Seal(signature=sign_manifest(collection, key, manifest, sequence, checkpoint, data))
    # A manifest left unchanged keeps the signature it was sealed with, by whichever key then signed.
    seal.signed_by = _signer(collection, manifest) if signed_before else key.fingerprint
    if not stamp:
        seal.token = token_path(manifest) if token_path(manifest).exists() else None
        if seal.token is not None and settings.authorities and not token_path(checkpoint_path(manifest)).exists():
            seal.timestamp_failures = _stamp_checkpoint_again(collection, key, manifest, sequence)
        return seal
    log = custody_log(collection, key)
    outcome = _ask(collection, data, list(settings.authorities))
    seal.timestamp_failures = outcome.failures
    if outcome.token is not None:
        # The checkpoint gets its own token: a bundle carries the checkpoint, not the manifest.
        stamped = _stamp_checkpoint(collection, manifest, [outcome.url])
        seal.timestamp_failures += stamped.failures
        # The manifest's token comes last: its presence means the checkpoint's was tried too.
        atomic_write(token_path(manifest), outcome.token)
        seal.token, seal.tsa = token_path(manifest), outcome.url
        log.append("timestamp", timestamp_entry(sequence, manifest, data, outcome.url, outcome.token, stamped.token))
    else:
        log.append("timestamp missing", {"sequence": sequence, "manifest": manifest.name, "failures": outcome.failures})
    return seal


def _signer(collection: Collection, manifest: Path) -> str | None:
    """The collection key whose signature the manifest bears, found by its checkpoint's (made
    with the same key, and a few hundred bytes where a manifest may be hundreds of MB), or by
    its own where an older archiver sealed it with no checkpoint."""
    checkpoint = checkpoint_path(manifest)
    signed = checkpoint if signature_path(checkpoint).exists() else manifest
    try:
        data, signature = signed.read_bytes(), signature_path(signed).read_bytes()
    except OSError:
        return None
    return next((fingerprint for fingerprint, public in collection_public_keys(collection.root / "keys").items()
                 if public.verify(signature, data)), None)


def _sealed_by_a_key_in_service(collection: Collection, manifest: Path) -> bool:
    """Whether the manifest's seal is by a key still in service; one not sealed yet (an
    interrupted seal) is to be finished, not replaced."""
    if not signature_path(manifest).exists():
        return True
    signer = _signer(collection, manifest)
    status = key_statuses(collection).get(signer) if signer else None
    return status is not None and status.in_service()


def _stamp_checkpoint_again(collection: Collection, key: SigningKey, manifest: Path, sequence: int) -> list[str]:
    """A manifest timestamped whose checkpoint got no token (its TSA failed on the second
    query): ask again, since the checkpoint is what a bundle carries; the custody log then
    records both tokens. Why it failed again, if it did."""
    stamped = _stamp_checkpoint(collection, manifest, list(collection.config.timestamps.authorities))
    if stamped.token is not None:
        custody_log(collection, key).append("timestamp", {
            **timestamp_entry(sequence, manifest, manifest.read_bytes(), None, token_path(manifest).read_bytes(),
                              stamped.token),
            "checkpoint_tsa": stamped.url})
    return stamped.failures


def _stamp_checkpoint(collection: Collection, manifest: Path, authorities: list[str]) -> "TimestampOutcome":
    """Ask `authorities` for a token of the manifest's checkpoint, and keep it if one answers."""
    stamped = _ask(collection, checkpoint_path(manifest).read_bytes(), authorities)
    if stamped.token is not None:
        atomic_write(token_path(checkpoint_path(manifest)), stamped.token)
    return stamped


def _ask(collection: Collection, data: bytes, authorities: list[str]) -> "TimestampOutcome":
    """The first token of `authorities` over `data` that verifies against the collection's
    trusted_roots (or, with none set, as far as it can without), the failures before it; trusted
    roots that cannot be read are the one failure, as no token could be checked against them."""
    from archiver.evidence.timestamps.request import TimestampOutcome, timestamp_with_any  # requests: to ask a TSA

    try:
        roots = trusted_roots(collection)
    except ArchiverError as exc:
        return TimestampOutcome(None, None, [str(exc)])
    return timestamp_with_any(data, authorities, collection.config.timestamps.timeout, roots)


def timestamp_entry(sequence: int, manifest: Path, data: bytes, tsa: str | None, token: bytes,
                    checkpoint_token: bytes | None) -> dict:
    """The custody log's record of a manifest's tokens: their SHA-256 too, since the TSA's
    signature does not cover a token's wrapping."""
    return {"sequence": sequence, "manifest": manifest.name, "sha256": hashlib.sha256(data).hexdigest(), "tsa": tsa,
            "gen_time": describe_token(token).get("gen_time"), "token_sha256": hashlib.sha256(token).hexdigest(),
            "checkpoint_token": checkpoint_token is not None,
            "checkpoint_token_sha256": hashlib.sha256(checkpoint_token).hexdigest() if checkpoint_token else None}


def sign_manifest(collection: Collection, key: SigningKey, manifest: Path, sequence: int,
                  checkpoint: dict | None = None, data: bytes | None = None) -> Path:
    """Write the signed checkpoint, log the signing, then sign the manifest, unless it is
    signed already. The signature comes last, so a manifest with one has all three; an
    interrupted seal is simply done again (its custody entry then appears twice, alike)."""
    if signature_path(manifest).exists():
        return signature_path(manifest)
    data = manifest.read_bytes() if data is None else data
    checkpoint_bytes = canonical_json(checkpoint or checkpoint_of(collection.config.id, manifest.name, data))
    atomic_write(checkpoint_path(manifest), checkpoint_bytes)
    atomic_write(signature_path(checkpoint_path(manifest)), key.sign(checkpoint_bytes))
    custody_log(collection, key).append("manifest signed", {
        "sequence": sequence, "manifest": manifest.name, "sha256": hashlib.sha256(data).hexdigest(),
        "checkpoint_sha256": hashlib.sha256(checkpoint_bytes).hexdigest()})
    atomic_write(signature_path(manifest), key.sign(data))
    return signature_path(manifest)


def sealed_manifest(collection: Collection, key: SigningKey) -> tuple[ManifestResult, Seal]:
    """The collection's current manifest, exported if the catalog changed, and sealed; on a
    shared collection, from and into the store (shared_manifests.py), one machine at a time."""
    with collection.in_use(), collection.exporting(), collection:
        fetch_manifests(collection)
        result = export_manifest(collection)
        if result.unchanged and not _sealed_by_a_key_in_service(collection, result.path):
            # Rotated out or revoked since (a key thought compromised): the same content, sealed anew.
            result = export_manifest(collection, reseal=True)
        seal = seal_manifest(collection, key, result.path, result.sequence, result.checkpoint)
        crash_point(AFTER_SEAL)
        store_manifests(collection)
        return result, seal
