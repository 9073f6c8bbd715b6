"""The capture queue of a shared collection: one job per URL, kept by procrastinate (a
PostgreSQL task queue, its tables and migrations its own) in the collection's PostgreSQL
catalog, and taken by `archiver worker` processes on any number of machines.

A worker beats its heart every HEARTBEAT seconds. A job whose worker has missed its beats for
STALLED_AFTER seconds (killed, its machine gone) is set back to wait by the workers still
alive, so nothing is lost; the catalog keeps one capture per job however often it runs.
A job that meets a problem of the worker's own (its catalog connection ended by a server
restart, its key revoked) is set back to wait too, and the worker stops, saying why: every
job it took after would meet the same, and a worker started anew starts with all new."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import select
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Iterator

import procrastinate
import psycopg
import psycopg_pool
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException

from archiver.capture.fetch.schedule import host_of
from archiver.errors import ArchiverError, StorageProblem, UsageProblem
from archiver.evidence.worker_keys import worker_key_path
from archiver.read.urls import normalise_url
from archiver.store.database import is_server_url
from archiver.store.postgresql_database import refused_connection

if TYPE_CHECKING:
    from procrastinate.job_context import JobContext

    from archiver.capture.run import CaptureRun
    from archiver.store.catalog_locks import CatalogLocks
    from archiver.store.collection import Collection

TASK = "archiver.capture"
QUEUE = "archiver-captures"
HEARTBEAT = 1.0  # seconds between a worker's heartbeats
STALLED_AFTER = 4.0  # seconds without one after which its jobs are taken again
SLOT_WAIT = 0.2  # seconds between a waiting job's tries for a slot of its host
SCHEMA_LOCK = 0x61726368697651  # an advisory lock: one process at a time creates the queue's tables
WAITING, RUNNING, SUCCEEDED = "todo", "doing", "succeeded"

_log = logging.getLogger(__name__)


def queue_location(collection: Collection) -> str:
    """The PostgreSQL URL whose database holds `collection`'s queue; refused for a collection
    whose catalog is a SQLite file, which workers on other machines cannot reach."""
    location = collection.catalog_location
    if not is_server_url(location):
        raise UsageProblem(f"the collection {collection.root} keeps its catalog in a local file, and the capture "
                           "queue lives in a PostgreSQL catalog",
                           "make a shared collection with `archiver init --catalog postgresql://…`, "
                           "or capture here without --queue")
    return str(location)


class FleetHostSlots:
    """per_host across the fleet: a job's capture holds one of its host's per_host slots for
    every worker of the collection (an advisory lock on the worker's catalog connection, which
    a worker's death lets go), so N workers send a host per_host captures at once, not N × per_host.
    A job waiting for a slot holds one of its worker's concurrency slots meanwhile."""

    def __init__(self, locks: CatalogLocks, per_host: int) -> None:
        self._locks = locks
        self._per_host = per_host

    @contextlib.contextmanager
    def held(self, url: str) -> Iterator[None]:
        host = host_of(url)
        while (slot := self._locks.take_host_slot(host, self._per_host)) is None:
            time.sleep(SLOT_WAIT)
        try:
            yield
        finally:
            self._locks.let_host_slot_go(slot)


def _capture_within(hosts: FleetHostSlots, run: CaptureRun, url: str, job_id: str, taken_before: bool) -> None:
    """The job's capture, once its host has a free slot across the fleet."""
    with hosts.held(url):
        run.capture_job(url, job_id, taken_before=taken_before)


async def _capture(context: JobContext, url: str) -> None:
    # Handed to a job thread here rather than as a synchronous task, which procrastinate hands
    # over through asgiref (a copied context and a wrapper per call: about twice the CPU).
    run: CaptureRun = context.additional_context["run"]
    try:
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(
            _capture_within, context.additional_context["hosts"], run, url, str(context.job.id),
            context.job.attempts > 0))
    except ArchiverError as problem:  # the worker's own: the job goes back to wait (RETRY), the worker stops
        context.additional_context["stop"](problem)
        raise
    except Exception:  # a fault of ours: the job fails, said in the worker's words (procrastinate's with -v)
        _log.error("job %s, capturing %s, failed on a fault of ours", context.job.id, url, exc_info=True)
        raise


# A job whose worker met a problem of its own waits a little, then any worker takes it again.
# Each worker meeting such a problem spends one attempt: a fleet's database restart may spend many.
RETRY = procrastinate.RetryStrategy(max_attempts=50, wait=2, retry_exceptions={ArchiverError})


def _app(url: str, **pool_settings) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url, **pool_settings))
    app.task(name=TASK, queue=QUEUE, pass_context=True, retry=RETRY)(_capture)
    return app


async def _unless_closed(connection: psycopg.AsyncConnection) -> None:
    """The pool's check of a connection before handing it out: raise if the server closed it
    (restarted, or ended the session), so the pool makes a new one. A server that closes a
    connection says so first (an error message, then end of file), which leaves its socket
    readable; only then is the connection asked (one round trip), where procrastinate's default
    check asks every time, twice a job."""
    if connection.closed or connection.broken:
        raise psycopg.OperationalError("the connection is closed")
    if select.select([connection.fileno()], [], [], 0)[0]:
        await psycopg_pool.AsyncConnectionPool.check_connection(connection)


