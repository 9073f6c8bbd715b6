"""Which folder a command's collection is: the one -C or $ARCHIVER_COLLECTION names, else the
one the current folder is in; and where `capture` and `cite`, which make a collection where
there is none, may make one."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from archiver.errors import UsageProblem
from archiver.store.collection import CONFIG_NAME, Collection


def find_collection(start: Path) -> Path | None:
    """The collection `start` is in, itself or the nearest folder above it, as git finds its
    repository; None when it is in none."""
    start = start.absolute()
    return next((folder for folder in (start, *start.parents) if Collection.exists(folder)), None)


def collection_folder(given: Path | None, source: ParameterSource | None) -> Path:
    """The folder -C or $ARCHIVER_COLLECTION gives, exactly that one; else the collection the
    current folder is in, and where it is in none the current folder itself, where `capture`
    makes one. A folder $ARCHIVER_COLLECTION names that is no collection is refused naming the
    variable: the user may not think of one a profile set long ago."""
    if given is None:
        return find_collection(Path.cwd()) or Path(".")
    if source is ParameterSource.ENVIRONMENT:
        refuse_a_named_folder_not_a_collection(given, source)
    return given


def refuse_a_named_folder_not_a_collection(collection_dir: Path, source: ParameterSource | None = None) -> None:
    """A collection is made only in the folder found by default (the current one, in no
    collection), as `archiver capture seeds/` does on a fresh machine. A folder named by -C or
    $ARCHIVER_COLLECTION must be one already, as for every other command: a mistyped name would
    otherwise become a new collection with a signing key of its own."""
    source = source or click.get_current_context().get_parameter_source("collection_dir")
    if source is ParameterSource.DEFAULT or Collection.exists(collection_dir):
        return
    root, named_by = collection_dir.absolute(), "$ARCHIVER_COLLECTION" if source is ParameterSource.ENVIRONMENT else "-C"
    what = f"{root} is not an archiver collection (no {CONFIG_NAME})" if root.is_dir() else f"{root} is not a folder"
    raise UsageProblem(f"{what} ({named_by})", f"make one there with `archiver init {root}` first, or leave out "
                                               f"{named_by} to use the collection the current folder is in")
