"""Distinct URLs kept in a temporary SQLite database instead of in memory: a claim sheet whose
million rows each cite a new page names a million URLs, and a set and a list of them took
more memory than the sheet itself."""

from __future__ import annotations

import sqlite3
from typing import Iterator, Sequence, overload

# (url, key) pairs written together: one statement for a block, not one a URL.
_BLOCK = 1024


class UrlSpool(Sequence[str]):
    """URLs as written, one per key (its normalised form: archiver.read.urls.normalise_url), in
    the order each key was first added; a sequence of the URLs. Its memory is a block of URLs
    being added and SQLite's page cache (2 MB); its database, an unnamed file, is gone with it."""

    def __init__(self) -> None:
        # "": a private database in a file SQLite deletes itself, so a crash leaves nothing behind.
        # Handed on with a run's targets to whichever thread reads them: sqlite3 would refuse any
        # but the one that opened it.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = OFF")  # nothing to roll back or keep: it is thrown away
        self._db.execute("PRAGMA synchronous = OFF")
        # Rowids count the URLs from 1, so the nth is found by its rowid: no row is ever deleted,
        # and an INSERT OR IGNORE that ignores takes no rowid.
        self._db.execute("CREATE TABLE urls (key TEXT PRIMARY KEY, url TEXT NOT NULL)")
        self._adding: list[tuple[str, str]] = []
        self._count = 0

    def add(self, url: str, key: str) -> None:
        """`url`, keyed `key`, unless a URL of that key was added before."""
        self._adding.append((key, url))
        if len(self._adding) == _BLOCK:
            self._write()

    def _write(self) -> None:
        self._db.execute("BEGIN")  # a block in one transaction: one write of its pages, not one a URL
        self._count += self._db.executemany("INSERT OR IGNORE INTO urls (key, url) VALUES (?, ?)",
                                            self._adding).rowcount
        self._db.execute("COMMIT")
        self._adding = []

    def __len__(self) -> int:
        self._written()
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[at] for at in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("URL index out of range")
        return self._db.execute("SELECT url FROM urls WHERE rowid = ?", (index + 1,)).fetchone()[0]

    def __iter__(self) -> Iterator[str]:
        return (url for url, _ in self.pairs())

    def pairs(self) -> Iterator[tuple[str, str]]:
        """(url, key) of each URL, in order, read a row at a time."""
        self._written()
        return iter(self._db.execute("SELECT url, key FROM urls ORDER BY rowid"))

    def _written(self) -> None:
        if self._adding:
            self._write()
