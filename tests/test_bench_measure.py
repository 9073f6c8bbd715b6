"""The benchmarks measure programs as a user runs them once installed: with their modules'
bytecode cached (pip compiles it on install), whatever this machine's environment says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

PROBE = """\
import json, sys
print(json.dumps({"dont_write": sys.flags.dont_write_bytecode, "cached_at": json.__cached__}))
"""


@pytest.fixture
def measure(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from capture import measure  # bench/capture.py, shared by every benchmark that runs processes

    return measure


def test_a_measured_process_caches_its_bytecode_in_the_work_folder(measure, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as on the machine the figures were first taken on
    runs = [measure("probe", [sys.executable, "-c", PROBE], tmp_path) for _ in range(2)]
    for run in runs:
        run.check()
    probe = json.loads(runs[-1].stdout.read_text())
    assert probe["dont_write"] == 0
    cached = Path(probe["cached_at"])
    assert cached.is_relative_to(tmp_path / "pycache") and cached.is_file()