def _pool(**settings) -> psycopg_pool.AsyncConnectionPool:
    return psycopg_pool.AsyncConnectionPool(**(settings | {"check": _unless_closed}))


async def _autocommit(connection: psycopg.AsyncConnection) -> None:
    """Each of procrastinate's statements is one call of its own SQL function, atomic alone: run
    outside a transaction, it costs one round trip, not three (BEGIN, it, COMMIT)."""
    await connection.set_autocommit(True)


@contextlib.contextmanager
def _database(url: str, **settings) -> Iterator[psycopg.Connection]:
    """A connection to the queue's database, or the StorageProblem naming why there is none."""
    try:
        connection = psycopg.connect(url, connect_timeout=10, **settings)
    except psycopg.OperationalError as exc:
        raise refused_connection(url, exc) from None
    with connection:
        yield connection


def _ensure_schema(url: str) -> None:
    """procrastinate's tables, created on the queue's first use (by an app of its own, opened
    synchronously: the worker's pool settings are for asyncio)."""
    with _database(url, autocommit=True) as db:
        db.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            if db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
                app = _app(url)
                with app.open():
                    app.schema_manager.apply_schema()
        finally:
            db.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


@dataclass
class Enqueued:
    jobs: dict[str, int] = field(default_factory=dict)  # URL → the id of its new job
    already_queued: list[str] = field(default_factory=list)  # URLs waiting in the queue already


def enqueue(url: str, urls: list[str]) -> Enqueued:
    """One job per URL; a URL whose job is still waiting (queued by anyone) is not queued again."""
    app = _app(url)
    _ensure_schema(url)
    enqueued = Enqueued()
    with app.open():
        task = app.tasks[TASK]
        for target in urls:
            try:
                enqueued.jobs[target] = task.configure(queueing_lock=normalise_url(target)).defer(url=target)
            except AlreadyEnqueued:
                enqueued.already_queued.append(target)
    return enqueued


def job_states(url: str, job_ids: list[int]) -> dict[int, str]:
    """procrastinate's status of each job: todo, doing, succeeded, failed…"""
    with _database(url) as db:
        return dict(db.execute("SELECT id, status::text FROM procrastinate_jobs WHERE id = ANY(%s)",
                               (job_ids,)).fetchall())


# A job asked to stop (procrastinate's abort, from its CLI or admin; `aborting` is the status
# procrastinate before 3.0 gave it, still in its enum). It is never taken again, not even when
# its worker has died (a live worker's retry of it fails it): neither running nor stalled.
_STOPPING = "(j.status = 'aborting' OR (j.status = 'doing' AND j.abort_requested))"
# A job under way whose worker has not beaten its heart for STALLED_AFTER seconds, or is gone
# (killed, its machine lost): procrastinate's own rule (get_stalled_jobs), by which the live
# workers take it again. `queue` counts these, `doctor` lists them.
_STALLED = (f"j.status = 'doing' AND NOT {_STOPPING} AND NOT EXISTS (SELECT 1 FROM procrastinate_workers w"
            " WHERE w.id = j.worker_id AND w.last_heartbeat >= now() - make_interval(secs => %(stalled_after)s))")
TAKEN_AGAIN = "taken again by a running `archiver worker`"


COUNTS = ("queued", "running", "stalled", "stopping", "done", "failed", "retried")  # `queue`'s rows, --json's keys


def job_counts(url: str) -> dict[str, int]:
    """The collection's capture jobs: how many are queued, running, stalled (see _STALLED),
    stopping (see _STOPPING), done and failed, and how many were retried (taken again after
    their worker stopped beating, or stopped on a problem of its own)."""
    with _database(url) as db:
        if db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            return dict.fromkeys(COUNTS, 0)
        row = db.execute(
            "SELECT count(*) FILTER (WHERE status = 'todo'),"
            f" count(*) FILTER (WHERE status = 'doing' AND NOT {_STOPPING} AND NOT ({_STALLED})),"
            f" count(*) FILTER (WHERE {_STALLED}), count(*) FILTER (WHERE {_STOPPING}),"
            " count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status IN ('failed', 'aborted', 'cancelled')),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM procrastinate_events e WHERE e.job_id = j.id"
            " AND e.type = 'deferred_for_retry')) FROM procrastinate_jobs j WHERE task_name = %(task)s",
            {"task": TASK, "stalled_after": STALLED_AFTER}).fetchone()
    return dict(zip(COUNTS, row))


def last_heartbeat(url: str) -> tuple[bool, str | None]:
    """Whether a worker has beaten its heart within STALLED_AFTER seconds, and the last beat of
    any the queue still knows of (None when it knows of none: each stopped, or none ever ran)."""
    with _database(url) as db:
        return db.execute(
            "SELECT coalesce(max(last_heartbeat) >= now() - make_interval(secs => %s), false),"
            " to_char(max(last_heartbeat) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM procrastinate_workers", (STALLED_AFTER,)).fetchone()


