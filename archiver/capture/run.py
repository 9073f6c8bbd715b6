"""A capture run: targets → URLs → fetched concurrently → WARC records → catalog.

Each capture is stored by one thread at a time: its records are appended and fsynced, then
the catalog lists it in one transaction (in a store shared by machines, once its WARC file is
uploaded: capture/awaiting_upload.py). A failed fetch is cataloged with its reason."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import queue
import re
import secrets
import threading
from datetime import datetime, timezone
from typing import Callable

from archiver.store.rows import CaptureRow, PayloadOrigin
from archiver.store.collection import Collection
from archiver.store.settings import CaptureSettings
from archiver.store.storage import StoredFile
from archiver.store.leftovers import shared_by_machines
from archiver.errors import StorageProblem
from archiver.capture.fetch.engine import Fetcher, FetchResult
from archiver.capture.fetch.policy import SafeResolver
from archiver.evidence.custody import WARC_CLOSED, closed_subject
from archiver.evidence.key_watch import key_watch
from archiver.evidence.keys import custody_log
from archiver.read.seeds import Claim, Document
from archiver.capture.documents import record_documents, record_note
from archiver.evidence.signing import SigningKey, canonical_json
from archiver.read.urls import normalise_url
from archiver.capture.browser.records import page_records
from archiver.capture.browser.result import BrowserResult
from archiver.capture.awaiting_upload import AwaitingUpload, Capture
from archiver.capture.capture_records import attest, fetch_metadata, made_with
from archiver.capture.engines import chromium_for, page_fetcher
from archiver.capture.group_commit import GroupCommit
from archiver.capture.exchanges import hop_records
from archiver.capture.revisits import compare_unrendered, identical_payloads, rendered_since, unchanged_since
from archiver.capture.shortfalls import incomplete
from archiver.capture.verdict import capture_verdict
from archiver.capture.warc import (PartlyDone, PendingRecord, Revisit, WarcFileWriter, metadata_record, sha256_digest,
                                   warc_date, warc_now)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "archive"


_log = logging.getLogger(__name__)

GROUP_COMMIT = 64  # captures stored together at most, when they arrive faster than one fsync


@dataclasses.dataclass
class _Job:
    """A queued job's fetch on its way to the store, and the capture the store made or found for it."""
    result: FetchResult
    job_id: str
    taken_before: bool
    capture: CaptureRow | None = None
    error: BaseException | None = None  # what stopped its store before it was written (its group's others may be)


def _logged(captures: list[Capture], added: list[bool]) -> list[tuple[str, dict]]:
    """The custody entries logging the captures the catalog added."""
    return [("capture", {
        "capture": row.id, "url": row.url, "outcome": row.outcome, "error": row.error, "records": len(records),
        "attestation": sha256_digest(canonical_json(envelope)) if envelope else None})
        for (row, records, envelope), new in zip(captures, added) if new]


