"""The catalog in a SQLite file beside the collection's WARCs: the single-machine default.

WAL mode lets readers run beside a capture; FULL synchronous makes each commit durable; a
write takes the database's one write lock at its start (BEGIN IMMEDIATE), so a write never
fails half-way because another began first."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from archiver.errors import StorageProblem, UsageProblem


class SQLite:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.recorded_as = path.name
        self.read_only = False
        self._disk_full = False
        try:
            if path.exists() and not os.access(path.parent, os.W_OK):
                self._db = self._open_read_only(path)
            else:
                self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
                try:
                    self._set_up()
                except sqlite3.OperationalError:
                    if not path.exists() or not _no_space_left(path.parent):
                        raise
                    # A full disk has no room for the write-ahead log's shared-memory file, and
                    # none for a change either: the catalog is read as on read-only storage,
                    # and a change is refused with the disk's own error.
                    self._db.close()
                    self._db = self._open_read_only(path)
                    self._disk_full = True
        except sqlite3.DatabaseError as exc:
            raise UsageProblem(f"cannot open the catalog {path}: {exc}",
                               "check that it is a catalog.sqlite made by archiver and that you can write to it") from None

    def _open_read_only(self, path: Path) -> sqlite3.Connection:
        """A collection on read-only storage (a write-protected disk, a read-only mount) can
        still be read and verified. Nothing can change the file there, so SQLite may skip the
        shared-memory file it could not create; unless a write-ahead log holds commits the
        file lacks, which only a writable copy can fold in."""
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size:
            raise StorageProblem(f"the catalog {path} is on read-only storage with unmerged writes in {wal.name}",
                                 "copy the collection to a writable folder and run the command there")
        self.read_only = True
        return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)

    def _set_up(self) -> None:
        # Switching a new database to WAL takes a lock SQLite does not wait for: two processes
        # opening a fresh catalog at once make one of them retry here.
        for attempt in range(100):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")

    def execute(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, tuple(args))

    def stream(self, sql: str, args: Iterable[Any] = ()) -> Iterator[tuple]:
        return iter(self.execute(sql, args))  # SQLite steps to each row as it is asked for

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self._db.executemany(sql, rows)

    def begin_write(self) -> None:
        if self._disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            self.rollback()
            raise StorageProblem(f"cannot write the catalog: {error}", "free disk space or fix permissions") from None

    def rollback(self) -> None:
        # SQLite rolls a transaction back itself on some errors (SQLITE_FULL, SQLITE_IOERR): a
        # second ROLLBACK would raise, and hide the error that said why.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def hold(self, lock: int) -> None:
        return None

    def try_hold(self, lock: int) -> bool:
        return True

    def let_go(self, lock: int) -> None:
        return None

    def held_elsewhere(self, lock: int) -> bool:
        return False

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, version: int) -> None:
        self._db.execute(f"PRAGMA user_version={int(version)}")

    def migration_statement(self, statement: str) -> str:
        return statement

    def close(self) -> None:
        self._db.close()


def stored_schema_version(path: Path) -> int | None:
    """The schema version `path` was last written with (None: no catalog there), read without
    writing a byte: no write-ahead log or shared-memory file is made, nothing is upgraded. An
    unmerged write-ahead log is not read, so a version it holds shows as the one before."""
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)) as db:
            return db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise UsageProblem(f"cannot read the catalog {path}: {exc}",
                           "check that it is a catalog.sqlite made by archiver") from None


def _no_space_left(folder: Path) -> bool:
    """Whether the disk holding `folder` has no block left that this process may use."""
    disk = os.statvfs(folder)
    return (disk.f_bfree if os.geteuid() == 0 else disk.f_bavail) == 0
