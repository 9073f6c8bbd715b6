"""archiver.toml: the settings a collection's commands run with, written at `archiver init`
and read, checked line by line, each time a command opens the collection."""

from __future__ import annotations

import getpass
import ipaddress
import json
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from archiver.store.sizes import parse_size
from archiver.store.storage_settings import StorageSettings, parse_storage, render_storage
from archiver.errors import UsageProblem

CONFIG_NAME = "archiver.toml"
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


def default_operator() -> str:
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


# A line break ends the warcinfo field line the collection's name and operator are written on
# (`operator: bad` then a bare `line`); any other control character has no place in one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def refuse_control_characters(what: str, value: str, where: str) -> None:
    """A UsageProblem when `value`, the collection's `what` (its name or operator) given in
    `where`, holds a line break or another control character."""
    if _CONTROL.search(value):
        raise UsageProblem(f"the collection's {what} {value!r} ({where}) holds a line break or another control "
                           "character: it is written into every WARC's warcinfo record", f"give the {what} on one line")


# archiver.toml's tables, in the order render_config writes them: a misspelled one would be
# read as absent, its settings silently replaced by defaults (a team's catalog by local SQLite).
_SECTIONS = ("collection", "catalog", "capture", "timestamps", "storage")


def parse_config(path: Path, text: str) -> Config:
    def bad(what: str) -> UsageProblem:
        return UsageProblem(f"{path}: {what}", "fix that line in archiver.toml")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise bad(f"not valid TOML ({exc})") from None
    if unknown := sorted(set(data) - set(_SECTIONS)):
        raise bad(f"unknown section [{unknown[0]}] (known: {', '.join(f'[{s}]' for s in _SECTIONS)})")
    meta = data.get("collection", {})
    raw = data.get("capture", {})
    stamps = data.get("timestamps", {})
    catalog = data.get("catalog", {})
    storage = data.get("storage", {})
    if not all(isinstance(table, dict) for table in (meta, raw, stamps, catalog, storage)):
        raise bad("[collection], [catalog], [storage], [capture] and [timestamps] must be tables")
    for section, table, known in (("collection", meta, {"id", "name", "operator"}), ("catalog", catalog, {"url"}),
                                  ("capture", raw, set(CaptureSettings.__dataclass_fields__)),
                                  ("timestamps", stamps, set(TimestampSettings.__dataclass_fields__))):
        if unknown := sorted(set(table) - known):
            raise bad(f"unknown setting {unknown[0]!r} in [{section}] (known: {', '.join(sorted(known))})")
    catalog_url = catalog.get("url")
    if catalog_url is not None:
        if not isinstance(catalog_url, str):
            raise bad("[catalog] url must be a string, a PostgreSQL URL such as \"postgresql://user@host:5432/database\"")
        from archiver.store.postgresql_url import check_url  # psycopg only when a server is used
        check_url(catalog_url, f"[catalog] url in {path}")
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
    operator = meta.get("operator", default_operator())
    collection_id = meta.get("id")
    if not isinstance(name, str) or not isinstance(operator, str) or not isinstance(collection_id, (str, type(None))):
        raise bad("id, name and operator must be strings")
    for what, value in (("name", name), ("operator", operator)):
        refuse_control_characters(what, value, f"{path} [collection]")
    return Config(name=name, operator=operator, capture=CaptureSettings(**values), timestamps=timestamps,
                  id=collection_id, catalog_url=catalog_url, storage=storage_settings)
