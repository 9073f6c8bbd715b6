"""A document's claims kept in an unnamed temporary file instead of in memory: a claim sheet of
a million rows is read one row at a time, and its claims wait there to be listed in the catalog."""

from __future__ import annotations

import bisect
import os
import pickle
import tempfile
from array import array
from typing import Iterator, Sequence, overload

from archiver.read.model import Citation, Claim

# Claims pickled, written and read back together: one pickle of a block, not one a claim, which
# cost a write, a slice and a `pickle.loads` each and made every pass over a sheet's claims (the
# catalog's, the URLs') slower than reading the sheet's rows.
_BLOCK = 1024


class ClaimSpool(Sequence[Claim]):
    """Claims appended in order, then read back as a sequence, as often as needed. Its memory is
    a block of claims being filled, and 16 bytes a block (its first claim, where it ends in the
    file); the file is gone once the spool is."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._firsts = array("q")   # blocks may be short: one is written whenever claims are read back
        self._ends = array("q")
        self._filling: list[tuple] = []
        self._count = 0

    def append(self, claim: Claim) -> None:
        # A tuple, not the Claim: its pickle is shorter and quicker to read, and names no class.
        self._filling.append((claim.id, claim.text, claim.start, claim.end, claim.kind,
                              [(c.url, c.normalised, c.standalone) for c in claim.citations], claim.row,
                              claim.verbatim))
        self._count += 1
        if len(self._filling) == _BLOCK:
            self._write_block()

    def _write_block(self) -> None:
        record = pickle.dumps(self._filling, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(record)
        self._firsts.append(self._count - len(self._filling))
        self._ends.append((self._ends[-1] if self._ends else 0) + len(record))
        self._filling = []

    def __len__(self) -> int:
        return self._count

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
        if self._filling:  # the last, part-filled block: written once claims are read back
            self._write_block()
        self._file.flush()
        block = max(bisect.bisect_right(self._firsts, start) - 1, 0)
        while block < len(self._firsts) and self._firsts[block] < stop:
            begin = self._ends[block - 1] if block else 0
            # pread, at offsets: no file position shared between two readings under way at once.
            records = pickle.loads(os.pread(self._file.fileno(), self._ends[block] - begin, begin))
            first = self._firsts[block]
            block += 1
            for id_, text, claim_start, end, kind, citations, row, verbatim in \
                    records[max(start - first, 0):stop - first]:
                yield Claim(id_, text, claim_start, end, kind, tuple(Citation(*citation) for citation in citations),
                            row, verbatim)
