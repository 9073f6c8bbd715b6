"""The catalog on a PostgreSQL server a team shares, through psycopg 3.

The password is never in `archiver.toml` (postgresql_url.py refuses a URL carrying a secret):
libpq reads PGPASSWORD or ~/.pgpass. Each write holds a transaction-scoped advisory lock, so
writers on every machine take turns as SQLite's writers do, and what a transaction reads
before it writes (a migration's schema version) cannot change under it."""

from __future__ import annotations

import itertools
import json
import re
from functools import lru_cache
from typing import Any, Iterable, Iterator

import psycopg

from archiver.errors import StorageProblem
from archiver.store.database import STATEMENT_REFUSED_HINT
from archiver.store.postgresql_url import check_url, shown

# Any constant works: it names "a writer of this catalog" among the database's advisory locks.
WRITE_LOCK = 0x61726368697600  # "archiv"
STREAMED_ROWS = 2000  # rows a server-side cursor sends at a time: few round trips, little memory


class PostgreSQL:
    kind = "postgresql"
    read_only = False

    def __init__(self, url: str) -> None:
        check_url(url)
        self.url = url
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise refused_connection(url, exc) from None
        self._streams = itertools.count(1)  # names of the server-side cursors stream() opens
        # The database connected to: the URL may name none (libpq's default, the user's name).
        self.recorded_as = f"postgresql database {json.dumps(self._db.info.dbname)}"

    def execute(self, sql: str, args: Iterable[Any] = ()) -> psycopg.Cursor:
        try:
            return self._db.execute(_placeholders(sql), tuple(args))
        except psycopg.OperationalError as exc:
            raise self._refused(exc) from None

    def stream(self, sql: str, args: Iterable[Any] = ()) -> Iterator[tuple]:
        # A client-side cursor holds every row of its result in this process (a claim sheet's
        # 250,000 claims at once): a server-side one sends them STREAMED_ROWS at a time. WITH
        # HOLD, as the connection autocommits: the server keeps the result past its statement,
        # and other statements run on the connection while it is read (a walk beside another).
        cursor = self._db.cursor(name=f"archiver_stream_{next(self._streams)}", withhold=True)
        cursor.itersize = STREAMED_ROWS
        try:
            cursor.execute(_placeholders(sql), tuple(args))
            yield from cursor
        except psycopg.OperationalError as exc:
            raise self._refused(exc) from None
        finally:
            if not self._db.broken:
                cursor.close()

    def _refused(self, exc: psycopg.OperationalError) -> StorageProblem:
        if self._db.broken:
            return StorageProblem(f"the catalog server failed: {_one_line(exc)}",
                                  "check that PostgreSQL is running and reachable, then run `archiver doctor`")
        # The connection held: the statement was refused, by the server (its disk, a timeout:
        # an SQLSTATE says which) or, with none, by libpq before sending it (over 65,535 parameters).
        return StorageProblem(f"the catalog server refused a statement: {_one_line(exc)}",
                              "check the PostgreSQL server, its log and its disk" if exc.sqlstate
                              else STATEMENT_REFUSED_HINT)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)

    def begin_write(self) -> None:
        self.execute("BEGIN")
        self.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    def commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except psycopg.Error as exc:
            raise StorageProblem(f"cannot write the catalog: {_one_line(exc)}",
                                 "check the PostgreSQL server and its disk") from None

    def rollback(self) -> None:
        if not self._db.closed:
            self._db.execute("ROLLBACK")

    def hold(self, lock: int) -> None:
        self.execute("SELECT pg_advisory_lock(?)", (lock,))

    def let_go(self, lock: int) -> None:
        self.execute("SELECT pg_advisory_unlock(?)", (lock,))

    def try_hold(self, lock: int) -> bool:
        return self.execute("SELECT pg_try_advisory_lock(?)", (lock,)).fetchone()[0]

    def held_elsewhere(self, lock: int) -> bool:
        if not self.try_hold(lock):
            return True
        self.let_go(lock)
        return False

    def schema_version(self) -> int:
        if self.execute("SELECT to_regclass('archiver_schema')").fetchone()[0] is None:
            return 0
        row = self.execute("SELECT version FROM archiver_schema").fetchone()
        return row[0] if row else 0

    def may_create_tables(self) -> tuple[bool, str, str | None]:
        """Whether this login may create the catalog's tables, as which user, in which schema
        (None: no schema on its search_path exists): PostgreSQL 15 lets only a database's owner
        create tables in its public schema, unless granted."""
        user, schema, may = self.execute("SELECT current_user, current_schema(),"
                                         " has_schema_privilege(current_schema(), 'CREATE')").fetchone()
        return bool(may), user, schema

    def set_schema_version(self, version: int) -> None:
        self.execute("CREATE TABLE IF NOT EXISTS archiver_schema (version INTEGER NOT NULL)")
        self.execute("DELETE FROM archiver_schema")
        self.execute("INSERT INTO archiver_schema (version) VALUES (?)", (version,))

    def migration_statement(self, statement: str) -> str:
        # Sizes and offsets of files past 2 GiB need 64 bits; text sorts by code point as in
        # SQLite, whatever the database's locale.
        return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', re.sub(r"\bINTEGER\b", "BIGINT", statement))

    def close(self) -> None:
        self._db.close()


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (the catalog's SQL holds no `?` or `%` in literals)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def refused_connection(url: str, exc: psycopg.OperationalError) -> StorageProblem:
    """Which of server, credentials or database is wrong, and how to fix that one."""
    text, url = _one_line(exc), shown(url)
    if "password" in text or "authentication failed" in text:
        return StorageProblem(f"PostgreSQL at {url} refused the credentials: {text}",
                              "set PGPASSWORD or add a ~/.pgpass line for this user and host")
    if re.search(r'(database|role) "[^"]*" does not exist', text):
        return StorageProblem(f"PostgreSQL at {url}: {text}",
                              "create it (createdb / createuser) or correct the catalog URL")
    return StorageProblem(f"cannot reach PostgreSQL at {url}: {text}",
                          "check that the server is running and the catalog URL's host and port are right")
