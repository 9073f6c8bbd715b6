"""A collection folder: its layout, its `archiver.toml`, and finding it from the CLI; and the
handle a command holds on it, through which its stages share one open catalog."""

from __future__ import annotations

import contextlib
import functools
import getpass
import ipaddress
import json
import socket
import threading
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from archiver.read.urls import without_credentials
from archiver.store.catalog import Catalog
from archiver.store.catalog_locks import CatalogLocks
from archiver.store.database import POSTGRESQL_SCHEMES
from archiver.store.durable import atomic_write, fsync_dir
from archiver.store.locks import EXPORT_LOCK_NAME, IMPORT_LOCK_NAME, RESUME_LOCK_NAME, InUse, Turn
from archiver.store.lost_catalog import refuse_a_lost_catalog
from archiver.store.sizes import parse_size
from archiver.store.storage import Storage
from archiver.store.storage_settings import StorageSettings, open_storage, parse_storage, render_storage
from archiver.store.taken import mark_collection, refuse_taken_for_init
from archiver.errors import UsageProblem

CONFIG_NAME = "archiver.toml"
SUBDIRS = ("seeds", "warcs", "manifests", "keys", "tmp")
CAPTURE_MODES = ("auto", "browser", "http")
# Captures at once when `concurrency` is not set: a rendered page is a renderer process and
# dozens of requests, a plain capture one request, so fewer pages than plain captures run at once.
HTTP_CONCURRENCY = 8
BROWSER_CONCURRENCY = 4
# The longest a setting in seconds may be. A capture may rightly take hours (a large video on a
# slow link); a week is more than any needs, and far longer no wait can be set (the platform's
# clock overflows), and TOML's nan or inf would mean never.
MAX_SECONDS = 7 * 24 * 3600
# Seconds a rendered page is watched, once loaded and its network quiet, while it still changes.
WAIT_AFTER_LOAD = 5.0


@dataclass(frozen=True)
class CaptureSettings:
    """How captures are made; every field is recorded in each WARC's warcinfo."""

    concurrency: int | None = None  # None: HTTP_CONCURRENCY over HTTP, BROWSER_CONCURRENCY in a browser
    per_host: int = 2
    timeout: float = 60.0
    max_size: int = 200 * 10**6
    max_redirects: int = 10
    warc_size: int = 10**9
    warc_age: float = 60.0  # seconds an open WARC of a shared store (S3) waits before it goes up
    wait_after_load: float = WAIT_AFTER_LOAD
    allow_private: bool = False
    allow_networks: tuple[str, ...] = ()
    verify_tls: bool = True
    ca_bundle: str | None = None
    user_agent: str | None = None
    # "browser": Chromium renders each page and every request it makes is recorded; "http": only
    # the cited URL's own exchanges; "auto": the browser when Chromium is installed.
    capture_mode: str = "auto"

    def captures_at_once(self, browser: bool) -> int:
        """`concurrency` as set, else the default of the way pages are captured."""
        return self.concurrency or (BROWSER_CONCURRENCY if browser else HTTP_CONCURRENCY)

    def as_record(self) -> dict:
        record = dict(self.__dict__)
        record["allow_networks"] = list(self.allow_networks)
        return record


@dataclass(frozen=True)
class TimestampSettings:
    """RFC 3161 timestamp authorities, tried in order, and the roots their tokens must chain to."""

    authorities: tuple[str, ...] = ()
    trusted_roots: str | None = None  # a PEM file, relative to the collection folder
    timeout: float = 10.0


@dataclass(frozen=True)
class Config:
    name: str
    operator: str
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    timestamps: TimestampSettings = field(default_factory=TimestampSettings)
    id: str | None = None  # a UUID given at `archiver init`, naming the collection in manifests
    catalog_url: str | None = None  # a PostgreSQL database; None: catalog.sqlite in the folder
    storage: StorageSettings = field(default_factory=StorageSettings)


def _default_operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _concurrency_line(concurrency: int | None) -> str:
    """The setting as written, or, not set, commented out with what applies instead."""
    if concurrency is not None:
        return f"concurrency = {concurrency}                 # captures at once"
    return (f"# concurrency = {HTTP_CONCURRENCY}               # captures at once; "
            f"unset: {HTTP_CONCURRENCY} over HTTP, {BROWSER_CONCURRENCY} pages in a browser")


