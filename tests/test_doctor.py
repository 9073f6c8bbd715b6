"""After a run is killed: `archiver doctor` finds what it left and repairs it, losing nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from archiver.store.catalog import Catalog
from archiver.evidence.custody import LOG_NAME
from archiver.evidence.keys import custody_lines
from tests.conftest import capture, http_response

CATALOG_BACKENDS = ("sqlite", "postgresql")  # every test with a collection runs on both (conftest)


def page(conn, request: bytes) -> None:
    """A page whose body names its path."""
    conn.sendall(http_response(b"<p>" + request.split(b" ")[1] * 50 + b"</p>"))


class Gate:
    """A route that answers the first `answered` requests at once and holds every later one,
    its connection open, until released: a capture stops mid-run exactly where a test wants
    it, however fast or slow the machine."""

    def __init__(self, answered: int, slots: int) -> None:
        self.answered = answered
        self.slots = slots
        self.answered_paths: list[str] = []
        self.slots_held = threading.Event()  # set once `slots` requests are held at the same time
        self._released = threading.Event()
        self._held = 0
        self._lock = threading.Lock()

    def respond(self, conn, request: bytes) -> None:
        with self._lock:
            hold = len(self.answered_paths) >= self.answered
            if hold:
                self._held += 1
                if self._held == self.slots:
                    self.slots_held.set()
            else:
                self.answered_paths.append(request.split(b" ")[1].decode())
        if hold:
            self._released.wait()
        page(conn, request)

    def release(self) -> None:
        self._released.set()

    @property
    def held(self) -> int:
        """Requests held so far (their clients may have died since)."""
        with self._lock:
            return self._held


@pytest.fixture
def gates():
    """gates(answered, slots): a new Gate. Every gate opens when the test ends, so no server
    thread is left waiting."""
    made: list[Gate] = []

    def make(answered: int, slots: int) -> Gate:
        made.append(Gate(answered, slots))
        return made[-1]

    yield make
    for gate in made:
        gate.release()


def wait_until(condition, what: str, process: subprocess.Popen) -> None:
    """Wait for a state the capture process reaches; fail at once, with its stderr, if it ends first."""
    deadline = time.monotonic() + 60  # a guard against a hang, not a guess of how long it takes
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the capture ended before {what}: {process.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"still no {what}"
        time.sleep(0.02)


def logged_captures(collection) -> int:
    """Captures in the custody log, its last step in storing one: each counted is on disk and cataloged."""
    if collection.config.catalog_url:  # a shared collection's log is in its catalog
        return sum(json.loads(line)["event"] == "capture" for line in custody_lines(collection))
    log = collection.root / LOG_NAME
    lines = log.read_bytes().split(b"\n")[:-1] if log.exists() else []  # an unfinished last line is not yet an entry
    return sum(json.loads(line)["event"] == "capture" for line in lines)


def capturing(collection, server, pages: int, concurrency: int) -> subprocess.Popen:
    """`archiver capture` of `pages` pages in its own process, once it has begun writing."""
    process = subprocess.Popen([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root),
                                "--concurrency", str(concurrency), *(server.url(f"/{i}") for i in range(pages))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: list(collection.storage.folder.glob("*.open")), "open WARC file", process)
    return process


def test_a_killed_capture_is_repaired_and_verifies(run_cli, raw_server, gates, collection):
    gate = gates(answered=5, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(60)})
    process = capturing(collection, server, 60, concurrency=2)
    # Killed with five captures stored and two in flight, whatever the machine's speed.
    wait_until(lambda: logged_captures(collection) == 5, "5 captures stored", process)
    assert gate.slots_held.wait(60), "the capture never asked for the held pages"
    process.send_signal(signal.SIGKILL)
    process.wait()
    gate.release()
    assert list(collection.storage.folder.glob("*.open")), "the run was killed before it could close its WARC"

    found = run_cli("doctor", "-C", collection.root, "--json")
    assert found.exit_code == 1
    assert "open file" in {f["kind"] for f in json.loads(found.stdout)["findings"]}
    fixed = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert fixed.exit_code == 0 and all(f["fixed"] for f in json.loads(fixed.stdout)["findings"])
    assert not list(collection.storage.folder.glob("*.open"))
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert json.loads(run_cli("doctor", "-C", collection.root, "--json").stdout)["healthy"] is True
    repairs = json.loads(run_cli("log", "-C", collection.root, "--json", "--event", "doctor").stdout)
    assert repairs and repairs[0]["subject"]["repairs"]

    before = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert before == {server.url(path) for path in gate.answered_paths}
    resumed = run_cli("capture", "-C", collection.root, "--resume", *(server.url(f"/{i}") for i in range(60)), "--json")
    assert resumed.exit_code == 0, resumed.output
    again = [c["url"] for c in json.loads(resumed.stdout)["captures"]]
    assert not set(again) & before and set(again) | before == {server.url(f"/{i}") for i in range(60)}
    assert json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["ok"]


def test_records_that_never_reached_the_catalog_are_cataloged_from_their_attestation(run_cli, raw_server, collection,
                                                                                    monkeypatch):
    server = raw_server({"/lost": page})

    def crash(self, captures, logged=None, closing=None):
        raise RuntimeError("the machine stopped between the fsync and the commit")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(Catalog, "add_captures", crash)
        capture(collection, server.url("/lost"))
    assert json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) == []
    assert not json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["ok"]  # unlisted records

    result = run_cli("doctor", "-C", collection.root, "--fix", "--json")
    assert result.exit_code == 0, result.output
    fixed = json.loads(result.stdout)
    assert [f["kind"] for f in fixed["findings"]] == ["uncataloged capture"]
    [row] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert row["url"] == server.url("/lost") and row["outcome"] == "ok" and row["run_id"] == "salvaged"
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_a_revisit_that_never_reached_the_catalog_is_cataloged_as_standing_for_the_capture_it_refers_to(
        run_cli, raw_server, collection, monkeypatch):
    """A salvaged capture takes from its attestation what verify holds the catalog to: which
    capture a revisit stands for (its signed WARC-Refers-To), its response size and redirects."""
    server = raw_server({"/lost": page})
    capture(collection, server.url("/lost"))

    def crash(self, captures, logged=None, closing=None):
        raise RuntimeError("the machine stopped between the fsync and the commit")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(Catalog, "add_captures", crash)
        capture(collection, server.url("/lost"))  # the same page again: a revisit
    [first] = json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
    assert run_cli("doctor", "-C", collection.root, "--fix", "--json").exit_code == 0
    [salvaged] = [row for row in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)
                  if row["id"] != first["id"]]
    assert salvaged["run_id"] == "salvaged" and salvaged["revisit_of"] == first["id"]
    assert (salvaged["response_length"], salvaged["redirects"]) == (first["response_length"], 0)
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]


def test_four_capturing_processes_and_a_manifest_export_at_once(run_cli, raw_server, gates, collection):
    first_pages = gates(answered=0, slots=4)  # each process's first page, held until the export is done
    server = raw_server({f"/{i}": first_pages.respond if i < 4 else page for i in range(40)})
    capturing = [subprocess.Popen([sys.executable, "-m", "archiver", "capture", "-C", str(collection.root), "--json",
                                   *(server.url(f"/{i}") for i in range(start, 40, 4))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for start in range(4)]
    assert first_pages.slots_held.wait(60), "the four captures were never all under way"
    exported = subprocess.run([sys.executable, "-m", "archiver", "manifest", "-C", str(collection.root), "--json"],
                              capture_output=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    assert all(process.poll() is None for process in capturing), "a capture ended with its first page held"
    first_pages.release()
    outputs = [p.communicate(timeout=120) for p in capturing]
    assert [p.returncode for p in capturing] == [0] * 4, outputs
    listed = [c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)]
    assert sorted(listed) == sorted(server.url(f"/{i}") for i in range(40))  # every capture present, once
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert report["passed"]["custody chain"] == report["passed"]["custody entry readable"]


def held_capture(collection, raw_server, gates, pages: int):
    """A capture of `pages` pages held mid-run, its first capture stored and the next page
    awaited until the gate opens: (the gate, the process, its open files' bytes by path)."""
    gate = gates(answered=1, slots=1)
    server = raw_server({f"/{i}": gate.respond for i in range(pages)})
    process = capturing(collection, server, pages, concurrency=1)
    wait_until(lambda: logged_captures(collection) == 1, "first capture stored", process)
    assert gate.slots_held.wait(60), "the capture never asked for the held page"
    return gate, process, {path: path.read_bytes() for path in collection.storage.folder.glob("*.open")}


def test_doctor_leaves_a_running_capture_alone(run_cli, raw_server, gates, collection):
    """A capture in progress has an .open file that is not a leftover: doctor must not touch it."""
    gate, process, open_files = held_capture(collection, raw_server, gates, 40)
    assert open_files, "the capture never started writing"
    for command in (["doctor"], ["doctor", "--fix"]):
        result = run_cli(*command, "-C", collection.root)
        assert result.exit_code == 2 and "another archiver process is working on" in result.stderr, result.stderr
    assert {path: path.read_bytes() for path in open_files} == open_files
    assert process.poll() is None, "the capture ended while its page was held"
    gate.release()
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert run_cli("doctor", "-C", collection.root).exit_code == 0
    assert len(json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)) == 40


