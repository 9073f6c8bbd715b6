"""What a capture run is asked for: URLs as given, documents and folders of documents, read
into the distinct URLs to capture and the documents whose claims cite them."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from archiver.errors import UsageProblem
from archiver.evidence.custody import LOG_NAME
from archiver.read.model import NOTE_KEY
from archiver.read.seeds import Document, NotADocument, UnreadableDocument, documents_in, path_text, read_document
from archiver.read.url_spool import UrlSpool
from archiver.read.urls import fetchable_problem, normalise_url, without_credentials
from archiver.store.catalog import Catalog, how_many_found
from archiver.store.collection import CONFIG_NAME, Collection
from archiver.store.documents import FOLDER as DOCUMENT_COPIES
from archiver.store.rows import CaptureRow

# What a collection keeps in its own folder. A folder walked for documents may be a collection's
# (`archiver capture .` run again where the first run made one): its custody log is a .jsonl, as
# claim sheets are, and is the log, not a sheet; the copies of documents read are not new ones.
_COLLECTION_OWN = frozenset({LOG_NAME, CONFIG_NAME, DOCUMENT_COPIES, "warcs", "manifests", "keys", "tmp"})
# A URL of a scheme other than http(s) without "//" after it (data:, mailto:, javascript:), not a
# path: an absolute Windows path opens with a one-letter drive (C:). Nor a host and port given
# without a scheme (example.org:8080/page, localhost:8080): no dot in the name, no digit after it.
_OTHER_SCHEME = re.compile(r"(?!https?:)([a-z][a-z0-9+-]+):(?!\d)", re.IGNORECASE)


def _unsigned(target: str) -> str:
    """`target`, a URL typed without its scheme, with what may be a user name and password
    (`user:secret@host/…`) as ***, for a message: an error never echoes credentials."""
    return re.sub(r"^[^/?#]*@", "***@", target)


@dataclass
class Targets:
    """What a capture run was asked for: distinct URLs in first-seen order, and their documents."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # a warning for each file not read: not a document, or unreadable
    _document_keys: set[str] = field(default_factory=set)
    # Kept on disk, not in a list and a set of their keys: a claim sheet can cite a million pages.
    _distinct: UrlSpool = field(default_factory=UrlSpool)
    urls: Sequence[str] = field(init=False)   # `_distinct`'s, or those a resume left of them

    def __post_init__(self) -> None:
        self.urls = self._distinct

    def first_sight_of(self, document_key: str) -> bool:
        """Whether the document named `document_key` is new to this run (and now seen)."""
        if document_key in self._document_keys:
            return False
        self._document_keys.add(document_key)
        return True

    def add_url(self, url: str, key: str | None = None) -> None:
        """`url`, unless one of its normalised form `key` (normalise_url) is in already."""
        self._distinct.add(url, normalise_url(url) if key is None else key)


def document_key(path: Path, root: Path) -> str:
    """The stable name of a document: its path inside the collection, else its absolute path.
    Claim ids derive from it, so the same file keeps its ids from run to run."""
    resolved = path.resolve()
    try:
        key = path_text(resolved.relative_to(root.resolve()).as_posix())
    except ValueError:
        return path_text(resolved.as_posix())
    # A file called `note` in the collection's folder: its claims are not those typed with `cite`.
    return "./" + key if key == NOTE_KEY else key


def read_targets(targets: list[str], root: Path, progress: Callable[[str, int, int], None] | None = None) -> Targets:
    """URLs as given, documents, and folders of documents → the URLs to capture. A claim sheet,
    which may be hundreds of megabytes, tells `progress` (its key, bytes read, of how many) as
    it is read."""
    found = Targets()
    for target in targets:
        if "://" in target:
            problem = fetchable_problem(target)
            if problem:
                raise UsageProblem(f"cannot capture {without_credentials(target)}: {problem}")  # says how to mend it
            found.add_url(target)
            continue
        path = Path(target)
        if path.is_dir():
            paths = [found for found in documents_in(path) if not _collections_own(found)]
        elif path.is_file():
            paths = [path]
        elif scheme := _OTHER_SCHEME.match(target):
            raise UsageProblem(f"cannot capture {_unsigned(target)[:80]}: a {scheme.group(1).lower()}: URL; only http and "
                               "https URLs are captured", "give an http:// or https:// URL")
        elif path.exists():  # a FIFO, a socket or a device: no document to read, however long one waited
            raise UsageProblem(f"{_unsigned(target)} is not a regular file (a FIFO, a socket or a device)",
                               "give a document file, a folder of documents, or a URL")
        else:
            raise UsageProblem(f"no such file, folder or URL: {_unsigned(target)}",
                               "give a URL with its scheme (https://…) or an existing path")
        for document_path in paths:
            key = document_key(document_path, root)
            if not found.first_sight_of(key):  # named twice, or again through a link to it: read once
                continue
            try:
                document = read_document(document_path, key, None if progress is None else functools.partial(progress, key))
            except NotADocument as skipped:
                found.skipped.append(str(skipped))
                continue
            except UnreadableDocument as unreadable:
                if not path.is_dir():
                    raise
                found.skipped.append(f"{unreadable.message}; skipped")
                continue
            found.documents.append(document)
            for url, url_key in document.url_pairs():  # keyed as the document was read
                found.add_url(url, url_key)
    return found


def _collections_own(path: Path) -> bool:
    """Whether `path` is one of the files of the nearest collection it is in (see _COLLECTION_OWN)."""
    path = path.absolute()
    home = next((folder for folder in path.parents if Collection.exists(folder)), None)
    return home is not None and path.relative_to(home).parts[0] in _COLLECTION_OWN


def existing_capture(catalog: Catalog, id_prefix: str) -> CaptureRow:
    """The one capture whose id starts with `id_prefix`, for a claim to cite."""
    matches = catalog.find_capture(id_prefix)
    if len(matches) != 1:
        raise UsageProblem(f"{id_prefix!r} matches {how_many_found(len(matches))} captures", "give a capture id from `archiver captures`")
    return matches[0]
