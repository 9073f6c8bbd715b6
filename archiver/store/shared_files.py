"""Files of a collection that no catalog row holds and that every machine's folder needs (its
manifests and what seals them). In a store other machines share (S3), each is stored once as
the object FOLDER/NAME beside the WARC files, never replaced (the bucket locks it), and each
machine's FOLDER holds copies, fetched before they are read. In a local collection the folder
is the collection's own: then there is nothing to fetch or store, and these do nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from archiver.store.leftovers import shared_by_machines
from archiver.store.storage import Storage


def fetch_shared(storage: Storage, folder: Path, every: bool = False) -> list[str]:
    """Copy into `folder` each file the store holds in the folder of that name that `folder`
    lacks, or, with `every`, each one whatever `folder` holds (so that what is read next is
    the store's bytes); the names copied."""
    if not shared_by_machines(storage):
        return []
    folder.mkdir(exist_ok=True)
    fetched = [name for name in storage.shared_names(folder.name) if every or not (folder / name).exists()]
    for name in fetched:
        storage.get_shared(f"{folder.name}/{name}", folder / name)
    return fetched


def unstored(storage: Storage, folder: Path, names: Iterable[str]) -> list[str]:
    """Those of the files `names` of `folder` that it holds and the store does not."""
    if not shared_by_machines(storage):
        return []
    held = set(storage.shared_names(folder.name))
    return [name for name in names if name not in held and (folder / name).exists()]


def store_shared(storage: Storage, folder: Path, names: Iterable[str]) -> list[str]:
    """Store each of the files `names` of `folder` that the store does not hold yet; the names stored."""
    stored = unstored(storage, folder, names)
    for name in stored:
        storage.put_shared(f"{folder.name}/{name}", folder / name)
    return stored
