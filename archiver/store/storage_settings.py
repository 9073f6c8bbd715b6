"""The `[storage]` table of archiver.toml: where a collection's WARC files live (its own
`warcs/` folder unless an `s3://bucket/prefix/` URL is given), and opening that storage.

No secret is ever read from here (archiver.toml is copied to every machine of a team): an S3
store's credentials, and its endpoint and addressing style where this table does not set
them, come from the standard AWS variables and files, as every AWS tool reads them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archiver.store.storage import Storage

ADDRESSING_STYLES = ("auto", "path", "virtual")
RETENTION_MODES = ("COMPLIANCE",)
# Seconds an S3 request waits for the store to connect or to answer (botocore's own read
# timeout): one that does not is not asked again, so a hung store holds a command this long.
DEFAULT_TIMEOUT = 60
URL_FORM = "s3://BUCKET/PREFIX/"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class StorageSettings:
    """Where WARC files go: `url` None is the collection's warcs/ folder."""

    url: str | None = None
    endpoint: str | None = None          # unset: AWS_ENDPOINT_URL or the AWS config, else AWS itself
    region: str | None = None
    addressing_style: str | None = None  # unset: s3.addressing_style of the AWS config
    require_retention: str | None = None  # "COMPLIANCE": refuse a bucket whose default lock is weaker
    min_retention_days: int = 0
    timeout: float = DEFAULT_TIMEOUT

    @property
    def bucket(self) -> str:
        return split_url(self.url)[0]

    @property
    def prefix(self) -> str:
        return split_url(self.url)[1]

    def as_record(self) -> dict:
        """Where the evidence is kept and how it is locked, for every warcinfo, which bundles carry
        to outsiders: the bucket and prefix, never the store's endpoint (an internal address) nor
        a value free enough to hold a secret (a region)."""
        return {"url": f"s3://{self.bucket}/{self.prefix}" if self.url else None,
                "require_retention": self.require_retention, "min_retention_days": self.min_retention_days}


def split_url(url: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix/' → ('bucket', 'some/prefix/'); ValueError naming the form if not
    one, never quoting it: a key pasted into it would be shown."""
    never_in_url = "credentials come from the AWS variables or profile, never the URL"
    if "?" in str(url) or "#" in str(url):
        raise ValueError(f"the S3 storage URL has a query or a fragment ('?…', '#…'), which archiver.toml would keep "
                         f"for every machine to read ({never_in_url})")
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", url or "")
    if not match or not _BUCKET.fullmatch(match.group(1)):
        raise ValueError(f"not an S3 storage URL (write it as {URL_FORM}, the bucket in lower case; {never_in_url})")
    prefix = match.group(2)
    return match.group(1), prefix if not prefix or prefix.endswith("/") else prefix + "/"


def parse_storage(raw: dict) -> StorageSettings:
    """The [storage] table, checked; ValueError saying which setting is wrong and how."""
    known = set(StorageSettings.__dataclass_fields__)
    if unknown := sorted(set(raw) - known):
        raise ValueError(f"unknown setting {unknown[0]!r} in [storage] (known: {', '.join(sorted(known))})")
    for key in ("url", "endpoint", "region", "addressing_style", "require_retention"):
        if not isinstance(raw.get(key, ""), str):
            raise ValueError(f"{key} in [storage] must be a string")
    values = {key: raw[key] or None for key in ("url", "endpoint", "region", "addressing_style", "require_retention")
              if key in raw}
    if values.get("url"):
        split_url(values["url"])
    elif len(values) > 1 or raw.get("min_retention_days") or "timeout" in raw:
        raise ValueError(f"[storage] settings other than url need an S3 url ({URL_FORM})")
    if values.get("endpoint") and (not values["endpoint"].startswith(("http://", "https://"))
                                   or any(mark in values["endpoint"] for mark in "@?#")):
        raise ValueError("endpoint in [storage] must be an http(s) URL without user, password, query or fragment,"
                         " such as https://s3.example.org")
    if values.get("addressing_style") not in (None, *ADDRESSING_STYLES):
        raise ValueError(f"addressing_style must be one of {', '.join(ADDRESSING_STYLES)}")
    if values.get("require_retention") not in (None, *RETENTION_MODES):
        raise ValueError('require_retention must be "COMPLIANCE" (GOVERNANCE retention can be lifted, so it is not asked for)')
    days = raw.get("min_retention_days", 0)
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise ValueError("min_retention_days must be a whole number of days")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
        raise ValueError("timeout in [storage] must be a number of seconds, more than 0 and at most 3600")
    return StorageSettings(**values, min_retention_days=days, timeout=timeout)


def render_storage(settings: StorageSettings) -> str:
    """The [storage] table as archiver.toml writes it."""
    if not settings.url:
        return ('[storage]\n# url = "s3://bucket/prefix/"    # WARC files in an S3 store; unset: the warcs/ folder\n')
    lines = ["[storage]", f"url = {json.dumps(settings.url)}    # credentials: the standard AWS variables or profile"]
    for key in ("endpoint", "region", "addressing_style", "require_retention"):
        value = getattr(settings, key)
        lines.append(f"{key} = {json.dumps(value)}" if value else f"# {key} = ...   # unset: from the AWS configuration")
    if settings.min_retention_days:
        lines.append(f"min_retention_days = {settings.min_retention_days}")
    lines.append(f"timeout = {settings.timeout:g}" if settings.timeout != DEFAULT_TIMEOUT else
                 f"# timeout = {DEFAULT_TIMEOUT}   # seconds a request waits for the store to answer")
    return "\n".join(lines) + "\n"


def open_storage(settings: StorageSettings, root: Path) -> "Storage":
    """The collection's storage, checked usable (an S3 bucket reachable, readable and locked as
    required) before anything is written to it; a UsageProblem saying what to fix if not."""
    from archiver.store.storage import LocalFolder
    if not settings.url:
        return LocalFolder(root / "warcs")
    from archiver.store.s3 import S3Storage  # boto3 is loaded only by collections that use it
    storage = S3Storage(settings, spool=root / "warcs")
    storage.check()
    return storage
