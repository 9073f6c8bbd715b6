"""Where archive bytes live: one small interface in front of every read and write of WARC
files, so that the rest of archiver never builds a path to one or opens it.

A file is written once, in order, and becomes visible under its name only when published;
after that it is read whole or by byte range and never changed. Nothing here assumes
appending to a published file, so an object store (a whole-object upload, ranged GETs) fits
behind the same interface as the local folder that implements it first."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from archiver.store.durable import DurableFile, fsync_dir

UNFINISHED_SUFFIX = ".open"
QUARANTINE = "quarantine"
_COPY_SIZE = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    """A published file: its name, the size and SHA-256 of every byte written to it, and, in
    a store that locks objects, until when and how (COMPLIANCE, GOVERNANCE) it is locked."""

    name: str
    size: int
    sha256: str
    retention_mode: str | None = None
    retain_until: str | None = None  # ISO 8601, as the store reported it


@dataclass(frozen=True)
class ObjectState:
    """What one look at a published file finds: its size and, in a store that locks objects,
    the lock it holds now (a local folder locks nothing)."""

    size: int
    retention_mode: str | None = None
    retain_until: str | None = None  # ISO 8601


class NewFile(Protocol):
    """A file being written: bytes go on its end; nothing reads it under its name until published."""

    name: str
    size: int  # bytes written so far: the offset the next write lands at

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def sync(self) -> None:
        """Everything written so far survives a crash (it may still end up set aside as unfinished)."""

    def close(self) -> StoredFile:
        """Sync it and write no more: the size and SHA-256 of every byte written (the same again
        if asked again: publishing closes it too)."""

    def abandon(self) -> None:
        """Stop writing it, unpublished: left unfinished, for `doctor` (after a write that failed)."""


class Storage(Protocol):
    """Archive files by name: create and publish, put whole, read whole or by range, list, stat."""

    location: str  # where the files are, for messages
    folder: Path  # where they are written on this machine (a remote store's spool)

    def create(self, name: str) -> NewFile: ...

    def publish(self, file: NewFile) -> StoredFile:
        """Make `file` durable under its name; it is never written again."""

    def put(self, name: str, source: BinaryIO) -> StoredFile:
        """Store a whole file from a stream, published only once every byte is durable."""

    def already_stored(self, written: StoredFile) -> StoredFile | None:
        """`written` with its lock, if its very bytes are published under its name (and, in a
        store keeping versions, no other version of the name holds others); None if no file is.
        FileExistsError if the name holds, or in a versioned store held, other bytes."""

    def reader(self, name: str) -> BinaryIO:
        """The published file, read from its start."""

    def read(self, name: str, offset: int, length: int) -> bytes: ...

    def names(self) -> list[str]:
        """Published files, sorted."""

    def size(self, name: str) -> int | None:
        """Bytes in a published file; None when there is no such file."""

    def state(self, name: str) -> ObjectState | None:
        """A published file's size and lock, in one look; None when there is no such file."""

    def unfinished(self) -> list[str]:
        """Files created and never published (a run stopped while writing them), sorted."""

    def unfinished_size(self, name: str) -> int: ...

    def unfinished_reader(self, name: str) -> BinaryIO: ...

    def discard_unfinished(self, name: str) -> None:
        """Forget an unfinished file whose every byte has been published elsewhere."""

    def set_aside_unfinished(self, name: str) -> str:
        """Move an unfinished file out of the way, kept for inspection; returns where it went."""


def read_listed(storage: Storage, name: str, offset: int, length: int) -> bytes:
    """Bytes of a file the catalog lists records in. A capture run lists each capture once its
    records are fsynced, before their file is closed (in a store shared by machines, only once it
    is uploaded): until it is, they are read from the unfinished file."""
    try:
        return storage.read(name, offset, length)
    except FileNotFoundError:
        try:
            with storage.unfinished_reader(name) as file:
                file.seek(offset)
                return file.read(length)
        except FileNotFoundError:  # closed meanwhile
            return storage.read(name, offset, length)


