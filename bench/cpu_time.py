"""CPU time of running processes, from /proc: bench/scale.py's measure of what each server and
the whole machine spent during a run."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (index 0 is field 3, the state)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system time of a live process; with `children`, also of its reaped children."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / TICK


def postgres_cpu(postmaster: int) -> float:
    """The postmaster's CPU, its ended backends' (reaped into its own) and its live children's."""
    total = cpu_seconds(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == postmaster:
                    total += cpu_seconds(int(entry.name))
            except (OSError, ValueError):  # it ended meanwhile
                pass
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores, everyone's work) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait
