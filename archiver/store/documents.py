"""Copies of the documents a collection read, kept content-addressed:
`documents/sha256/<first two hex digits>/<SHA-256 of the bytes>`.

A copy's name is its digest, never anything a user or a document chose, so the same bytes read
twice (from any path) are kept once, and a copy changed on disk no longer matches its name. A
copy is written whole and fsynced before the catalog lists the version it holds."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from archiver.store.durable import DurableFile, fsync_dir

FOLDER = "documents"


class DocumentCopies:
    """The kept copies under a collection's root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def relative_path(sha256: str) -> str:
        """Where the copy of the bytes with this hex digest is kept, relative to the collection."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return f"{FOLDER}/sha256/{sha256[:2]}/{sha256}"

    def path(self, sha256: str) -> Path:
        return self.root / self.relative_path(sha256)

    def keep(self, data: bytes) -> str:
        """Keep `data` (unless a copy is kept already) and return its SHA-256 hex digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        final = self.path(sha256)
        if final.exists():
            return sha256
        self._make_folders(final.parent)
        tmp = final.with_name(f".{sha256}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)  # left by an earlier process of the same id that was killed
        try:
            with DurableFile(tmp, 0o444) as out:
                out.write(data)
                out.sync()
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(final.parent)
        return sha256

    def _make_folders(self, folder: Path) -> None:
        """`folder` and those above it up to the collection, each new one made durable in its parent."""
        if folder.is_dir() or folder == self.root:
            return
        self._make_folders(folder.parent)
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)

    def digest_of(self, sha256: str) -> tuple[str, int] | None:
        """(SHA-256, size) of the kept copy named `sha256` as it is on disk now; None if missing."""
        try:
            with open(self.path(sha256), "rb") as copy:
                digest = hashlib.file_digest(copy, "sha256")
                return digest.hexdigest(), copy.tell()
        except FileNotFoundError:
            return None
