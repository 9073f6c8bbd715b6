"""`archiver manifest`: export the canonical JSON manifest of the collection."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from archiver.cli.recovery import repair_interrupted
from archiver.cli.common import collection_option, echo, json_option, key_option, output_option, print_json, signing_key
from archiver.store.collection import Collection
from archiver.evidence.seal import sealed_manifest
from archiver.evidence.signing import grouped


@click.command()
@output_option("Also write the manifest's exact bytes to this file.")
@collection_option
@key_option
@json_option
def manifest(output: Path | None, collection_dir: Path, key_file: Path | None, as_json: bool) -> None:
    """Export the signed manifest of the collection's documents, claims, captures and records.

    It lists them, with every record's digests and the claim↔capture links, as canonical JSON
    in manifests/manifest-<seq>.json (manifests/manifest.json is the
    newest). Each manifest carries its sequence number and the SHA-256 of the one before; an
    unchanged catalog keeps its current manifest.

    The manifest is signed with the collection's key (manifest-<seq>.json.sig) and, when
    timestamp authorities are set in archiver.toml, timestamped (manifest-<seq>.json.tsr).
    Exit 0 when sealed; 1 when a configured timestamp could not be obtained, the manifest's or
    its checkpoint's (the manifest is still signed; the next `archiver manifest` asks again);
    2 on bad usage (a revoked key), 3 when the machine refused."""
    collection = Collection.open(collection_dir)
    key = signing_key(collection, key_file)
    repair_interrupted(collection, key)
    result, seal = sealed_manifest(collection, key)
    if output:
        shutil.copyfile(result.path, output)
    missing = bool(collection.config.timestamps.authorities) and not seal.timestamped
    if as_json:
        print_json({"sequence": result.sequence, "path": str(result.path), "sha256": result.sha256,
                    "unchanged": result.unchanged, "output": str(output) if output else None,
                    "signature": str(seal.signature), "key": seal.signed_by,
                    "timestamp": str(seal.token) if seal.token else None, "tsa": seal.tsa,
                    "checkpoint_timestamp": str(seal.checkpoint_token) if seal.checkpoint_token else None,
                    "timestamp_failures": seal.timestamp_failures})
    else:
        state = "unchanged since the last export" if result.unchanged else "written"
        echo(f"Manifest {result.sequence} {state}: {result.path}")
        echo(f"SHA-256 {result.sha256}")
        signer = f"key {grouped(seal.signed_by)}" if seal.signed_by else "by no key in keys/"
        echo(f"Signed: {seal.signature} ({signer}" +
             (", before this one" if seal.signed_by not in (None, key.fingerprint) else "") + ")")
        if seal.token:
            echo(f"Timestamped: {seal.token}" + (f" by {seal.tsa}" if seal.tsa else ""))
        elif not collection.config.timestamps.authorities:
            echo("Not timestamped: no timestamp authority in archiver.toml [timestamps]")
        for failure in seal.timestamp_failures:
            echo(f"Timestamp failed: {failure}", err=True)
        if output:
            echo(f"Copied to {output}")
    if missing:
        raise SystemExit(1)