def test_doctor_leaves_a_running_capture_alone_when_it_cannot_write_the_lock_file(run_cli, raw_server, gates,
                                                                                  collection):
    """`.in-use` made by another user (whose file modes let others only read it), or on storage
    that refuses writes to it: a lock taken read-only still excludes. Before, such a process
    took no lock at all and, thinking itself alone, `doctor --fix` closed the running capture's
    open file under it: the capture failed and the catalog listed records that file never got."""
    from tests.test_usage import run_on_read_only

    if os.geteuid() == 0 and (shutil.which("unshare") is None or subprocess.run(
            ["unshare", "--mount", "sh", "-c", 'mount --bind "$1" "$1"', "sh", str(collection.root)]).returncode):
        pytest.skip("running as root without mount namespaces: no way to make a file read-only here")
    gate, process, open_files = held_capture(collection, raw_server, gates, 20)
    lock = collection.root / ".in-use"
    lock.chmod(0o444)  # another user's file, to all but root; for root, a read-only mount of it
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = run_on_read_only(lock, "doctor", "--fix", "-C", collection.root, env=env)
    assert result.returncode == 2 and "another archiver process is working on" in result.stderr, result.stderr
    assert {path: path.read_bytes() for path in open_files} == open_files
    gate.release()
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)["ok"]


def test_resume_is_refused_while_a_capture_runs(run_cli, raw_server, gates, collection):
    """--resume skips what runs stored: beside a capture under way, it would capture again every
    URL that run has not stored yet (7 of 10, once)."""
    gate, process, _ = held_capture(collection, raw_server, gates, 3)
    base = _first_url(collection).rsplit("/", 1)[0]  # the held capture's server
    urls = [f"{base}/{i}" for i in range(3)]
    refused = run_cli("capture", "-C", collection.root, "--resume", *urls)
    assert refused.exit_code == 2 and "--resume would capture again what it has not stored yet" in refused.stderr
    gate.release()
    assert process.wait(timeout=60) == 0, process.stderr.read()
    resumed = run_cli("capture", "-C", collection.root, "--resume", *urls, "--json")
    assert resumed.exit_code == 0, resumed.output


def _first_url(collection) -> str:
    """The URL of the collection's first capture."""
    with collection:
        return collection.catalog.query("SELECT url FROM captures ORDER BY started_at LIMIT 1").fetchone()[0]
