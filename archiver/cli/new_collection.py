"""Where `capture` and `cite`, which make a collection where there is none, may make one."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from archiver.errors import UsageProblem
from archiver.store.collection import CONFIG_NAME, Collection


def refuse_a_named_folder_not_a_collection(collection_dir: Path) -> None:
    """A collection is made only in the folder found by default (the current one, in no
    collection), as `archiver capture seeds/` does on a fresh machine. A folder named by -C or
    $ARCHIVER_COLLECTION must be one already, as for every other command: a mistyped name would
    otherwise become a new collection with a signing key of its own."""
    source = click.get_current_context().get_parameter_source("collection_dir")
    if source is ParameterSource.DEFAULT or Collection.exists(collection_dir):
        return
    root, named_by = collection_dir.absolute(), "$ARCHIVER_COLLECTION" if source is ParameterSource.ENVIRONMENT else "-C"
    what = f"{root} is not an archiver collection (no {CONFIG_NAME})" if root.is_dir() else f"{root} is not a folder"
    raise UsageProblem(what, f"make one there with `archiver init {root}` first, or leave out {named_by} to use the "
                             "collection the current folder is in (made there if it is in none)")
