"""The names of the files that seal a manifest (evidence/seal.py writes them): its signature,
its signed checkpoint and their RFC 3161 tokens. A module of its own so that what only looks
for these files (verify, bundle, doctor) loads no token or X.509 code until a token is there."""

from __future__ import annotations

from pathlib import Path


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
