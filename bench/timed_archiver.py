"""`archiver ARGS`, timed: bench/scale.py runs `python bench/timed_archiver.py ARGS` in place of
`python -m archiver ARGS` to learn where a capture's time goes, with no benchmark code in archiver.

It wraps, without changing what they do, the queue's task function (a job's time in our code),
a worker's job in its thread, a group of captures stored (records made, signed, written and
fsynced), the catalog's per-capture look-ups, its file opened and its listing of captures (the
transaction at upload, custody entries included), and a WARC's upload; when the process ends it
writes one JSON array per call to $ARCHIVER_TIMINGS/PID.jsonl: [what, thread, start, end, detail]
(detail: the job id, or how many captures). Stamps are time.time(), this machine's wall clock,
the clock of PostgreSQL's now() that procrastinate's events carry."""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
import time

sys.path.pop(0)  # this folder: its modules (capture.py…) are not archiver's

from archiver.capture import queue
from archiver.capture.run import CaptureRun
from archiver.cli import main
from archiver.store.catalog import Catalog
from archiver.store.s3 import S3Storage

STAMPS: list[tuple] = []


def _timed(cls: type, method: str, what: str, detail=lambda *args: None) -> None:
    function = getattr(cls, method)

    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            STAMPS.append((what, threading.get_ident(), start, time.time(), detail(*args)))

    setattr(cls, method, timed)


def _timed_task() -> None:
    task = queue._capture  # looked up by queue._app when the worker starts

    async def timed(context, url: str) -> None:
        start = time.time()
        try:
            await task(context, url)
        finally:
            STAMPS.append(("task", threading.get_ident(), start, time.time(), str(context.job.id)))

    queue._capture = timed


def _write() -> None:
    with open(os.path.join(os.environ["ARCHIVER_TIMINGS"], f"{os.getpid()}.jsonl"), "w") as out:
        out.writelines(json.dumps(stamp) + "\n" for stamp in STAMPS)


_timed_task()
_timed(CaptureRun, "capture_job", "job", lambda run, url, job_id, *rest: job_id)
_timed(CaptureRun, "_store", "store", lambda run, results, *rest: len(results))
_timed(Catalog, "payload_origins", "lookup")
_timed(Catalog, "captures_of_jobs", "lookup")
_timed(Catalog, "file_opened", "file opened")
_timed(Catalog, "add_captures", "listing", lambda catalog, captures, *rest: len(captures))
_timed(S3Storage, "publish", "upload")
atexit.register(_write)
main()
