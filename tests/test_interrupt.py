"""A Ctrl-C (or an operator's `kill`) stops a capture: no new fetch starts, what is in flight is
cut short, what is whole is stored and listed, the run says what it saved and what it did not,
exits 130, and `--resume` captures only the rest. A SIGKILL at any point is repaired, in one
line, by the next command that changes the collection; a reading command names the repair."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_bundle import _state
from tests.test_doctor import gates, logged_captures, page, wait_until  # noqa: F401 (gates is a fixture)

PAGES = 60


def _capture_process(collection, urls: list[str], *extra: str, code: str | None = None) -> subprocess.Popen:
    """`python -m archiver capture` of `urls`, or the same entry point after `code` has run."""
    command = [sys.executable, "-m", "archiver"] if code is None else \
        [sys.executable, "-c", code + "\nfrom archiver.cli import main\nmain()"]
    return subprocess.Popen([*command, "capture", "-C", str(collection.root), "--concurrency", "2", *extra, *urls],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_one_interrupt_stops_the_run_stores_what_is_whole_and_resume_captures_the_rest(
        run_cli, raw_server, gates, collection, stop_signal):
    gate = gates(answered=5, slots=2)  # five pages answered, then two held in flight, as slow as can be
    server = raw_server({f"/{i}": gate.respond for i in range(PAGES)})
    urls = [server.url(f"/{i}") for i in range(PAGES)]
    process = _capture_process(collection, urls)
    wait_until(lambda: logged_captures(collection) == 5, "5 captures stored", process)
    assert gate.slots_held.wait(60), "the capture never asked for the held pages"

    process.send_signal(stop_signal)
    stdout, stderr = process.communicate(timeout=60)  # the held pages are never answered: it must cut them
    assert process.returncode == 130, stderr.decode()
    out, err = stdout.decode(), stderr.decode()
    assert "5 captured" in out, out
    assert f"{PAGES - 5} not captured" in out + err, out + err
    assert "--resume" in out + err  # how to finish the run
    assert "Traceback" not in err and "Aborted" not in err, err
    assert len(server.requests) == 7  # five answered, two cut: not one more fetch was started
    assert not list(collection.storage.folder.glob("*.open"))
    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0, verified.stdout
    saved = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert saved == {server.url(path) for path in gate.answered_paths}

    gate.release()
    asked_before = len(server.requests)
    resumed = run_cli("capture", "-C", collection.root, "--resume", *urls, "--json")
    assert resumed.exit_code == 0, resumed.output
    again = {c["url"] for c in json.loads(resumed.stdout)["captures"]}
    assert again == set(urls) - saved
    assert len(server.requests) - asked_before == PAGES - 5
    assert run_cli("verify", "-C", collection.root).exit_code == 0



def _interrupted(collection, urls: list[str], gate, *extra: str) -> set[str]:
    """A capture of `urls` (with `extra` options) stopped by Ctrl-C once `gate` has answered its
    pages and holds two more; the paths it stored."""
    stored_before = logged_captures(collection)
    process = _capture_process(collection, urls, *extra)
    wait_until(lambda: logged_captures(collection) == stored_before + gate.answered, "captures stored", process)
    assert gate.slots_held.wait(60), "the capture never asked for the held pages"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130, process.stderr.read().decode()
    gate.release()
    return set(gate.answered_paths)


def _resumed(run_cli, collection, urls: list[str]) -> dict:
    """`capture --resume` of `urls`, under --json, exit 0."""
    resumed = run_cli("capture", "-C", collection.root, "--resume", *urls, "--json")
    assert resumed.exit_code == 0, resumed.output
    return json.loads(resumed.stdout)


def test_resume_captures_the_rest_of_the_runs_it_takes_up_once(run_cli, raw_server, gates, collection):
    """A run interrupted, then its resume interrupted too: the next resume captures what neither
    stored, and from then on the run is finished: a further --resume says there is nothing to resume
    and fetches nothing (it used to capture the same rest again, every time)."""
    gate = [gates(answered=5, slots=2)]  # the route's gate, replaced for each run stopped
    server = raw_server({f"/{i}": lambda conn, request: gate[0].respond(conn, request) for i in range(20)})
    urls = [server.url(f"/{i}") for i in range(20)]
    stored = _interrupted(collection, urls, gate[0])
    gate[0] = gates(answered=3, slots=2)
    stored |= _interrupted(collection, urls, gate[0], "--resume")
    assert len(stored) == 8

    captured = [c["url"] for c in _resumed(run_cli, collection, urls)["captures"]]
    assert sorted(captured) == sorted(set(urls) - {server.url(path) for path in stored})
    asked = len(server.requests)
    again = _resumed(run_cli, collection, urls)
    assert again["nothing_to_resume"] is True and again["captures"] == []
    told = run_cli("capture", "-C", collection.root, "--resume", *urls)
    assert told.exit_code == 0 and told.stdout.startswith("Nothing to resume") and told.stdout.count("\n") == 1
    assert len(server.requests) == asked
    per_url = Counter(c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout))
    assert set(per_url) == set(urls) and set(per_url.values()) == {1}


def test_resume_after_a_later_run_takes_up_that_run_alone(run_cli, raw_server, gates, collection):
    """A run interrupted, a run over the same URLs that finished, then another run interrupted:
    --resume captures every URL that last run did not (it skipped those the first run had captured,
    leaving URLs with no capture since the finished run although it said the rest was captured)."""
    gate = [gates(answered=5, slots=2)]
    server = raw_server({f"/{i}": lambda conn, request: gate[0].respond(conn, request) for i in range(20)})
    urls = [server.url(f"/{i}") for i in range(20)]
    _interrupted(collection, urls, gate[0])
    assert run_cli("capture", "-C", collection.root, *urls).exit_code == 0
    gate[0] = gates(answered=3, slots=2)
    stored = _interrupted(collection, urls[::-1], gate[0])  # the other end first: pages the first run did not store

    captured = [c["url"] for c in _resumed(run_cli, collection, urls)["captures"]]
    assert sorted(captured) == sorted(set(urls) - {server.url(path) for path in stored})
    assert _resumed(run_cli, collection, urls)["nothing_to_resume"] is True


def test_a_resume_given_other_targets_captures_the_new_ones_and_names_what_it_leaves(run_cli, raw_server, gates,
                                                                                    collection):
    """URLs the interrupted run never set out to capture are captured as in any run; URLs it set out
    to capture that the resume is not given are named, since finishing it leaves them uncaptured."""
    gate = gates(answered=2, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(12)})
    urls = [server.url(f"/{i}") for i in range(12)]
    stored = {server.url(path) for path in _interrupted(collection, urls[:10], gate)}
    given = urls[2:]  # two it planned are left out, two it never planned are added
    resumed = run_cli("capture", "-C", collection.root, "--resume", *given)
    assert resumed.exit_code == 0, resumed.output
    assert "2 other URL(s) it set out to capture are not among these targets" in resumed.stdout
    captured = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert captured == stored | set(given)


def test_a_run_recorded_by_an_older_archiver_is_resumed_as_it_was(run_cli, raw_server, gates, collection):
    """A catalog an older archiver wrote holds no run's plan: its unfinished runs' captures are
    skipped by a resume, as they always were, and once the resume finishes they are taken up no more."""
    gate = gates(answered=5, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(20)})
    urls = [server.url(f"/{i}") for i in range(20)]
    stored = {server.url(path) for path in _interrupted(collection, urls, gate)}
    with collection:  # as an older archiver left it: no plan recorded
        collection.catalog.query("UPDATE runs SET planned_urls = NULL")
        collection.catalog.query("DELETE FROM run_urls")
    captured = {c["url"] for c in _resumed(run_cli, collection, urls)["captures"]}
    assert captured == set(urls) - stored
    assert _resumed(run_cli, collection, urls)["nothing_to_resume"] is True


# Stops the process (SIGSTOP) as its capture run is about to hold the collection: a resume then
# has decided what is left to capture and holds nothing else of a run yet.
_STOP_BEFORE_THE_RUN = """import os, signal
from archiver.capture.run import CaptureRun
_holding = CaptureRun.__init__
def _stopped(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGSTOP)
    _holding(self, *args, **kwargs)
