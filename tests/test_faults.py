"""The file and fsync layer failing at the Nth operation, for every N, through a capture: the
user gets one clear line, `archiver doctor --fix` leaves the old state or the new one, and
`archiver verify` passes. (A manifest export under the same faults is not covered yet.)"""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.conftest import http_response, make_collection, send_bytes

OPERATIONS = ("write", "fsync", "replace", "rename", "link")


class Faults:
    """Counts os-level file operations; makes the `fail_at`-th one fail with `error`."""

    def __init__(self, monkeypatch, fail_at: int | None, error: int) -> None:
        self.count = 0
        for name in OPERATIONS:
            real = getattr(os, name)
            monkeypatch.setattr(os, name, self._wrap(real, fail_at, error))

    def _wrap(self, real, fail_at, error):
        def operation(*args, **kwargs):
            self.count += 1
            if self.count == fail_at:
                raise OSError(error, os.strerror(error))
            return real(*args, **kwargs)
        return operation


def one_line(result) -> None:
    assert "Traceback" not in result.output
    assert len([l for l in result.stderr.splitlines() if l.strip()]) == 1, result.stderr


def operations_of(run_cli, monkeypatch, tmp_path, server, command) -> int:
    collection = prepared(run_cli, tmp_path / "count", server)
    with monkeypatch.context() as patched:
        faults = Faults(patched, None, errno.EIO)
        assert run_cli(*command(collection)).exit_code == 0
    return faults.count


def prepared(run_cli, root, server):
    collection = make_collection(root)
    assert run_cli("capture", "-C", collection.root, server.url("/before")).exit_code == 0
    return collection


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
def test_a_failure_at_every_operation_of_a_capture_leaves_a_collection_that_verifies(run_cli, raw_server, tmp_path,
                                                                                     monkeypatch, error):
    server = raw_server({"/before": send_bytes(http_response(b"kept")), "/new": send_bytes(http_response(b"new"))})

    def command(collection):
        return ("capture", "-C", collection.root, server.url("/new"))
    total = operations_of(run_cli, monkeypatch, tmp_path, server, command)
    assert total > 3
    for fail_at in range(1, total + 1):
        collection = prepared(run_cli, tmp_path / f"n{fail_at}", server)
        with monkeypatch.context() as patched:
            Faults(patched, fail_at, error)
            result = run_cli(*command(collection))
        assert result.exit_code != 0, f"operation {fail_at} of {total} failed silently"
        one_line(result)
        assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0, fail_at
        report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
        assert report["ok"], (fail_at, report["failures"])
        urls = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
        assert server.url("/before") in urls  # nothing that was saved before is lost
