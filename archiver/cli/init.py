"""`archiver init`: create a collection folder."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.cli.common import collection_option, json_option, print_json
from archiver.collection import Collection


@click.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@collection_option
@click.option("--name", help="Collection name (default: the folder's name).")
@click.option("--operator", help="Who makes the captures (default: user@host); recorded in every WARC.")
@json_option
def init(folder: Path | None, collection_dir: Path, name: str | None, operator: str | None, as_json: bool) -> None:
    """Create a collection in FOLDER (default: -C, else here): archiver.toml, seeds/, warcs/, manifests/, keys/."""
    collection = Collection.init(folder or collection_dir, name=name, operator=operator)
    if as_json:
        print_json({"collection": str(collection.root), "name": collection.config.name,
                    "operator": collection.config.operator})
    else:
        click.echo(f"Created collection {collection.config.name!r} in {collection.root}")
        click.echo(f"Settings: {collection.config_path}")
