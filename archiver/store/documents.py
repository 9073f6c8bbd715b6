"""Copies of the documents a collection read, kept content-addressed:
`documents/sha256/<first two hex digits>/<SHA-256 of the bytes>`.

A copy's name is its digest, never anything a user or a document chose, so the same bytes read
twice (from any path) are kept once, and a copy changed on disk no longer matches its name. A
copy is written whole and fsynced before the catalog lists the version it holds.

In a store other machines share (S3), each copy is also stored there, as the object
`documents/<SHA-256>`, before the catalog lists it; a machine's folder then holds copies of
those objects, fetched when read, and fetched afresh to be verified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from archiver.store.durable import DurableFile, fsync_dir
from archiver.store.leftovers import shared_by_machines
from archiver.store.storage import Storage

FOLDER = "documents"
_CHUNK = 1 << 20


class DocumentCopies:
    """The kept copies under a collection's root, and in `storage` when other machines share it."""

    def __init__(self, root: Path, storage: Storage | None = None) -> None:
        self.root = root
        self._shared = storage if storage is not None and shared_by_machines(storage) else None

    @staticmethod
    def relative_path(sha256: str) -> str:
        """Where the copy of the bytes with this hex digest is kept, relative to the collection."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return f"{FOLDER}/sha256/{sha256[:2]}/{sha256}"

    def path(self, sha256: str) -> Path:
        return self.root / self.relative_path(sha256)

    def keep_file(self, source: BinaryIO, sha256: str) -> None:
        """Keep the bytes `source` reads from where it stands, whose SHA-256 is `sha256`, a chunk at
        a time (unless a copy is kept already). Raises OSError when they are not those bytes."""
        final = self.path(sha256)
        if not final.exists():
            self._write(final, source, sha256)
        if self._shared is not None:  # stored already with these bytes: left as it is
            self._shared.put_shared(f"{FOLDER}/{sha256}", final)

    def read(self, sha256: str) -> bytes:
        """The bytes of the copy named `sha256` (fetched first when shared and not here yet)."""
        path = self.path(sha256)
        if self._shared is not None and not path.exists():
            self._fetch(sha256)
        return path.read_bytes()

    def store(self, sha256: str) -> None:
        """Store this folder's copy where other machines fetch it (when shared)."""
        if self._shared is not None:
            self._shared.put_shared(f"{FOLDER}/{sha256}", self.path(sha256))

    def unstored(self, sha256s: list[str]) -> list[str]:
        """Of the copies named `sha256s`, those this folder holds and the shared store does not."""
        if self._shared is None:
            return []
        held = set(self._shared.shared_names(FOLDER))
        return [sha256 for sha256 in sha256s if sha256 not in held and self.path(sha256).exists()]

    def _fetch(self, sha256: str) -> None:
        self._make_folders(self.path(sha256).parent)
        self._shared.get_shared(f"{FOLDER}/{sha256}", self.path(sha256))

    def _write(self, final: Path, source: BinaryIO, sha256: str) -> None:
        self._make_folders(final.parent)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)  # left by an earlier process of the same id that was killed
        try:
            digest = hashlib.sha256()
            with DurableFile(tmp, 0o444) as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                # A copy under another digest's name would be a copy that no longer matches it.
                if digest.hexdigest() != sha256:
                    raise OSError(f"the bytes to keep changed since they were read (SHA-256 {digest.hexdigest()}, "
                                  f"not {sha256})")
                out.sync()
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(final.parent)

    def _make_folders(self, folder: Path) -> None:
        """`folder` and those above it up to the collection, each new one made durable in its parent."""
        if folder.is_dir() or folder == self.root:
            return
        self._make_folders(folder.parent)
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)

    def digest_of(self, sha256: str) -> tuple[str, int] | None:
        """(SHA-256, size) of the kept copy named `sha256` as it is on disk now, or, when shared,
        as the store holds it; None if missing."""
        try:
            if self._shared is not None:
                self._fetch(sha256)
            with open(self.path(sha256), "rb") as copy:
                digest = hashlib.file_digest(copy, "sha256")
                return digest.hexdigest(), copy.tell()
        except FileNotFoundError:
            return None
