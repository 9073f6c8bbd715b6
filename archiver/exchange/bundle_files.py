"""A bundle's files while it is put together: the small ones held as bytes, its WARC as the
file it was copied to, so that a bundle of every capture needs no more memory than one of a
few; each file is hashed once, however many listings (report, statement, datapackage) name it."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path
from typing import Iterable

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # every entry's: the same selection gives the same bytes but for what is signed
COPY_BUFFER = 1 << 20


class BundleFiles:
    def __init__(self) -> None:
        self._content: dict[str, bytes | Path] = {}
        self._digests: dict[str, tuple[str, int]] = {}

    def add(self, path: str, content: bytes | Path) -> None:
        """`content`: the file's bytes, or a file holding them, to be left unchanged until written."""
        if path in self._content:
            raise ValueError(f"{path} is already in the bundle")
        self._content[path] = content

    def update(self, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            self.add(path, data)

    def __contains__(self, path: str) -> bool:
        return path in self._content

    def __getitem__(self, path: str) -> bytes:
        """A file held as bytes (the report and the statement read some of them)."""
        content = self._content[path]
        if isinstance(content, Path):
            raise TypeError(f"{path} is not held in memory")
        return content

    def get(self, path: str) -> bytes | None:
        return self[path] if path in self else None

    def digest(self, path: str) -> tuple[str, int]:
        """The file's SHA-256 (hex) and size."""
        if path not in self._digests:
            content = self._content[path]
            if isinstance(content, Path):
                with open(content, "rb") as file:
                    sha256 = hashlib.file_digest(file, "sha256").hexdigest()
                self._digests[path] = sha256, content.stat().st_size
            else:
                self._digests[path] = hashlib.sha256(content).hexdigest(), len(content)
        return self._digests[path]

    def listing(self) -> list[tuple[str, str, int]]:
        """(path, SHA-256, size) of every file so far, by path."""
        return [(path, *self.digest(path)) for path in sorted(self._content)]

    def write(self, wacz: zipfile.ZipFile, last: Iterable[tuple[str, bytes]]) -> None:
        """Every file, by path, then `last` in its order, stored uncompressed; a file held on
        disk is copied a megabyte at a time."""
        for path, content in [*sorted(self._content.items()), *last]:
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            if isinstance(content, Path):
                info.file_size = content.stat().st_size  # so that zipfile knows whether it needs ZIP64
                with open(content, "rb") as source, wacz.open(info, "w") as entry:
                    shutil.copyfileobj(source, entry, COPY_BUFFER)
            else:
                wacz.writestr(info, content)
