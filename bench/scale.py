"""Scale-out benchmark: capture workers on a shared collection (PostgreSQL catalog and queue,
WARCs in radosgw) against one local `archiver capture` (SQLite, local folder).

One server process answers on 127.0.0.1 … 127.0.0.100 (one thread per host, one port), every
response after 100 ms; 2,000 URLs (`--urls`), 20 per host, listed host after host in turn so
that any run of consecutive URLs spreads over many hosts. Captured over HTTP by
  a) 1, 2 and 4 `archiver worker --concurrency 8` processes, from 2,000 jobs queued first with
     `archiver capture --queue`, against a throwaway PostgreSQL 15 cluster (tests/pg.py) and a
     one-node Ceph radosgw (tests/radosgw.py), a fresh database and bucket prefix each;
  b) `archiver capture --no-browser --concurrency 8`, 16 and 32 into a local collection.

Printed for each: pages/s, the latency bound, the share of it reached (workers: at their steady
rate, while every worker was taking jobs; the old share over the whole span beside it), the CPU
seconds of the capturing processes, PostgreSQL, radosgw (with its OSD and monitor) and the
origin; then where a capture's time goes (bench/job_costs.py), from stamps that
bench/timed_archiver.py, which runs every capturing process, writes: for workers, each job's
time in procrastinate (its `started` → `succeeded` events) split into the queue's own work
(before our task function starts and after it returns), the fetch (the catalog's started_at →
finished_at) and the rest of our task (the records made, signed, written and fsynced in a group
store, and the waits for it); the catalog's work per capture (its look-ups, and its transaction
at upload listing a file's captures, divided among them); the store's own work per capture (for
local runs too, to show it is the same work); each process's CPU and PostgreSQL's per capture.

The target "queue and catalog cost under 5 ms per capture" is judged on the queue's own work
plus the catalog's, the costs a shared collection adds: the records are the capture's own work,
which a local `archiver capture` pays as well (the old figure, the job's whole time outside the
fetch, is printed beside it).

Run from the project's venv, as root (Ceph and PostgreSQL run as their own processes):
    python bench/scale.py [--urls N] [--keep]
Exit status 0 when every target passes, else 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from capture import (  # bench/capture.py
    LATENCY,
    _serve_small,
    archiver_command,
    measure,
    new_collection,
    print_table,
    run_and_report,
    run_archiver,
    start_server,
    stop_server,
    verdict,
)
from cpu_time import cpu_seconds, machine_busy, postgres_cpu  # bench/cpu_time.py
from job_costs import (  # bench/job_costs.py
    Costs,
    job_costs,
    ms,
    process_costs,
    read_stamps,
    start_up_spread,
    steady_rate,
)

ROOT = Path(__file__).resolve().parent.parent
HOSTS = 100
WORKER_CONCURRENCY = 8
WORKER_COUNTS = (1, 2, 4)
LOCAL_CONCURRENCIES = (8, 16, 32)
PER_HOST = 2  # archiver's default: captures at once against one host (by all workers together)
TARGET_SHARE = 0.85  # pages/s ÷ the latency bound, for workers
TARGET_QUEUE_COST = 0.005  # seconds of queue + catalog work per capture
TIMED_ARCHIVER = [sys.executable, str(ROOT / "bench" / "timed_archiver.py")]  # archiver, its parts timed


def load_test_helper(name: str):
    """tests/NAME.py as a module, by path (the benchmark is no part of the test package)."""
    spec = importlib.util.spec_from_file_location(f"archiver_tests_{name}", ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Servers:
    postmaster: int
    store: list[int]  # radosgw, OSD, monitor
    origin: int

    def sample(self) -> dict[str, float]:
        return {"postgresql": postgres_cpu(self.postmaster), "radosgw": sum(cpu_seconds(p) for p in self.store),
                "origin": cpu_seconds(self.origin), "machine": machine_busy(), "window": time.perf_counter()}


@dataclass
class Result:
    name: str
    processes: int
    concurrency: int  # in all
    pages: int
    ok: int
    wall: float
    cpu: dict[str, float]  # seconds of the capturing processes, the servers and the machine; "window": over which
    costs: Costs  # where a capture's time goes
    workers: bool = False
    steady: float = 0.0  # workers: pages/s while every worker was taking jobs (job_costs.steady_rate)

    def bound(self) -> float:
        """Pages/s if every slot waited out the latency and nothing else."""
        return min(self.concurrency, HOSTS * PER_HOST) / LATENCY

    def rate(self) -> float:
        return self.pages / self.wall

    def share(self) -> float:
        """Of the latency bound: for workers, their steady rate; for a local run, its whole run's."""
        return (self.steady if self.workers else self.rate()) / self.bound()