CaptureRun.__init__ = _stopped
"""


def test_a_second_resume_is_refused_while_the_first_decides_what_is_left(run_cli, raw_server, gates, collection):
    """Two `capture --resume` started together: the first to look at what is left holds the
    collection from then on, and the second is refused in one line (both used to run, and each
    captured every URL left)."""
    gate = gates(answered=5, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(20)})
    urls = [server.url(f"/{i}") for i in range(20)]
    stored = {server.url(path) for path in _interrupted(collection, urls, gate)}
    first = _capture_process(collection, urls, "--resume", "--json", code=_STOP_BEFORE_THE_RUN)
    wait_until(lambda: _state(first) == "T", "the first resume stopped before its run", first)
    try:
        second = run_cli("capture", "-C", collection.root, "--resume", *urls)
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=60)
    assert second.exit_code == 2, second.output
    assert "--resume would capture again" in second.stderr and second.stderr.count("\n") == 1, second.stderr
    assert first.returncode == 0, stderr.decode()
    assert {c["url"] for c in json.loads(stdout)["captures"]} == set(urls) - stored
    per_url = Counter(c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout))
    assert set(per_url) == set(urls) and set(per_url.values()) == {1}


def test_a_run_interrupted_before_storing_anything_says_so_and_never_that_there_was_nothing(
        raw_server, gates, collection):
    gate = gates(answered=0, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(3)})
    process = _capture_process(collection, [server.url(f"/{i}") for i in range(3)])
    assert gate.slots_held.wait(60), "the capture never asked for the held pages"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert "Nothing to capture" not in stdout.decode()
    assert "interrupted: 0 stored, 3 not captured" in stderr.decode()
    gate.release()


def test_an_interrupted_run_under_json_says_so_in_json_on_both_streams(raw_server, gates, collection):
    """Under --json an error is JSON on stderr too: so is the line saying the run was interrupted."""
    gate = gates(answered=1, slots=2)
    server = raw_server({f"/{i}": gate.respond for i in range(5)})
    urls = [server.url(f"/{i}") for i in range(5)]
    process = _capture_process(collection, urls, "--json")
    wait_until(lambda: logged_captures(collection) == 1, "1 capture stored", process)
    assert gate.slots_held.wait(60), "the capture never asked for the held pages"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    gate.release()
    assert process.returncode == 130, stderr.decode()
    run = json.loads(stdout)
    assert run["interrupted"] is True and len(run["not_captured"]) == 4
    notice, error = map(json.loads, stderr.splitlines())  # the notice, at the signal, that the run is stopping
    assert notice["notice"].startswith("stopping: no new captures start")
    assert error["exit_code"] == 130 and "4 not captured" in error["error"] and "--resume" in error["error"]

# Where a run is killed: (what it is, code run first in the capturing process, or None to kill it
# from outside while pages are in flight).
_KILL = "import os, signal\ndef _die(*args, **kwargs):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
KILL_POINTS = {
    "during fetch": None,
    "records on disk, not yet in the catalog":
        _KILL + "from archiver.store.catalog import Catalog\nCatalog.add_captures = _die",
    "cataloged, not yet in the custody log":
        _KILL + "from archiver.evidence.custody import CustodyLog\nCustodyLog.append_many = _die",
    "WARC closed, the catalog not told":
        _KILL + "from archiver.store.catalog import Catalog\nCatalog.file_closed = _die",
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_the_next_capture_after_a_kill_repairs_in_one_line_and_nothing_is_lost(
        run_cli, raw_server, gates, collection, point):
    gate = gates(answered=5, slots=2)
    server = raw_server({f"/{i}": gate.respond if point == "during fetch" else page for i in range(12)})
    urls = [server.url(f"/{i}") for i in range(12)]
    process = _capture_process(collection, urls, code=KILL_POINTS[point])
    if point == "during fetch":
        wait_until(lambda: logged_captures(collection) == 5, "5 captures stored", process)
        assert gate.slots_held.wait(60), "the capture never asked for the held pages"
        process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, process.stderr.read().decode()
    gate.release()
    leftovers = run_cli("captures", "-C", collection.root)
    assert "archiver doctor --fix" in leftovers.stderr, leftovers.stderr  # a reading command names the repair

    again = run_cli("capture", "-C", collection.root, *urls, "--json")
    assert again.exit_code == 0, again.output
    told = [line for line in again.stderr.splitlines() if "interrupted run" in line]
    assert len(told) == 1 and "repaired" in told[0], again.stderr
    assert json.loads(run_cli("log", "-C", collection.root, "--json", "--event", "doctor").stdout)
    assert not list(collection.storage.folder.glob("*.open"))
    verified = run_cli("verify", "-C", collection.root, "--json")
    assert json.loads(verified.stdout)["ok"], json.loads(verified.stdout)["failures"]
    captured = [c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)]
    assert set(captured) == set(urls)  # every page, whether saved before the kill or after
    assert run_cli("captures", "-C", collection.root).stderr == ""
    assert json.loads(run_cli("doctor", "-C", collection.root, "--json").stdout)["healthy"] is True


def test_verify_names_the_fix_for_a_file_left_open(run_cli, raw_server, gates, collection):
    gate = gates(answered=2, slots=1)
    server = raw_server({f"/{i}": gate.respond for i in range(6)})
    process = _capture_process(collection, [server.url(f"/{i}") for i in range(6)])
    wait_until(lambda: logged_captures(collection) == 2, "2 captures stored", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    gate.release()
    verified = run_cli("verify", "-C", collection.root)
    assert verified.exit_code == 1
    assert "archiver doctor --fix" in verified.stdout + verified.stderr
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    assert run_cli("verify", "-C", collection.root).exit_code == 0


def test_gitignore_lists_every_file_a_collection_in_the_project_root_leaves(run_cli, raw_server, tmp_path):
    """`archiver capture seeds/` in a clone makes the clone a collection: nothing it writes is for git."""
    root = Path(__file__).resolve().parent.parent
    server = raw_server({"/": page})
    made = tmp_path / "clone"
    made.mkdir()
    assert run_cli("-C", made, "capture", server.url("/"), "--allow-private").exit_code == 0
    assert run_cli("manifest", "-C", made).exit_code == 0
    left = sorted(p.relative_to(made).as_posix() for p in made.rglob("*")
                  if p.is_file() and p.relative_to(made).parts[0] != "seeds")
    assert ".in-use" in left and "archiver.toml" in left
    ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "--no-index", "--stdin"],
                             input="\n".join(left), capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == left


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_any_command_stopped_by_a_signal_says_so_in_one_line_and_exits_130(collection, tmp_path, stop_signal):
    """Not capture alone: `import` waiting on its source (a pipe no one writes to yet), stopped by
    Ctrl-C or a `kill`, says it was interrupted and exits 130 either way (SIGTERM was a silent 143)."""
    source = tmp_path / "crawl.warc"
    os.mkfifo(source)
    process = subprocess.Popen([sys.executable, "-m", "archiver", "import", "-C", str(collection.root), str(source)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(source, "wb"):  # opened once the import opens it to read: it is under way, waiting
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate()
    assert process.returncode == 130, stderr.decode()
    assert stderr.decode() == "error: interrupted\n" and stdout == b""
