"""Captures made by other tools come in checked, marked as imported, and citable."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import http_response, send_bytes

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture
def wget_warc(raw_server, tmp_path) -> Path:
    """A WARC written by `wget --warc-file` from a test server (sha1 digests, wget's own layout)."""
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed (.ci/run installs it)")
    server = raw_server({"/leak": send_bytes(http_response(b"<html><title>Leaked memo</title>the memo</html>"))})
    subprocess.run(["wget", "--quiet", "--warc-file", str(tmp_path / "wget"), "-O", "/dev/null", server.url("/leak")],
                   check=True, cwd=tmp_path, timeout=30)
    return tmp_path / "wget.warc.gz"


def test_a_wget_warc_is_imported_marked_and_citable(run_cli, collection, wget_warc):
    result = run_cli("import", "-C", collection.root, wget_warc, "--json")
    assert result.exit_code == 0, result.output
    [imported] = json.loads(result.stdout)["files"]
    assert imported["file"].startswith("imported-") and "wget.warc.gz" in imported["source"]
    [capture] = imported["captures"]
    assert capture["imported_from"].startswith("wget.warc.gz sha256:") and capture["http_status"] == 200
    assert (collection.warcs / imported["file"]).read_bytes() == wget_warc.read_bytes()  # byte for byte

    cited = json.loads(run_cli("cite", "-C", collection.root, "The memo was leaked", "--capture", capture["id"],
                               "--json").stdout)
    shown = json.loads(run_cli("show", "-C", collection.root, cited["note"], "--json").stdout)
    assert [c["id"] for c in next(iter(shown["captures"].values()))] == [capture["id"]]
    again = json.loads(run_cli("import", "-C", collection.root, wget_warc, "--json").stdout)
    assert again["files"][0]["already"] is True  # the same file twice is one import
    report = json.loads(run_cli("verify", "-C", collection.root, "--json").stdout)
    assert report["ok"], report["failures"]
    assert report["passed"]["import in custody log"] == 1


def test_a_file_that_fails_its_digests_is_not_imported(run_cli, collection):
    bad = CORPUS / "warcio-example-digest.warc"
    if not bad.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    result = run_cli("import", "-C", collection.root, bad)
    assert result.exit_code == 2 and "not imported" in result.stderr and "payload digest" in result.stderr
    assert not list(collection.warcs.iterdir())
    assert json.loads(run_cli("captures", "-C", collection.root, "--json").stdout) == []


def test_a_wacz_from_another_tool_is_imported(run_cli, collection):
    wacz = CORPUS / "py-wacz-valid_example_2.wacz"
    if not wacz.exists():
        pytest.skip("the shared corpus is not beside this checkout")
    result = run_cli("import", "-C", collection.root, wacz, "--json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert files and all(f["source"].startswith("py-wacz-valid_example_2.wacz!archive/") for f in files)
    assert sum(len(f["captures"]) for f in files) > 0


def test_a_bundle_of_an_imported_capture_verifies_and_says_it_was_imported(run_cli, collection, wget_warc, tmp_path):
    imported = json.loads(run_cli("import", "-C", collection.root, wget_warc, "--json").stdout)["files"][0]
    [capture] = imported["captures"]
    assert run_cli("cite", "-C", collection.root, "The memo was leaked", "--capture", capture["id"]).exit_code == 0
    bundle = tmp_path / "imported.wacz"
    assert run_cli("bundle", "-C", collection.root, "--all", "-o", bundle).exit_code == 0
    fingerprint = json.loads(run_cli("keys", "show", "-C", collection.root, "--json").stdout)["keys"][0]["fingerprint"]
    result = run_cli("verify-bundle", bundle, "--fingerprint", fingerprint, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"], report["failures"]
    assert report["passed"]["capture record digest"] >= 1
    assert any(capture["id"] in note and "imported" in note for note in report["not_checked"])
