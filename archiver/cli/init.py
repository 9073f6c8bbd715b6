"""`archiver init`: create a collection folder."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.cli.common import (collection_option, echo, json_option, key_option, passphrase, print_json,
                                 retention_options, storage_settings)
from archiver.evidence.keys import create_collection
from archiver.evidence.signing import grouped


@click.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@collection_option(upwards=False)
@click.option("--name", help="Collection name (default: the folder's name).")
@click.option("--operator", help="Who makes the captures (default: user@host); recorded in every WARC.")
@click.option("--catalog", "catalog_url", metavar="URL",
              help="Keep the catalog in this PostgreSQL database (postgresql://user@host:port/database) rather than"
                   " catalog.sqlite; the password comes from PGPASSWORD or ~/.pgpass.")
@click.option("--storage", "storage_url", metavar="s3://BUCKET/PREFIX/",
              help="Keep WARC files in this S3 bucket (credentials: the standard AWS variables or profile).")
@retention_options
@key_option
@json_option
def init(folder: Path | None, collection_dir: Path, name: str | None, operator: str | None, catalog_url: str | None,
         storage_url: str | None, require_retention: str | None, min_retention_days: int | None,
         key_file: Path | None, as_json: bool) -> None:
    """Create a collection in FOLDER (default: -C, else here).

    It holds archiver.toml, seeds/, warcs/, manifests/ and keys/; its Ed25519 signing key is
    made outside it (encrypted when $ARCHIVER_PASSPHRASE is set).

    A database or bucket prefix already holding a collection is refused, and so is a prefix
    inside another collection's or holding one, nothing made: another machine joins a shared
    collection with a copy of its archiver.toml, not with init.

    Exit 0 when the collection was made; 2 on bad usage (a folder that already holds a
    collection or is inside one's, a database or bucket prefix that does or is nested with one's, an S3 store that
    cannot be used), 3 when
    the machine refused (a disk full, a PostgreSQL server unreachable or refusing the login)."""
    collection, key, created = create_collection(folder or collection_dir, key_file, passphrase(ask=False), name, operator,
                                                 catalog_url,
                                                 storage_settings(storage_url, require_retention, min_retention_days))
    if as_json:
        print_json({"collection": str(collection.root), "id": collection.config.id, "name": collection.config.name,
                    "operator": collection.config.operator, "key": str(key.path), "key_created": created,
                    "fingerprint": key.fingerprint})
    else:
        echo(f"Created collection {collection.config.name!r} in {collection.root}")
        echo(f"Settings: {collection.config_path}")
        echo(f"Signing key ({'new' if created else 'existing'}): {key.path}")
        echo(f"Fingerprint: {grouped(key.fingerprint)}")
