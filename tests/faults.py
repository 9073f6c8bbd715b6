"""The file layer failing on purpose: every os-level call that writes, syncs or renames a file
under one folder is counted, and the Nth one fails with an error, or kills the process on
the spot (os._exit: no cleanup, no `finally`, as SIGKILL would). A write that fails writes
the first half of its bytes first, as a disk filling up takes what fits before it refuses:
whoever retries from the start of what it held writes those bytes twice.

As a script, it runs archiver's CLI killed before its Nth operation on a collection's files,
and on exit without a kill prints how many such operations the command made:

    python -m tests.faults N COLLECTION_DIR archiver-arguments...      (N = 0: never kill)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

OPERATIONS = ("write", "writev", "fsync", "replace", "rename", "link")
_REAL_WRITE = os.write
_WRITTEN = {os.write: bytes, os.writev: b"".join}  # the bytes a write of each is handed
KILLED = 137  # the exit status of a process killed by SIGKILL, as a shell reports it


class Faults:
    """Counts operations on files under `within`; the `fail_at`-th raises OSError(`error`), or
    with `error` None ends the process at once."""

    def __init__(self, patch, within: Path, fail_at: int | None, error: int | None) -> None:
        self.within = str(within)
        self.fail_at = fail_at
        self.error = error
        self.count = 0
        for name in OPERATIONS:
            patch(os, name, self._wrap(getattr(os, name)))

    def _concerns(self, target) -> bool:
        path = os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else os.fspath(target)
        return path.startswith(self.within)

    def _wrap(self, real):
        def operation(target, *args, **kwargs):
            if self._concerns(target):
                self.count += 1
                if self.count == self.fail_at:
                    if self.error is None:
                        os._exit(KILLED)
                    handed = _WRITTEN[real](args[0]) if real in _WRITTEN else b""
                    if len(handed) > 1:
                        _REAL_WRITE(target, handed[:len(handed) // 2])
                    raise OSError(self.error, os.strerror(self.error))
            return real(target, *args, **kwargs)
        return operation


def run_archiver(arguments: list[str], counted: str, count: Callable[[], int]) -> None:
    """archiver's CLI run in this process (which a test has rigged to fail), then, if it was
    not killed, `counted: N` on stderr, for the test to know how many steps there were."""
    from archiver.cli import cli

    try:
        cli.main(args=arguments, prog_name="archiver")
    finally:
        print(f"{counted}: {count()}", file=sys.stderr)


def main() -> None:
    fail_at, within, arguments = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    faults = Faults(setattr, within, fail_at or None, None)
    run_archiver(arguments, "file operations", lambda: faults.count)


if __name__ == "__main__":
    main()
