"""The catalog: a SQLite index of runs, WARC files, captures and their records.

Plain SQL, one transaction per capture, written only after the capture's records are
fsynced, so whatever the catalog lists is on disk. WAL mode lets readers run beside a capture.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from archiver.errors import StorageProblem, UsageProblem
from archiver.warc import ClosedFile, StoredRecord

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    software TEXT NOT NULL,
    operator TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE warc_files (
    name TEXT PRIMARY KEY,
    warcinfo_id TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    size INTEGER,
    sha256 TEXT
);
CREATE TABLE captures (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,
    final_url TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'truncated', 'failed')),
    http_status INTEGER,
    error TEXT,
    truncated TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ip TEXT,
    cert_sha256 TEXT,
    redirects INTEGER NOT NULL DEFAULT 0,
    payload_digest TEXT,
    response_length INTEGER,
    warc_file TEXT REFERENCES warc_files(name),
    response_record_id TEXT,
    metadata_record_id TEXT
);
CREATE INDEX captures_by_url ON captures (url_key, started_at);
CREATE TABLE records (
    record_id TEXT PRIMARY KEY,
    capture_id TEXT NOT NULL REFERENCES captures(id),
    seq INTEGER NOT NULL,
    warc_type TEXT NOT NULL,
    role TEXT NOT NULL,
    target_uri TEXT,
    warc_date TEXT NOT NULL,
    warc_file TEXT NOT NULL REFERENCES warc_files(name),
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    content_length INTEGER NOT NULL,
    block_digest TEXT NOT NULL,
    payload_digest TEXT,
    truncated TEXT
);
CREATE INDEX records_by_capture ON records (capture_id, seq);
"""


@dataclass(frozen=True)
class CaptureRow:
    id: str
    run_id: str
    url: str
    url_key: str
    final_url: str | None
    outcome: str
    http_status: int | None
    error: str | None
    truncated: str | None
    started_at: str
    finished_at: str
    ip: str | None
    cert_sha256: str | None
    redirects: int
    payload_digest: str | None
    response_length: int | None
    warc_file: str | None
    response_record_id: str | None
    metadata_record_id: str | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise UsageProblem(f"cannot open the catalog {path}: {exc}",
                               "check that it is a catalog.sqlite made by archiver and that you can write to it") from None
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        # Checked inside the write transaction, so two processes opening a new catalog
        # at once create the schema exactly once.
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UsageProblem(f"{self.path} was written by a newer archiver (schema {version})",
                                   "upgrade archiver")
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _transaction(self):
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------------------

    def start_run(self, run_id: str, started_at: str, software: str, operator: str, settings: dict) -> None:
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO runs (id, started_at, software, operator, settings) VALUES (?, ?, ?, ?, ?)",
                             (run_id, started_at, software, operator, json.dumps(settings, sort_keys=True)))

    def finish_run(self, run_id: str, finished_at: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (finished_at, run_id))

    def file_opened(self, name: str, warcinfo_id: str, opened_at: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO warc_files (name, warcinfo_id, opened_at) VALUES (?, ?, ?)",
                             (name, warcinfo_id, opened_at))

    def file_closed(self, closed: ClosedFile, closed_at: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("UPDATE warc_files SET closed_at = ?, size = ?, sha256 = ? WHERE name = ?",
                             (closed_at, closed.size, closed.sha256, closed.name))

    def add_capture(self, capture: CaptureRow, records: list[StoredRecord]) -> None:
        """The capture and its records in one transaction: all of it is listed, or none."""
        fields = list(capture.__dict__)
        with self._lock, self._transaction():
            self._db.execute(f"INSERT INTO captures ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                             [getattr(capture, f) for f in fields])
            self._db.executemany(
                "INSERT INTO records (record_id, capture_id, seq, warc_type, role, target_uri, warc_date, warc_file,"
                " offset, length, content_length, block_digest, payload_digest, truncated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.record_id, capture.id, seq, r.warc_type, r.role, r.target_uri, r.warc_date, r.warc_file,
                  r.offset, r.length, r.content_length, r.block_digest, r.payload_digest, r.truncated)
                 for seq, r in enumerate(records)])

    # -- reads ----------------------------------------------------------------------------

    def captures(self, url_key: str | None = None) -> list[CaptureRow]:
        query = "SELECT * FROM captures"
        args: tuple = ()
        if url_key is not None:
            query += " WHERE url_key = ?"
            args = (url_key,)
        return [CaptureRow(*row) for row in self._db.execute(query + " ORDER BY started_at, id", args)]

    def find_capture(self, id_prefix: str) -> list[CaptureRow]:
        pattern = id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [CaptureRow(*row) for row in
                self._db.execute("SELECT * FROM captures WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 10", (pattern,))]

    def records(self, capture_id: str) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT record_id, warc_type, role, target_uri, warc_date, warc_file, offset, length, content_length,"
            " block_digest, payload_digest, truncated FROM records WHERE capture_id = ? ORDER BY seq", (capture_id,))
        return [StoredRecord(*row) for row in rows]

    def warc_file(self, name: str) -> dict | None:
        row = self._db.execute("SELECT name, warcinfo_id, opened_at, closed_at, size, sha256 FROM warc_files"
                               " WHERE name = ?", (name,)).fetchone()
        return dict(zip(("name", "warcinfo_id", "opened_at", "closed_at", "size", "sha256"), row)) if row else None


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error; disk errors become StorageProblem."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as error:
                self._db.execute("ROLLBACK")
                raise StorageProblem(f"cannot write the catalog: {error}", "free disk space or fix permissions") from None
        else:
            self._db.execute("ROLLBACK")