def spread_urls(port: int, count: int) -> list[str]:
    """`count` URLs, host after host in turn: URL i on 127.0.0.(i mod 100 + 1)."""
    return [f"http://127.0.0.{i % HOSTS + 1}:{port}/articles/{i // HOSTS}.html" for i in range(count)]


# ---------------------------------------------------------------- the runs

def timings_folder(work: Path, name: str) -> Path:
    """Where the run's processes write their stamps (bench/timed_archiver.py)."""
    folder = work / f"{name}-timings"
    folder.mkdir()
    os.environ["ARCHIVER_TIMINGS"] = str(folder)  # the capturing processes' environment is this one's
    return folder


def run_local(work: Path, servers: Servers, url_file: Path, count: int, concurrency: int) -> Result:
    name = f"local-c{concurrency}"
    timings = timings_folder(work, name)
    before = servers.sample()
    run, summary, _ = run_archiver(name, work, [str(url_file)], ["--no-browser", "--concurrency", str(concurrency)],
                                   command=TIMED_ARCHIVER)
    after = servers.sample()
    cpu = {key: after[key] - before[key] for key in after} | {"capturing": run.cpu}
    stamps = read_stamps(timings)
    costs = process_costs(stamps, count, {pid: run.cpu for pid in stamps})
    return Result(name, 1, concurrency, count, summary["counts"]["ok"], run.wall, cpu, costs)


def shared_collection(work: Path, name: str, database: str, bucket: str) -> Path:
    return new_collection(work / name, "--catalog", database, "--storage", f"s3://{bucket}/{name}/")


def queue_done(db) -> int:
    """Jobs finished, asked on the one connection the benchmark keeps open while it waits: a new
    connection every look (20 a second) cost PostgreSQL a backend's start-up each time, which the
    PostgreSQL CPU printed counted as the workers'."""
    return db.execute("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('succeeded', 'failed')").fetchone()[0]


def job_timings(database: str) -> tuple[float, list[tuple[str, float, float, float, float]], int]:
    """The span from the first job taken to the last finished; each job's id, `started` and
    `succeeded` events and its capture's fetch start and end (epoch seconds); how many captures
    are ok."""
    import psycopg
    with psycopg.connect(database) as db:
        rows = db.execute(
            "SELECT c.job_id, EXTRACT(EPOCH FROM began.at), EXTRACT(EPOCH FROM ended.at),"
            " EXTRACT(EPOCH FROM c.started_at::timestamptz), EXTRACT(EPOCH FROM c.finished_at::timestamptz), c.outcome,"
            " c.error"
            " FROM captures c"
            " JOIN procrastinate_events began ON began.job_id = c.job_id::bigint AND began.type = 'started'"
            " JOIN procrastinate_events ended ON ended.job_id = c.job_id::bigint AND ended.type = 'succeeded'").fetchall()
    if not rows:
        raise SystemExit(f"no finished job has a capture in {database}")
    span = float(max(r[2] for r in rows) - min(r[1] for r in rows))
    jobs = [(job, *map(float, times)) for job, *times, _, _ in rows]
    for error in sorted({r[6] for r in rows if r[5] != "ok"}):
        print(f"    not ok: {error}")
    return span, jobs, sum(1 for r in rows if r[5] == "ok")


