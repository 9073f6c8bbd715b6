"""`archiver manifest`: export the canonical JSON manifest of the collection."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from archiver.catalog import Catalog
from archiver.cli.common import collection_option, json_option, print_json
from archiver.collection import Collection
from archiver.manifest import export_manifest


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the manifest's exact bytes to this file.")
@collection_option
@json_option
def manifest(output: Path | None, collection_dir: Path, as_json: bool) -> None:
    """Export the manifest: documents, claims, captures, record digests and the claim↔capture
    links, as canonical JSON in manifests/manifest-<seq>.json (manifests/manifest.json is the
    newest). Each manifest carries its sequence number and the SHA-256 of the one before; an
    unchanged catalog keeps its current manifest."""
    collection = Collection.open(collection_dir)
    catalog = Catalog(collection.catalog_path)
    try:
        result = export_manifest(collection, catalog)
    finally:
        catalog.close()
    if output:
        shutil.copyfile(result.path, output)
    if as_json:
        print_json({"sequence": result.sequence, "path": str(result.path), "sha256": result.sha256,
                    "unchanged": result.unchanged, "output": str(output) if output else None})
        return
    state = "unchanged since the last export" if result.unchanged else "written"
    click.echo(f"Manifest {result.sequence} {state}: {result.path}")
    click.echo(f"SHA-256 {result.sha256}")
    if output:
        click.echo(f"Copied to {output}")
