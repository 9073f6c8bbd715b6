"""An object of an S3 store read as a file, from its start, by ranged GETs of READ_CHUNK bytes:
reading one record of a WARC file never fetches the whole file."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from archiver.store.s3 import S3Storage

READ_CHUNK = 8 * 2**20   # bytes asked for by each ranged GET when a file is read through


def ranged_reader(storage: S3Storage, name: str) -> BinaryIO:
    # No lookup first: the size comes with the first ranged GET, so reading a file through
    # costs no HEAD (verify has looked each object up once already, for its size and lock).
    return io.BufferedReader(_RangedReader(storage, name), buffer_size=READ_CHUNK)


class _RangedReader(io.RawIOBase):
    """An object read from its start by ranged GETs (wrapped in a BufferedReader of READ_CHUNK),
    its size learnt from the first of them."""

    def __init__(self, storage: S3Storage, name: str) -> None:
        self._storage, self._name, self._position = storage, name, 0
        self._size: int | None = None

    @property
    def size(self) -> int:
        if self._size is None:  # asked before any read (a seek from the end): looked up
            self._size = self._storage.size(self._name)
            if self._size is None:
                raise FileNotFoundError(f"{self._storage.location}{self._name}")
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = self.size if whence == io.SEEK_END else {io.SEEK_SET: 0, io.SEEK_CUR: self._position}[whence]
        self._position = start + offset
        return self._position

    def readinto(self, buffer) -> int:
        if not len(buffer):
            return 0
        if self._size is None:
            data, self._size = self._storage.first_read(self._name, self._position, len(buffer))
        else:
            data = self._storage.read(self._name, self._position, min(len(buffer), self._size - self._position))
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(READ_CHUNK), b""))
