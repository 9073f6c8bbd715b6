"""Every command, given bad usage, answers with one clear line and a documented exit code."""

from __future__ import annotations

import errno
import json
import os

import pytest

COMMANDS = [
    ["capture", "http://127.0.0.1:9/"], ["cite", "a claim", "http://127.0.0.1:9/"], ["claims"], ["documents"],
    ["captures"], ["history", "http://127.0.0.1:9/"], ["show", "c0"], ["manifest"], ["keys", "show"], ["log"],
    ["verify"], ["bundle", "--all", "-o", "x.wacz"], ["doctor"], ["import", "README.md"],
]


def one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("error:", "Error:")), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_folder_that_is_not_a_collection(run_cli, tmp_path, command):
    if command[0] in ("capture", "cite"):
        pytest.skip("capture and cite make a collection in a folder that has none")
    (tmp_path / "README.md").write_text("x")
    result = run_cli(*command, "-C", tmp_path)
    assert result.exit_code == 2
    assert "is not an archiver collection" in one_line(result)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_malformed_archiver_toml(run_cli, collection, command):
    (collection.root / "archiver.toml").write_text("[capture]\nconcurrency = 'many'\n")
    result = run_cli(*command, "-C", collection.root)
    assert result.exit_code == 2
    assert "archiver.toml" in one_line(result)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unknown_option(run_cli, collection, command):
    result = run_cli(*command, "-C", collection.root, "--no-such-option")
    assert result.exit_code == 2 and "No such option" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["manifest"], ["bundle", "--all", "-o", "x.wacz"], ["keys", "rotate"]],
                         ids=lambda c: c[0])
def test_an_unreadable_key(run_cli, collection, monkeypatch, command):
    monkeypatch.setenv("ARCHIVER_KEY", str(collection.root))  # a folder where the key should be
    result = run_cli(*command, "-C", collection.root)
    assert result.exit_code == 2 and "cannot read the signing key" in one_line(result)


def test_a_full_disk_is_one_line_and_loses_nothing(run_cli, raw_server, collection, monkeypatch):
    from tests.conftest import http_response, send_bytes

    server = raw_server({"/a": send_bytes(http_response(b"kept")), "/b": send_bytes(http_response(b"lost"))})
    assert run_cli("capture", "-C", collection.root, server.url("/a")).exit_code == 0
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "write", full)  # the custody log and atomic writes go through os.write
        result = run_cli("capture", "-C", collection.root, server.url("/b"))
    assert os.write is real_write
    assert result.exit_code == 3 and "No space left on device" in one_line(result)
    # What reached the disk is kept; doctor records what the full disk kept out of the log.
    assert run_cli("doctor", "-C", collection.root, "--fix").exit_code == 0
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    urls = {c["url"] for c in json.loads(run_cli("captures", "-C", collection.root, "--json").stdout)}
    assert server.url("/a") in urls
