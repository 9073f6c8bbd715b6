"""The catalog: a SQLite index of runs, WARC files, captures and their records, and of
the documents, claims and citations that say why each URL was captured.

Plain SQL, one transaction per capture, written only after the capture's records are
fsynced, so whatever the catalog lists is on disk. WAL mode lets readers run beside a capture.
A claim is linked to every capture of every URL it cites by matching normalised URLs
(citations.url_key = captures.url_key), so links hold across re-captures without being stored.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from archiver.errors import StorageProblem, UsageProblem
from archiver.capture.warc import ClosedFile, StoredRecord

if TYPE_CHECKING:
    from archiver.read.seeds import Claim, Document

# Each entry upgrades the catalog by one version; a new catalog runs them all.
MIGRATIONS = ["""
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
""", """
CREATE TABLE documents (
    key TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    encoding TEXT NOT NULL,
    date TEXT,
    title TEXT,
    warnings TEXT NOT NULL,
    first_read_at TEXT NOT NULL,
    last_read_at TEXT NOT NULL
);
CREATE TABLE document_versions (
    key TEXT NOT NULL REFERENCES documents(key),
    sha256 TEXT NOT NULL,
    read_at TEXT NOT NULL,
    PRIMARY KEY (key, sha256)
);
CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    document_key TEXT REFERENCES documents(key),
    text TEXT NOT NULL,
    start INTEGER,
    end INTEGER,
    kind TEXT NOT NULL,
    extra TEXT,
    first_seen_at TEXT NOT NULL,
    superseded_at TEXT,
    verbatim INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX claims_by_document ON claims (document_key);
