"""What only a process that stopped mid-way leaves in a collection, found cheaply (no WARC file
is read), so that every command can afford to look before it starts."""

from __future__ import annotations

from pathlib import Path

from archiver.store.collection import Collection
from archiver.store.storage import UNFINISHED_SUFFIX, LocalFolder, Storage


IMPORTED_PREFIX = "imported-"  # an imported WARC's name: this, its SHA-256's first 16 hex digits, its suffix


def shared_by_machines(storage: Storage) -> bool:
    """Whether other machines write WARCs into the same store (an S3 bucket, each from its own
    spool). Then a file the catalog lists as open that this machine's spool does not hold may
    be another machine's, being written now: a leftover only once it is published."""
    return not isinstance(storage, LocalFolder)


def interruption_signs(collection: Collection) -> list[str]:
    """What only a process that stopped mid-way leaves, found without reading any WARC file: a
    file still `.open`, a file the catalog lists as still being written, a spooled response, an
    export's temporary file. For a caller holding the collection alone, before a full `examine`."""
    still_open = []
    if collection.has_catalog():  # no catalog, nothing listed: and none is made just to look
        with collection:
            still_open = [name for (name,) in collection.catalog.query(
                "SELECT name FROM warc_files WHERE closed_at IS NULL ORDER BY name")]
    if shared_by_machines(collection.storage):
        still_open = [name for name in still_open if published_by_a_dead_run(collection, name)]
    return ([f"warcs/{name}{UNFINISHED_SUFFIX}" for name in collection.storage.unfinished()]
            + [f"warcs/{name}" for name in still_open if name not in collection.storage.unfinished()]
            + [str(path.relative_to(collection.root)) for path, _ in temporaries(collection)]
            + [f"manifests/{path.name}" for path in sorted((collection.root / "manifests").glob(".*.tmp"))])


def published_by_a_dead_run(collection: Collection, name: str) -> bool:
    """Whether a file the catalog lists as open is published: by a run that died before the
    catalog recorded its close, unless its writer (on any machine) is alive and about to."""
    with collection:
        return collection.storage.size(name) is not None and not collection.catalog.locks.being_written(name)


def temporaries(collection: Collection) -> list[tuple[Path, str]]:
    """What runs make while they work, and remove when done, each with what it was: in tmp/, a
    response being received (a file), a bundle being made (a folder), an imported WARC being
    copied in; a WARC being stored whole (warcs/.NAME.PID.put); a document copy being written.
    Found where no run holds the collection, each is a leftover, never evidence: nothing lists it."""
    root = collection.root
    return sorted([*((path, "a bundle being made" if path.is_dir() else "a response being received")
                     for path in collection.tmp.glob("tmp*")),
                   *((path, "a WARC being imported") for path in collection.tmp.glob("import-*")),
                   *((path, "a WARC being stored") for path in (root / "warcs").glob(".*.put")),
                   *((path, "a document copy being written") for path in (root / "documents").glob("sha256/*/.*.tmp"))])
