"""A response kept exactly as received while it arrives: in memory, then on disk when large,
hashed as it is written (the WARC block and payload digests need no second read)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Callable

SPOOL_IN_MEMORY = 4 * 2**20  # larger responses spill to the collection's tmp/ folder


class ResponseSpool:
    """The response exactly as received, hashed as it is written; spills to disk when large."""

    def __init__(self, folder: Path | None) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=folder)
        self.size = 0
        self.header_length: int | None = None
        self.interim: list[bytes] = []  # 1xx heads received before the response, as received
        self._block = hashlib.sha256()
        self._payload = hashlib.sha256()
        # Handed the final response's bytes as they are kept (its head once whole, then each
        # piece of body): a browser capture's proxy passes them on at once, so that the page sees
        # what has arrived of a response still coming, as a reader's browser would.
        self.relay: Callable[[bytes], None] | None = None

    def write(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.size += len(data)
        self._block.update(data)
        if self.header_length is not None:
            self._payload.update(data)
            if self.relay is not None:
                self.relay(bytes(data))

    def mark_body_start(self) -> None:
        self.header_length = self.size
        if self.relay is not None:
            self.file.seek(0)
            head = self.file.read(self.size)
            self.file.seek(0, 2)
            self.relay(head)

    def set_aside_interim(self) -> None:
        """What was received so far is an interim (1xx) head: it is kept apart, and the spool
        starts again for the response that follows."""
        self.file.seek(0)
        self.interim.append(self.file.read())
        self.file.seek(0)
        self.file.truncate()
        self.size = 0
        self._block = hashlib.sha256()

    @property
    def received(self) -> int:
        """Every byte received: the response so far and any interim heads before it."""
        return self.size + sum(len(head) for head in self.interim)

    @property
    def block_digest(self) -> str:
        return "sha256:" + self._block.hexdigest()

    @property
    def payload_digest(self) -> str:
        return "sha256:" + self._payload.hexdigest()

    def close(self) -> None:
        self.file.close()
