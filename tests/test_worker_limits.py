"""What a worker holds to, and what `capture --queue` says of what it does not (real
PostgreSQL, real worker processes, a real origin on 127.0.0.1)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import psycopg

from tests.conftest import make_collection
from tests.test_doctor import page
from tests.test_workers import another_machine, queue_counts, stop, wait_for, worker


class Crowd:
    """A route holding every request until the test lets the oldest go: it counts the requests
    held at once, and the most ever held together."""

    def __init__(self) -> None:
        self.peak = 0
        self._held: list[threading.Event] = []
        self._lock = threading.Lock()

    def respond(self, conn, request: bytes) -> None:
        go = threading.Event()
        with self._lock:
            self._held.append(go)
            self.peak = max(self.peak, len(self._held))
        go.wait(120)  # a guard against a hang: the test lets every request go
        page(conn, request)

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def let_oldest_go(self) -> None:
        with self._lock:
            # Counted out before it is answered: its client's next request may come at once.
            self._held.pop(0).set()


def test_a_worker_sends_one_host_no_more_than_per_host_requests_at_once(run_cli, raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    assert collection.config.capture.per_host == 2
    crowd = Crowd()
    server = raw_server({f"/{i}": crowd.respond for i in range(4)})
    queued = run_cli("capture", "-C", collection.root, "--queue", *(server.url(f"/{i}") for i in range(4)))
    assert queued.exit_code == 0, queued.output
    running = worker(collection, concurrency=4)
    try:
        # All four jobs taken at once; each request is let go only once two are held (or the
        # last), so a worker sending a third before the first two are answered is seen doing so.
        wait_for(lambda: queue_counts(run_cli, collection)["running"] == 4, "all four jobs taken", [running])
        for answered in range(4):
            wait_for(lambda: crowd.held >= min(2, 4 - answered), "requests held", [running])
            crowd.let_oldest_go()
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 4, "all four jobs done", [running])
    finally:
        assert stop(running) == 0, running.stderr.read().decode()
    assert crowd.peak == 2


def test_three_workers_send_one_host_no_more_than_per_host_requests_at_once_between_them(
        run_cli, raw_server, tmp_path, postgresql_url):
    """per_host held per worker let a fleet of N send a host N × per_host captures at once: the
    slots of a host are now the fleet's (advisory locks in the shared catalog)."""
    collection = make_collection(tmp_path / "machine-0", postgresql_url)
    machines = [collection] + [another_machine(collection, tmp_path / f"machine-{n}") for n in (1, 2)]
    crowd = Crowd()
    server = raw_server({f"/{i}": crowd.respond for i in range(6)})
    assert run_cli("capture", "-C", collection.root, "--queue", *(server.url(f"/{i}") for i in range(6))).exit_code == 0
    workers = [worker(machine, concurrency=2) for machine in machines]
    try:
        # Every job taken, two by each worker: each worker alone would send both of its own.
        wait_for(lambda: queue_counts(run_cli, collection)["running"] == 6, "all six jobs taken", workers)
        for answered in range(6):
            wait_for(lambda: crowd.held >= min(2, 6 - answered), "requests held", workers)
            crowd.let_oldest_go()
        wait_for(lambda: queue_counts(run_cli, collection)["done"] == 6, "all six jobs done", workers)
    finally:
        codes = [stop(process) for process in workers]
    assert codes == [0, 0, 0], [process.stderr.read().decode() for process in workers]
    assert crowd.peak == 2


def test_capture_queue_refuses_an_option_the_workers_would_drop_in_one_line(run_cli, tmp_path, postgresql_url):
    """Workers capture with the collection's archiver.toml: a --timeout given `capture --queue`
    would be dropped unsaid, and a job meant to fail after a second said ok."""
    collection = make_collection(tmp_path / "shared", postgresql_url)
    for given, named in ((["--timeout", "1"], "--timeout"), (["--max-size", "100"], "--max-size"),
                         (["--no-browser"], "--browser/--no-browser"), (["--insecure"], "--insecure")):
        refused = run_cli("capture", "-C", collection.root, "--queue", *given, "http://127.0.0.1:9/a")
        assert refused.exit_code == 2, refused.output
        [line] = refused.output.splitlines()
        assert line.startswith(f"error: {named} does not apply to queued jobs: workers capture with the settings "
                               "in the collection's archiver.toml")
    assert queue_counts(run_cli, collection)["queued"] == 0


def test_capture_queue_wait_with_no_live_worker_says_so_once_and_keeps_waiting(raw_server, tmp_path, postgresql_url):
    collection = make_collection(tmp_path / "shared", postgresql_url)
    server = raw_server({"/a": page})
    killed = worker(collection, concurrency=1)

    def registered() -> bool:
        with psycopg.connect(postgresql_url) as db:
            if db.execute("SELECT to_regclass('procrastinate_workers')").fetchone()[0] is None:
                return False
            return db.execute("SELECT EXISTS (SELECT 1 FROM procrastinate_workers)").fetchone()[0]
    wait_for(registered, "the worker beating its heart", [killed])
    killed.send_signal(signal.SIGKILL)  # its heartbeat stops; its row stays, as a dead machine's does
    killed.wait()

    waiting = subprocess.Popen([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--queue",
                                "--wait", server.url("/a")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said: list[str] = []
    reading = threading.Thread(target=lambda: said.extend(waiting.stderr), daemon=True)
    reading.start()
    try:
        wait_for(lambda: any("no worker is running (no heartbeat since " in line for line in said),
                 "told no worker is running", [waiting])
        running = worker(collection, concurrency=1)
        try:
            assert waiting.wait(120) == 0  # it kept waiting, and a worker started since captured the job
        finally:
            assert stop(running) == 0, running.stderr.read().decode()
    finally:
        if waiting.poll() is None:
            waiting.kill()
    reading.join(10)
    assert sum("no worker is running" in line for line in said) == 1, said
    assert "start `archiver worker`" in said[0]
    assert "1 captured: 1 content" in waiting.stdout.read()
