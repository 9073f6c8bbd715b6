"""A document's claims kept in an unnamed temporary file instead of in memory: a claim sheet of
a million rows is read one row at a time, and its claims wait there to be listed in the catalog."""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from typing import Iterator, Sequence, overload

from archiver.read.model import Citation, Claim

_BLOCK = 1024  # claims read back with one read


class ClaimSpool(Sequence[Claim]):
    """Claims appended in order, then read back as a sequence, as often as needed. Its memory is
    8 bytes a claim (where each ends in the file); the file is gone once the spool is."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._ends = array("q")

    def append(self, claim: Claim) -> None:
        # A tuple, not the Claim: its pickle is shorter, and names no class to import when read.
        record = pickle.dumps((claim.id, claim.text, claim.start, claim.end, claim.kind,
                               [(c.url, c.normalised, c.standalone) for c in claim.citations], claim.row,
                               claim.verbatim), protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(record)
        self._ends.append((self._ends[-1] if self._ends else 0) + len(record))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> Claim: ...

    @overload
    def __getitem__(self, index: slice) -> list[Claim]: ...

    def __getitem__(self, index: int | slice) -> Claim | list[Claim]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            claims = list(self._between(start, max(start, stop)))
            return claims if step == 1 else list(self)[index]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("claim index out of range")
        return next(self._between(index, index + 1))

    def __iter__(self) -> Iterator[Claim]:
        return self._between(0, len(self))

    def _between(self, start: int, stop: int) -> Iterator[Claim]:
        self._file.flush()
        # pread, at offsets: no file position shared between two readings under way at once.
        for first in range(start, stop, _BLOCK):
            last = min(first + _BLOCK, stop)
            begin = self._ends[first - 1] if first else 0
            block = os.pread(self._file.fileno(), self._ends[last - 1] - begin, begin)
            at = 0
            for index in range(first, last):
                end = self._ends[index] - begin
                yield _claim(pickle.loads(block[at:end]))
                at = end


def _claim(record: tuple) -> Claim:
    id_, text, start, end, kind, citations, row, verbatim = record
    return Claim(id=id_, text=text, start=start, end=end, kind=kind,
                 citations=tuple(Citation(*citation) for citation in citations), row=row, verbatim=verbatim)
