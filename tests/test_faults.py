"""The file and fsync layer failing at the Nth operation, for every N, through a capture and
through a manifest export: the user gets one clear line, `archiver doctor --fix` leaves the
old state or the new one, `archiver verify` passes, and the next run reaches the new state.

Faults are injected into the collection's own files only (WARCs, catalog side files, the
custody log, manifests, signatures, tokens), through every os-level call that writes,
syncs or renames; the local timestamp authority and the test servers are left alone."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from archiver.collection import Collection
from tests.conftest import http_response, make_collection, send_bytes, use_tsa
from tests.tsa import local_tsa  # noqa: F401 (a fixture)

OPERATIONS = ("write", "fsync", "replace", "rename", "link")
ERRORS = pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])


class Faults:
    """Counts os-level operations on files under `within`; makes the `fail_at`-th fail with `error`."""

    def __init__(self, monkeypatch, within: Path, fail_at: int | None, error: int) -> None:
        self.within = str(within)
        self.fail_at = fail_at
        self.error = error
        self.count = 0
        for name in OPERATIONS:
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _concerns(self, target) -> bool:
        path = os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else os.fspath(target)
        return path.startswith(self.within)

    def _wrap(self, real):
        def operation(target, *args, **kwargs):
            if self._concerns(target):
                self.count += 1
                if self.count == self.fail_at:
                    raise OSError(self.error, os.strerror(self.error))
            return real(target, *args, **kwargs)
        return operation


def one_line(result) -> None:
    assert "Traceback" not in result.output
    assert len([l for l in result.stderr.splitlines() if l.strip()]) == 1, result.stderr


def verified(run_cli, collection) -> dict:
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    return report


def every_fault(run_cli, monkeypatch, template: Path, tmp_path: Path, command, error: int):
    """Run `command` on a fresh copy of `template` once to count its operations, then once per
    operation with that one failing; yields (fail_at, total, collection) after each failure
    has been reported and repaired, the collection verified."""
    def fresh(name: str):
        shutil.copytree(template, tmp_path / name, symlinks=True)
        return Collection.open(tmp_path / name)

    counted = fresh("count")
    with monkeypatch.context() as patched:
        faults = Faults(patched, counted.root, None, error)
        assert run_cli(*command(counted)).exit_code == 0
    total = faults.count
    assert total > 5
    for fail_at in range(1, total + 1):
        collection = fresh(f"n{fail_at}")
        with monkeypatch.context() as patched:
            Faults(patched, collection.root, fail_at, error)
            result = run_cli(*command(collection))
        assert result.exit_code != 0, f"operation {fail_at} of {total} failed silently"
        one_line(result)
        assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0, fail_at
        verified(run_cli, collection)
        yield fail_at, total, collection


@ERRORS
def test_a_failure_at_every_operation_of_a_capture_leaves_a_collection_that_verifies(run_cli, raw_server, tmp_path,
                                                                                     monkeypatch, error):
    server = raw_server({"/before": send_bytes(http_response(b"kept")), "/new": send_bytes(http_response(b"new"))})
    template = make_collection(tmp_path / "template").root
    assert run_cli("capture", "-C", template, server.url("/before")).exit_code == 0

    def command(collection):
        return ("capture", "-C", collection.root, server.url("/new"))
    for fail_at, total, collection in every_fault(run_cli, monkeypatch, template, tmp_path, command, error):
        urls = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
        assert server.url("/before") in urls, fail_at  # nothing saved before is lost
        assert run_cli("capture", "-C", collection.root, server.url("/new")).exit_code == 0, fail_at
        verified(run_cli, collection)


@ERRORS
def test_a_failure_at_every_operation_of_a_manifest_export_leaves_the_old_manifest_or_the_new(
        run_cli, raw_server, local_tsa, tmp_path, monkeypatch, error):
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
    for fail_at, total, collection in every_fault(run_cli, monkeypatch, template, tmp_path, command, error):
        manifests = collection.root / "manifests"
        newest = (manifests / "manifest.json").read_bytes()
        assert (manifests / "manifest-1.json").read_bytes() == old, fail_at  # the old manifest is never touched
        assert newest in (old, (manifests / "manifest-2.json").read_bytes() if (manifests / "manifest-2.json").exists()
                          else old), fail_at
        states.add("old" if newest == old else "new")
        # The next export reaches the new state, sealed and timestamped, with no gap in the chain.
        result = json.loads(run_cli("manifest", "-C", collection.root, "--json").stdout)
        assert result["sequence"] == 2 and result["timestamp"], (fail_at, result)
        report = verified(run_cli, collection)
        assert not [n for n in report["not_checked"] if "timestamp" in n], (fail_at, report["not_checked"])
    assert states == {"old", "new"}  # faults fell both before and after the moment the manifest exists
