"""The capture queue's bookkeeping on a real PostgreSQL: the workers' setting back of stalled
jobs through a failed round, and how `queue` counts a job asked to stop."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import psycopg
import pytest

from archiver.capture import queue
from archiver.cli.worker import _OneLine
from tests.conftest import make_collection


def _job_under_way(url: str, target: str, heartbeat: str | None, abort_requested: bool = False) -> int:
    """A capture job of `target` marked 'doing' by a worker whose last heartbeat is `heartbeat`
    (an SQL expression; None: no worker row left); its id."""
    [job] = queue.enqueue(url, [target]).jobs.values()
    with psycopg.connect(url, autocommit=True) as db:
        worker = None
        if heartbeat is not None:
            [(worker,)] = db.execute(f"INSERT INTO procrastinate_workers (last_heartbeat) VALUES ({heartbeat})"
                                     " RETURNING id").fetchall()
        db.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s, abort_requested = %s"
                   " WHERE id = %s", (worker, abort_requested, job))
    return job


def _rename_workers_table(url: str, old: str, new: str) -> None:
    """A round's query then fails for real on the server, as it would on a dropped connection."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"ALTER TABLE {old} RENAME TO {new}")


async def _until(condition, what: str, retrying: asyncio.Task) -> None:
    """Wait for `condition`; fail at once if the task setting back stalled jobs ended first."""
    deadline = time.monotonic() + 120  # a guard against a hang, not a guess of how long it takes
    while not condition():
        if retrying.done():
            pytest.fail(f"the task setting back stalled jobs ended before {what}: "
                        f"{'cancelled' if retrying.cancelled() else repr(retrying.exception())}")
        assert time.monotonic() < deadline, f"still not {what}"
        await asyncio.sleep(0.05)


def _catalog_fine(url: str):
    """The worker's own check, answered by a real query: its catalog works, so it does not stop."""
    async def stopped_on_a_problem_of_its_own() -> bool:
        with psycopg.connect(url) as db:
            db.execute("SELECT 1")
        return False
    return stopped_on_a_problem_of_its_own


def _failed_rounds_said(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage().startswith("could not look for the jobs")]


async def _retrying_after_a_failed_round(app, postgresql_url: str, caplog) -> asyncio.Task:
    """The task setting back stalled jobs, started, once it has said a failed round."""
    retrying = asyncio.create_task(queue._retry_stalled(app, _catalog_fine(postgresql_url)))
    await _until(lambda: _failed_rounds_said(caplog), "a failed round said", retrying)
    return retrying


def test_a_failed_round_of_setting_back_stalled_jobs_is_said_once_and_the_next_rounds_still_set_them_back(
        postgresql_url, caplog):
    """A round whose query failed (the connection dropped, the server restarting) ended the task
    for good, unseen until the worker stopped: that worker never again took over a dead worker's
    jobs. Now the failure is one line of the worker's, and the next heartbeats' rounds go on."""
    caplog.set_level(logging.WARNING, logger="archiver")
    stalled = _job_under_way(postgresql_url, "http://127.0.0.1:9/held", "now() - interval '1 hour'")
    _rename_workers_table(postgresql_url, "procrastinate_workers", "procrastinate_workers_away")

    async def run() -> None:
        app = queue._app(postgresql_url, configure=queue._autocommit, pool_factory=queue._pool)
        async with app.open_async():
            retrying = await _retrying_after_a_failed_round(app, postgresql_url, caplog)
            assert queue.job_states(postgresql_url, [stalled]) == {stalled: "doing"}
            _rename_workers_table(postgresql_url, "procrastinate_workers_away", "procrastinate_workers")
            await _until(lambda: queue.job_states(postgresql_url, [stalled]) == {stalled: queue.WAITING},
                         "the stalled job set back to wait", retrying)
            await _until(lambda: any(record.getMessage().startswith("looking for the jobs of stopped workers again, "
                                                                    "after ") for record in caplog.records),
                         "the rounds said to work again", retrying)
            retrying.cancel()
            with pytest.raises(asyncio.CancelledError):
                await retrying

    asyncio.run(run())
    [failed] = _failed_rounds_said(caplog)  # once for the outage, however many heartbeats it lasted
    said = _OneLine().format(failed)
    assert "\n" not in said and said.startswith("worker: could not look for the jobs of stopped workers") and \
        '(UndefinedTable: relation "procrastinate_workers" does not exist' in said, said