def _catalog_line(url: str | None) -> str:
    if url is not None:
        return f"url = {json.dumps(url)}  # password: PGPASSWORD or ~/.pgpass, never here"
    return '# url = "postgresql://user@host:5432/database"  # unset: catalog.sqlite in this folder'


def render_config(config: Config) -> str:
    c = config.capture
    q = lambda s: json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    return f"""# archiver collection settings
[collection]
id = {q(config.id)}
name = {q(config.name)}
operator = {q(config.operator)}        # who runs the captures; recorded in every WARC

[catalog]
{_catalog_line(config.catalog_url)}

[capture]
{_concurrency_line(c.concurrency)}
per_host = {c.per_host}                    # captures at once against one host (by all workers together)
timeout = {c.timeout}                  # wall-clock seconds allowed for one capture, redirects included
max_size = "{c.max_size // 10**6}MB"           # bytes kept of one response; the rest is cut and marked WARC-Truncated
max_redirects = {c.max_redirects}
warc_size = "{c.warc_size // 10**6}MB"           # start a new WARC file past this size
warc_age = {c.warc_age:g}                   # seconds: in an S3 store, upload a WARC file once this old
verify_tls = {str(c.verify_tls).lower()}
{"" if c.ca_bundle else "# "}ca_bundle = {q(c.ca_bundle or "private-ca.pem")}  # PEM file of CA certificates trusted instead of the system's (a private CA; relative to this folder), as --ca-bundle
capture_mode = "{c.capture_mode}"          # "browser" (Chromium, every subresource), "http" (the URL alone), "auto"
wait_after_load = {c.wait_after_load:g}             # seconds at most a loaded page is watched while it changes (late content, a meta refresh or script redirect due, DOM changes); 0: not
# Private, loopback and link-local addresses are refused unless allowed here,
# network by network (e.g. ["127.0.0.1/32", "10.1.0.0/16"]), or all at once with allow_private.
allow_private = {str(c.allow_private).lower()}
allow_networks = {json.dumps(list(c.allow_networks))}

[timestamps]
# RFC 3161 timestamp authorities asked, in order, to timestamp each manifest, e.g.
# ["https://freetsa.org/tsr"]; trusted_roots is the PEM file of CA certificates their
# tokens must chain to (relative to this folder).
authorities = {json.dumps(list(config.timestamps.authorities))}
trusted_roots = {q(config.timestamps.trusted_roots or "")}

{render_storage(config.storage)}"""


