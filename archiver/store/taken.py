"""Where a new collection may not go: a catalog database already holding a collection, or a
bucket prefix already holding objects. `init` and `migrate` both refuse them before writing:
a second collection there would sign into the first one's custody chain, list its captures
as the first one's, or leave objects the first one finds orphaned and, locked, can never delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.errors import UsageProblem
from archiver.read.urls import without_credentials
from archiver.store.catalog import Catalog
from archiver.store.storage_settings import StorageSettings, open_storage

if TYPE_CHECKING:
    from archiver.store.s3 import S3Storage

# Catalog tables that hold something only once a collection is there (custody_entries: a shared one's).
_HOLDING = ("custody_entries", "runs", "warc_files", "documents", "claims")


def refuse_taken_for_init(root: Path, catalog_url: str | None, storage: StorageSettings | None) -> None:
    """What `init` checks before it writes anything: the catalog reachable, set up and holding no
    collection, the S3 store usable (as opening a collection checks it) and its prefix empty."""
    if catalog_url is not None:
        catalog = Catalog(catalog_url)
        try:
            refuse_catalog_taken(catalog, catalog_url, "to work on that collection, use a folder holding a copy of its "
                                 "archiver.toml (and of the trusted_roots file it names); for a new one, use an empty database")
        finally:
            catalog.close()
    if storage is not None and storage.url:
        refuse_prefix_taken(open_storage(storage, root), "to work on the collection kept there, use a folder holding a "
                            "copy of its archiver.toml; for a new one, use an empty bucket or prefix")


def _holds_collection(catalog: Catalog) -> bool:
    return any(catalog.query(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in _HOLDING)


def refuse_catalog_taken(catalog: Catalog, url: str, fix: str) -> None:
    """A UsageProblem naming the collection `catalog` (at `url`) holds, if it holds one."""
    if _holds_collection(catalog):
        raise UsageProblem(f"the catalog {without_credentials(url)} already holds a collection{_named(catalog)}", fix)


def refuse_prefix_taken(storage: "S3Storage", fix: str) -> None:
    """A UsageProblem if the store's prefix holds any object, at any depth below it."""
    if stored := storage.object_names():
        raise UsageProblem(f"{without_credentials(storage.location)} already holds {len(stored)} files "
                           f"(such as {stored[0]})", fix)


def _named(catalog: Catalog) -> str:
    """', NAME (id ID)' of the collection whose creation the catalog's custody log records, if it does."""
    for line in catalog.custody_lines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("event") != "collection created":
            continue
        if isinstance(subject := entry.get("subject"), dict):
            return f", {subject.get('name')!r} (id {subject.get('id')})"
    return ""
