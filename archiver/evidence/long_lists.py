"""Lists a signed entry holds whole that are too long to hold in memory as lists: the claim ids
of a claim sheet of a million rows, each signed in the custody log's "document read" entry.

A LongList's items are written as canonical JSON to an unnamed temporary file as they come;
`canonical_bytes` then puts the entry's canonical JSON together around them, byte for byte as
`canonical_json` makes it of the same entry holding a list of those items. Ed25519 signs a
message held whole, so those bytes are held, once: 20 a claim id, where a list of the ids took
some 75 each, and encoding it as many again."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from typing import Any, Iterable

from archiver.evidence.signing import CANONICAL, canonical_json


class LongList:
    """Items appended in order, kept on disk as the items of a canonical JSON array."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._size = 0

    def extend(self, items: Iterable[Any]) -> None:
        encoded = b",".join(canonical_json(item) for item in items)
        if encoded:
            self._size += self._file.write((b"," if self._size else b"") + encoded)

    def _copy_to(self, out: Any) -> None:
        """Write the array, brackets and all, to the binary file `out`."""
        self._file.flush()
        self._file.seek(0)
        out.write(b"[")
        shutil.copyfileobj(self._file, out)
        out.write(b"]")


def canonical_bytes(value: Any) -> bytes:
    """canonical_json(value), where each LongList in `value` stands for the list of its items."""
    longs: list[LongList] = []
    # A string each LongList is encoded as, then replaced by: no string of the entry's own holds
    # it, as none can be the random token, nor an unescaped quote before its escaped NUL.
    token = "\0" + secrets.token_hex(16)

    def stand_in(found: Any) -> str:
        if not isinstance(found, LongList):
            raise TypeError(f"Object of type {type(found).__name__} is not JSON serializable")
        longs.append(found)
        return f"{token}:{len(longs) - 1}"

    text = json.JSONEncoder(**CANONICAL, default=stand_in).encode(value)
    if not longs:
        return text.encode("utf-8")
    # Put together in an unnamed file and read back in one piece: the items never held twice.
    with tempfile.TemporaryFile() as out:
        for number, long in enumerate(longs):
            before, text = text.split(canonical_json(f"{token}:{number}").decode("utf-8"), 1)
            out.write(before.encode("utf-8"))
            long._copy_to(out)
        out.write(text.encode("utf-8"))
        out.flush()
        return os.pread(out.fileno(), out.tell(), 0)