def test_the_task_setting_back_stalled_jobs_stops_on_cancel_while_its_rounds_fail(postgresql_url, caplog):
    caplog.set_level(logging.WARNING, logger="archiver")
    queue._ensure_schema(postgresql_url)
    _rename_workers_table(postgresql_url, "procrastinate_workers", "procrastinate_workers_away")

    async def run() -> None:
        app = queue._app(postgresql_url, configure=queue._autocommit, pool_factory=queue._pool)
        async with app.open_async():
            retrying = await _retrying_after_a_failed_round(app, postgresql_url, caplog)
            retrying.cancel()
            with pytest.raises(asyncio.CancelledError):
                await retrying

    asyncio.run(run())


def test_a_failed_round_is_not_said_when_the_worker_stops_on_its_own_catalog_failing_too(postgresql_url, caplog):
    """The server down: the worker's one line says so as it stops (test_workers.py's outage
    test); a line about the queue's round before it would say the same twice."""
    caplog.set_level(logging.WARNING, logger="archiver")
    queue._ensure_schema(postgresql_url)
    _rename_workers_table(postgresql_url, "procrastinate_workers", "procrastinate_workers_away")
    asked = []

    async def stopped_on_a_problem_of_its_own() -> bool:
        asked.append(True)
        return True

    async def run() -> None:
        app = queue._app(postgresql_url, configure=queue._autocommit, pool_factory=queue._pool)
        async with app.open_async():
            await queue._retry_stalled(app, stopped_on_a_problem_of_its_own)

    asyncio.run(run())  # it returns: the worker is stopping
    assert asked == [True] and _failed_rounds_said(caplog) == []


def test_a_job_asked_to_stop_is_counted_stopping_not_running_nor_stalled(postgresql_url):
    """procrastinate marks a job asked to stop by abort_requested on a 'doing' job ('aborting'
    before its 3.0, still a status of its enum): `queue` counted it running (or, its worker
    dead, stalled, which a live worker would fail, not take again)."""
    legacy = _job_under_way(postgresql_url, "http://127.0.0.1:9/legacy", "now() + interval '1 hour'")
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        db.execute("UPDATE procrastinate_jobs SET status = 'aborting' WHERE id = %s", (legacy,))
    _job_under_way(postgresql_url, "http://127.0.0.1:9/alive", "now() + interval '1 hour'", abort_requested=True)
    _job_under_way(postgresql_url, "http://127.0.0.1:9/dead", None, abort_requested=True)
    _job_under_way(postgresql_url, "http://127.0.0.1:9/running", "now() + interval '1 hour'")
    assert queue.job_counts(postgresql_url) == {"queued": 0, "running": 1, "stalled": 0, "stopping": 3, "done": 0,
                                                "failed": 0, "retried": 0}
    assert queue.stalled_jobs(postgresql_url) == []  # doctor would say a worker takes it again


def test_queue_prints_the_jobs_asked_to_stop(run_cli, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    _job_under_way(postgresql_url, "http://127.0.0.1:9/a", "now() + interval '1 hour'", abort_requested=True)
    shown = run_cli("queue", "-C", collection.root)
    assert shown.exit_code == 0 and "running\t0\nstalled\t0\nstopping\t1\n" in shown.stdout, shown.output
    shown = run_cli("queue", "-C", collection.root, "--json")
    assert json.loads(shown.stdout) == {"queued": 0, "running": 0, "stalled": 0, "stopping": 1, "done": 0,
                                        "failed": 0, "retried": 0}
