"""The catalog: a SQLite index of runs, WARC files, captures and their records, and of
the documents, claims and citations that say why each URL was captured.

Plain SQL, one transaction per group of captures, written only after their records are
fsynced, so whatever the catalog lists is on disk (in a store shared by machines, only once
their file is uploaded). WAL mode lets readers run beside a capture.
A claim is linked to every capture of every URL it cites by matching normalised URLs
(citations.url_key = captures.url_key), so links hold across re-captures without being stored.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, Iterator

from archiver.errors import StorageProblem
from archiver.store.catalog_locks import CatalogLocks
from archiver.store.claim_pairing import paired_claims
from archiver.store.claim_writes import supersede_held, upsert_claims
from archiver.store.database import Cursor, in_batches, open_database, placeholders, write_transaction
from archiver.store.listings import captures_listing, claims_listing
from archiver.store.runs import Runs
from archiver.store.rows import Capture, CaptureRow, ClaimRow, DocumentRow, PayloadOrigin, StoredRecord
from archiver.store.schema import SCHEMA_VERSION, upgrade
from archiver.store.storage import StoredFile

if TYPE_CHECKING:
    from archiver.read.seeds import Claim, Document

FOUND_AT_MOST = 10  # rows an id prefix is looked up for: enough to show it is ambiguous


class Catalog:
    def __init__(self, location: Path | str) -> None:
        """`location`: the SQLite file, or the URL of a PostgreSQL database."""
        self.location = location
        self._db = open_database(location)
        try:
            if self._db.read_only:
                version = self._db.schema_version()
                if version != SCHEMA_VERSION:
                    raise StorageProblem(f"the catalog {location} is read-only and has schema {version}, not {SCHEMA_VERSION}",
                                         "open it once from a writable copy with this version of archiver")
            else:
                upgrade(self._db, location)
        except BaseException:
            self._db.close()
            raise
        self._lock = threading.Lock()
        self.locks = CatalogLocks(self._db, self._lock)
        self.runs = Runs(self._db, self._lock)  # capture runs: what each set out to capture, and which --resume takes up

    def _transaction(self) -> ContextManager[None]:
        return write_transaction(self._db)

    @property
    def recorded_as(self) -> str:
        return self._db.recorded_as

    def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------------------

    def file_opened(self, name: str, warcinfo_id: str, opened_at: str) -> None:
        """Listed as open, and held as this process's until its close is recorded (locks.writing)."""
        self.locks.writing(name)
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO warc_files (name, warcinfo_id, opened_at) VALUES (?, ?, ?)",
                             (name, warcinfo_id, opened_at))

    def add_import(self, file: StoredFile, warcinfo_id: str, at: str, source: str, run: tuple[str, str, str, dict],
                   captures: list[Capture], resolved: list[tuple[str, str]] = ()) -> None:
        """An imported file, the run (id, software, operator, settings) that imported it and its
        captures, in one transaction: a file listed is never missing some of its captures; and the
        revisits imported before whose original it holds (`resolved`: each one's capture and the
        original's), no longer marked as without one."""
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO warc_files (name, warcinfo_id, opened_at, closed_at, size, sha256, imported_from)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", (file.name, warcinfo_id, at, at, file.size, file.sha256, source))
            self._db.execute("INSERT INTO runs (id, started_at, finished_at, software, operator, settings) VALUES (?, ?, ?, ?, ?, ?)",
                             (run[0], at, at, run[1], run[2], json.dumps(run[3], sort_keys=True)))
            self._insert_captures(captures)
            self._db.executemany("UPDATE captures SET revisit_of = ?, incomplete = NULL WHERE id = ?",
                                 [(holder, revisit) for revisit, holder in resolved])

    def forget_empty_file(self, name: str) -> bool:
        """A file an interrupted run opened but wrote no whole record to, and no capture lists:
        whether it was forgotten (not when records are listed in it)."""
        with self._lock, self._transaction():
            return self._db.execute("DELETE FROM warc_files WHERE name = ? AND NOT EXISTS"
                                    " (SELECT 1 FROM records WHERE warc_file = ?)", (name, name)).rowcount == 1

    def append_custody(self, chain: Callable[[str | None], list[tuple[int, str]]]) -> None:
        """Append entries to a shared collection's custody log: under the database's write
        lock, `chain` is handed the last line and returns the (seq, line) pairs that follow it,
        so writers on every machine extend one chain and none forks it."""
        with self._lock, self._transaction():
            self._extend_custody(chain)

    def _extend_custody(self, chain: Callable[[str | None], list[tuple[int, str]]]) -> None:
        last = self._db.execute("SELECT line FROM custody_entries ORDER BY seq DESC LIMIT 1").fetchone()
        self._db.executemany("INSERT INTO custody_entries (seq, line) VALUES (?, ?)", chain(last[0] if last else None))

    def load(self, statements: Iterable[tuple[str, Iterable[tuple]]],
             chain: Callable[[str | None], list[tuple[int, str]]]) -> None:
        """Fill this catalog in one transaction, all or nothing (`archiver migrate`): each
        statement run over its rows, in order, then the custody log extended as append_custody does."""
        with self._lock, self._transaction():
            for sql, rows in statements:
                pending = iter(rows)
                while batch := list(itertools.islice(pending, 1000)):
                    self._db.executemany(sql, batch)
            self._extend_custody(chain)

    def file_closed(self, closed: StoredFile, closed_at: str) -> None:
        with self._lock, self._transaction():
            self._record_closed(closed, closed_at)
        self.locks.written(closed.name)

    def _record_closed(self, closed: StoredFile, closed_at: str) -> None:
        self._db.execute("UPDATE warc_files SET closed_at = ?, size = ?, sha256 = ?, retention_mode = ?, retain_until = ?"
                         " WHERE name = ?", (closed_at, closed.size, closed.sha256, closed.retention_mode,
                                             closed.retain_until, closed.name))

    def add_captures(self, captures: list[Capture], logged:
                     Callable[[list[bool]], Callable[[str | None], list[tuple[int, str]]]] | None = None,
                     closing: tuple[StoredFile, str] | None = None) -> list[bool]:
        """Several captures in one transaction (a group commit), with `closing` (file, when) their
        file's closing: all or none. Whether each was added: not if it was already (by a repair
        on another machine); one whose job has a capture already is added as of no job. On a
        shared collection `logged(added)` gives the entries that log them, appended in the same
        transaction: none is listed unlogged."""
        with self._lock, self._transaction():
            added = self._insert_captures(captures)
            if closing is not None:
                self._record_closed(*closing)
            if logged is not None:
                self._extend_custody(logged(added))
        if closing is not None:
            self.locks.written(closing[0].name)
        return added

    def _insert_captures(self, captures: list[Capture]) -> list[bool]:
        """Insert the captures with a few statements for them all, not a few each: to a server
        each is a round trip, in a transaction every writer waits for. Whether each was added."""
        added = self._insert_capture_rows([row for row, _, _ in captures])
        listed: list[Capture] = []
        for row, records, attestation in captures:
            if row.id not in added and row.job_id is not None:
                # Its job was captured again elsewhere (its worker seemed dead) and that capture listed first: this
                # one is a capture all the same, kept as of no job (unless a repair elsewhere listed it meanwhile).
                row = replace(row, job_id=None)
                added |= self._insert_capture_rows([row])
            if row.id in added:
                listed.append((row, records, attestation))
        self._db.executemany(
            "INSERT INTO records (record_id, capture_id, seq, warc_type, role, target_uri, warc_date, warc_file,"
            " warc_offset, length, content_length, block_digest, payload_digest, truncated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.record_id, row.id, seq, r.warc_type, r.role, r.target_uri, r.warc_date, r.warc_file,
              r.offset, r.length, r.content_length, r.block_digest, r.payload_digest, r.truncated)
             for row, records, _ in listed for seq, r in enumerate(records)])
        self._db.executemany("INSERT INTO attestations (capture_id, envelope) VALUES (?, ?)",
                             [(row.id, json.dumps(attestation, sort_keys=True, separators=(",", ":")))
                              for row, _, attestation in listed if attestation is not None])
        return [row.id in added for row, _, _ in captures]

    def _insert_capture_rows(self, rows: list[CaptureRow]) -> set[str]:
        """The ids of those of `rows` inserted: not one whose id or job is listed already."""
        fields, added = list(CaptureRow.__dataclass_fields__), set()
        for batch in in_batches(rows):
            values = ", ".join([f"({placeholders(fields)})"] * len(batch))
            added.update(id_ for (id_,) in self._db.execute(
                f"INSERT INTO captures ({', '.join(fields)}) VALUES {values} ON CONFLICT DO NOTHING RETURNING id",
                [getattr(row, f) for row in batch for f in fields]).fetchall())
        return added

    def record_document(self, document: "Document", read_at: str,
                        claim_ids: Callable[[list[str]], None] = lambda ids: None) -> None:
        """The document as read now (its copy already kept): claims no longer in it are marked
        superseded, never deleted. The ids of its claims are told to `claim_ids` as they are
        written, a batch at a time, in order."""
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO documents (key, path, sha256, kind, encoding, date, title, warnings, first_read_at, last_read_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET path = excluded.path,"
                " sha256 = excluded.sha256, kind = excluded.kind, encoding = excluded.encoding, date = excluded.date,"
                " title = excluded.title, warnings = excluded.warnings, last_read_at = excluded.last_read_at",
                (document.key, str(document.path), document.sha256, document.kind, document.encoding, document.date,
                 document.title, json.dumps(list(document.warnings)), read_at, read_at))
            # The size says a copy of these bytes is kept (archiver.store.documents): set it on a
            # version first read before copies were kept, too.
            self._db.execute("INSERT INTO document_versions (key, sha256, read_at, size) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT (key, sha256) DO UPDATE SET size = excluded.size",
                             (document.key, document.sha256, read_at, document.size))
            # The claims are read once (a sheet's from disk), and neither those held nor those read is kept.
            # Paired with the previous read before it is superseded: which claim of repeated words is which.
            claims = paired_claims(self._db, document)
            supersede_held(self._db, document.key, read_at)
            upsert_claims(self._db, claims, document.key, read_at, keep_citations=False, upserted=claim_ids)

    def recorded_claims(self, document: "Document") -> list["Claim"]:
        """The claims of `document` with the ids `record_document` gave them, it being the version
        read last: its claims of repeated words paired with those the catalog holds (claim_pairing)."""
        with self._lock:
            return list(paired_claims(self._db, document))

    def add_note(self, claim: "Claim", at: str) -> None:
        """A one-off claim typed by a fact-checker rather than read from a document. The same
        words cited again are the same claim: its new URLs are added to those it cited before."""
        with self._lock, self._transaction():
            upsert_claims(self._db, [claim], None, at, keep_citations=True)

    def record_manifest(self, sequence: int, sha256: str, content_sha256: str, created_at: str, file: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("INSERT INTO manifests (sequence, sha256, content_sha256, created_at, file) VALUES (?, ?, ?, ?, ?)",
                             (sequence, sha256, content_sha256, created_at, file))

    # -- reads ----------------------------------------------------------------------------
    def payload_origins(self, url_keys: Iterable[str]) -> dict[str, PayloadOrigin]:
        """Where the newest complete payload of each of `url_keys` is stored in full (a revisit's
        target), for those that have one: asked together for captures stored together."""
        found, keys = {}, sorted(set(url_keys))
        for batch in in_batches(keys):
            found.update((key, PayloadOrigin(*origin)) for key, *origin in self._db.execute(
                "SELECT newest.url_key, newest.origin_id, r.record_id, r.target_uri, r.warc_date, newest.payload_digest"
                " FROM (SELECT c.url_key, COALESCE(c.revisit_of, c.id) AS origin_id, c.payload_digest, ROW_NUMBER()"
                " OVER (PARTITION BY c.url_key ORDER BY c.started_at DESC, c.id DESC) AS recency FROM captures c"
                f" WHERE c.url_key IN ({placeholders(batch)}) AND c.outcome = 'ok' AND c.payload_digest IS NOT NULL)"
                " newest JOIN captures o ON o.id = newest.origin_id JOIN records r ON r.record_id = o.response_record_id"
                " WHERE newest.recency = 1", batch).fetchall())
        return found

    def claims(self, url_key: str | None = None, document_key: str | None = None, uncaptured: bool = False,
               include_superseded: bool = False, broken: bool = False, formerly: bool = False) -> list[ClaimRow]:
        """Claims, filtered. `broken`: those citing a URL whose newest capture failed or is not
        judged content (an imported one, or one made before verdicts, is not judged at all: it
        may be an error page, so it is listed).
        `formerly`: with `url_key`, also the claims that cited it before a re-read dropped it."""
        listing = claims_listing(url_key, document_key, uncaptured, include_superseded, broken, formerly)
        return self._with_citations(self._db.execute(*listing.whole()).fetchall())

    def claim_pages(self, url_key: str | None = None, document_key: str | None = None, uncaptured: bool = False,
                    include_superseded: bool = False, broken: bool = False,
                    formerly: bool = False) -> Iterator[list[ClaimRow]]:
        """The claims that claims() lists, in its order, a page (ROWS_PER_STATEMENT) at a time, each
        read only when asked for and by statements of its own (store.listings): a listing of a
        million claims holds one page, and nothing on the database between pages."""
        for rows in claims_listing(url_key, document_key, uncaptured, include_superseded, broken, formerly).pages(self._db):
            yield self._with_citations(rows)

    def find_claim(self, id_prefix: str) -> list[ClaimRow]:
        rows = self._db.execute(f"SELECT * FROM claims WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT {FOUND_AT_MOST}",
                                (_like_prefix(id_prefix),)).fetchall()
        return self._with_citations(rows)

    def _with_citations(self, rows: list[tuple]) -> list[ClaimRow]:
        cited: dict[str, list[tuple[str, str, str | None]]] = {}
        formerly: dict[str, list[tuple[str, str, str, str | None]]] = {}
        for batch in in_batches([row[0] for row in rows]):
            for claim_id, *citation in self._db.execute(f"SELECT claim_id, url, url_key, cited_since FROM citations WHERE"
                                                        f" claim_id IN ({placeholders(batch)}) ORDER BY claim_id, position", batch):
                cited.setdefault(claim_id, []).append(tuple(citation))
            for claim_id, *former in self._db.execute(f"SELECT claim_id, url, url_key, dropped_at, cited_since FROM former_citations"
                                                      f" WHERE claim_id IN ({placeholders(batch)}) ORDER BY claim_id, dropped_at, url_key",
                                                      batch):
                formerly.setdefault(claim_id, []).append(tuple(former))
        return [_claim_row(row, cited.get(row[0], []), formerly.get(row[0], [])) for row in rows]

    def captures_by_url(self, url_keys: set[str]) -> dict[str, list[CaptureRow]]:
        found: dict[str, list[CaptureRow]] = {key: [] for key in url_keys}
        keys = sorted(url_keys)
        for batch in in_batches(keys):
            for row in self._db.execute(f"SELECT * FROM captures WHERE url_key IN ({placeholders(batch)})"
                                        " ORDER BY started_at, id", batch):
                found[row[3]].append(CaptureRow(*row))
        return found

    def claims_with_captures(self, claims: list[ClaimRow]) -> list[dict]:
        """Each claim with, for each URL it cites or cited before a re-read dropped it, every
        capture of that URL, oldest first."""
        by_url = self.captures_by_url({key for claim in claims for key in claim.url_keys_ever()})
        return [{**claim.as_dict(), "captures": {key: [c.as_dict() for c in by_url[key]] for key in claim.url_keys_ever()}}
                for claim in claims]

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

    def query(self, sql: str, args: tuple = ()) -> Cursor:
        """A read-only cursor for a short read (on PostgreSQL it holds every row it returns): a
        read as long as the catalog is stream()'s."""
        return self._db.execute(sql, args)

    def stream(self, sql: str, args: tuple = ()) -> Iterator[tuple]:
        """The rows of a read as long as the catalog (every claim, every record), never all held
        at once, on either database, all of one state of it; other statements may run while it
        is read. It holds that state until read to its end (Database.stream)."""
        return self._db.stream(sql, args)

    def custody_lines(self) -> Iterator[str]:
        """A shared collection's custody log, oldest entry first."""
        for (line,) in self._db.execute("SELECT line FROM custody_entries ORDER BY seq"):
            yield line

    def custody_lines_from(self, seq: int) -> list[tuple[int, str]]:
        """A shared collection's custody entries from `seq` on, as (seq, line), oldest first."""
        return self._db.execute("SELECT seq, line FROM custody_entries WHERE seq >= ? ORDER BY seq", (seq,)).fetchall()

    def captures(self, url_key: str | None = None) -> list[CaptureRow]:
        return [CaptureRow(*row) for row in self._db.execute(*captures_listing(url_key).whole())]

    def capture_pages(self, url_key: str | None = None) -> Iterator[list[CaptureRow]]:
        """The captures that captures() lists, a page at a time, as claim_pages() reads claims."""
        for rows in captures_listing(url_key).pages(self._db):
            yield [CaptureRow(*row) for row in rows]

    def captures_of_jobs(self, job_ids: list[str]) -> dict[str, CaptureRow]:
        """The capture made for each of these queued jobs that has one, by job id."""
        found = [CaptureRow(*row) for batch in in_batches(job_ids)
                 for row in self._db.execute(f"SELECT * FROM captures WHERE job_id IN ({placeholders(batch)})", batch)]
        return {capture.job_id: capture for capture in found}

    def find_capture(self, id_prefix: str) -> list[CaptureRow]:
        return [CaptureRow(*row) for row in self._db.execute(
            f"SELECT * FROM captures WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT {FOUND_AT_MOST}", (_like_prefix(id_prefix),))]

    def records(self, capture_id: str) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT record_id, warc_type, role, target_uri, warc_date, warc_file, warc_offset, length, content_length,"
            " block_digest, payload_digest, truncated FROM records WHERE capture_id = ? ORDER BY seq", (capture_id,))
        return [StoredRecord(*row) for row in rows]

    def payload_record(self, capture_id: str) -> StoredRecord | None:
        """The response record holding the capture's payload: its final response, where a
        redirect chain ended (an earlier capture's, for a revisit); None for an imported revisit
        whose original the collection does not hold."""
        holder, final = self._db.execute(
            "SELECT id, response_record_id FROM captures"
            " WHERE id = (SELECT COALESCE(revisit_of, id) FROM captures WHERE id = ?)", (capture_id,)).fetchone()
        responses = [r for r in self.records(holder) if r.warc_type == "response"]
        return next((r for r in responses if r.record_id == final), responses[0] if responses else None)

    def attestation(self, capture_id: str) -> dict | None:
        row = self._db.execute("SELECT envelope FROM attestations WHERE capture_id = ?", (capture_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def warc_file(self, name: str) -> dict | None:
        row = self._db.execute("SELECT name, warcinfo_id, opened_at, closed_at, size, sha256 FROM warc_files"
                               " WHERE name = ?", (name,)).fetchone()
        return dict(zip(("name", "warcinfo_id", "opened_at", "closed_at", "size", "sha256"), row)) if row else None


def _claim_row(row: tuple, cited: list[tuple], dropped: list[tuple]) -> ClaimRow:
    """The claim with its citations and each URL it cited and no longer cites, once, with when it
    was last dropped (in dropped_at order): one cited again since is a citation, not a former one."""
    now = {key for _, key, _ in cited}
    former = {key: (url, key, at, since) for url, key, at, since in dropped if key not in now}.values()
    return ClaimRow(*row, citations=tuple((url, key) for url, key, _ in cited),
                    former_citations=tuple((url, key, at) for url, key, at, _ in former),
                    cited_since=tuple((key, since) for _, key, since in cited) + tuple((key, since) for _, key, _, since in former))


def how_many_found(count: int) -> str:
    """How many ids a prefix matched, as find_claim and find_capture can tell (they stop at FOUND_AT_MOST)."""
    return f"{count} or more" if count >= FOUND_AT_MOST else str(count)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
