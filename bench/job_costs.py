"""Where a capture's time goes, from the stamps bench/timed_archiver.py writes (one file per
process) joined by job id with procrastinate's `started` and `succeeded` events and the
catalog's fetch times (both this machine's wall clock):

- queue: procrastinate's own work for a job: from its `started` event to our task function's
  start, and from that function's return to its `succeeded` event;
- records: the rest of our task outside the fetch: the job handed to a thread and back, its
  fetched capture made into records, signed, written and fsynced with the group being stored
  (capture/group_commit.py), waits for that group and for the CPU included;
- store: a group store's own work per capture (the catalog's calls and uploads within it left
  out), the same measure for a worker and a local capture;
- catalog: the catalog's look-ups per capture (in the store) and its per-file work (a file
  opened; the transaction at upload listing the file's captures and their custody entries),
  divided among the captures."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

CATALOG = ("lookup", "file opened", "listing")
NESTED_IN_STORE = (*CATALOG, "upload")


@dataclass
class Stamp:
    what: str
    thread: int
    start: float
    end: float
    detail: str | int | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


def read_stamps(folder: Path) -> dict[int, list[Stamp]]:
    """Each process's stamps, by its pid."""
    return {int(path.stem): [Stamp(*json.loads(line)) for line in path.read_text().splitlines()]
            for path in sorted(folder.glob("*.jsonl"))}


def _own_seconds(outer: Stamp, stamps: list[Stamp]) -> float:
    """`outer`'s time less that of the catalog's calls and uploads it made (same thread, within it)."""
    return outer.seconds - sum(s.seconds for s in stamps if s.what in NESTED_IN_STORE and s.thread == outer.thread
                               and outer.start <= s.start and s.end <= outer.end)


@dataclass
class Costs:
    """Seconds per capture (means) of each part, and the CPU each process spent per capture."""
    captures: int
    store: float
    catalog: float
    lookups: float  # the part of `catalog` spent in per-capture look-ups
    queue: list[float] = field(default_factory=list)  # per job; workers only
    records: list[float] = field(default_factory=list)  # per job; workers only
    hand_off: list[float] = field(default_factory=list)  # per job, the part of `records` outside its thread
    cpu_per_capture: list[float] = field(default_factory=list)  # per capturing process

    @property
    def outside_fetch(self) -> list[float]:
        """Each job's time in procrastinate less its fetch: the figure printed before the split."""
        return [queue + records for queue, records in zip(self.queue, self.records)]


def process_costs(stamps: dict[int, list[Stamp]], captures: int, cpu: dict[int, float]) -> Costs:
    """The store's and catalog's costs per capture over every process, and each process's CPU
    (`cpu`, seconds by pid) per capture it made (its jobs; a local run: all `captures`)."""
    every = [stamp for process in stamps.values() for stamp in process]
    stored = sum(s.detail for s in every if s.what == "store")
    store = sum(_own_seconds(s, stamps[pid]) for pid in stamps for s in stamps[pid] if s.what == "store")
    catalog = sum(s.seconds for s in every if s.what in CATALOG)
    lookups = sum(s.seconds for s in every if s.what == "lookup")
    per_process = []
    for pid, seconds in cpu.items():
        jobs = sum(1 for s in stamps.get(pid, []) if s.what == "task")
        per_process.append(seconds / (jobs or captures))
    return Costs(captures, store / max(stored, 1), catalog / captures, lookups / captures,
                 cpu_per_capture=per_process)


def job_costs(costs: Costs, stamps: dict[int, list[Stamp]], jobs: list[tuple[str, float, float, float, float]]) -> None:
    """Fill in `costs`' per-job split from `jobs`: (job id, `started` event, `succeeded` event,
    fetch started, fetch finished) each, in epoch seconds."""
    every = [stamp for process in stamps.values() for stamp in process]
    tasks = {s.detail: s for s in every if s.what == "task"}
    threads = {s.detail: s for s in every if s.what == "job"}
    missing = [job for job, *_ in jobs if job not in tasks or job not in threads]
    if missing:
        raise SystemExit(f"{len(missing)} jobs have no timings from bench/timed_archiver.py, e.g. job {missing[0]}")
    for job, began, ended, fetch_start, fetch_end in jobs:
        task, thread = tasks[job], threads[job]
        costs.queue.append((task.start - began) + (ended - task.end))
        costs.records.append(task.seconds - (fetch_end - fetch_start))
        costs.hand_off.append(task.seconds - thread.seconds)


def ms(seconds: float | list[float]) -> str:
    """Milliseconds, of a mean when given a list ('-' for none)."""
    if isinstance(seconds, list):
        if not seconds:
            return "-"
        seconds = statistics.mean(seconds)
    return f"{seconds * 1000:.1f}"


def start_up_spread(stamps: dict[int, list[Stamp]], span: float) -> tuple[float, float]:
    """How far apart processes started together took their first jobs (seconds), and the share
    of the span's job slots that left idle: until a worker has started, its slots are idle
    within a span measured from the first job taken anywhere."""
    firsts = sorted(min(s.start for s in process if s.what == "task") for process in stamps.values()
                    if any(s.what == "task" for s in process))
    return firsts[-1] - firsts[0], sum(first - firsts[0] for first in firsts) / (len(firsts) * span)


def steady_rate(stamps: dict[int, list[Stamp]]) -> tuple[float, float]:
    """Jobs taken per second while every worker was taking them, and that window's seconds: from
    the last worker's first job (all started) to the last job taken anywhere (the queue empty, the
    slots draining). The start-ups of processes started together and the drain at the end are
    each run's one-off, which workers left running pay once, not per job."""
    starts = [sorted(s.start for s in process if s.what == "task") for process in stamps.values()]
    starts = [process for process in starts if process]
    begin, end = max(process[0] for process in starts), max(process[-1] for process in starts)
    if end <= begin:
        raise SystemExit("the queue ran out before every worker had started: too few jobs for a steady rate (more --urls)")
    taken = sum(1 for process in starts for start in process if begin <= start < end)
    return taken / (end - begin), end - begin
