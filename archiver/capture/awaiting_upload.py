"""Captures written to a WARC file of a store shared by machines, held until that file is
uploaded: the catalog then lists them and records the file closed in one transaction, so it
never lists a capture whose bytes are only on one machine's disk.

A capture held here is made (its records and signed attestation fsynced in the spool), so a
worker's job is done with it, and a job taken again on this machine is not captured twice. A
worker that dies before the upload leaves the file in its spool: its restart (or `archiver
doctor --fix`) uploads it and lists its captures from their signed attestations."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from archiver.store.rows import Capture, CaptureRow


class AwaitingUpload:
    """The captures of each file still being written or uploaded, by file name; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_file: dict[str, list[Capture]] = {}
        self._by_job: dict[str, CaptureRow] = {}

    def hold(self, captures: list[Capture]) -> None:
        with self._lock:
            for capture in captures:
                row = capture[0]
                self._by_file.setdefault(row.warc_file, []).append(capture)
                if row.job_id is not None:
                    self._by_job[row.job_id] = row

    def let_go(self, captures: list[Capture]) -> None:
        """Hold these no more (written by a write that then failed: their bytes may be torn)."""
        ids = {capture[0].id for capture in captures}
        with self._lock:
            for name, held in list(self._by_file.items()):
                self._by_file[name] = [capture for capture in held if capture[0].id not in ids]
            for job, row in list(self._by_job.items()):
                if row.id in ids:
                    del self._by_job[job]

    def of_jobs(self, job_ids: list[str]) -> dict[str, CaptureRow]:
        """The capture held for each of these jobs that has one, by job id."""
        with self._lock:
            return {job: self._by_job[job] for job in job_ids if job in self._by_job}

    @contextlib.contextmanager
    def listing(self, name: str) -> Iterator[list[Capture]]:
        """The captures held for file `name`, let go once the block that lists them ends
        without error; until then they still count as made, so that a job looked up meanwhile
        is found here or in the catalog."""
        with self._lock:
            captures = list(self._by_file.get(name, []))
        yield captures
        with self._lock:
            self._by_file.pop(name, None)
            for row, _, _ in captures:
                self._by_job.pop(row.job_id, None)
