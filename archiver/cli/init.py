"""`archiver init`: create a collection folder."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.cli.common import print_json
from archiver.collection import Collection


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Collection name (default: the folder's name).")
@click.option("--operator", help="Who makes the captures (default: user@host); recorded in every WARC.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")
def init(folder: Path, name: str | None, operator: str | None, as_json: bool) -> None:
    """Create a collection in FOLDER (default: here): archiver.toml, seeds/, warcs/, manifests/, keys/."""
    collection = Collection.init(folder, name=name, operator=operator)
    if as_json:
        print_json({"collection": str(collection.root), "name": collection.config.name,
                    "operator": collection.config.operator})
    else:
        click.echo(f"Created collection {collection.config.name!r} in {collection.root}")
        click.echo(f"Settings: {collection.config_path}")
