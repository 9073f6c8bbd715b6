"""`archiver migrate`: a local collection (catalog.sqlite and its warcs/ folder) copied into a
shared one (a PostgreSQL catalog, WARC files in an S3 store), so faithfully that everything
signed still verifies: every catalog row with its ids, the custody log line for line, every
WARC file byte for byte, and the files beside them (public keys, manifests with their
signatures and timestamp tokens, document copies).

The steps, each safe to run again after an interruption:
1. the original's catalog is checked to be at this archiver's schema (opening an older one
   would upgrade it in place), the target empty (folder, bucket prefix, catalog, asked without
   making the catalog's schema, so that a refused migration leaves the database as it was) and
   the original verified;
2. the new folder is made, holding a note of what is being migrated where (MARKER) and the
   original's settings with the new catalog and storage, and the original's files are copied in;
3. the bucket prefix is claimed for the collection (its COLLECTION_MARKER, as `init` stores), and
   each WARC file goes up through the store's own upload (never over another object, its
   SHA-256 sent and read back, its retention reported); one already up with the same bytes,
   by an interrupted run, is taken as it is;
4. every catalog row, every custody entry and one more saying where the collection came
   from are written in one transaction, so the catalog holds all of it or none;
5. the note is removed.
The original is only read, and held alone meanwhile so that no capture changes it."""

from __future__ import annotations

import dataclasses
import graphlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from archiver.check.findings import Report
from archiver.check.doctor_stored import store_unstored
from archiver.check.verify import verify_collection
from archiver.errors import ArchiverError, StorageProblem, UsageProblem
from archiver.evidence.custody import LOG_NAME, CustodyLog, parse_entry, read_entries
from archiver.evidence.signing import SigningKey
from archiver.store.catalog import Catalog
from archiver.store.schema import SCHEMA_VERSION
from archiver.store.collection import CONFIG_NAME, Collection
from archiver.store.locks import LOCK_NAME
from archiver.store.postgresql_url import check_url, shown
from archiver.store.database import placeholders
from archiver.store.durable import atomic_write, fsync_dir
from archiver.store.sqlite_database import stored_schema_version
from archiver.store.storage import Storage, StoredFile
from archiver.store.taken import holds_schema, mark_collection, refuse_database_taken, refuse_prefix_taken
from archiver.store.storage_settings import URL_FORM, StorageSettings, open_storage, render_storage, split_url

MARKER = ".migrating"
MIGRATED = "collection migrated"
# What is not copied as a file: made anew (settings, catalog, custody log), uploaded (warcs/) or scratch.
NOT_COPIED = {CONFIG_NAME, "catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", LOG_NAME, LOCK_NAME,
              MARKER, "warcs", "tmp"}


class SourceFailsVerify(ArchiverError):
    """The original does not pass verify: migrating it would make its faults look vouched for."""

    exit_code = 1


@dataclass(frozen=True)
class Target:
    """Where a collection goes: the new local folder (archiver.toml, keys), the catalog, the store."""

    folder: Path
    catalog_url: str
    storage: StorageSettings  # its url, and how the bucket must lock what it stores

    @property
    def storage_url(self) -> str:
        return self.storage.url

    def note(self, source: Collection) -> dict:
        return {"from": str(source.root), "catalog": self.catalog_url, "storage": self.storage_url}


@dataclass
class Migrated:
    source: Path
    target: Path
    catalog_url: str
    storage_url: str
    warc_files: int
    warc_bytes: int
    rows: dict[str, int]
    custody_entries: int
    resumed: bool

    def as_dict(self) -> dict:
        return {key: str(value) if isinstance(value, Path) else value for key, value in self.__dict__.items()}