def stalled_jobs(url: str) -> list[tuple[int, str, str | None]]:
    """(id, URL, last heartbeat) of each stalled capture job (see _STALLED)."""
    with _database(url) as db:
        if db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            return []
        return db.execute(
            "SELECT j.id, j.args->>'url', (SELECT w.last_heartbeat::text FROM procrastinate_workers w"
            f" WHERE w.id = j.worker_id) FROM procrastinate_jobs j WHERE j.task_name = %(task)s AND {_STALLED}"
            " ORDER BY j.id", {"task": TASK, "stalled_after": STALLED_AFTER}).fetchall()


def work(url: str, run: CaptureRun, concurrency: int) -> None:
    """Take jobs and capture them with `run`, `concurrency` at once, until SIGINT or SIGTERM;
    then no job is taken and those under way finish."""
    app = _app(url, configure=_autocommit, pool_factory=_pool)
    _ensure_schema(url)

    problems: list[ArchiverError] = []

    async def main() -> None:
        # Each job's capture runs in the loop's default executor (see _capture): one thread per job.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(concurrency, "archiver-job"))
        async with app.open_async():
            def stop(problem: ArchiverError) -> None:
                if not problems:  # once: a second cancel would cut short the jobs under way
                    working.cancel()  # procrastinate's own stop: no job taken, those under way finish
                problems.append(problem)

            async def stopped_on_a_problem_of_its_own() -> bool:
                """Also asked while no job comes: an upload by age refused (the file stays in the spool, a
                new start uploads it), or the catalog's connection ended (its file locks went with it)."""
                try:
                    if run.upload_failed is not None:
                        raise StorageProblem(run.upload_failed)
                    await asyncio.get_running_loop().run_in_executor(
                        None, lambda: run.catalog.query("SELECT 1").fetchone())
                except ArchiverError as problem:
                    stop(problem)
                return bool(problems)

            async def stop_on_a_problem_of_its_own() -> None:
                while not problems:
                    await asyncio.sleep(HEARTBEAT)
                    await stopped_on_a_problem_of_its_own()

            retrying = asyncio.create_task(_retry_stalled(app, stopped_on_a_problem_of_its_own))
            watching = asyncio.create_task(stop_on_a_problem_of_its_own())
            working = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], concurrency=concurrency,
                additional_context={"run": run, "stop": stop,
                                    "hosts": FleetHostSlots(run.catalog.locks, run.settings.per_host)},
                update_heartbeat_interval=HEARTBEAT, stalled_worker_timeout=STALLED_AFTER,
                fetch_job_polling_interval=HEARTBEAT, install_signal_handlers=True))
            try:
                await working
            except asyncio.CancelledError:
                if not problems:
                    raise
            finally:
                retrying.cancel()
                watching.cancel()

    asyncio.run(main())
    if problems:
        problem = problems[0]
        if isinstance(problem, UsageProblem):  # its key revoked or rotated out: started again, it would refuse
            raise UsageProblem(f"{problem.message}; this worker stopped (a job it was capturing is taken again by "
                               "another worker)", f"move {worker_key_path(run.collection)} aside and start it again: "
                               "a new worker key is made and announced") from problem
        raise StorageProblem(f"{problem.message}; this worker stopped (a job it was capturing is taken again by any "
                             "worker)", "start it again, which finishes what it kept (a supervisor such as systemd "
                             "can)") from problem


async def _retry_stalled(app: procrastinate.App,
                         stopped_on_a_problem_of_its_own: Callable[[], Awaitable[bool]]) -> None:
    """Every heartbeat, set back to wait the jobs of workers that stopped beating. Done beside
    the worker rather than as a periodic job, so it never waits for a free slot behind a backlog
    of captures and leaves no job row behind each second. No one awaits this task before it is
    cancelled, so a failure ending it would be silent, and this worker would never again take
    over another's jobs: a failed round (its queue connection ended, the table refused) is said
    once and tried again each heartbeat, unless the worker's own catalog fails too (the server
    down), when the worker stops saying so in its one line."""
    failed_rounds = 0
    while True:
        await asyncio.sleep(HEARTBEAT)
        try:
            for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=STALLED_AFTER):
                with contextlib.suppress(ConnectorException):  # another worker set it back first
                    await app.job_manager.retry_job(job)
        except Exception as problem:
            if await stopped_on_a_problem_of_its_own():
                return
            if not failed_rounds:  # once a failure, not every heartbeat of it
                cause = problem.__cause__ or problem  # procrastinate's ConnectorException says only "Database error."
                _log.warning("could not look for the jobs of stopped workers to take them again; trying again "
                             "every %g s (if this goes on, check the catalog's PostgreSQL server)", HEARTBEAT,
                             exc_info=(type(cause), cause, cause.__traceback__))
            failed_rounds += 1
            continue
        if failed_rounds:
            _log.warning("looking for the jobs of stopped workers again, after %d failed round(s)", failed_rounds)
            failed_rounds = 0
