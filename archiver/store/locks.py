"""The locks on a collection's folder: held shared by every command that changes it (doctor
alone), and taken in turn by exports. flock: the kernel drops each when its process dies."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from archiver.errors import UsageProblem

LOCK_NAME = ".in-use"
EXPORT_LOCK_NAME = "tmp/.export.lock"  # in tmp/, not beside the evidence in manifests/
IMPORT_LOCK_NAME = "tmp/.import.lock"
RESUME_LOCK_NAME = "tmp/.resume.lock"  # held by `capture --resume` from its first look at what is left


class InUse:
    """A lock on the collection's `.in-use` file. Every command that changes the collection
    holds it shared, so many may capture and export at once; `archiver doctor` holds it alone,
    since what it would repair (an open WARC, a manifest not yet listed) may be another's work
    in progress. The kernel drops it when its process dies. (With `name`, the same lock on
    another file: RESUME_LOCK_NAME.)"""

    def __init__(self, root: Path, exclusive: bool, name: str = LOCK_NAME) -> None:
        try:
            self._fd = os.open(root / name, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES):
                raise
            # Another user's lock file, or storage refusing writes to it: flock needs no write access.
            self._fd = os.open(root / name, os.O_RDONLY) if (root / name).exists() else -1
            if self._fd < 0:
                return  # never made, nor can it be: no one holds it, and nothing can change the collection
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            os.close(self._fd)
            raise UsageProblem(f"another archiver process is working on {root} (a capture, an export)",
                               "run this again when it has finished") from None

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "InUse":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Turn:
    """An exclusive lock on the file `path`, waited for: what it guards is done by one process
    at a time. The kernel drops it when its process dies."""

    def __init__(self, path: Path) -> None:
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:  # another user's lock file: flock needs no write access
            self._fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:  # Ctrl-C while waiting
            os.close(self._fd)
            raise

    def __enter__(self) -> "Turn":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._fd)