def _parse_config(path: Path, text: str) -> Config:
    def bad(what: str) -> UsageProblem:
        return UsageProblem(f"{path}: {what}", "fix that line in archiver.toml")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise bad(f"not valid TOML ({exc})") from None
    meta = data.get("collection", {})
    raw = data.get("capture", {})
    stamps = data.get("timestamps", {})
    catalog = data.get("catalog", {})
    storage = data.get("storage", {})
    if not all(isinstance(table, dict) for table in (meta, raw, stamps, catalog, storage)):
        raise bad("[collection], [catalog], [storage], [capture] and [timestamps] must be tables")
    catalog_url = catalog.get("url")
    if catalog_url is not None:
        if not isinstance(catalog_url, str) or not catalog_url.startswith(POSTGRESQL_SCHEMES):
            raise bad(f"[catalog] url must be a PostgreSQL URL such as \"postgresql://user@host:5432/database\","
                      f" not {without_credentials(str(catalog_url))!r}")
        from archiver.store.postgresql_database import check_url
        check_url(catalog_url)
    try:
        storage_settings = parse_storage(storage)
    except ValueError as exc:
        raise bad(str(exc)) from None
    authorities = stamps.get("authorities", [])
    roots = stamps.get("trusted_roots", "")
    timeout = stamps.get("timeout", 10.0)
    if not isinstance(authorities, list) or not all(isinstance(a, str) and a.startswith(("http://", "https://"))
                                                    for a in authorities):
        raise bad('authorities must be a list of http(s) URLs, such as ["https://freetsa.org/tsr"]')
    if not isinstance(roots, str) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise bad("trusted_roots must be a file name and timeout a positive number of seconds")
    timestamps = TimestampSettings(tuple(authorities), roots or None, float(timeout))
    known = set(CaptureSettings.__dataclass_fields__)
    if unknown := sorted(set(raw) - known):
        raise bad(f"unknown setting {unknown[0]!r} in [capture] (known: {', '.join(sorted(known))})")
    values: dict = {}
    try:
        for key in ("concurrency", "per_host", "max_redirects"):
            if key in raw:
                if not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < (0 if key == "max_redirects" else 1):
                    raise ValueError(f"{key} must be a whole number of at least {0 if key == 'max_redirects' else 1}")
                values[key] = raw[key]
        for key in ("timeout", "warc_age", "wait_after_load"):  # only a wait may be none
            if key in raw:
                least = "from 0" if key == "wait_after_load" else "above 0"
                if not isinstance(raw[key], (int, float)) or isinstance(raw[key], bool) or not (
                        0 <= raw[key] if least == "from 0" else 0 < raw[key]) or raw[key] > MAX_SECONDS:
                    raise ValueError(f"{key} must be a number of seconds {least} and at most {MAX_SECONDS} (a week)")
                values[key] = float(raw[key])
        for key in ("max_size", "warc_size"):
            if key in raw:
                values[key] = parse_size(raw[key])
        for key in ("allow_private", "verify_tls"):
            if key in raw:
                if not isinstance(raw[key], bool):
                    raise ValueError(f"{key} must be true or false")
                values[key] = raw[key]
        for key in ("ca_bundle", "user_agent"):
            if key in raw:
                if not isinstance(raw[key], str):
                    raise ValueError(f"{key} must be a string")
                values[key] = raw[key] or None
        if values.get("ca_bundle"):  # like trusted_roots, from the collection's folder, wherever a command runs
            values["ca_bundle"] = str(path.parent / values["ca_bundle"])
        if "capture_mode" in raw:
            if raw["capture_mode"] not in CAPTURE_MODES:
                raise ValueError(f"capture_mode must be one of {', '.join(repr(m) for m in CAPTURE_MODES)}")
            values["capture_mode"] = raw["capture_mode"]
        if "allow_networks" in raw:
            networks = raw["allow_networks"]
            if not isinstance(networks, list):
                raise ValueError('allow_networks must be a list such as ["127.0.0.1/32"]')
            for network in networks:
                ipaddress.ip_network(network, strict=False)
            values["allow_networks"] = tuple(networks)
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from None
    name = meta.get("name", path.parent.name)
    operator = meta.get("operator", _default_operator())
    collection_id = meta.get("id")
    if not isinstance(name, str) or not isinstance(operator, str) or not isinstance(collection_id, (str, type(None))):
        raise bad("id, name and operator must be strings")
    return Config(name=name, operator=operator, capture=CaptureSettings(**values), timestamps=timestamps,
                  id=collection_id, catalog_url=catalog_url, storage=storage_settings)


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
        if not path.is_file():
            raise UsageProblem(f"{root} is not an archiver collection (no {CONFIG_NAME})",
                               f"run `archiver init {root}` or pass -C DIR")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"cannot read {path}: {exc}", "check its permissions and encoding") from None
        collection = cls(root, _parse_config(path, text))
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
        if catalog_url is not None:
            _parse_config(root / CONFIG_NAME, f"[catalog]\nurl = {json.dumps(catalog_url)}\n")
        config = Config(name=name or root.name or "archive", operator=operator or _default_operator(),
                        id=str(uuid.uuid4()), catalog_url=catalog_url, storage=storage or StorageSettings())
        if (store := refuse_taken_for_init(root, catalog_url, storage)) is not None:
            mark_collection(store, config.id, config.name)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
            for lock in (EXPORT_LOCK_NAME, IMPORT_LOCK_NAME):  # made now, so that taking a turn adds no file
                (root / lock).touch()
            atomic_write(root / CONFIG_NAME, render_config(config).encode("utf-8"))
            fsync_dir(root)
        except OSError as exc:
            raise UsageProblem(f"cannot create a collection in {root}: {exc.strerror or exc}",
                               "choose a folder you can write to") from None
        return cls.open(root)
