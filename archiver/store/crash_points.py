"""TEST-ONLY: lets a test kill a process at one exact instant, the nastiest ones a real crash
can hit, however fast or slow the machine, or stop it there while another process works.
Never set ARCHIVER_CRASH_AT or ARCHIVER_PAUSE_AT in use.

`ARCHIVER_CRASH_AT=POINT` (or `POINT:N`, the Nth time the process reaches it) makes the process
SIGKILL itself there. Points: `mid-record` (half of a response record written and fsynced),
`after-upload` (a WARC uploaded and checked, its spool copy not yet removed, the catalog not
yet told), `after-publish` (the same WARC's spool copy removed too, the catalog still not told),
`after-seal` (a manifest listed and sealed, on a shared collection not yet stored),
`mid-verify` (verify has checked the custody log, not yet the records).
`ARCHIVER_PAUSE_AT=POINT` stops the process there (SIGSTOP) each time, until sent SIGCONT."""

from __future__ import annotations

import io
import os
import signal
import threading
from typing import BinaryIO, Callable

CRASH_AT = "ARCHIVER_CRASH_AT"
PAUSE_AT = "ARCHIVER_PAUSE_AT"
MID_RECORD, AFTER_UPLOAD, AFTER_PUBLISH, AFTER_SEAL = "mid-record", "after-upload", "after-publish", "after-seal"
MID_VERIFY = "mid-verify"
_reached: dict[str, int] = {}
_counting = threading.Lock()


def armed(point: str) -> bool:
    """Whether reaching `point` now is the instant ARCHIVER_CRASH_AT names (counts the visit)."""
    wanted = os.environ.get(CRASH_AT)
    if not wanted or wanted.split(":")[0] != point:
        return False
    with _counting:
        _reached[point] = _reached.get(point, 0) + 1
        return _reached[point] == int(wanted.partition(":")[2] or 1)


def crash_point(point: str) -> None:
    if armed(point):
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_AT) == point:
        os.kill(os.getpid(), signal.SIGSTOP)


def tear(file: BinaryIO, write: Callable[[BinaryIO], None]) -> None:
    """Write half of what `write` writes to `file`, make it durable, and die: a torn record."""
    whole = io.BytesIO()
    write(whole)
    file.write(whole.getvalue()[:len(whole.getvalue()) // 2])
    file.sync()
    os.kill(os.getpid(), signal.SIGKILL)
