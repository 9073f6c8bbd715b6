"""The locks a catalog on PostgreSQL holds for processes on every machine: advisory locks,
which end with the session holding them, so a process that dies lets go of them. One machine
at a time repairs, exports or imports; and each WARC file's writer holds a lock of the file's
own from when it opens the file until the catalog records its close, so that another machine
tells a file being published (uploaded, its close not yet recorded) from one a dead run left;
each capture run holds a lock of its own while it runs, so that a resume on another machine
tells a run still capturing from one that was stopped; and a worker's capture holds one of its
host's per_host slots, so that the fleet sends a host no more than per_host captures at once.
On SQLite, used by one machine whose processes the collection's own locks order, each is nothing."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from typing import Iterator

from archiver.store.database import Database

REPAIR_LOCK = 0x61726368697652  # "archivR"
EXPORT_LOCK = 0x61726368697645  # "archivE"
IMPORT_LOCK = 0x61726368697649  # "archivI"
RESUME_LOCK = 0x61726368697655  # "archivU"


class CatalogLocks:
    def __init__(self, db: Database, guard: threading.Lock) -> None:
        self._db = db
        self._guard = guard  # the catalog's: one thread at a time uses its connection
        self._writing: set[str] = set()
        self._host_slots: set[int] = set()  # held by this process: a session takes its own lock again

    def repairing(self) -> contextlib.AbstractContextManager[None]:
        """Held while `doctor` repairs: one machine at a time lists what a dead writer left."""
        return self._held(REPAIR_LOCK)

    def exporting(self) -> contextlib.AbstractContextManager[None]:
        """Held while a manifest is exported and sealed, waited for: one machine at a time takes
        the next sequence number (on one machine, Collection.exporting() does this)."""
        return self._held(EXPORT_LOCK)

    def importing(self) -> contextlib.AbstractContextManager[None]:
        """Held while a file is imported, waited for: two machines importing one file at once
        would both store it, and the later fail to list it (on one machine, Collection.importing())."""
        return self._held(IMPORT_LOCK)

    @contextlib.contextmanager
    def resuming(self) -> Iterator[bool]:
        """Held by one `capture --resume` at a time on any machine, waiting for no one: yields
        False, holding nothing, when another machine's resume holds it (two would capture the same rest)."""
        with self._guard:
            held = self._db.try_hold(RESUME_LOCK)
        try:
            yield held
        finally:
            if held:
                with self._guard:
                    self._db.let_go(RESUME_LOCK)

    def writing(self, name: str) -> None:
        """This process writes the WARC file `name` from now until written(name)."""
        with self._guard:
            self._db.hold(writer_lock(name))
            self._writing.add(name)

    def written(self, name: str) -> None:
        """The file's close is recorded: let go of its lock, if this process holds it."""
        with self._guard:
            if name in self._writing:
                self._writing.discard(name)
                self._db.let_go(writer_lock(name))

    def take_host_slot(self, host: str, per_host: int) -> int | None:
        """One of the `per_host` slots of `host` that no process on any machine holds, held by
        this one from now until let_host_slot_go(it); None while all are held."""
        with self._guard:
            for slot in range(per_host):
                lock = host_slot_lock(host, slot)
                if lock not in self._host_slots and self._db.try_hold(lock):
                    self._host_slots.add(lock)
                    return lock
        return None

    def let_host_slot_go(self, lock: int) -> None:
        with self._guard:
            self._host_slots.discard(lock)
            self._db.let_go(lock)

    def being_exported(self) -> bool:
        """Whether a live process, on any machine, exports a manifest now."""
        with self._guard:
            return self._db.held_elsewhere(EXPORT_LOCK)

    def being_written(self, name: str) -> bool:
        """Whether a live process, on any machine, writes the file `name` now."""
        with self._guard:
            return self._db.held_elsewhere(writer_lock(name))

    @contextlib.contextmanager
    def _held(self, lock: int) -> Iterator[None]:
        with self._guard:
            self._db.hold(lock)
        try:
            yield
        finally:
            with self._guard:
                self._db.let_go(lock)


def run_lock(run_id: str) -> int:
    """The advisory lock a capture run holds while it runs: 64 bits of the SHA-256 of its id."""
    return int.from_bytes(hashlib.sha256(b"archiver run " + run_id.encode()).digest()[:8], "big", signed=True)


def writer_lock(name: str) -> int:
    """The advisory lock of a WARC file's writer: 64 bits of the SHA-256 of its name."""
    return int.from_bytes(hashlib.sha256(b"archiver WARC writer " + name.encode()).digest()[:8], "big", signed=True)


def host_slot_lock(host: str, slot: int) -> int:
    """The advisory lock of one of a host's per_host slots: 64 bits of the SHA-256 of both."""
    return int.from_bytes(hashlib.sha256(f"archiver host slot {slot} {host}".encode()).digest()[:8], "big", signed=True)