def run_workers(work: Path, servers: Servers, cluster, bucket: str, url_file: Path, count: int, workers: int) -> Result:
    import psycopg
    name = f"workers-{workers}x{WORKER_CONCURRENCY}"
    database = cluster.new_database()
    folder = shared_collection(work, name, database, bucket)
    queued = measure(f"{name}-queue", [*archiver_command(), "capture", "-C", str(folder), "--queue", "--json",
                                       "--no-browser", str(url_file)], work)
    queued.check()
    print(f"  {name}: {count} jobs queued in {queued.wall:.1f} s")
    timings = timings_folder(work, name)
    before = servers.sample()
    processes = []
    for i in range(workers):
        with open(work / f"{name}-{i}.stderr", "wb") as err:
            processes.append(subprocess.Popen([*TIMED_ARCHIVER, "worker", "-C", str(folder), "--concurrency",
                                               str(WORKER_CONCURRENCY)], stdout=subprocess.DEVNULL, stderr=err,
                                              stdin=subprocess.DEVNULL, cwd=work))
    deadline = time.monotonic() + 120 + 20 * count * LATENCY / (workers * WORKER_CONCURRENCY)  # a guard against a hang
    with psycopg.connect(database, autocommit=True) as db:
        while queue_done(db) < count:
            if dead := [p for p in processes if p.poll() is not None]:
                raise SystemExit(f"{name}: a worker exited with {dead[0].returncode}; see {work}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the queue was not done in time")
            time.sleep(0.05)
    after = servers.sample()
    stopping = time.perf_counter()
    worker_cpu: dict[int, float] = {}
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        worker_cpu[process.pid] = usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name}: a worker exited with {os.waitstatus_to_exitcode(status)}; see {work}")
    print(f"  {name}: workers stopped (last WARCs uploaded) in {time.perf_counter() - stopping:.1f} s")
    span, jobs, ok = job_timings(database)
    stamps = read_stamps(timings)
    costs = process_costs(stamps, count, worker_cpu)
    job_costs(costs, stamps, jobs)
    spread, idle = start_up_spread(stamps, span)
    print(f"  {name}: the workers took their first jobs within {spread:.2f} s of each other (their start-ups): "
          f"{idle:.0%} of the run's job slots idle for it")
    steady, window = steady_rate(stamps)
    print(f"  {name}: {steady:.1f} pages/s over the {window:.2f} s every worker was taking jobs")
    cpu = {key: after[key] - before[key] for key in after} | {"capturing": sum(worker_cpu.values())}
    return Result(name, workers, workers * WORKER_CONCURRENCY, count, ok, span, cpu, costs, True, steady)


def make_bucket(gateway) -> str:
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=gateway.endpoint, aws_access_key_id=gateway.access_key,
                      aws_secret_access_key=gateway.secret_key, region_name="us-east-1",
                      config=Config(request_checksum_calculation="when_required"))
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    return bucket


# ---------------------------------------------------------------- reporting

CPU_BOUND_FROM = 0.8  # share of the machine's cores busy from which jobs mostly wait for a core


def binding_resource(result: Result) -> str:
    """What limits a run: the CPU (and whose) when the machine's cores were nearly all busy
    (on average over the run: at 80% the bursts of 32 jobs already queue for a core)."""
    cores = os.cpu_count() or 1
    busy = result.cpu["machine"] / result.cpu["window"]
    if busy < CPU_BOUND_FROM * cores:
        return f"not CPU ({busy:.1f} of {cores} cores busy): the latency and each job's work outside its fetch"
    users = {name: result.cpu[key] for key, name in (("capturing", "workers" if result.workers else "archiver"),
                                                       ("postgresql", "postgresql"), ("radosgw", "radosgw"),
                                                       ("origin", "origin"))}
    users["other work on the machine"] = result.cpu["machine"] - sum(users.values())  # another user's, say
    return f"CPU ({busy:.1f} of {cores} cores busy; most by {max(users, key=users.get)})"


def queue_and_catalog(r: Result) -> float:
    """Seconds per capture of the work a shared collection adds: the queue's own and the catalog's."""
    return statistics.mean(r.costs.queue) + r.costs.catalog