def migrate_collection(source: Collection, target: Target, key: SigningKey, workers: int = 2,
                       progress: Callable[[int, int], None] | None = None) -> Migrated:
    """Copy `source` into `target` (see the module), signing the migration's custody entry with
    `key`, the collection's key; `progress(bytes sent, bytes in all)` as WARC files go up."""
    if source.config.catalog_url:
        raise UsageProblem(f"{source.root} is already a shared collection (its catalog is "
                           f"{shown(source.config.catalog_url)})",
                           "migrate copies a collection whose catalog is catalog.sqlite")
    folder = target.folder.absolute()
    if folder == source.root or source.root in folder.parents or folder in source.root.parents:
        raise UsageProblem(f"--to {folder} overlaps the collection being migrated, {source.root}",
                           "choose a folder outside it")
    check_url(target.catalog_url, "--catalog")
    try:
        split_url(target.storage_url)
    except ValueError as exc:
        raise UsageProblem(str(exc), f"pass --storage {URL_FORM}") from None
    _refuse_older_schema(source)
    resumed = _resuming(folder, target.note(source))
    settings = target.storage
    storage = open_storage(settings, folder)  # a bucket locked less than required is refused here
    if not resumed:
        refuse_prefix_taken(storage, "migrate into an empty bucket or prefix")
    done = resumed and _migrated_into(target.catalog_url, source.root)
    if not done:
        refuse_database_taken(target.catalog_url, "migrate into an empty database")
    with source.in_use(alone=True), source:
        if not done:
            _refuse_unverified(source, workers)
            copy = _make_folder(source, folder, target, settings)
            mark_collection(storage, source.config.id, source.config.name)
            uploaded = _upload(source, storage, progress)
        # Opening the catalog makes its schema: only once nothing is left to refuse the migration.
        catalog = Catalog(target.catalog_url)
        try:
            if not done:
                _load_catalog(source, catalog, copy, key, uploaded, target)
            custody = sum(1 for _ in catalog.custody_lines())
        finally:
            catalog.close()
        rows = {table: source.catalog.query(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table, *_ in _tables(source.catalog)}
        sent = sum(source.storage.size(name) or 0 for name in source.storage.names())
    store_unstored(Collection.open(folder))  # the manifests and document copies, where every machine fetches them
    (folder / MARKER).unlink(missing_ok=True)
    fsync_dir(folder)
    return Migrated(source.root, folder, target.catalog_url, target.storage_url, rows["warc_files"], sent, rows,
                    custody, resumed)


def _refuse_older_schema(source: Collection) -> None:
    """Refuse an original whose catalog an older archiver wrote: opening it would upgrade its
    schema in place, a write to the original that only its owner should choose to make."""
    version = stored_schema_version(source.catalog_path)
    if version is not None and version > SCHEMA_VERSION:
        raise UsageProblem(f"the catalog of {source.root} was written by a newer archiver (schema {version})",
                           "upgrade archiver, then migrate it")
    if version is not None and version < SCHEMA_VERSION:
        raise UsageProblem(f"the catalog of {source.root} has schema {version}, older than this archiver's "
                           f"{SCHEMA_VERSION}, and migrate never writes to the original",
                           f"upgrade it in place first with `archiver -C {source.root} verify`, then migrate it")


def _resuming(folder: Path, note: dict) -> bool:
    """Whether `folder` holds this very migration, unfinished; refused if it holds anything else."""
    marker = folder / MARKER
    if marker.is_file():
        found = json.loads(marker.read_text(encoding="utf-8"))
        if found != note:
            raise UsageProblem(f"{folder} holds an unfinished migration of {found.get('from')} into "
                               f"{found.get('catalog')} and {found.get('storage')}",
                               "run that migrate command again to finish it, or choose another folder for --to")
        return True
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageProblem(f"{folder} is not an empty folder", "choose a new or empty folder for --to")
    return False


def _migrated_into(catalog_url: str, root: Path) -> bool:
    """Whether the catalog's custody log ends a migration of `root` (its rows are all in), asked
    without making the schema of a database that holds none."""
    if not holds_schema(catalog_url):
        return False
    catalog = Catalog(catalog_url)
    try:
        for line in catalog.custody_lines():
            entry = parse_entry(line.encode("utf-8")) or {}
            if entry.get("event") == MIGRATED and entry.get("subject", {}).get("from") == str(root):
                return True
        return False
    finally:
        catalog.close()


def _refuse_unverified(source: Collection, workers: int) -> None:
    """Refuse an original that fails verify: its copy would pass its faults on as vouched for."""
    report: Report = verify_collection(source, workers=workers)
    if not report.ok:
        first = report.failures[0] if report.failures else None
        detail = " ".join(f"{first.check}: {first.where}: {first.detail}".split()) if first else "see verify"
        raise SourceFailsVerify(f"{source.root} does not pass verify ({report.failed} checks failed; "
                                f"the first, {detail})",
                                f"run `archiver -C {source.root} verify` to see them all, repair or restore the "
                                "collection, then migrate it")


def _make_folder(source: Collection, folder: Path, target: Target, settings: StorageSettings) -> Collection:
    """The new folder: the note saying what it is becoming, the original's settings with the
    new catalog and store, and a copy of every file of the original that is not made anew."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / MARKER, json.dumps(target.note(source)).encode("utf-8"))
    atomic_write(folder / CONFIG_NAME, _shared_settings(source, target.catalog_url, settings).encode("utf-8"))
    if Collection.open(folder).config != dataclasses.replace(source.config, catalog_url=target.catalog_url,
                                                             storage=settings):
        raise UsageProblem(f"{source.config_path} sets [catalog] or [storage] in a way migrate cannot rewrite",
                           "write them as tables ([catalog], [storage]), as `archiver init` does, then migrate again")
    for path in sorted(source.root.iterdir()):
        if path.name in NOT_COPIED:
            continue
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                copied = folder / file.relative_to(source.root)
                copied.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(copied, file.read_bytes(), mode=file.stat().st_mode & 0o777)
    return Collection.open(folder)


def _shared_settings(source: Collection, catalog_url: str, storage: StorageSettings) -> str:
    """The original's archiver.toml as its owner wrote it, comments and all, with its [catalog]
    and [storage] tables replaced by the shared collection's."""
    kept, replaced = [], False
    for line in source.config_path.read_text(encoding="utf-8").splitlines():
        if header := re.match(r"\s*\[\s*([\w.-]+)\s*\]\s*(#.*)?$", line):
            replaced = header.group(1) in ("catalog", "storage")
        if not replaced:
            kept.append(line)
    catalog = f"[catalog]\nurl = {json.dumps(catalog_url)}  # password: PGPASSWORD or ~/.pgpass, never here\n"
    return "\n".join(kept).rstrip("\n") + f"\n\n{catalog}\n{render_storage(storage)}"


def _upload(source: Collection, storage: Storage, progress: Callable[[int, int], None] | None) -> list[StoredFile]:
    """Every WARC file of the original through the store's upload, each checked against the
    SHA-256 its catalog holds."""
    cataloged = dict(source.catalog.query("SELECT name, sha256 FROM warc_files").fetchall())
    names = source.storage.names()
    total = sum(source.storage.size(name) or 0 for name in names)
    sent = [0]

    def count(length: int) -> None:
        sent[0] += length
        if progress:
            progress(sent[0], total)

    uploaded = []
    for name in names:
        with source.storage.reader(name) as raw:
            stored = storage.put(name, _Counted(raw, count))
        if cataloged.get(name) not in (None, stored.sha256):
            raise StorageProblem(f"{name} changed while it was migrated (SHA-256 {stored.sha256}, cataloged "
                                 f"{cataloged[name]})", "verify the original, then run migrate again")
        uploaded.append(stored)
    return uploaded


class _Counted:
    """A file read through, each read's length told to `count` (the progress bar)."""

    def __init__(self, raw: BinaryIO, count: Callable[[int], None]) -> None:
        self._raw, self._count = raw, count

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._count(len(data))
        return data


def _load_catalog(source: Collection, catalog: Catalog, copy: Collection, key: SigningKey,
                  uploaded: list[StoredFile], target: Target) -> None:
    """Every row of the original's catalog, each file's retention as the store reported it, the
    custody log line for line and the migration's own entry: one transaction."""
    statements: list[tuple[str, Iterator[tuple] | list[tuple]]] = []
    for table, columns, self_references, primary in _tables(source.catalog):
        statements.append((f"INSERT INTO {table} ({_quoted(columns)}) VALUES ({placeholders(columns)})",
                           _rows(source.catalog, table, columns, self_references)))
        # A row naming another of its table (a revisit its original) is linked once both are in.
        for column in self_references:
            statements.append((f'UPDATE {table} SET "{column}" = ? WHERE "{primary}" = ?', source.catalog.query(
                f'SELECT "{column}", "{primary}" FROM {table} WHERE "{column}" IS NOT NULL')))
    statements.append(("UPDATE warc_files SET retention_mode = ?, retain_until = ? WHERE name = ?",
                       [(file.retention_mode, file.retain_until, file.name) for file in uploaded]))
    lines = [line for _, line in read_entries(source.root / LOG_NAME)]
    added: list[tuple[int, str]] = []
    log = CustodyLog(copy.root / LOG_NAME, copy.config.operator, key,
                     shared=lambda extend: added.extend(extend(lines[-1].decode("utf-8"))))

    def chain(tail: str | None) -> list[tuple[int, str]]:
        log.append(MIGRATED, {"from": str(source.root), "catalog": target.catalog_url, "storage": target.storage_url,
                              "warc_files": len(uploaded), "custody_entries": len(lines)})
        return [(parse_entry(line)["seq"], line.decode("utf-8")) for line in lines] + added

    catalog.load(statements, chain)


def _tables(catalog: Catalog) -> list[tuple[str, list[str], list[str], str]]:
    """The original's tables, each after those it refers to: (name, columns, columns naming a
    row of the same table, primary key). The original is always SQLite, hence its own PRAGMAs."""
    names = [name for (name,) in catalog.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    found, needs = {}, {}
    for name in names:
        info = catalog.query(f"PRAGMA table_info({name})").fetchall()
        references = catalog.query(f"PRAGMA foreign_key_list({name})").fetchall()
        needs[name] = {row[2] for row in references if row[2] != name}
        primary = next((row[1] for row in info if row[5] == 1), None)
        found[name] = (name, [row[1] for row in info], [row[3] for row in references if row[2] == name], primary)
    return [found[name] for name in graphlib.TopologicalSorter(needs).static_order()]


def _rows(catalog: Catalog, table: str, columns: list[str], self_references: list[str]) -> Iterator[tuple]:
    """The table's rows, with references to rows of the same table left out (set afterwards)."""
    left_out = [columns.index(column) for column in self_references]
    for row in catalog.query(f"SELECT {_quoted(columns)} FROM {table}"):
        yield tuple(None if index in left_out else value for index, value in enumerate(row))


def _quoted(columns: list[str]) -> str:
    return ", ".join(f'"{column}"' for column in columns)
