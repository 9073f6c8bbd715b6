"""Where a new collection may not go: a catalog database already holding a collection, or a
bucket prefix already holding objects, or nested in another collection's prefix or holding one.
`init` and `migrate` both refuse them before writing: a second collection there would sign into
the first one's custody chain, list its captures as the first one's, or leave objects the first
one finds orphaned and, locked, can never delete."""

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
_NESTED_FIX = "use another bucket, or a prefix neither inside another collection's nor holding one"


def refuse_taken_for_init(root: Path, catalog_url: str | None,
                          storage: StorageSettings | None) -> "S3Storage | None":
    """What `init` checks before it writes anything, a catalog's tables included: the catalog
    reachable and holding no collection, the S3 store usable (as opening a collection checks it),
    its prefix empty and inside no other collection's. The S3 store, opened, if one is given."""
    if catalog_url is not None:
        refuse_database_taken(catalog_url, "to work on that collection, use a folder holding a copy of its "
                              "archiver.toml (and of the trusted_roots file it names); for a new one, use an empty database")
    if storage is None or not storage.url:
        return None
    opened = open_storage(storage, root)
    refuse_prefix_taken(opened, "to work on the collection kept there, use a folder holding a copy of its "
                        "archiver.toml; for a new one, use an empty bucket or prefix")
    return opened


def refuse_database_taken(catalog_url: str, fix: str) -> None:
    """A UsageProblem if the PostgreSQL database at `catalog_url` holds a collection, or if this
    login may not create the catalog's tables there; asked without creating archiver's schema, so a
    database never set up is left without a table whatever is refused after."""
    if not holds_schema(catalog_url):
        return
    catalog = Catalog(catalog_url)
    try:
        refuse_catalog_taken(catalog, catalog_url, fix)
    finally:
        catalog.close()


def holds_schema(catalog_url: str) -> bool:
    """Whether the database holds archiver's schema, asked without creating it; one not set up
    is refused if this login may not create the schema's tables there."""
    from archiver.store.postgresql_database import PostgreSQL
    from archiver.store.postgresql_url import shown
    database = PostgreSQL(catalog_url)
    try:
        if database.schema_version() > 0:
            return True
        may, user, schema = database.may_create_tables()
    finally:
        database.close()
    if not may:
        where = f"schema {schema}" if schema else "any schema on its search_path (none exists)"
        raise UsageProblem(f"PostgreSQL user {user} may not create the catalog's tables in {where} of "
                           f"{shown(catalog_url)}",
                           f"as the database's owner, GRANT CREATE ON SCHEMA {schema or 'public'} TO {user}, "
                           "or use a database this user owns")
    return False


def mark_collection(storage: "S3Storage", collection_id: str, name: str) -> None:
    """Claim the store's prefix for the collection `collection_id` (COLLECTION_MARKER), before it
    stores anything; claimed already by this very collection (a migration run again), left as it is."""
    about = json.dumps({"collection": collection_id, "name": name}, sort_keys=True).encode("utf-8")
    if storage.collection_marker(storage.prefix) != about:
        storage.put_collection_marker(about)


def _holds_collection(catalog: Catalog) -> bool:
    return any(catalog.query(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in _HOLDING)


def refuse_catalog_taken(catalog: Catalog, url: str, fix: str) -> None:
    """A UsageProblem naming the collection `catalog` (at `url`) holds, if it holds one."""
    from archiver.store.postgresql_url import shown
    if _holds_collection(catalog):
        raise UsageProblem(f"the catalog {shown(url)} already holds a collection{_named(catalog)}", fix)


def refuse_prefix_taken(storage: "S3Storage", fix: str) -> None:
    """A UsageProblem if the store's prefix holds any object, at any depth below it, or lies
    inside the prefix of another collection (its COLLECTION_MARKER at a prefix holding this one)."""
    from archiver.store.s3 import COLLECTION_MARKER
    where = without_credentials(storage.location)
    stored = storage.object_names()
    if COLLECTION_MARKER in stored:
        raise UsageProblem(f"{where} already holds a collection{_marked(storage, storage.prefix)}", fix)
    if nested := [name[:-len(COLLECTION_MARKER)] for name in stored if name.endswith("/" + COLLECTION_MARKER)]:
        inner = storage.prefix + nested[0]
        raise UsageProblem(f"{where} holds another collection's prefix, s3://{storage.bucket}/{inner}"
                           f"{_marked(storage, inner)}", _NESTED_FIX)
    if stored:
        raise UsageProblem(f"{where} already holds {len(stored)} files (such as {stored[0]})", fix)
    for outer in _enclosing(storage.prefix):
        if (about := storage.collection_marker(outer)) is not None:
            raise UsageProblem(f"{where} is inside another collection's prefix, s3://{storage.bucket}/{outer}"
                               f"{_described(about)}", _NESTED_FIX)


def _enclosing(prefix: str) -> list[str]:
    """The prefixes holding `prefix`, nearest first: 'a/b/' → ['a/', ''] (the whole bucket)."""
    outer = []
    while prefix:
        prefix = prefix[:prefix.rstrip("/").rfind("/") + 1]
        outer.append(prefix)
    return outer


def _marked(storage: "S3Storage", prefix: str) -> str:
    about = storage.collection_marker(prefix)
    return _described(about) if about is not None else ""


def _described(about: bytes) -> str:
    """', NAME (id ID)' of the collection a COLLECTION_MARKER (its bytes) names, if it does."""
    try:
        subject = json.loads(about)
    except ValueError:
        return ""
    return f", {subject.get('name')!r} (id {subject.get('collection')})" if isinstance(subject, dict) else ""


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
