"""The catalog's schema: numbered files of SQL in migrations/, each upgrading a catalog by one
version, in the order of their names; a new catalog runs them all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.errors import UsageProblem
from archiver.store.database import write_transaction

if TYPE_CHECKING:
    from archiver.store.database import Database


@dataclass(frozen=True)
class Migration:
    """One numbered file of SQL both databases run, and the part (NNNN_name.sqlite.sql,
    NNNN_name.postgresql.sql) only one of them runs after it, if any."""

    path: Path

    def statements(self, kind: str) -> list[str]:
        only_here = self.path.with_suffix(f".{kind}.sql")
        text = self.path.read_text() + (";" + only_here.read_text() if only_here.exists() else "")
        return [statement for statement in text.split(";") if _has_sql(statement)]


MIGRATIONS = [Migration(path) for path in sorted((Path(__file__).parent / "migrations").glob("*.sql"))
              if path.suffixes == [".sql"]]
SCHEMA_VERSION = len(MIGRATIONS)


def _has_sql(statement: str) -> bool:
    """Whether a piece of a migration file holds more than comments (some hold only a comment)."""
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())


def upgrade(db: "Database", location: object) -> None:
    """Run on the catalog `db` (at `location`) the migrations it has not had yet."""
    # A catalog already at this schema is left unwritten: a write here would cost every
    # command, a listing too, a commit and its fsync.
    if db.schema_version() == SCHEMA_VERSION:
        return
    # Checked again inside the write transaction, so two processes opening a new catalog
    # at once create the schema exactly once.
    with write_transaction(db):
        version = db.schema_version()
        if version > SCHEMA_VERSION:
            raise UsageProblem(f"{location} was written by a newer archiver (schema {version})", "upgrade archiver")
        for migration in MIGRATIONS[version:]:
            for statement in migration.statements(db.kind):
                db.execute(db.migration_statement(statement))
        db.set_schema_version(SCHEMA_VERSION)
