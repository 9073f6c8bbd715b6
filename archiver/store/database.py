"""The database under the catalog: a SQLite file in the collection (the default) or a
PostgreSQL server a team shares, behind one small interface the catalog speaks to.

The catalog's queries are plain SQL written once, in what both databases read alike (`?`
placeholders, `INSERT … ON CONFLICT`, no `rowid`, explicit `NULLS FIRST`); each database adapts
only what cannot be written alike: placeholders, column types in migrations, where the schema
version is kept, how a write excludes other writers, and which errors mean it refused. We chose
this over SQLAlchemy Core because the differences fit in these few methods, while a query
builder would rewrite every query out of SQL and add a layer to read through; procrastinate
keeps its queries as SQL beside one connector per database the same way.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, TypeVar

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
ROWS_PER_STATEMENT = 500  # rows of a multi-row INSERT, or values of an IN list: within SQLite's 32,766 parameters
# When the database refuses a statement itself (past a limit on its variables or size), not the
# disk or a lost server: archiver made a statement it should not have, which no disk, permission
# or server setting of the user's mends.
STATEMENT_REFUSED_HINT = "the database refused the statement itself, not the disk: a bug in archiver; please report it"
T = TypeVar("T")


class Cursor(Protocol):
    description: Any  # a (name, …) sequence for each column of the rows
    rowcount: int  # rows a write changed
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...
    def __iter__(self): ...


class Database(Protocol):
    """What the catalog needs of a database, whichever it is."""

    def execute(self, sql: str, args: Iterable[Any] = ()) -> Cursor:
        """Run one statement written with `?` placeholders; its rows, if any, as tuples."""

    def stream(self, sql: str, args: Iterable[Any] = ()) -> Iterator[tuple]:
        """The rows of a read that may be long (every claim, every record), a few at a time as
        they are taken, never all held at once; other statements may run while it is read. It
        sees one state of the catalog, which it holds until read to its end or closed (SQLite's
        read transaction, PostgreSQL's result): for reads that must see one state (verify, a
        manifest), read at their own pace. A listing, read at its reader's, pages instead (store.listings)."""

    def executemany(self, sql: str, rows: list[tuple]) -> None: ...

    def begin_write(self) -> None:
        """Start a transaction that no other writer of this catalog runs beside."""

    def commit(self) -> None:
        """Commit; a refusal (a full disk, a lost server) is raised as StorageProblem."""

    def hold(self, lock: int) -> None:
        """Take `lock` (waiting for it) against every other process using this database on any
        machine, across transactions, until let go or the process ends (a SQLite file is used by
        one machine, whose processes the collection's own locks order: nothing)."""

    def try_hold(self, lock: int) -> bool:
        """Take `lock` as hold() does if no other process holds it, without waiting: whether it was taken."""

    def let_go(self, lock: int) -> None: ...

    def held_elsewhere(self, lock: int) -> bool:
        """Whether another process holds `lock` now."""

    def rollback(self) -> None: ...

    def schema_version(self) -> int: ...

    def set_schema_version(self, version: int) -> None:
        """Inside the write transaction that ran the migrations."""

    def migration_statement(self, statement: str) -> str:
        """A statement of a migration file as this database must run it."""

    def close(self) -> None: ...

    kind: str  # "sqlite" or "postgresql": also the suffix of a migration's database-only part
    # The catalog as every warcinfo names it, which bundles carry to outsiders: its file's name,
    # or "postgresql" and its database's, never the server's host, port or user.
    recorded_as: str


def is_server_url(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRESQL_SCHEMES)


def open_database(location: Path | str) -> Database:
    """The catalog's database: a PostgreSQL URL, or the path of a SQLite file."""
    if is_server_url(location):
        from archiver.store.postgresql_database import PostgreSQL  # psycopg only when a server is used
        return PostgreSQL(str(location))
    from archiver.store.sqlite_database import SQLite
    return SQLite(Path(location))



def in_batches(values: Iterable[T]) -> Iterator[list[T]]:
    """`values` in runs of at most ROWS_PER_STATEMENT, each few enough to bind in one statement,
    taken from `values` only as each run is asked for."""
    values = iter(values)
    while batch := list(itertools.islice(values, ROWS_PER_STATEMENT)):
        yield batch


def placeholders(values: list) -> str:
    """One `?` for each of `values`, comma-separated: an IN list or a row of VALUES."""
    return ", ".join("?" * len(values))


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """A write transaction (the database's write lock held) committed at the end, rolled back
    on any error."""
    db.begin_write()
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()
