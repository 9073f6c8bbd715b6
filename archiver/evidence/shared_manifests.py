"""A shared collection's manifests: each machine's manifests/ folder holds copies of what the
store holds (store/shared_files.py). An export fetches what its folder lacks before it reads
the newest manifest, and stores what it sealed; verify reads the store's bytes."""

from __future__ import annotations

import hashlib
import os

from archiver.evidence.manifest import point_newest_at
from archiver.evidence.seal_files import sealing_files
from archiver.store.collection import Collection
from archiver.store.durable import fsync_dir
from archiver.store.leftovers import shared_by_machines
from archiver.store.shared_files import fetch_shared, store_shared, unstored
from archiver.store.storage import QUARANTINE

MANIFESTS = "manifests"


def fetch_manifests(collection: Collection, every: bool = False) -> list[str]:
    """Copy into manifests/ what the store holds that the folder lacks (with `every`, all of
    it, replacing this folder's copies), and point manifest.json at the newest; the names copied."""
    _set_aside_another_newest(collection)
    fetched = fetch_shared(collection.storage, collection.root / MANIFESTS, every)
    if fetched:
        with collection:
            newest = collection.catalog.latest_manifest()
        if newest is not None and (collection.root / MANIFESTS / newest[3]).exists():
            point_newest_at(collection.root / MANIFESTS / newest[3])
    return fetched


def _set_aside_another_newest(collection: Collection) -> None:
    """This folder's file of the newest listed manifest's name, when its bytes are not the ones
    listed: an export here stopped before the catalog listed its draft, and another machine's
    took the sequence. It and its sealing files go to manifests/quarantine/, so that the store's
    are fetched in their place (a bundle of the draft failed verification, an export chained to it)."""
    if not shared_by_machines(collection.storage):
        return
    with collection:
        newest = collection.catalog.latest_manifest()
    folder = collection.root / MANIFESTS
    path = folder / newest[3] if newest is not None else None
    if path is None or not path.exists() or _sha256(path) == newest[1]:
        return
    (folder / QUARANTINE).mkdir(exist_ok=True)
    for sealing in sealing_files(path):
        if sealing.exists():
            os.replace(sealing, folder / QUARANTINE / sealing.name)
    fsync_dir(folder)


def _sha256(path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def store_manifests(collection: Collection) -> list[str]:
    """Store each listed manifest and the files sealing it that this folder holds and the store
    does not, so that every machine's folder can fetch them; the names stored."""
    return store_shared(collection.storage, collection.root / MANIFESTS, listed_files(collection))


def unstored_manifests(collection: Collection) -> list[str]:
    """What store_manifests() would store."""
    return unstored(collection.storage, collection.root / MANIFESTS, listed_files(collection))


def listed_files(collection: Collection) -> list[str]:
    """The names of each listed manifest and of every file that may seal it."""
    with collection:
        listed = [row[0] for row in collection.catalog.query("SELECT file FROM manifests ORDER BY sequence")]
    return [path.name for name in listed for path in sealing_files(collection.root / MANIFESTS / name)]
