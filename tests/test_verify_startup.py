"""`archiver verify` on a small collection pays only for what it checks: no capture, drift,
replay, TSA-request, timestamp-token or worker-pool code is loaded before (or without) a byte
to read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_collection

# Each is loaded by a command or option that needs it, never by a plain verify.
NOT_NEEDED = ("archiver.capture.run", "archiver.capture.fetch.engine", "archiver.check.drift", "archiver.check.replay",
              "requests", "PIL", "playwright", "concurrent.futures.process", "multiprocessing",
              "archiver.evidence.timestamps.request",
              # RFC 3161 tokens and X.509 (a tenth of an empty verify): only for a manifest with a token
              "archiver.evidence.timestamps.token", "rfc3161_client", "cryptography.x509")

LOADED_BY_VERIFY = """\
import json, sys
from archiver.cli import cli
try:
    cli.main(["verify", "-C", sys.argv[1], "--workers", "2"], prog_name="archiver")
except SystemExit as exit:
    print(json.dumps({"exit": exit.code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_by_verify(root: Path) -> set[str]:
    """The modules of NOT_NEEDED that `archiver verify` of `root` loaded (it must pass)."""
    done = subprocess.run([sys.executable, "-c", LOADED_BY_VERIFY, str(root)], capture_output=True, text=True)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["exit"] == 0, done.stdout
    return {name for name in result["modules"] if name in NOT_NEEDED or name.split(".")[0] in NOT_NEEDED}


def test_verify_of_an_empty_collection_loads_no_capture_replay_or_pool_code(tmp_path):
    assert not loaded_by_verify(make_collection(tmp_path / "empty").root)


def test_verify_of_a_manifest_without_a_timestamp_token_loads_no_token_code(tmp_path, run_cli):
    collection = make_collection(tmp_path / "signed")
    assert run_cli("manifest", "-C", collection.root).exit_code == 0
    assert list((collection.root / "manifests").glob("manifest-*.json"))
    assert not loaded_by_verify(collection.root)
