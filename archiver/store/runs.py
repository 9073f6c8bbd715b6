"""The catalog's capture runs: when each started and finished, the URLs it set out to capture
(its plan), and which unfinished runs `capture --resume` takes up.

A run stopped by Ctrl-C or a crash stays unfinished. A resume of some URLs takes up every
unfinished run whose plan names one of them, and skips what those runs captured. A run that
finishes marks as completed the unfinished runs it resumed and those whose whole plan it was
run over too: their rest is captured, so no later resume takes them up again."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Iterable

from archiver.read.urls import normalise_url
from archiver.store.catalog_locks import run_lock
from archiver.store.database import Database, in_batches, placeholders, write_transaction

# Unfinished, and finished by no later run: what a resume may take up.
_PENDING = "finished_at IS NULL AND completed_by IS NULL"


@dataclass(frozen=True)
class Unfinished:
    """The unfinished runs a resume of some URLs takes up (ids, oldest first), the URL keys
    they captured, and how many URLs they set out to capture that are not among those URLs."""

    runs: list[str] = field(default_factory=list)
    captured: set[str] = field(default_factory=set)
    not_given: int = 0


class Runs:
    """The catalog's `runs` table and the plans beside it, on the catalog's connection."""

    def __init__(self, db: Database, guard: threading.Lock) -> None:
        self._db = db
        self._guard = guard  # the catalog's: one thread at a time uses its connection
        self._running: set[str] = set()  # the runs this process holds (running() to ended())

    def start(self, run_id: str, started_at: str, software: str, operator: str, settings: dict,
              plan: Iterable[str] | None = None) -> None:
        """A run begun, with the URL keys it sets out to capture; a run with no `plan` (doctor's
        salvage) is taken up by resumes as runs recorded before plans were."""
        keys = sorted(set(plan)) if plan is not None else []
        with self._guard, write_transaction(self._db):
            self._db.execute("INSERT INTO runs (id, started_at, software, operator, settings, planned_urls)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (run_id, started_at, software, operator,
                                                            json.dumps(settings, sort_keys=True),
                                                            None if plan is None else len(keys)))
            for batch in in_batches(keys):  # a few statements, not one a URL: to a server each is a round trip
                self._db.execute(f"INSERT INTO run_urls (run_id, url_key) VALUES {', '.join(['(?, ?)'] * len(batch))}",
                                 [value for key in batch for value in (run_id, key)])

    def finish(self, run_id: str, finished_at: str, resumed: list[str]) -> None:
        """The run finished: the unfinished runs it `resumed` are completed by it, and so is
        every unfinished run whose whole plan is in its own (each URL of it was fetched since)."""
        with self._guard, write_transaction(self._db):
            self._db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (finished_at, run_id))
            for batch in in_batches(resumed):
                self._db.execute(f"UPDATE runs SET completed_by = ? WHERE {_PENDING} AND id IN ({placeholders(batch)})",
                                 (run_id, *batch))
            self._db.execute(
                f"UPDATE runs SET completed_by = ? WHERE {_PENDING} AND planned_urls > 0 AND NOT EXISTS"
                " (SELECT 1 FROM run_urls p WHERE p.run_id = runs.id AND NOT EXISTS"
                " (SELECT 1 FROM run_urls q WHERE q.run_id = ? AND q.url_key = p.url_key))", (run_id, run_id))

    def running(self, run_id: str) -> None:
        """This process runs `run_id` from now until ended(): taken before the run is started, so
        that a run listed but not held is not running (it stopped, or was salvaged by doctor)."""
        with self._guard:
            self._db.hold(run_lock(run_id))
            self._running.add(run_id)

    def ended(self, run_id: str) -> None:
        """The run's process is done with it, finished or stopped: it no longer runs. Said
        again (a run ends as soon as it can, and on every way out), it changes nothing."""
        with self._guard:
            if run_id in self._running:
                self._running.discard(run_id)
                self._db.let_go(run_lock(run_id))

    def running_elsewhere(self, run_ids: Iterable[str]) -> list[str]:
        """Those of `run_ids` that a live process on another machine runs now (on a shared
        catalog; a SQLite catalog's runs are ordered by the collection's own locks: none)."""
        with self._guard:
            return [run_id for run_id in run_ids if self._db.held_elsewhere(run_lock(run_id))]

    def settings(self, run_id: str) -> dict:
        """The capture settings the run recorded as it started ({} for a run that recorded none)."""
        with self._guard:
            row = self._db.execute("SELECT settings FROM runs WHERE id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    def left_to_capture(self, urls: list[str]) -> tuple[list[str], Unfinished]:
        """For `--resume`: those of `urls` that the unfinished runs a resume of them takes up did
        not capture (one none of them set out to capture is left too, as in any run over it), and those runs."""
        unfinished = self._unfinished({normalise_url(url) for url in urls})
        return [url for url in urls if normalise_url(url) not in unfinished.captured], unfinished

    def _unfinished(self, url_keys: set[str]) -> Unfinished:
        """What a resume of `url_keys` takes up: the unfinished runs whose plan names one of them,
        and those recorded with no plan (as every unfinished run was taken up before plans were)."""
        pending = self._db.execute(f"SELECT id, planned_urls FROM runs WHERE {_PENDING} ORDER BY started_at, id").fetchall()
        plans: dict[str, set[str]] = {run_id: set() for run_id, planned in pending if planned}
        for batch in in_batches(list(plans)):
            for run_id, key in self._db.execute(f"SELECT run_id, url_key FROM run_urls WHERE run_id IN"
                                                f" ({placeholders(batch)})", batch):
                plans[run_id].add(key)
        runs = [run_id for run_id, planned in pending if planned is None or plans.get(run_id, set()) & url_keys]
        captured: set[str] = set()
        for batch in in_batches(runs):
            captured.update(key for (key,) in self._db.execute(
                f"SELECT url_key FROM captures WHERE run_id IN ({placeholders(batch)}) AND outcome = 'ok'", batch))
        planned = set().union(*(plans.get(run_id, set()) for run_id in runs))
        return Unfinished(runs, captured, len(planned - url_keys))
