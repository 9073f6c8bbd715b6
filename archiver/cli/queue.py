"""`archiver queue`, and `archiver capture --queue`: a shared collection's capture jobs."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from archiver.capture.queue import (RUNNING, STALLED_AFTER, SUCCEEDED, TAKEN_AGAIN, WAITING, Enqueued, enqueue,
                                    job_counts, job_states, last_heartbeat, queue_location)
from archiver.capture.documents import record_documents
from archiver.capture.targets import Targets
from archiver.cli.common import collection_option, console, echo, json_option, print_json, print_table, signing_key
from archiver.evidence.keys import custody_log
from archiver.store.collection import Collection
from archiver.store.rows import CaptureRow

FOLLOW_EVERY = 0.5  # seconds between looks at the jobs `capture --queue --wait` follows
UPLOAD_SLACK = 30.0  # seconds past warc_age for a worker's WARC to be uploaded and its captures listed


@click.command("queue")
@collection_option
@json_option
def queue(collection_dir: Path, as_json: bool) -> None:
    """Show the collection's capture jobs: queued, running, stalled, stopping, done, failed, and retried.

    A retried job was taken again after its worker stopped. A stalled job's worker stopped beating its heart
    (killed, or its machine lost): a running worker takes it again. A stopping job was asked to stop (aborted
    through procrastinate) and has not ended yet; it is not taken again.

    Exit 0, or 2 when the collection's catalog is not on PostgreSQL.
    """
    collection = Collection.open(collection_dir)
    with collection:
        url = queue_location(collection)
        counts = job_counts(url)
        if counts["stalled"]:
            echo(f"{counts['stalled']} job(s) stalled: their worker's heartbeat stopped over {STALLED_AFTER:g} s ago "
                 f"(killed, or its machine lost); they are {TAKEN_AGAIN}"
                 f"{'' if last_heartbeat(url)[0] else ' (none is running now: start one)'}; `archiver doctor` lists them",
                 err=True)
    if as_json:
        print_json(counts)
    else:
        print_table(["jobs", "count"], [(state, str(count)) for state, count in counts.items()])


def queue_capture(collection_dir: Path, found: Targets, key_file: Path | None, as_json: bool, wait: bool) -> None:
    """`capture --queue`: read the documents into claims as a capture does, then queue one job
    per URL for `archiver worker`; with `wait`, follow the jobs and print the usual summary."""
    from archiver.cli.capture_summary import print_summary  # the capture command's own telling

    collection = Collection.open(collection_dir)
    with collection:
        url = queue_location(collection)
        key = signing_key(collection, key_file)
        with collection.in_use():
            record_documents(collection, custody_log(collection, key), found.documents)
        enqueued = enqueue(url, found.urls)
        if not as_json:
            already = f"; {len(enqueued.already_queued)} already queued" if enqueued.already_queued else ""
            echo(f"Queued {len(enqueued.jobs)} capture job(s){already}; `archiver worker` captures them, "
                 "`archiver queue` shows them")
        rows = _follow(url, enqueued, collection, as_json) if wait else []
    if as_json:
        print_json({"collection": str(collection.root), "queued": enqueued.jobs, "already_queued": enqueued.already_queued,
                    "captures": [row.as_dict() for row in rows] if wait else None})
    elif wait:
        print_summary(console(), rows, found, None, {}, {}, [])
    if wait and (len(rows) < len(enqueued.jobs) or any(row.outcome == "failed" for row in rows)):
        raise SystemExit(1)  # as a capture: some URL failed, or its job did


def _follow(url: str, enqueued: Enqueued, collection: Collection, as_json: bool) -> list[CaptureRow]:
    """Wait until every job queued is done or failed, showing progress on a terminal; their
    captures, in the order queued."""
    ids = list(enqueued.jobs.values())
    bar = None
    if not as_json and console(stderr=True).is_terminal and ids:
        bar = Progress(TextColumn("captured"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=console(stderr=True), transient=True)
        task = bar.add_task("", total=len(ids))
        bar.start()
    # A job is done once its capture is fsynced in its worker's spool; the catalog lists the
    # capture when that WARC file is uploaded, within warc_age (then some slack for the upload).
    listed_by = None
    told_no_worker = False  # once for each time none is alive
    try:
        while True:
            states = job_states(url, ids)
            if any(state in (WAITING, RUNNING) for state in states.values()):
                told_no_worker = _tell_if_no_worker(url, told_no_worker)
            captured = collection.catalog.captures_of_jobs([str(job) for job in ids])
            if bar is not None:
                bar.update(task, completed=sum(state not in (WAITING, RUNNING) for state in states.values()))
            if not any(state in (WAITING, RUNNING) for state in states.values()):
                listed_by = listed_by or time.monotonic() + collection.config.capture.warc_age + UPLOAD_SLACK
                unlisted = [job for job, state in states.items() if state == SUCCEEDED and str(job) not in captured]
                if not unlisted or time.monotonic() > listed_by:
                    break
            time.sleep(FOLLOW_EVERY)
    finally:
        if bar is not None:
            bar.stop()
    if unlisted:
        echo(f"{len(unlisted)} job(s) done whose captures are not listed yet: the WARC file holding them has "
             "not been uploaded (its worker stopped?); they are listed once it is", err=True)
    return [captured[str(job)] for job in ids if str(job) in captured]


def _tell_if_no_worker(url: str, told: bool) -> bool:
    """Say, once, that no worker beats its heart, so a wait with none is not a silent hang (the
    jobs wait for one). Whether it has been said, or must be again once one dies in turn."""
    alive, last = last_heartbeat(url)
    if not alive and not told:
        since = f" (no heartbeat since {last})" if last else ""
        echo(f"no worker is running{since}: start `archiver worker` in a folder holding the collection's "
             "archiver.toml; still waiting for the jobs (Ctrl-C stops waiting, the jobs stay queued)", err=True)
    return not alive
