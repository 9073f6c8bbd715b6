"""Exports beside other work on one collection: two `manifest` or `bundle` runs at once take
turns (the later would take the same sequence and replace the earlier's signed manifest), a
bundle's work folder in tmp/ is its own while it runs and a leftover once it died, and the
bundle signing key is announced before it is published."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from archiver.errors import UsageProblem
from archiver.exchange import bundle as bundle_module
from archiver.store.locks import EXPORT_LOCK_NAME, IMPORT_LOCK_NAME, InUse
from tests.conftest import http_response, make_collection, send_bytes
from tests.test_doctor import wait_until
from tests.test_verify import verify


@pytest.fixture
def captured(run_cli, raw_server, collection):
    server = raw_server({"/": send_bytes(http_response(b"<p>a page</p>"))})
    assert run_cli("capture", "-C", collection.root, server.url("/")).exit_code == 0
    return collection


def waiting_for_lock(path) -> bool:
    """Whether a process waits in /proc/locks for a lock on the file at `path` (a "->" line)."""
    inode = os.stat(path).st_ino
    with open("/proc/locks") as locks:
        return any(line.split()[1] == "->" and line.split()[6].rsplit(":", 1)[-1] == str(inode) for line in locks)


def test_an_export_waits_for_the_export_under_way(run_cli, captured):
    collection = captured
    with collection.exporting():  # as another `archiver manifest` would hold it
        later = subprocess.Popen([sys.executable, "-m", "archiver", "manifest", "-C", str(collection.root), "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: waiting_for_lock(collection.root / EXPORT_LOCK_NAME), "the export waiting its turn", later)
        assert not list((collection.root / "manifests").glob("manifest-*.json"))
    stdout, stderr = later.communicate(timeout=120)
    assert later.returncode == 0, stderr.decode()
    assert json.loads(stdout)["sequence"] == 1
    assert verify(run_cli, collection)["ok"]


def test_an_import_waits_for_the_import_under_way(run_cli, captured, tmp_path):
    """Two imports of one file at once both stored it, and the later failed to list it."""
    crawl = next(captured.storage.folder.glob("*.warc.gz"))
    target = make_collection(tmp_path / "target")
    with target.importing():  # as another `archiver import` would hold it
        later = subprocess.Popen([sys.executable, "-m", "archiver", "import", "-C", str(target.root), str(crawl)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: waiting_for_lock(target.root / IMPORT_LOCK_NAME), "the import waiting its turn", later)
        assert not list(target.storage.folder.glob("imported-*"))
    assert later.wait(120) == 0, later.stderr.read().decode()
    assert run_cli("import", "-C", target.root, crawl).exit_code == 0  # the same file again: already there
    assert verify(run_cli, target)["ok"]


def test_a_bundle_holds_the_collection_while_its_work_folder_is_in_tmp(run_cli, captured, tmp_path, monkeypatch):
    """A repair by another command waits for no one: it must find the collection held, or it
    would remove the running bundle's folder as a leftover."""
    copy_records = bundle_module.copy_records
    held = []

    def copying(*args):
        try:
            InUse(captured.root, exclusive=True).release()
            held.append(False)
        except UsageProblem:
            held.append(True)
        return copy_records(*args)

    monkeypatch.setattr(bundle_module, "copy_records", copying)
    assert run_cli("bundle", "-C", captured.root, "--all", "-o", tmp_path / "b.wacz").exit_code == 0
    assert held == [True]


def test_a_bundles_work_folder_left_by_a_kill_is_removed_by_the_next_repair(run_cli, captured):
    left = captured.tmp / "tmpq8x1z0"
    left.mkdir()
    (left / "data.warc.gz").write_bytes(b"part of a bundle")
    result = run_cli("doctor", "-C", captured.root, "--fix", "--json")
    assert result.exit_code == 0, result.output
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["where"], finding["fixed"]) == ("tmp/tmpq8x1z0", "removed")
    assert not left.exists()


def test_a_bundle_key_announced_but_not_yet_published_is_published_not_announced_twice(run_cli, captured, tmp_path):
    assert run_cli("bundle", "-C", captured.root, "--all", "-o", tmp_path / "a.wacz").exit_code == 0
    [published] = (captured.root / "keys").glob("*.p384.pub.pem")
    published.unlink()  # as a run stopped between the announcement and the file leaves it
    assert run_cli("bundle", "-C", captured.root, "--all", "-o", tmp_path / "b.wacz").exit_code == 0
    assert published.exists()
    lines = (captured.root / "custody.jsonl").read_bytes().splitlines()
    assert sum(json.loads(line)["event"] == "wacz key generated" for line in lines) == 1
    assert verify(run_cli, captured)["ok"]