class CaptureRun:
    """Fetches URLs into a collection. Use as a context manager; `capture()` may run once."""

    def __init__(self, collection: Collection, settings: CaptureSettings, key: SigningKey,
                 resolver: SafeResolver | None = None, over: list[str] = (), resumes: list[str] = ()) -> None:
        """`over`: the URLs the run is over, recorded as its plan for a later `--resume`;
        `resumes`: the unfinished runs it takes up, completed once it finishes."""
        self.collection = collection
        self._plan = [normalise_url(url) for url in over]
        self._resumes = list(resumes)
        self.settings = settings
        self.key = key
        self.stored: list[CaptureRow] = []  # of the run's capture() so far
        self._rendered: dict[str, tuple[str | None, CaptureRow]] = {}  # see revisits.rendered_since
        self.custody = custody_log(collection, key)
        self.run_id = f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        self._stop = threading.Event()  # no new fetch starts once set (see `interrupt`)
        self._storing = threading.Lock()  # one store at a time (`capture_job` runs in many threads)
        # A worker's jobs finishing together are stored together, as `capture` stores its results.
        self._job_stores = GroupCommit(self._store_jobs, GROUP_COMMIT)
        self._finished = threading.Event()  # set when the run ends: the age timer stops
        self._rotating = threading.Thread(target=self._close_when_old, name="warc-age", daemon=True)
        self.interrupted = False
        # Until __exit__: the collection in use, and held, so the run writes to its one catalog.
        self._held = contextlib.ExitStack()
        self._held.enter_context(collection.in_use())
        self._held.enter_context(collection)
        try:
            self._set_up(collection, settings, resolver)
        except BaseException:
            self._held.close()
            raise

    def _set_up(self, collection: Collection, settings: CaptureSettings, resolver: SafeResolver | None) -> None:
        self.catalog = collection.catalog
        self._key_watch = key_watch(collection, self.key)  # the one self.custody looks with as it appends
        executable = chromium_for(settings.capture_mode)
        # The concurrency used, set or its mode's default, is the one recorded with every capture.
        self.settings = settings = dataclasses.replace(
            settings, concurrency=settings.captures_at_once(browser=executable is not None))
        self.fetcher = Fetcher(settings, spool_dir=collection.tmp, resolver=resolver)
        self.pages, self.mode, made_by = page_fetcher(self.fetcher, executable, settings.capture_mode)
        operator = collection.config.operator
        self.writer = WarcFileWriter(
            collection.storage, prefix=_slug(collection.config.name), max_size=settings.warc_size,
            info={"operator": operator, "isPartOf": collection.config.name,
                  **made_by,
                  "archiver-run": self.run_id,
                  "archiver-settings": json.dumps(settings.as_record(), sort_keys=True),
                  # Where the evidence is kept, as much as a reader of a bundle needs: the
                  # catalog's kind and database, the bucket and prefix, never a server's address.
                  "archiver-catalog": self.catalog.recorded_as,
                  "archiver-storage": json.dumps(collection.config.storage.as_record(), sort_keys=True)},
            on_open=lambda name, warcinfo_id: self.catalog.file_opened(name, warcinfo_id, warc_now()),
            on_sealed=self._file_sealed, on_close=self._file_closed,
            # In a store shared by machines, captures are durable there only once their file is uploaded.
            max_age=settings.warc_age if shared_by_machines(collection.storage) else None)
        self._awaiting = AwaitingUpload() if self.writer.max_age is not None else None
        self.upload_failed: str | None = None  # why a WARC file going up by age did not
        self.catalog.runs.running(self.run_id)
        self._held.callback(self.catalog.runs.ended, self.run_id)  # on every way out: an error too
        self.catalog.runs.start(self.run_id, warc_now(), made_by["software"], operator, settings.as_record(), self._plan)
        if self.writer.max_age is not None:
            self._rotating.start()

    def __enter__(self) -> "CaptureRun":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._finished.set()
        if self._rotating.is_alive():
            self._rotating.join()
        try:
            self.writer.close()
            # A run interrupted, or stopped by an error (a full disk, a revoked key), stays
            # unfinished, for `--resume` to take up: finished, it would complete the runs it resumes.
            if not self.interrupted and exc_type is None:
                self.catalog.runs.finish(self.run_id, warc_now(), self._resumes)
            self.catalog.runs.ended(self.run_id)  # at once: its browser may take seconds to close
        finally:
            if self.pages is not self.fetcher:
                self.pages.close()
            self.fetcher.close()
            self._held.close()

    def _close_when_old(self) -> None:
        """Close the open WARC once it is warc_age old even while no capture comes (a worker with
        an empty queue), so what it captured goes up to the store within that age."""
        while not self._finished.wait(min(1.0, self.writer.max_age / 4)):
            with self._storing:
                try:
                    self.writer.close_if_old()
                except Exception as exc:  # any: this thread must go on; the file stays in the spool, for doctor
                    problem = exc if isinstance(exc, (StorageProblem, OSError)) else f"{type(exc).__name__}: {exc}"
                    _log.error("cannot upload %s: %s; `archiver doctor --fix` uploads it (a worker's next start "
                               "does too)", self.collection.storage.location, problem)
                    self.upload_failed = getattr(problem, "message", str(problem))  # a worker stops on it (queue.py)

    def interrupt(self) -> None:
        """Stop the run (from a signal handler): no new fetch starts, those in flight get a
        moment to finish, and what is whole is stored; `capture()` then returns what it stored."""
        self.interrupted = True
        self._stop.set()

    def record_documents(self, documents: list[Document]) -> None:
        record_documents(self.collection, self.custody, documents, self._stop)

    def record_note(self, claim: Claim, cited_captures: list[str]) -> None:
        record_note(self.catalog, self.custody, claim, cited_captures)

    def capture(self, urls: list[str], on_capture: Callable[[CaptureRow], None] = lambda row: None) -> list[CaptureRow]:
        """Fetch `urls` concurrently while one writer thread stores the results as they arrive,
        so fetch slots never wait on disk. A storage failure stops the run and is raised
        (`stored` then holds what was stored before it)."""
        rows: list[CaptureRow] = []
        self.stored = rows
        failures: list[BaseException] = []
        stop = self._stop
        fetched: queue.Queue[FetchResult | None] = queue.Queue(maxsize=2 * self.settings.concurrency)

        def write_each() -> None:
            finished = False
            while not finished:
                # Whatever has arrived is stored together: one fsync, one transaction (group commit).
                batch = [fetched.get()]
                while len(batch) < GROUP_COMMIT and batch[-1] is not None:
                    try:
                        batch.append(fetched.get_nowait())
                    except queue.Empty:
                        break
                finished = batch[-1] is None
                results = [result for result in batch if result is not None]
                try:
                    if results and not failures:
                        try:
                            with self._storing:  # the age timer closes files under this lock too
                                stored = self._store(results)
                        except PartlyDone as partial:  # the first ones stored: counted, the error raised
                            stored = partial.done
                            failures.append(partial.problem)
                            stop.set()
                        rows.extend(stored)
                        for row in stored:
                            on_capture(row)
                except BaseException as exc:
                    failures.append(exc)
                    stop.set()
                finally:
                    for result in results:
                        result.release()

        writer = threading.Thread(target=write_each, name="capture-writer")
        writer.start()
        try:
            self.pages.fetch_all(urls, fetched.put, stop=stop)
        finally:
            fetched.put(None)
            writer.join()
        if failures:
            raise failures[0]
        order = {url: i for i, url in enumerate(urls)}
        return sorted(rows, key=lambda row: order.get(row.url, len(order)))

    def capture_job(self, url: str, job_id: str, taken_before: bool = False) -> CaptureRow:
        """Capture one queued URL, from any of a worker's threads. A job is captured once: one
        `taken_before` (after its worker seemed dead) gets the capture made already, if any.
        Only such a job can have one, so only it asks the catalog (a first attempt outrun by
        its own retry elsewhere is caught by the catalog, which keeps the later capture as of no job)."""
        if taken_before:
            with self._storing:  # never between a capture's write and its fsync: it is held then, not yet durable
                if (done := self._captures_of_jobs([job_id], in_catalog=[job_id]).get(job_id)) is not None:
                    return done
        job = _Job(self.pages.fetch(url), job_id, taken_before)
        try:
            self._job_stores.submit(job)
        finally:
            job.result.release()
        if job.error is not None:  # nothing of it written: the job fails, and is taken again
            raise job.error
        return job.capture

    def _captures_of_jobs(self, job_ids: list[str], in_catalog: list[str]) -> dict[str, CaptureRow]:
        """Made here and awaiting their file's upload, or (for the jobs `in_catalog` only) listed
        in the catalog; the catalog is asked first: a capture is let go here only once it lists it."""
        found = self.catalog.captures_of_jobs(in_catalog) if in_catalog else {}
        return found | (self._awaiting.of_jobs(job_ids) if self._awaiting is not None else {})

    def _store_jobs(self, jobs: list[_Job]) -> None:
        """Store the captures of jobs that finished together (see `_job_stores`)."""
        with self._storing:  # looked at after the fetch: a job taken again meanwhile is not written twice
            done = self._captures_of_jobs([job.job_id for job in jobs],
                                          in_catalog=[job.job_id for job in jobs if job.taken_before])
            new = [job for job in jobs if job.job_id not in done]
            try:
                rows = self._store([job.result for job in new], [job.job_id for job in new]) if new else []
            except PartlyDone as partial:
                # A file's upload failed between two of them: those written before are made (held
                # for that file, as a job's capture waiting for its upload is), so their jobs are
                # done; failing them would have them captured again while the first stays in the file.
                rows = partial.done
                for job in new[len(rows):]:
                    job.error = partial.problem
        for job in jobs:
            job.capture = done.get(job.job_id)
        for job, row in zip(new, rows):
            job.capture = row

    def _store(self, results: list[FetchResult], job_ids: list[str] | None = None) -> list[CaptureRow]:
        """Write the captures' records and fsync them, then list them in the catalog in one
        transaction, then in the custody log: whatever is listed is on disk (in a store shared
        by machines, listed once their file is uploaded). With `job_ids` (one per result), each
        capture is its job's, unless the catalog lists one of that job first (then it is of none)."""
        self._key_watch.check()  # before signing: a key revoked or rotated out meanwhile signs nothing more
        origins = identical_payloads(self.catalog, results, self._key_watch.statuses())
        prepared = [self._prepare(*made) for made in zip(results, job_ids or [None] * len(results), origins)]
        cut, held = None, []

        def written(index: int, records: list) -> None:
            # Held as soon as written: the write may close its file before the next capture
            # (a rotation), and that close lists the captures held for the file.
            if self._awaiting is not None:
                held.append((dataclasses.replace(prepared[index][0], warc_file=records[0].warc_file), records,
                             prepared[index][2]))
                self._awaiting.hold(held[-1:])
        try:
            stored = self.writer.write([pending for _, pending, _ in prepared], written)
        except PartlyDone as partial:  # the first ones written and durable: stored below, the rest failed
            stored, cut = partial.done, partial.problem
        except OSError as exc:
            if self._awaiting is not None:
                self._awaiting.let_go(held)
            raise StorageProblem(f"cannot write to {self.collection.storage.folder}: {exc.strerror or exc}",
                                 "free disk space or fix permissions, then run the capture again") from None
        captures = [(dataclasses.replace(row, warc_file=records[0].warc_file if records else None), records, envelope)
                    for (row, _, envelope), records in zip(prepared, stored)]
        rows = [row for row, _, _ in captures]
        if self._awaiting is not None:  # those written are held (above)
            captures = [capture for capture in captures if not capture[1]]  # nothing written, no file to wait for
        if captures:
            self._list(captures)
        if cut is not None:
            raise PartlyDone(rows, cut)
        return rows

    def _list(self, captures: list[Capture], closing: tuple[StoredFile, str] | None = None) -> None:
        """List captures in the catalog and log them, in one transaction on a shared catalog;
        with `closing`, their file is recorded closed in it too."""
        if self.custody.shared is not None:  # the chain is in the catalog: logged in the same transaction
            self.catalog.add_captures(captures, lambda added: self.custody.extension(_logged(captures, added)),
                                      closing=closing)
        else:
            self.custody.append_many(_logged(captures, self.catalog.add_captures(captures, closing=closing)))

    def _file_sealed(self, written: StoredFile) -> None:
        # Signed once its last byte is synced, before the upload: one that fails leaves the file
        # in the spool, and the repair that uploads it later (doctor --fix, a worker's restart,
        # which sign nothing) is held to this entry; an upload reads back what it stored. A crash
        # before the catalog records the close leaves it listed as open, which the next repair
        # closes. A key revoked or rotated out meanwhile signs no close (verify says so).
        if self._key_watch.signs():
            self.custody.append(WARC_CLOSED, closed_subject(written.name, written.size, written.sha256))

    def _file_closed(self, closed: StoredFile) -> None:
        if self._awaiting is None:
            self.catalog.file_closed(closed, warc_now())
            return
        with self._awaiting.listing(closed.name) as captures:
            self._list(captures, closing=(closed, warc_now()))

    def _prepare(self, result: FetchResult, job_id: str | None,
                 origin: PayloadOrigin | None) -> tuple[CaptureRow, list[PendingRecord], dict | None]:
        """A fetched capture as its catalog row, the records to write and its signed attestation;
        with `origin`, its payload is that capture's, and its response is written as a revisit."""
        capture_id = f"{result.started_at:%Y%m%d%H%M%S}-{secrets.token_hex(4)}"
        pending: list[PendingRecord] = []
        response_ids: list[str | None] = []
        verdict = capture_verdict(result)
        if origin is not None and job_id is None:  # a run's, for its summary; a worker's jobs have none
            if (seen := rendered_since(self.collection.storage, self.catalog, result, verdict and verdict.verdict)) is not None:
                self._rendered[capture_id] = seen
        for hop in result.hops:
            revisit = Revisit(origin.record_id, origin.target_uri, origin.warc_date) if origin and hop is result.final else None
            records, response_id = hop_records(hop, revisit)
            pending += records
            response_ids.append(response_id)
        final = result.final
        final_tls = final.exchange.connection.tls if final and final.exchange.connection else None
        final_response_id = response_ids[-1] if final else None
        page_section, details = None, {}
        if isinstance(result, BrowserResult):
            extra, page_section = page_records(result, final_response_id)
            pending += extra
        if pending:
            details = fetch_metadata(capture_id, result, response_ids, self.settings, self.collection.config.operator) \
                | (page_section or {}) \
                | {"verdict": verdict and {"verdict": verdict.verdict, "reason": verdict.reason}}
            pending.append(metadata_record(result.url, result.started_at,
                                           final_response_id or pending[-1].header("WARC-Record-ID"),
                                           json.dumps(details, indent=1, sort_keys=True, ensure_ascii=False).encode()))
        final_response = next((p for p in pending if p.header("WARC-Record-ID") == final_response_id), None)
        row = CaptureRow(
            id=capture_id, run_id=self.run_id, url=result.url, url_key=normalise_url(result.url),
            final_url=final.url if final else None, outcome=result.outcome,
            http_status=final.status if final else None, error=result.error, truncated=final.truncated if final else None,
            started_at=warc_date(result.started_at), finished_at=warc_date(result.finished_at),
            ip=final.exchange.connection.ip if final and final.exchange.connection else None,
            cert_sha256=final_tls.leaf_sha256 if final_tls else None, redirects=max(len(result.hops) - 1, 0),
            payload_digest=final_response.header("WARC-Payload-Digest") if final_response else None,
            response_length=final.exchange.spool.size if final_response else None,
            warc_file=None, response_record_id=final_response_id,
            metadata_record_id=pending[-1].header("WARC-Record-ID") if pending else None,
            revisit_of=origin.capture_id if origin else None,
            verdict=verdict and verdict.verdict, verdict_reason=verdict and verdict.reason, job_id=job_id,
            incomplete=incomplete(details))
        envelope = attest(row, pending, self.key, self.collection.config.operator, made_with(result)) if pending else None
        return row, pending, envelope

    def unchanged_since(self, rows: list[CaptureRow]) -> dict[str, str]:
        """For captures stored as revisits and unchanged: since when (see revisits.unchanged_since)."""
        return unchanged_since(rows, compare_unrendered(self.catalog, rows, self._rendered))

    def rendered_changes(self, rows: list[CaptureRow]) -> dict[str, str]:
        """For captures stored as revisits (the same HTML) showing another page than the one before: how."""
        compared = compare_unrendered(self.catalog, rows, self._rendered)
        return {row.id: change for row in rows if (change := compared.get(row.id, (None, None))[0])}
