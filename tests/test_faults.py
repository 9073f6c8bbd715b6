"""A fault at the Nth file operation, for every N, through a capture and through a manifest
export; the fault being a full disk (ENOSPC), a failing disk (EIO) or the process killed on
the spot. The user gets one line naming the OS error and exit code 3 (or the process is
gone), `archiver doctor --fix` leaves the old state or the new one, `archiver verify` passes,
nothing saved before is lost, and the next run reaches the new state.

Faults fall on the collection's own files only (WARCs, the custody log, manifests,
signatures, tokens), on every os-level call that writes, syncs, renames or links; the local
timestamp authority and the test servers are left alone (see tests/faults.py)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.store.collection import Collection
from archiver.store.crash_points import MID_RECORD
from tests.conftest import http_response, make_collection, send_bytes, use_tsa
from tests.faults import KILLED, Faults
from tests.tsa import local_tsa  # noqa: F401 (a fixture)

def one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def verified(run_cli, collection) -> dict:
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    return report


def every_operation(run_cli, template: Path, tmp_path: Path, command, provoke):
    """Run `command` on a fresh copy of `template` once to count its file operations, then once
    per operation with `provoke(collection, fail_at)` making that one fail; yields (fail_at,
    collection) after each, once `doctor --fix` repaired it and it verified."""
    def fresh(name: str) -> Collection:
        shutil.copytree(template, tmp_path / name, symlinks=True)
        return Collection.open(tmp_path / name)

    total = provoke(fresh("count"), command, None)
    assert total > 5
    for fail_at in range(1, total + 1):
        collection = fresh(f"n{fail_at}")
        provoke(collection, command, fail_at)
        assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0, fail_at
        verified(run_cli, collection)
        yield fail_at, collection


def failing_with(run_cli, monkeypatch, error: int):
    """The operation fails with `error`: the command says so in one line naming the OS's own
    words for it, and exits 3 (the machine refused)."""
    def provoke(collection, command, fail_at) -> int:
        with monkeypatch.context() as patched:
            faults = Faults(patched.setattr, collection.root, fail_at, error)
            result = run_cli(*command(collection))
        if fail_at is None:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code == 3, (fail_at, result.exit_code, result.output)
            assert os.strerror(error) in one_line(result), (fail_at, result.stderr)
        return faults.count
    return provoke


def killed():
    """The process dies at the operation, as by SIGKILL: nothing of it runs after."""
    def provoke(collection, command, fail_at) -> int:
        result = subprocess.run([sys.executable, "-m", "tests.faults", str(fail_at or 0), str(collection.root),
                                 *map(str, command(collection))], capture_output=True, text=True,
                                cwd=Path(__file__).parent.parent, timeout=120)
        assert result.returncode == (KILLED if fail_at else 0), result.stderr
        return int(result.stderr.rsplit("file operations: ", 1)[1]) if fail_at is None else fail_at
    return provoke


@pytest.fixture(params=["ENOSPC", "EIO", "SIGKILL"])
def provoke(request, run_cli, monkeypatch):
    """How the Nth operation fails: the disk is full, the disk errs, or the process dies."""
    if request.param == "SIGKILL":
        return killed()
    return failing_with(run_cli, monkeypatch, getattr(errno, request.param))


def test_a_fault_at_every_operation_of_a_capture_leaves_a_collection_that_verifies(run_cli, raw_server, tmp_path,
                                                                                   provoke):
    server = raw_server({"/before": send_bytes(http_response(b"kept")), "/new": send_bytes(http_response(b"new"))})
    template = make_collection(tmp_path / "template").root
    assert run_cli("capture", "-C", template, server.url("/before")).exit_code == 0

    def command(collection):
        return ("capture", "-C", collection.root, server.url("/new"))
    for fail_at, collection in every_operation(run_cli, template, tmp_path, command, provoke):
        urls = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
        assert server.url("/before") in urls, fail_at  # nothing saved before is lost
        assert run_cli("capture", "-C", collection.root, server.url("/new")).exit_code == 0, fail_at
        verified(run_cli, collection)


def test_a_fault_at_every_operation_of_a_manifest_export_leaves_the_old_manifest_or_the_new(
        run_cli, raw_server, local_tsa, tmp_path, provoke):
    server = raw_server({"/a": send_bytes(http_response(b"first")), "/b": send_bytes(http_response(b"second"))})
    template = make_collection(tmp_path / "template").root
    use_tsa(template, local_tsa)
    assert run_cli("capture", "-C", template, server.url("/a")).exit_code == 0
    assert run_cli("manifest", "-C", template).exit_code == 0
    assert run_cli("capture", "-C", template, server.url("/b")).exit_code == 0
    old = (template / "manifests" / "manifest-1.json").read_bytes()

    def command(collection):
        return ("manifest", "-C", collection.root)
    states = set()
    for fail_at, collection in every_operation(run_cli, template, tmp_path, command, provoke):
        manifests = collection.root / "manifests"
        newest = (manifests / "manifest.json").read_bytes()
        assert (manifests / "manifest-1.json").read_bytes() == old, fail_at  # the old manifest is never touched
        second = manifests / "manifest-2.json"
        assert newest == old or (second.exists() and newest == second.read_bytes()), fail_at
        states.add("old" if newest == old else "new")
        # The next export reaches the new state, sealed and timestamped, with no gap in the chain.
        result = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
        assert result["sequence"] == 2 and result["timestamp"], (fail_at, result)
        report = verified(run_cli, collection)
        assert not [n for n in report["not_checked"] if "timestamp" in n], (fail_at, report["not_checked"])
        tokens = len(list(manifests.glob("*.tsr")))
        assert report["passed"]["timestamp token unchanged"] == tokens == 4, fail_at  # each token's hash is logged
    assert states == {"old", "new"}  # faults fell both before and after the moment the manifest exists


def test_a_fault_at_every_operation_of_a_repair_leaves_what_the_next_repair_finishes(run_cli, raw_server, tmp_path,
                                                                                   provoke):
    """`doctor --fix` itself stopped at any write: between keeping an open file's whole records
    in a closed file and setting the open one aside, say. The next repair still finishes the
    job, every whole capture is kept, the torn tail is set aside, nothing is left open."""
    server = raw_server({f"/{i}": send_bytes(http_response(b"page %d " % i * 40)) for i in range(5)})
    template = make_collection(tmp_path / "template").root
    environment = dict(os.environ, ARCHIVER_CRASH_AT=f"{MID_RECORD}:3")
    killed_capture = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(template),
                                     "--concurrency", "1", *(server.url(f"/{i}") for i in range(5))],
                                    env=environment, capture_output=True, timeout=120)
    assert killed_capture.returncode == -signal.SIGKILL, killed_capture.stderr
    assert list((template / "warcs").glob("*.open")), "the capture died before it opened its WARC"

    def command(collection):
        return ("doctor", "-C", collection.root, "--fix")
    for fail_at, collection in every_operation(run_cli, template, tmp_path, command, provoke):
        warcs = collection.root / "warcs"
        assert not list(warcs.glob("*.open")) and list((warcs / "quarantine").glob("*.open")), fail_at
        urls = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
        assert urls == {server.url("/0"), server.url("/1")}, fail_at  # the two captures stored before the kill


@pytest.mark.parametrize("error", [None, errno.ENOSPC], ids=["SIGKILL", "ENOSPC"])
def test_a_key_rotation_stopped_at_any_operation_leaves_the_old_key_or_the_new_signing(run_cli, raw_server, tmp_path,
                                                                                      monkeypatch, error):
    """`keys rotate` killed, or refused a write, at each of its file operations (the private key
    beside the old one, the custody log, keys/): the next capture signs with the old key or the
    announced new one, and the collection verifies. Before, a rotation stopped after its
    announcement left every command refusing the rotated-out key, the new one in a hidden file;
    and one stopped before it left a public key in keys/ that nothing announced."""
    server = raw_server({"/before": send_bytes(http_response(b"before")), "/after": send_bytes(http_response(b"after"))})
    template = tmp_path / "template"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(template / "config"))
    assert run_cli("capture", "-C", make_collection(template / "collection").root, server.url("/before")).exit_code == 0

    def rotating(n: int) -> tuple[Path, int]:
        """A fresh copy of the collection and its key folder, rotated with operation `n` failing."""
        copy = tmp_path / f"n{n}"
        shutil.copytree(template, copy, symlinks=True)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(copy / "config"))
        command = ("keys", "rotate", "-C", copy / "collection")
        if error is not None:
            with monkeypatch.context() as patched:
                faults = Faults(patched.setattr, copy, n or None, error)
                result = run_cli(*command)
            assert result.exit_code == (0 if n == 0 else 3), (n, result.output)
            return copy, faults.count
        result = subprocess.run([sys.executable, "-m", "tests.faults", str(n), str(copy), *map(str, command)],
                                capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=120)
        assert result.returncode == (0 if n == 0 else KILLED), (n, result.stderr)
        return copy, int(result.stderr.rsplit("file operations: ", 1)[1]) if n == 0 else n

    _, total = rotating(0)
    assert total > 5
    for n in range(1, total + 1):
        copy, _ = rotating(n)
        result = run_cli("capture", "-C", copy / "collection", server.url("/after"))
        assert result.exit_code == 0, (n, result.output)
        verified(run_cli, Collection.open(copy / "collection"))
        keys = json.loads(run_cli("keys", "show", "-C", copy / "collection", "--json").stdout)["keys"]
        assert [key["status"] for key in keys].count("active") == 1, (n, keys)


@pytest.mark.parametrize("closed_bytes", ["shorter", "same length"])
def test_a_closed_file_that_is_not_the_open_ones_whole_records_is_refused_and_both_kept(run_cli, raw_server, tmp_path,
                                                                                       closed_bytes):
    """An earlier repair keeps an open file's whole records in a closed file of its name, and
    the next takes that file as done only if it holds exactly those bytes; any other file under
    that name (of another length, or of the same length and other bytes) is refused, and both
    files stay as they were, for a person to look at."""
    server = raw_server({f"/{i}": send_bytes(http_response(b"page %d " % i * 40)) for i in range(5)})
    collection = make_collection(tmp_path / "collection").root
    killed_capture = subprocess.run([sys.executable, "-m", "archiver", "capture", "-C", str(collection),
                                     "--concurrency", "1", *(server.url(f"/{i}") for i in range(5))],
                                    env=dict(os.environ, ARCHIVER_CRASH_AT=f"{MID_RECORD}:3"), capture_output=True, timeout=120)
    assert killed_capture.returncode == -signal.SIGKILL, killed_capture.stderr
    [open_file] = (collection / "warcs").glob("*.open")
    [finding] = [f for f in json.loads(run_cli("doctor", "-C", collection, "--json").stdout)["findings"]
                 if f["kind"] == "open file"]
    complete = int(re.search(r"(\d+) of \d+ bytes", json.dumps(finding))[1])  # the whole records a repair keeps
    opened = open_file.read_bytes()
    assert 0 < complete < len(opened)
    closed = open_file.with_suffix("")  # the name the repair gives its whole records
    closed.write_bytes(opened[:complete - 1] if closed_bytes == "shorter" else bytes(complete))
    kept = closed.read_bytes()
    result = run_cli("doctor", "-C", collection, "--fix")
    assert result.exit_code == 3 and "hold different records" in result.stderr, result.output
    assert open_file.read_bytes() == opened and closed.read_bytes() == kept