class LocalNewFile:
    """os.write and os.fsync only (so a full disk or an I/O error surfaces at the write that
    met it), hashing as it goes so publishing needs no re-read. Once a write or fsync has
    failed, how much reached the disk is unknown: the file is torn, and every later write,
    sync and close fails too, so that it is never published as the bytes it hashed."""

    # Measured: writes of 64 KiB cost a third of the CPU of 1 MiB ones (they stay in cache).
    _HOLD = 64 * 1024

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.size = 0
        self.path = path
        self._out = DurableFile(path)
        self._sha256 = hashlib.sha256()
        self._held = bytearray()
        self._name_durable = False
        self._failed: OSError | None = None
        self._closed: StoredFile | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._refuse_if_torn()
        self._held += data
        self.size += len(data)
        self._sha256.update(data)
        if len(self._held) >= self._HOLD:
            self._drain()

    def _drain(self) -> None:
        try:
            self._out.write(self._held)
            self._held.clear()
        except OSError as exc:
            self._failed = exc
            raise

    def sync(self) -> None:
        self._refuse_if_torn()
        self._drain()
        try:
            self._out.sync()
        except OSError as exc:  # after a failed fsync the kernel may have dropped the pages it could not write
            self._failed = exc
            raise
        if not self._name_durable:  # the file's name, too, survives a crash from its first sync
            fsync_dir(self.path.parent)
            self._name_durable = True

    def close(self) -> StoredFile:
        # Closed once: a writer closes its file to sign what it holds before it publishes it,
        # and publishing closes it again.
        if self._closed is None:
            self.sync()
            self._out.close()
            self._closed = StoredFile(self.name, self.size, self._sha256.hexdigest())
        return self._closed

    def abandon(self) -> None:
        self._out.close()

    def _refuse_if_torn(self) -> None:
        if self._failed is not None:
            raise OSError(self._failed.errno, f"{self.path.name} was torn by a failed write "
                          f"({self._failed.strerror}): it is left unfinished, never published")


class LocalFolder:
    """Archive files in one folder: `<name>.open` while written, renamed to `<name>` when
    published, every step fsynced (the folder too), unfinished files set aside in quarantine/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.location = str(folder)

    def _path(self, name: str) -> Path:
        # Names are made by archiver (from its clock, randomness or a hash), never from input,
        # but a name must still never leave the folder.
        if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
            raise ValueError(f"not a file name for archive storage: {name!r}")
        return self.folder / name

    def create(self, name: str) -> LocalNewFile:
        return LocalNewFile(name, self._path(name + UNFINISHED_SUFFIX))

    def publish(self, file: LocalNewFile) -> StoredFile:
        stored = file.close()
        os.rename(file.path, self._path(file.name))
        fsync_dir(self.folder)
        return stored

    def put(self, name: str, source: BinaryIO) -> StoredFile:
        if self._path(name).exists():  # published files are never replaced
            raise FileExistsError(f"{name} is already stored")
        # A hidden temporary name: an unfinished file of the same name may be what is being saved.
        new = LocalNewFile(name, self.folder / f".{self._path(name).name}.{os.getpid()}.put")
        try:
            while chunk := source.read(_COPY_SIZE):
                new.write(chunk)
            return self.publish(new)
        except BaseException:
            new.path.unlink(missing_ok=True)
            raise

    def already_stored(self, written: StoredFile) -> StoredFile | None:
        try:
            with open(self._path(written.name), "rb") as file:
                same = (os.fstat(file.fileno()).st_size == written.size
                        and hashlib.file_digest(file, "sha256").hexdigest() == written.sha256)
        except FileNotFoundError:
            return None
        if not same:
            raise FileExistsError(f"{written.name} is already stored in {self.location}, with other bytes")
        return written

    def reader(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def read(self, name: str, offset: int, length: int) -> bytes:
        with open(self._path(name), "rb") as file:
            file.seek(offset)
            return file.read(length)

    def names(self) -> list[str]:
        return sorted(p.name for p in self._files() if not p.name.endswith(UNFINISHED_SUFFIX))

    def size(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return None

    def state(self, name: str) -> ObjectState | None:
        size = self.size(name)
        return None if size is None else ObjectState(size)

    def unfinished(self) -> list[str]:
        return sorted(p.name[:-len(UNFINISHED_SUFFIX)] for p in self._files() if p.name.endswith(UNFINISHED_SUFFIX))

    def unfinished_size(self, name: str) -> int:
        return self._path(name + UNFINISHED_SUFFIX).stat().st_size

    def unfinished_reader(self, name: str) -> BinaryIO:
        return open(self._path(name + UNFINISHED_SUFFIX), "rb")

    def discard_unfinished(self, name: str) -> None:
        self._path(name + UNFINISHED_SUFFIX).unlink()
        fsync_dir(self.folder)

    def set_aside_unfinished(self, name: str) -> str:
        return self.set_aside(name + UNFINISHED_SUFFIX)

    def set_aside(self, name: str) -> str:
        """The file `name` (published or not) moved into quarantine/, its bytes kept; where it now is."""
        quarantine = self.folder / QUARANTINE
        quarantine.mkdir(exist_ok=True)
        # A rename, never shutil.move: its fallback on a refused rename copies without syncing
        # the copy and then deletes the original.
        os.rename(self._path(name), quarantine / name)
        fsync_dir(quarantine)
        fsync_dir(self.folder)
        return f"{QUARANTINE}/{name}"

    def _files(self) -> Iterator[Path]:
        return (p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))