CREATE TABLE citations (
    claim_id TEXT NOT NULL REFERENCES claims(id),
    url_key TEXT NOT NULL,
    url TEXT NOT NULL,
    standalone INTEGER NOT NULL,
    PRIMARY KEY (claim_id, url_key)
);
CREATE INDEX citations_by_url ON citations (url_key);
ALTER TABLE captures ADD COLUMN revisit_of TEXT REFERENCES captures(id);
CREATE INDEX captures_ok_by_url ON captures (url_key) WHERE outcome = 'ok';
CREATE TABLE attestations (
    capture_id TEXT PRIMARY KEY REFERENCES captures(id),
    envelope TEXT NOT NULL
);
CREATE TABLE manifests (
    sequence INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    file TEXT NOT NULL
);
""", """
ALTER TABLE captures ADD COLUMN imported_from TEXT;
ALTER TABLE warc_files ADD COLUMN imported_from TEXT;
"""]
SCHEMA_VERSION = len(MIGRATIONS)


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
    revisit_of: str | None = None  # the capture whose response record holds this identical payload
    imported_from: str | None = None  # for captures made by another tool: the file they came in

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PayloadOrigin:
    """Where a payload is stored in full, for a revisit record to refer to."""

    capture_id: str
    record_id: str
    target_uri: str
    warc_date: str
    payload_digest: str


@dataclass(frozen=True)
class ClaimRow:
    id: str
    document_key: str | None
    text: str
    start: int | None
    end: int | None
    kind: str
    extra: str | None
    first_seen_at: str
    superseded_at: str | None
    verbatim: int  # 1 when text is exactly the document's characters start:end (see Claim.verbatim)
    citations: tuple[tuple[str, str], ...] = ()  # (URL as written, normalised URL)

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["verbatim"] = bool(self.verbatim)
        data["extra"] = json.loads(self.extra) if self.extra else None
        data["citations"] = [{"url": url, "url_key": key} for url, key in self.citations]
        return data


@dataclass(frozen=True)
class DocumentRow:
    key: str
    path: str
    sha256: str
    kind: str
    encoding: str
    date: str | None
    title: str | None
    warnings: str
    first_read_at: str
    last_read_at: str

    def as_dict(self) -> dict:
        return {**self.__dict__, "warnings": json.loads(self.warnings)}


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
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
        self._lock = threading.Lock()

    @staticmethod
    def _open_read_only(path: Path) -> sqlite3.Connection:
        """A collection on read-only storage (a write-protected disk, a read-only mount) can
        still be read and verified. Nothing can change the file there, so SQLite may skip the
        shared-memory file it could not create; unless a write-ahead log holds commits the
        file lacks, which only a writable copy can fold in."""
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size:
            raise StorageProblem(f"the catalog {path} is on read-only storage with unmerged writes in {wal.name}",
                               "copy the collection to a writable folder and run the command there")
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None,
                             check_same_thread=False)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            db.close()
            raise StorageProblem(f"the catalog {path} is read-only and has schema {version}, not {SCHEMA_VERSION}",
                               "open it once from a writable copy with this version of archiver")
        return db

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
        self._migrate()

    def _migrate(self) -> None:
        # Checked inside the write transaction, so two processes opening a new catalog
        # at once create the schema exactly once.
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UsageProblem(f"{self.path} was written by a newer archiver (schema {version})",
                                   "upgrade archiver")
            for migration in MIGRATIONS[version:]:
                for statement in migration.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _transaction(self):
        if self._disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
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

    def add_imported_file(self, name: str, warcinfo_id: str, at: str, size: int, sha256: str, source: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO warc_files (name, warcinfo_id, opened_at, closed_at, size, sha256, imported_from)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", (name, warcinfo_id, at, at, size, sha256, source))

    def forget_empty_file(self, name: str) -> None:
        """A file an interrupted run opened but wrote no whole record to, and no capture lists."""
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM warc_files WHERE name = ? AND NOT EXISTS"
                             " (SELECT 1 FROM records WHERE warc_file = ?)", (name, name))

    def file_closed(self, closed: ClosedFile, closed_at: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("UPDATE warc_files SET closed_at = ?, size = ?, sha256 = ? WHERE name = ?",
                             (closed_at, closed.size, closed.sha256, closed.name))

    def add_capture(self, capture: CaptureRow, records: list[StoredRecord], attestation: dict | None = None) -> None:
        """The capture, its records and its signed attestation in one transaction: all or none."""
        self.add_captures([(capture, records, attestation)])

    def add_captures(self, captures: list[tuple[CaptureRow, list[StoredRecord], dict | None]]) -> None:
        """Several captures in one transaction (a run's group commit): each one whole, or none."""
        with self._lock, self._transaction():
            for capture, records, attestation in captures:
                self._insert_capture(capture, records, attestation)

    def _insert_capture(self, capture: CaptureRow, records: list[StoredRecord], attestation: dict | None) -> None:
        fields = list(capture.__dict__)
        self._db.execute(f"INSERT INTO captures ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                         [getattr(capture, f) for f in fields])
        self._db.executemany(
            "INSERT INTO records (record_id, capture_id, seq, warc_type, role, target_uri, warc_date, warc_file,"
            " offset, length, content_length, block_digest, payload_digest, truncated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.record_id, capture.id, seq, r.warc_type, r.role, r.target_uri, r.warc_date, r.warc_file,
              r.offset, r.length, r.content_length, r.block_digest, r.payload_digest, r.truncated)
             for seq, r in enumerate(records)])
        if attestation is not None:
            self._db.execute("INSERT INTO attestations (capture_id, envelope) VALUES (?, ?)",
                             (capture.id, json.dumps(attestation, sort_keys=True, separators=(",", ":"))))

    def record_document(self, document: "Document", read_at: str) -> None:
        """The document as read now: claims no longer in it are marked superseded, never deleted."""
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO documents (key, path, sha256, kind, encoding, date, title, warnings, first_read_at, last_read_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET path = excluded.path,"
                " sha256 = excluded.sha256, kind = excluded.kind, encoding = excluded.encoding, date = excluded.date,"
                " title = excluded.title, warnings = excluded.warnings, last_read_at = excluded.last_read_at",
                (document.key, str(document.path), document.sha256, document.kind, document.encoding, document.date,
                 document.title, json.dumps(list(document.warnings)), read_at, read_at))
            self._db.execute("INSERT OR IGNORE INTO document_versions (key, sha256, read_at) VALUES (?, ?, ?)",
                             (document.key, document.sha256, read_at))
            current = [claim.id for claim in document.claims]
            self._db.execute(
                f"UPDATE claims SET superseded_at = ? WHERE document_key = ? AND superseded_at IS NULL"
                f" AND id NOT IN ({', '.join('?' * len(current))})", (read_at, document.key, *current))
            for claim in document.claims:
                self._upsert_claim(claim, document.key, read_at)

    def add_note(self, claim: "Claim", at: str) -> None:
        """A one-off claim typed by a fact-checker rather than read from a document."""
        with self._lock, self._transaction():
            self._upsert_claim(claim, None, at)

    def _upsert_claim(self, claim: "Claim", document_key: str | None, seen_at: str) -> None:
        self._db.execute(
            "INSERT INTO claims (id, document_key, text, start, end, kind, extra, first_seen_at, verbatim)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET text = excluded.text,"
            " start = excluded.start, end = excluded.end, extra = excluded.extra, verbatim = excluded.verbatim,"
            " superseded_at = NULL",
            (claim.id, document_key, claim.text, claim.start, claim.end, claim.kind,
             json.dumps(claim.row, sort_keys=True) if claim.row else None, seen_at, int(claim.verbatim)))
        # Which URLs a claim cites can change without its text changing (a standalone URL edited).
        self._db.execute("DELETE FROM citations WHERE claim_id = ?", (claim.id,))
        self._db.executemany("INSERT OR IGNORE INTO citations (claim_id, url_key, url, standalone) VALUES (?, ?, ?, ?)",
                             [(claim.id, c.normalised, c.url, int(c.standalone)) for c in claim.citations])

    def record_manifest(self, sequence: int, sha256: str, content_sha256: str, created_at: str, file: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO manifests (sequence, sha256, content_sha256, created_at, file) VALUES (?, ?, ?, ?, ?)",
                             (sequence, sha256, content_sha256, created_at, file))

    # -- reads ----------------------------------------------------------------------------
    def payload_origin(self, url_key: str) -> PayloadOrigin | None:
        """Where the newest complete payload of `url_key` is stored in full (a revisit's target)."""
        row = self._db.execute(
            "SELECT COALESCE(c.revisit_of, c.id), c.payload_digest FROM captures c"
            " WHERE c.url_key = ? AND c.outcome = 'ok' AND c.payload_digest IS NOT NULL"
            " ORDER BY c.started_at DESC, c.id DESC LIMIT 1", (url_key,)).fetchone()
        if row is None:
            return None
        origin = self._db.execute(
            "SELECT r.record_id, r.target_uri, r.warc_date FROM captures c JOIN records r ON r.record_id = c.response_record_id"
            " WHERE c.id = ?", (row[0],)).fetchone()
        return PayloadOrigin(row[0], origin[0], origin[1], origin[2], row[1]) if origin else None

    def claims(self, url_key: str | None = None, document_key: str | None = None, uncaptured: bool = False,
               include_superseded: bool = False) -> list[ClaimRow]:
        where, args = [], []
        if not include_superseded:
            where.append("cl.superseded_at IS NULL")
        if url_key is not None:
            where.append("cl.id IN (SELECT claim_id FROM citations WHERE url_key = ?)")
            args.append(url_key)
        if document_key is not None:
            where.append("cl.document_key = ?")
            args.append(document_key)
        if uncaptured:
            where.append("cl.id IN (SELECT ci.claim_id FROM citations ci WHERE NOT EXISTS"
                         " (SELECT 1 FROM captures k WHERE k.url_key = ci.url_key AND k.outcome = 'ok'))")
        query = "SELECT cl.* FROM claims cl" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._db.execute(query + " ORDER BY cl.document_key, cl.start, cl.id", args).fetchall()
        return self._with_citations(rows)

    def find_claim(self, id_prefix: str) -> list[ClaimRow]:
        rows = self._db.execute("SELECT * FROM claims WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 10",
                                (_like_prefix(id_prefix),)).fetchall()
        return self._with_citations(rows)

    def _with_citations(self, rows: list[tuple]) -> list[ClaimRow]:
        cited: dict[str, list[tuple[str, str]]] = {}
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), 500):
            batch = ids[start:start + 500]
            for claim_id, url, url_key in self._db.execute(
                    f"SELECT claim_id, url, url_key FROM citations WHERE claim_id IN ({', '.join('?' * len(batch))})"
                    " ORDER BY claim_id, rowid", batch):
                cited.setdefault(claim_id, []).append((url, url_key))
        return [ClaimRow(*row, citations=tuple(cited.get(row[0], ()))) for row in rows]

    def captures_by_url(self, url_keys: set[str]) -> dict[str, list[CaptureRow]]:
        found: dict[str, list[CaptureRow]] = {key: [] for key in url_keys}
        keys = sorted(url_keys)
        for start in range(0, len(keys), 500):
            batch = keys[start:start + 500]
            for row in self._db.execute(f"SELECT * FROM captures WHERE url_key IN ({', '.join('?' * len(batch))})"
                                        " ORDER BY started_at, id", batch):
                found[row[3]].append(CaptureRow(*row))
        return found

    def captured_by_interrupted_runs(self) -> set[str]:
        """URLs (normalised) that runs which never finished captured successfully."""
        return {row[0] for row in self._db.execute(
            "SELECT c.url_key FROM captures c JOIN runs r ON r.id = c.run_id"
            " WHERE r.finished_at IS NULL AND c.outcome = 'ok'")}

    def documents(self) -> list[DocumentRow]:
        return [DocumentRow(*row) for row in self._db.execute("SELECT * FROM documents ORDER BY key")]

    def document_claim_counts(self) -> dict[str, tuple[int, int]]:
        """Per document: (current claims, distinct URLs they cite)."""
        return {key: (claims, urls) for key, claims, urls in self._db.execute(
            "SELECT cl.document_key, COUNT(DISTINCT cl.id), COUNT(DISTINCT ci.url_key) FROM claims cl"
            " LEFT JOIN citations ci ON ci.claim_id = cl.id WHERE cl.superseded_at IS NULL GROUP BY cl.document_key")}

    def latest_manifest(self) -> tuple[int, str, str, str] | None:
        """(sequence, sha256, content_sha256, file) of the newest manifest."""
        return self._db.execute("SELECT sequence, sha256, content_sha256, file FROM manifests"
                                " ORDER BY sequence DESC LIMIT 1").fetchone()

    def query(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        """A read-only cursor for exports that stream rows rather than load them."""
        return self._db.execute(sql, args)


    def captures(self, url_key: str | None = None) -> list[CaptureRow]:
        query = "SELECT * FROM captures"
        args: tuple = ()
        if url_key is not None:
            query += " WHERE url_key = ?"
            args = (url_key,)
        return [CaptureRow(*row) for row in self._db.execute(query + " ORDER BY started_at, id", args)]

    def find_capture(self, id_prefix: str) -> list[CaptureRow]:
        return [CaptureRow(*row) for row in self._db.execute(
            "SELECT * FROM captures WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 10", (_like_prefix(id_prefix),))]

    def records(self, capture_id: str) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT record_id, warc_type, role, target_uri, warc_date, warc_file, offset, length, content_length,"
            " block_digest, payload_digest, truncated FROM records WHERE capture_id = ? ORDER BY seq", (capture_id,))
        return [StoredRecord(*row) for row in rows]

    def payload_record(self, capture_id: str) -> StoredRecord:
        """The response record holding the capture's payload (an earlier one's, for a revisit)."""
        holder = self._db.execute("SELECT COALESCE(revisit_of, id) FROM captures WHERE id = ?", (capture_id,)).fetchone()[0]
        return next(r for r in self.records(holder) if r.warc_type == "response")

    def attestation(self, capture_id: str) -> dict | None:
        row = self._db.execute("SELECT envelope FROM attestations WHERE capture_id = ?", (capture_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def warc_file(self, name: str) -> dict | None:
        row = self._db.execute("SELECT name, warcinfo_id, opened_at, closed_at, size, sha256 FROM warc_files"
                               " WHERE name = ?", (name,)).fetchone()
        return dict(zip(("name", "warcinfo_id", "opened_at", "closed_at", "size", "sha256"), row)) if row else None


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _no_space_left(folder: Path) -> bool:
    """Whether the disk holding `folder` has no block left that this process may use."""
    disk = os.statvfs(folder)
    return (disk.f_bfree if os.geteuid() == 0 else disk.f_bavail) == 0


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
