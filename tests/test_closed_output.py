"""A command started with its output closed (`archiver claims >&-`): no internal error."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_listing_started_with_its_output_closed_is_no_internal_error(collection):
    # Python has no sys.stdout then, and a listing asked it whether it was a terminal ("internal
    # error: AttributeError", exit 3); the same listing under --json, and capture, carried on.
    for command in ("claims", "captures", "log"):
        ended = subprocess.run([sys.executable, "-m", "archiver", command, "-C", str(collection.root)],
                               preexec_fn=lambda: os.close(1), stderr=subprocess.PIPE, text=True)
        assert ended.returncode == 0 and "error" not in ended.stderr, (command, ended.stderr)
