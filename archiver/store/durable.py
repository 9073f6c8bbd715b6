"""Writes that survive a crash: a file is either wholly old or wholly new, never half-written.

Every byte goes through `os.write` and every flush through `os.fsync`, with no hidden buffer
between: what the OS accepted is exactly what was written, and a refusal (a full disk, an
I/O error) surfaces at the write that met it."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableFile:
    """A new file (never an existing one) written with os.write alone."""

    def __init__(self, path: Path, mode: int = 0o644) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        finally:
            # Else a refused write's traceback keeps `data` exported, and a caller clearing its
            # bytearray while it handles the refusal meets BufferError instead of the disk's error.
            view.release()

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "DurableFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A file to write the new `path` into (for writers that need a seekable file object, such
    as zipfile); it takes the place of `path` only once the block completes and it is synced,
    so a reader never finds half a file there, and a failure leaves `path` as it was."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary sibling, fsync it, rename it over `path`, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by an earlier process of the same id that was killed
    try:
        with DurableFile(tmp, mode) as out:
            out.write(data)
            out.sync()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
