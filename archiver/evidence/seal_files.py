"""The names of the files that seal a manifest (evidence/seal.py writes them): its signature,
its signed checkpoint and their RFC 3161 tokens; and the TSA roots those tokens must chain to.
A module of its own so that what only looks for these files (verify, bundle, doctor) loads no
token or X.509 code until a token is there."""

from __future__ import annotations

from pathlib import Path

from archiver.errors import ArchiverError
from archiver.store.collection import Collection


def signature_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".sig")


def checkpoint_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name.removesuffix(".json") + ".checkpoint.json")


def token_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".tsr")


def sealing_files(manifest: Path) -> list[Path]:
    """The manifest and every file that may seal it, whether written yet or not."""
    checkpoint = checkpoint_path(manifest)
    return [manifest, signature_path(manifest), token_path(manifest),
            checkpoint, signature_path(checkpoint), token_path(checkpoint)]


def trusted_roots(collection: Collection) -> bytes | None:
    """The PEM file [timestamps] trusted_roots names (None when unset): what a token must chain
    to, on arrival as when verified. ArchiverError when it cannot be read."""
    name = collection.config.timestamps.trusted_roots
    if not name:
        return None
    try:
        return (collection.root / name).read_bytes()
    except OSError as exc:
        raise ArchiverError(f"cannot read the trusted roots [timestamps] trusted_roots names ({name}): "
                            f"{exc.strerror or exc}; on a machine of a shared collection, copy that file into its folder") from None
