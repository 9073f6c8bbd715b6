"""A collection folder: its layout, opening it with its `archiver.toml`, and the
handle a command holds on it, through which its stages share one open catalog."""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import uuid
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from archiver.store.catalog import Catalog
from archiver.store.catalog_locks import CatalogLocks
from archiver.store.durable import atomic_write, fsync_dir
from archiver.store.locks import EXPORT_LOCK_NAME, IMPORT_LOCK_NAME, RESUME_LOCK_NAME, InUse, Turn
from archiver.store.lost_catalog import refuse_a_lost_catalog
from archiver.store.settings import (CONFIG_NAME, Config, default_operator, parse_config, refuse_control_characters,
                                     render_config)
from archiver.store.storage import Storage
from archiver.store.storage_settings import StorageSettings, open_storage
from archiver.store.taken import mark_collection, refuse_taken_for_init
from archiver.errors import UsageProblem

SUBDIRS = ("seeds", "warcs", "manifests", "keys", "tmp")


class Collection:
    """A folder holding captures, their catalog, manifests and public keys.

    A command holds its collection (`with collection:`) and hands it down; whatever the
    stages it runs read from the catalog, they read through `collection.catalog`, opened on
    first use and closed when the outermost hold ends. Core functions hold it too, so that
    one called on its own (by a test, a benchmark) closes the catalog it opened, folding the
    write-ahead log in as before, while one called inside a command's hold shares its catalog."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        self._catalog: Catalog | None = None
        self._holds = 0
        self._guard = threading.Lock()  # threads may share one handle (a capture run has a writer thread)

    def __enter__(self) -> "Collection":
        with self._guard:
            self._holds += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._guard:
            self._holds -= 1
            if self._holds == 0 and self._catalog is not None:
                catalog, self._catalog = self._catalog, None
                catalog.close()

    @property
    def catalog(self) -> Catalog:
        """The catalog, opened once while the collection is held (see the class)."""
        with self._guard:
            if self._holds == 0:
                raise RuntimeError("hold the collection (`with collection:`) while using its catalog")
            if self._catalog is None:
                if self.config.catalog_url is None:
                    refuse_a_lost_catalog(self.root, self.catalog_path)
                self._catalog = Catalog(self.catalog_location)
            return self._catalog

    def in_use(self, alone: bool = False) -> InUse:
        """Hold the collection while changing it; `alone` waits for no one and fails if busy."""
        return InUse(self.root, exclusive=alone)

    def resuming(self) -> InUse:
        """Held by one `capture --resume` at a time, waiting for no one: fails if another holds it."""
        return InUse(self.root, exclusive=True, name=RESUME_LOCK_NAME)

    def exporting(self) -> ContextManager[None]:
        """Held while a manifest is exported and sealed, waiting for any other export to end (on
        a shared catalog, on any machine): two at once would take the same sequence number, and
        the later would replace the signed file of the earlier."""
        return self._in_turn(EXPORT_LOCK_NAME, CatalogLocks.exporting)

    def importing(self) -> ContextManager[None]:
        """Held while a file is imported, waiting for any other import to end (on a shared
        catalog, on any machine): two imports of one file at once would both store it, and the
        later fail to list it."""
        return self._in_turn(IMPORT_LOCK_NAME, CatalogLocks.importing)

    @contextlib.contextmanager
    def _in_turn(self, lock_name: str, across_machines: Callable[[CatalogLocks], ContextManager[None]]) -> Iterator[None]:
        with Turn(self.root / lock_name):
            if not self.config.catalog_url:  # a SQLite catalog, not opened (made) just for a lock it does not have
                yield
                return
            with self, across_machines(self.catalog.locks):
                yield

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @functools.cached_property
    def storage(self) -> Storage:
        """Where the collection's WARC files are kept, checked usable on first use."""
        return open_storage(self.config.storage, self.root)

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def catalog_location(self) -> Path | str:
        """Where the catalog is: the PostgreSQL URL of archiver.toml, or catalog.sqlite here."""
        return self.config.catalog_url or self.catalog_path

    def has_catalog(self) -> bool:
        """Whether a catalog may hold anything yet (a server's always may), without making one."""
        return self.config.catalog_url is not None or self.catalog_path.exists()

    @classmethod
    def open(cls, root: Path) -> "Collection":
        root = Path(root).absolute()
        path = root / CONFIG_NAME
        if not root.is_dir():
            raise UsageProblem(f"{root} is not a folder", "pass -C with an existing collection folder")
        if path.is_dir():
            raise UsageProblem(f"{path} is a folder, not the collection's settings file",
                               f"move it aside and put the collection's {CONFIG_NAME} in its place")
        if not path.is_file():
            raise UsageProblem(f"{root} is not an archiver collection (no {CONFIG_NAME})",
                               f"run `archiver init {root}` or pass -C DIR")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"cannot read {path}: {exc}", "check its permissions and encoding") from None
        collection = cls(root, parse_config(path, text))
        for sub in SUBDIRS:
            (root / sub).mkdir(exist_ok=True)
        return collection

    @classmethod
    def exists(cls, root: Path) -> bool:
        return (Path(root) / CONFIG_NAME).is_file()

    @classmethod
    def init(cls, root: Path, name: str | None = None, operator: str | None = None,
             catalog_url: str | None = None, storage: StorageSettings | None = None) -> "Collection":
        """Create the layout, the catalog in `catalog_url` (PostgreSQL) and WARC files in `storage` (S3) if given;
        refuses an existing collection, and before writing anything, targets another one holds (taken.py); an S3
        prefix is then claimed (its COLLECTION_MARKER) before anything else is written."""
        root = Path(root).absolute()
        if cls.exists(root):
            raise UsageProblem(f"{root} is already a collection", "use it with -C, or choose another folder")
        if enclosing := next((folder for folder in root.parents if cls.exists(folder)), None):
            # Every command run inside it would find the inner one, and the outer's files become its documents.
            raise UsageProblem(f"{root} is inside the collection {enclosing}",
                               "use that one (commands find it from any folder inside it), or choose a folder outside it")
        for what, value, option in (("name", name, "--name"), ("operator", operator, "--operator")):
            refuse_control_characters(what, value or "", option)
        if catalog_url is not None:
            from archiver.store.postgresql_url import check_url  # psycopg only when a server is used
            check_url(catalog_url, "--catalog")
        config = Config(name=name or root.name or "archive", operator=operator or default_operator(),
                        id=str(uuid.uuid4()), catalog_url=catalog_url, storage=storage or StorageSettings())
        store = refuse_taken_for_init(root, catalog_url, storage)
        made = not root.exists()
        with _writing(root):
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
            for lock in (EXPORT_LOCK_NAME, IMPORT_LOCK_NAME):  # made now, so that taking a turn adds no file
                (root / lock).touch()
        # The prefix is claimed once the folder is known to be writable: a marker is locked for
        # good, and one left by an init that then failed would hold the prefix for no collection.
        if store is not None:
            try:
                mark_collection(store, config.id, config.name)
            except BaseException:
                if made:  # the empty layout just made: a refused init leaves nothing behind
                    shutil.rmtree(root, ignore_errors=True)
                raise
        with _writing(root):
            atomic_write(root / CONFIG_NAME, render_config(config).encode("utf-8"))
            fsync_dir(root)
        return cls.open(root)


@contextlib.contextmanager
def _writing(root: Path) -> Iterator[None]:
    """A folder of a new collection being written: the machine's refusal, in one line."""
    try:
        yield
    except OSError as exc:
        raise UsageProblem(f"cannot create a collection in {root}: {exc.strerror or exc}",
                           "choose a folder you can write to") from None
