"""`archiver worker`: take capture jobs from a shared collection's queue and capture them."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import click

from archiver.capture.queue import HEARTBEAT, STALLED_AFTER, queue_location, work
from archiver.capture.run import CaptureRun
from archiver.cli.common import collection_option, echo, json_option, key_option, literal, one_line, print_json
from archiver.cli.recovery import repair_interrupted
from archiver.evidence.worker_keys import worker_signing_key
from archiver.errors import ArchiverError, StorageProblem
from archiver.store.collection import Collection


@click.command()
@collection_option
@click.option("--concurrency", type=click.IntRange(1, 256),
              help="Jobs captured at once (default from archiver.toml, else 8 over HTTP, 4 pages in a browser).")
@key_option
@click.option("--machine", "machine_name", metavar="NAME",
              help="The name this machine's worker key is announced with on its first use, which `keys show` lists "
                   "it by (default: the host name; machines made from one image may share it).")
@click.option("-v", "--verbose", is_flag=True,
              help="Also log what the job queue (procrastinate) and the PostgreSQL driver say, with their tracebacks: "
                   "each connection retry, each failed job.")
@json_option
def worker(collection_dir: Path, concurrency: int | None, key_file: Path | None, machine_name: str | None, verbose: bool,
           as_json: bool) -> None:
    """Take capture jobs from the collection's queue and capture them.

    Jobs are queued by `archiver capture --queue`; each is captured over HTTP or in a browser as
    capture_mode says, until Ctrl-C or SIGTERM.

    Run as many as you like, on as many machines, each in a folder holding the shared
    collection's archiver.toml. A job is done once its capture is fsynced in this folder; the
    catalog lists the capture when its WARC is uploaded (once warc_age old, or full, or when the
    worker stops). Ctrl-C (or SIGTERM) stops taking jobs, lets those under way finish and
    uploads what they wrote. A worker that dies mid-job loses nothing: its jobs are taken again by the others a
    few seconds after its last heartbeat, and the catalog keeps one capture per job. A WARC
    it left half-written in this folder is finished and uploaded when it starts again.

    Everything it signs (attestations, custody entries) is signed by this machine's worker key
    (worker.ed25519.pem in the collection folder), made and announced on first use by the
    collection's key (--key), named --machine (default: the host name), so that a stolen
    machine's key is revoked alone.

    With --json, prints on stopping the run's id and how many captures it made.

    On a problem of its own (its catalog connection ended by a server restart, an upload the
    store refused), or its key revoked, the worker stops with one line; a job it was capturing
    waits to be taken again: run workers under a supervisor that starts them again. What the job
    queue and the PostgreSQL driver log meanwhile (connection retries, the failed job) is shown
    with -v only.

    Exit 0 when stopped, 2 when the collection's catalog is not on PostgreSQL or this machine's
    key was revoked, 3 when it stopped on a problem of its own.
    """
    _log(verbose)
    collection = Collection.open(collection_dir)
    with collection:
        url = queue_location(collection)
        # This machine's own, announced by --key (as --machine) on first use.
        key = worker_signing_key(collection, machine=machine_name, option=key_file)
        repair_interrupted(collection, key)
        settings = collection.config.capture
        if concurrency is not None:
            settings = dataclasses.replace(settings, concurrency=concurrency)
        stopped = None  # why the worker stopped on its own (see capture/queue.py)
        try:
            with CaptureRun(collection, settings, key) as run:
                echo(f"worker: capturing {run.mode}, {run.settings.concurrency} at once; heartbeat every "
                     f"{HEARTBEAT:g} s, jobs of workers silent for {STALLED_AFTER:g} s taken again; Ctrl-C stops",
                     err=True)
                try:
                    work(url, run, run.settings.concurrency)
                except StorageProblem as problem:
                    stopped = problem
        except (ArchiverError, OSError):
            if stopped is None:
                raise
            # Closing the run met the same ended connection: its WARC file is finished when the worker starts again.
        if stopped is not None:
            raise stopped
        [(captured,)] = collection.catalog.query("SELECT COUNT(*) FROM captures WHERE run_id = ?", (run.run_id,)).fetchall()
    if as_json:
        print_json({"collection": str(collection.root), "run": run.run_id, "captures": captured})
    else:
        echo(f"worker: stopped after {captured} capture(s) (run {run.run_id})", err=True)


class _OneLine(logging.Formatter):
    """A log record as one line on stderr: a failed job's traceback is its last line, not forty."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        return one_line(literal(f"worker: {text}"))


def _archivers_own(record: logging.LogRecord) -> bool:
    return record.name == "archiver" or record.name.startswith("archiver.")


def _log(verbose: bool) -> None:
    """What the worker logs (warnings and errors: an upload refused, a job failed on a fault of
    ours), each a line of its own. What procrastinate, psycopg's pool and asyncio log (each
    retry of a lost connection, the job it failed) repeats, in their words, what the worker
    says in one line when it stops: shown with -v only, tracebacks and all."""
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    if verbose:
        handler.setFormatter(logging.Formatter("worker: %(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLine())
        handler.addFilter(_archivers_own)
    logging.getLogger().addHandler(handler)
