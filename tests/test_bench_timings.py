"""bench/scale.py's split of a capture's time: bench/timed_archiver.py runs archiver with its
parts stamped, and bench/job_costs.py joins the stamps with procrastinate's events by job id
(a real worker on a real PostgreSQL catalog, a real origin on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_collection
from tests.test_doctor import page
from tests.test_workers import stop

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import job_costs
    import scale

    return scale, job_costs


def timed(arguments: list[str], timings: Path, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(BENCH / "timed_archiver.py"), *arguments],
                            env=os.environ | {"ARCHIVER_TIMINGS": str(timings)}, **options)


def test_a_workers_job_time_splits_into_the_queues_work_the_fetch_and_the_records(bench, raw_server, tmp_path,
                                                                                  postgresql_url):
    scale, job_costs = bench
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({f"/{i}": page for i in range(3)})
    timings = tmp_path / "timings"
    timings.mkdir()
    running = timed(["worker", "-C", str(collection.root), "--concurrency", "2"], timings,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        waited = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                 "--wait", *(server.url(f"/{i}") for i in range(3))],
                                capture_output=True, text=True, timeout=120, check=False)
    finally:
        stopped = stop(running)
    assert stopped == 0 and waited.returncode == 0, waited.stderr
    _, jobs, ok = scale.job_timings(postgresql_url)
    stamps = job_costs.read_stamps(timings)
    assert ok == 3 and list(stamps) == [running.pid]
    costs = job_costs.process_costs(stamps, 3, {running.pid: 0.3})
    job_costs.job_costs(costs, stamps, jobs)
    # Each job's stamps are its own: its task runs within its time in procrastinate, its thread
    # within its task, its fetch within its thread.
    assert len(costs.queue) == 3 and all(queue > 0 for queue in costs.queue)
    assert all(0 < hand_off < records for hand_off, records in zip(costs.hand_off, costs.records))
    assert costs.cpu_per_capture == [pytest.approx(0.1)]  # the process's CPU over its 3 jobs
    assert costs.store > 0 and costs.catalog > costs.lookups > 0


def test_a_local_capture_is_timed_as_a_worker_is_with_what_it_does_unchanged(bench, raw_server, tmp_path):
    _, job_costs = bench
    collection = make_collection(tmp_path / "local")
    server = raw_server({f"/{i}": page for i in range(4)})
    timings = tmp_path / "timings"
    timings.mkdir()
    captured = timed(["capture", "-C", str(collection.root), "--json", *(server.url(f"/{i}") for i in range(4))],
                     timings, stdout=subprocess.PIPE, text=True)
    output, _ = captured.communicate(timeout=120)
    assert captured.returncode == 0 and json.loads(output)["counts"]["ok"] == 4
    stamps = job_costs.read_stamps(timings)[captured.pid]
    assert sum(s.detail for s in stamps if s.what == "store") == 4
    assert sum(s.detail for s in stamps if s.what == "listing") == 4
    whats = [s.what for s in stamps]
    assert whats.count("lookup") == whats.count("store")  # identical earlier payloads asked for, per group stored
    costs = job_costs.process_costs({captured.pid: stamps}, 4, {captured.pid: 0.4})
    assert costs.cpu_per_capture == [pytest.approx(0.1)] and costs.queue == []
    # The store's own work leaves out the catalog's calls made within it.
    stores = sum(s.seconds for s in stamps if s.what == "store")
    assert 0 < costs.store * 4 < stores


def test_the_workers_start_up_spread_is_how_far_apart_their_first_jobs_began(bench):
    _, job_costs = bench
    task = lambda start: job_costs.Stamp("task", 1, start, start + 0.2, "1")  # noqa: E731
    stamps = {101: [job_costs.Stamp("store", 1, 9.0, 9.1, 1), task(10.0), task(11.0)],
              102: [task(10.5), task(12.0)],
              103: [job_costs.Stamp("upload", 2, 9.5, 9.6, None)]}  # took no job: not a worker of the run
    spread, idle = job_costs.start_up_spread(stamps, span=5.0)
    assert spread == pytest.approx(0.5) and idle == pytest.approx(0.5 / (2 * 5.0))


def test_the_steady_rate_counts_jobs_taken_while_every_worker_was_taking_them(bench):
    _, job_costs = bench
    task = lambda start: job_costs.Stamp("task", 1, start, start + 0.2, "1")  # noqa: E731
    # Worker 101 starts alone at 10.0; 102 takes its first job at 11.0; the last job is taken at 13.0.
    stamps = {101: [task(10.0), task(10.5), task(11.2), task(12.0), task(13.0)],
              102: [task(11.0), task(11.5), task(12.5)],
              103: [job_costs.Stamp("upload", 2, 9.5, 9.6, None)]}  # took no job: not a worker of the run
    rate, window = job_costs.steady_rate(stamps)
    # From 11.0 (both working) to 13.0 (the last job taken): 11.0, 11.2, 11.5, 12.0, 12.5 taken, the job
    # taken at 13.0 ends the window (what is taken in [start, end), over end - start).
    assert window == pytest.approx(2.0) and rate == pytest.approx(5 / 2.0)


def test_a_run_with_most_cores_busy_is_said_to_be_bound_by_the_cpu_and_by_whom(bench, monkeypatch):
    scale, job_costs = bench
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def run(machine: float) -> "scale.Result":
        cpu = {"machine": machine, "window": 10.0, "capturing": machine * 0.7, "postgresql": machine * 0.2,
               "radosgw": 0.0, "origin": machine * 0.05}
        return scale.Result("workers-4x8", 4, 32, 2000, 2000, 10.0, cpu, job_costs.Costs(2000, 0, 0, 0), workers=True)

    assert scale.binding_resource(run(17.0)) == "CPU (1.7 of 2 cores busy; most by workers)"
    assert scale.binding_resource(run(10.0)).startswith("not CPU (1.0 of 2 cores busy)")
