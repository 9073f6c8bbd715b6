"""A shared collection's manifests: each machine's manifests/ folder holds copies of what the
store holds (store/shared_files.py). An export fetches what its folder lacks before it reads
the newest manifest, and stores what it sealed; verify reads the store's bytes."""

from __future__ import annotations

from archiver.evidence.manifest import point_newest_at
from archiver.evidence.seal_files import sealing_files
from archiver.store.collection import Collection
from archiver.store.shared_files import fetch_shared, store_shared, unstored

MANIFESTS = "manifests"


def fetch_manifests(collection: Collection, every: bool = False) -> list[str]:
    """Copy into manifests/ what the store holds that the folder lacks (with `every`, all of
    it, replacing this folder's copies), and point manifest.json at the newest; the names copied."""
    fetched = fetch_shared(collection.storage, collection.root / MANIFESTS, every)
    if fetched:
        with collection:
            newest = collection.catalog.latest_manifest()
        if newest is not None and (collection.root / MANIFESTS / newest[3]).exists():
            point_newest_at(collection.root / MANIFESTS / newest[3])
    return fetched


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