def report(results: list[Result]) -> list[str]:
    rows = [[r.name, f"{r.ok}/{r.pages}", f"{r.wall:.2f}", f"{r.rate():.1f}", f"{r.steady:.1f}" if r.workers else "-",
             f"{r.bound():.0f}", f"{r.share():.0%}", f"{r.rate() / r.bound():.0%}" if r.workers else "-",
             f"{r.cpu['capturing']:.1f}", f"{r.cpu['postgresql']:.1f}", f"{r.cpu['radosgw']:.1f}",
             f"{r.cpu['origin']:.1f}", f"{r.cpu['machine']:.1f}"] for r in results]
    print_table(["run", "ok", "wall s", "pages/s", "steady", "bound/s", "share", "old share", "cpu s: capture",
                 "postgres", "radosgw", "origin", "machine"], rows)
    print("  wall: workers from the first job taken to the last finished (start-up and the final upload left out),\n"
          "  local runs the whole process. 'steady': workers' pages/s while every one was taking jobs (their\n"
          "  start-ups and the final drain left out: see bench/README.md); 'share' is of the bound, at that rate\n"
          "  for workers; 'old share' is pages/s over the wall, the figure judged before. CPU seconds from the\n"
          "  capturing processes' start to the queue done (local: to the process's end); 'capture' is the\n"
          "  capturing processes' own (workers: start-up to stop, final upload included), 'machine' is every\n"
          "  process on it, other work sharing it included.\n")
    rows = []
    for r in results:
        c = r.costs
        outside = c.outside_fetch
        rows.append([r.name, ms(c.queue), ms(c.catalog), f"{queue_and_catalog(r) * 1000:.1f}" if r.workers else "-",
                     ms(c.records), ms(c.hand_off), ms(c.store), ms(c.lookups), ms(outside),
                     f"{statistics.quantiles(outside, n=20)[-1] * 1000:.1f}" if outside else "-",
                     " / ".join(ms(cpu) for cpu in c.cpu_per_capture),
                     f"{r.cpu['postgresql'] / r.pages * 1000:.2f}" if r.workers else "-"])
    print_table(["ms per capture", "queue (a)", "catalog (c)", "a + c", "records (b)", "b: hand-off", "store",
                 "c: look-ups", "outside fetch", "its p95", "cpu: each process", "postgres cpu"], rows)
    print("  (a) procrastinate's own work for a job: its `started` event to our task function's start, and that\n"
          "  function's return to its `succeeded` event. (b) our task outside the fetch: the job handed to a thread\n"
          "  and back ('hand-off'), its capture made into records, signed, written and fsynced in a group store\n"
          "  with the jobs that finished with it (the catalog's look-up included), and the waits for that group\n"
          "  and for a CPU. 'store': a group store's own work per capture, the catalog and uploads within it left\n"
          "  out (local runs: the same).\n"
          "  (c) the catalog's work per capture: its look-ups (an identical earlier payload) and, per file, its\n"
          "  opening and the transaction at upload listing its captures and their custody entries, divided among\n"
          "  them. 'outside fetch': a + b, the job's time in procrastinate less its fetch (the figure printed\n"
          "  before). The target is judged on a + c: the records are a capture's own work, paid by a local capture too.")
    verdicts = []
    for r in results:
        print(f"  {r.name}: binds: {binding_resource(r)}")
        if not r.workers:
            continue
        share, cost = r.share(), queue_and_catalog(r)
        verdicts += [
            verdict(r.ok == r.pages, f"{r.name}: {r.ok}/{r.pages} captured ok"),
            verdict(share >= TARGET_SHARE, f"{r.name}: {r.steady:.1f} pages/s, {share:.0%} of the {r.bound():.0f}/s "
                                           f"latency bound (target >= {TARGET_SHARE:.0%}; first job to last finished: "
                                           f"{r.rate() / r.bound():.0%}); binds: {binding_resource(r)}"),
            verdict(cost < TARGET_QUEUE_COST, f"{r.name}: queue + catalog cost {cost * 1000:.1f} ms per capture "
                                              f"(the queue's own work and the catalog's; target < "
                                              f"{TARGET_QUEUE_COST * 1000:g} ms)"),
        ]
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=2000, metavar="N", help="URLs to capture in each run (default 2000)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    pg, radosgw = load_test_helper("pg"), load_test_helper("radosgw")
    if problem := pg.missing():
        raise SystemExit(problem)
    if missing := radosgw.missing_tools():
        raise SystemExit(f"Ceph is not installed (no {', '.join(missing)}): "
                         "apt-get install ceph-mon ceph-osd radosgw ceph-common")

    work = Path(tempfile.mkdtemp(prefix="archiver-bench-", dir=os.environ.get("BENCH_TMP")))
    os.chmod(work, 0o755)
    print(f"archiver scale-out benchmark: {os.cpu_count()} CPUs, shared by the servers, the workers and any other "
          f"work on the machine; work folder {work}")

    def run() -> list[str]:
        cluster = pg.Cluster()
        gateway = None
        origin = None
        try:
            gateway = radosgw.start(work / "ceph")
            os.environ.update(gateway.environment())
            os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(work / "no-aws-file")
            os.environ.pop("AWS_PROFILE", None)
            origin, port = start_server(_serve_small, HOSTS, math.ceil(args.urls / HOSTS))
            urls = spread_urls(port, args.urls)
            url_file = work / "urls.txt"
            url_file.write_text("\n".join(urls) + "\n")
            postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
            servers = Servers(postmaster, [p.pid for p in gateway.processes], origin.pid)
            bucket = make_bucket(gateway)
            print(f"\n== {args.urls} URLs over {HOSTS} hosts, {LATENCY * 1000:.0f} ms latency each; "
                  f"PostgreSQL on port {cluster.port}, radosgw at {gateway.endpoint}")
            results = [run_workers(work, servers, cluster, bucket, url_file, args.urls, n) for n in WORKER_COUNTS]
            for concurrency in LOCAL_CONCURRENCIES:
                results.append(run_local(work, servers, url_file, args.urls, concurrency))
                print(f"  {results[-1].name}: done in {results[-1].wall:.1f} s")
        finally:
            if origin is not None:
                stop_server(origin)
            if gateway is not None:
                gateway.stop()
            cluster.stop()
        print()
        return report(results)

    run_and_report(work, args.keep, run)


if __name__ == "__main__":
    main()
